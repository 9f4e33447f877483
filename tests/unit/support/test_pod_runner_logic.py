"""The pod runner's pure parts: path translation, $(VAR) expansion, fieldRefs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pod_runner import PodSetupError, _expand, field_path_value, translate

pytestmark = pytest.mark.unit

MOUNTS = {
    "/scratch": Path("/tmp/p/scratch"),
    "/scratch/cache": Path("/tmp/p/cache"),
    "/dev/termination-log": Path("/tmp/p/term"),
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/scratch", "/tmp/p/scratch"),
        ("/scratch/tmp/x", "/tmp/p/scratch/tmp/x"),
        ("/scratch/cache/y", "/tmp/p/cache/y"),  # the longest mount wins
        ("/scratchy", "/scratchy"),  # a sibling path is not below the mount
        ("/dev/termination-log", "/tmp/p/term"),
        ("relative/scratch", "relative/scratch"),
        ("", ""),
    ],
)
def test_container_paths_are_translated_to_the_local_mount_directories(
    value: str, expected: str
) -> None:
    assert translate(value, MOUNTS) == expected


def test_dollar_parentheses_expand_known_variables_and_keep_the_rest() -> None:
    env = {"A": "1", "B": "two"}
    assert _expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"


def test_field_refs_resolve_names_labels_and_annotations() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "labels": {"app": "x"},
            "annotations": {"a/b": "c"},
        },
        "spec": {"serviceAccountName": "sa"},
    }
    assert field_path_value(pod, "metadata.name") == "p"
    assert field_path_value(pod, "metadata.labels['app']") == "x"
    assert field_path_value(pod, "metadata.annotations['a/b']") == "c"
    assert field_path_value(pod, "spec.serviceAccountName") == "sa"
    with pytest.raises(PodSetupError, match="unsupported fieldPath"):
        field_path_value(pod, "status.phase")
