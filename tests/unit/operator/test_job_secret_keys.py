"""A Job whose tasks name a Secret key (an HLS encryption key) mounts exactly
that key, read-only, by reference: no key bytes, no Secret data anywhere in
the Job."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from mediaflow_api.job import SECRETS_DIR, ObjectRef, WorkflowRef, secret_key_path
from mediaflow_api.tasks import SecretKeyRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.job_render import render_job

from .samples import spec

pytestmark = pytest.mark.unit


def _encrypted(name: str, secret: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "adaptiveStreaming": {
            "encryption": {
                "keySecret": {"name": secret, "key": key},
                "keyUri": f"https://keys.example.com/{name}",
            }
        },
    }


def _render(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return render_job(
        workflow=WorkflowRef(namespace="media", name="videos", uid="uid-1", generation=1),
        spec=WorkflowSpec.model_validate(spec(tasks=tasks)),
        obj=ObjectRef(bucket="uploads", key="incoming/a.mp4", etag="abc"),
        job_name="mf-videos-1",
        storage_secret="store",
        image="worker:1",
        command=("mediaflow-worker", "job"),
    )


def test_each_named_key_is_mounted_read_only_by_reference() -> None:
    job = _render(
        [
            _encrypted("hls", "hls-keys", "movie.key"),
            _encrypted("hls-2", "hls-keys", "movie.key"),  # the same key: one item
            _encrypted("trailer", "trailer-keys", "k"),
        ]
    )
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert volumes["secret-key-0"]["secret"] == {
        "secretName": "hls-keys",
        "items": [{"key": "movie.key", "path": "movie.key"}],
        "defaultMode": 0o440,
        "optional": True,
    }
    assert volumes["secret-key-1"]["secret"]["secretName"] == "trailer-keys"
    assert mounts["secret-key-0"] == {
        "name": "secret-key-0",
        "mountPath": f"{SECRETS_DIR}/hls-keys",
        "readOnly": True,
    }
    assert mounts["secret-key-1"]["mountPath"] == f"{SECRETS_DIR}/trailer-keys"
    # Where the worker reads it (the contract's one definition of the path).
    ref = SecretKeyRef(name="hls-keys", key="movie.key")
    mounted = PurePosixPath(mounts["secret-key-0"]["mountPath"]) / "movie.key"
    assert secret_key_path(SECRETS_DIR, ref) == mounted


def test_no_key_material_or_secret_data_anywhere_in_the_job() -> None:
    job = _render([_encrypted("hls", "hls-keys", "movie.key")])
    text = json.dumps(job)
    for field in ("stringData", '"data"', 'secretKeyRef": {"name": "hls-keys'):
        assert field not in text
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    # The worker's env names the Secret only inside the task snapshot.
    assert not [e for e in env if "hls-keys" in json.dumps(e.get("valueFrom", {}))]
    assert "hls-keys" not in json.dumps(job["metadata"])


def test_a_job_without_secret_keys_mounts_only_its_scratch() -> None:
    job = _render([{"name": "hls", "adaptiveStreaming": {}}])
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["scratch"]
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == ["scratch"]
