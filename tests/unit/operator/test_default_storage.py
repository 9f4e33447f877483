"""Who may use the operator's default storage Secret (pure rules)."""

from __future__ import annotations

import pytest

from mediaflow_operator import naming
from mediaflow_operator.default_storage import copy_of, is_our_copy, may_share, uses_default_storage
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit


def test_only_the_secrets_own_namespace_by_default() -> None:
    assert may_share("mediaflow-system", "mediaflow-system", ())
    assert not may_share("team-a", "mediaflow-system", ())


def test_listed_namespaces_and_the_wildcard_share() -> None:
    assert may_share("media", "mediaflow-system", ("media", "video"))
    assert not may_share("mediaX", "mediaflow-system", ("media", "video"))
    assert may_share("anything", "mediaflow-system", ("*",))


def test_the_setting_is_read_space_separated() -> None:
    settings = Settings.from_env({"MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES": "media  video"})
    assert settings.default_storage_namespaces == ("media", "video")
    assert Settings.from_env({}).default_storage_namespaces == ()


def test_a_workflow_with_its_own_secret_or_being_deleted_does_not_use_the_default() -> None:
    assert uses_default_storage({"metadata": {}, "spec": {}})
    assert uses_default_storage({"metadata": {}, "spec": {"storage": {}}})
    assert not uses_default_storage(
        {"metadata": {}, "spec": {"storage": {"secretRef": {"name": "own"}}}}
    )
    assert not uses_default_storage(
        {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}
    )


def test_a_copy_is_marked_as_ours_and_only_such_a_secret_counts_as_one() -> None:
    source = {"type": "Opaque", "data": {"accessKey": "YQ=="}, "metadata": {"name": "s"}}
    copy = copy_of(source, "media", ("mediaflow-system", "mediaflow-storage"))
    assert copy["metadata"]["namespace"] == "media"
    assert copy["metadata"]["name"] == "mediaflow-default-storage"
    assert copy["data"] == {"accessKey": "YQ=="}
    assert is_our_copy(copy)
    foreign = {"metadata": {"name": "mediaflow-default-storage", "labels": {}}}
    assert not is_our_copy(foreign)
    labelled_only = {
        "metadata": {"labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY}, "annotations": {}}
    }
    assert not is_our_copy(labelled_only)
    assert not is_our_copy(None)
