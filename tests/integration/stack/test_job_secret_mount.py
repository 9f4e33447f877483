"""A worker Job as the operator renders it, on the local node: the HLS key a
task names is a read-only file the non-root worker can read, only that key of
the Secret is there, and a missing Secret does not keep the pod from starting
(the worker then says which key is missing)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client

from mediaflow_api import __version__
from mediaflow_api.job import STORAGE_ENV, ObjectRef, WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.job_render import CONTAINER_NAME, render_job
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

IMAGE = f"ghcr.io/mediaflow/worker:{__version__}"
KEY = bytes(range(16))
# What the pod reports about the mounted key (in its termination message).
SCRIPT = """
import json, os, pathlib
d = pathlib.Path('/var/run/mediaflow/secrets/hls-keys')
out = {'uid': os.getuid()}
key = d / 'movie.key'
out['key'] = key.read_bytes().hex() if key.exists() else None
out['files'] = sorted(p.name for p in d.iterdir() if not p.name.startswith('.')) \
    if d.exists() else None
try:
    (d / 'x').write_text('x'); out['writable'] = True
except OSError as e:
    out['writable'] = e.strerror
open('/dev/termination-log', 'w').write(json.dumps(out))
"""


def _job(namespace: str, name: str, secret: str) -> dict[str, Any]:
    task = {
        "name": "hls",
        "adaptiveStreaming": {
            "encryption": {
                "keySecret": {"name": secret, "key": "movie.key"},
                "keyUri": "https://keys.example.com/movie",
            }
        },
    }
    spec = WorkflowSpec.model_validate(
        {"trigger": {"bucket": "uploads", "prefix": "in/"}, "tasks": [task]}
    )
    return render_job(
        workflow=WorkflowRef(namespace=namespace, name="wf", uid="uid-1", generation=1),
        spec=spec,
        obj=ObjectRef(bucket="uploads", key="in/a.mp4", etag="e"),
        job_name=name,
        storage_secret="store",
        image=IMAGE,
        command=("python3", "-c", SCRIPT),
    )


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    """The pod a Job controller would make of ``job``: its template, as is.

    Created directly, so the test does not wait on the controller manager's
    Job queue, which a session full of earlier Jobs can hold up for minutes."""
    template = job["spec"]["template"]
    name = job["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template.get("metadata", {}), "name": name},
        "spec": template["spec"],
    }


def _report(core: client.CoreV1Api, namespace: str, pod_name: str) -> dict[str, Any]:
    def finished() -> Any:
        pod = core.read_namespaced_pod(pod_name, namespace)
        for status in pod.status.container_statuses or []:
            if status.name == CONTAINER_NAME and status.state.terminated:
                return status.state.terminated
        return None

    # Generous (the test's own time limit is raised to match): the first pod
    # of the worker image on a busy node unpacks it first.
    terminated = wait_for(finished, 240, f"the pod {pod_name} to finish")
    assert terminated.exit_code == 0, terminated.message
    report: dict[str, Any] = json.loads(terminated.message)
    return report


@pytest.mark.timeout(600)
def test_the_named_key_is_mounted_read_only_and_nothing_else(kube_cluster: Any) -> None:
    api = kube_cluster.api_client()
    core = client.CoreV1Api(api)
    namespace = f"keys-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    store = {key: "x" for key in STORAGE_ENV.values()}
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="store"), string_data=store),
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="hls-keys"),
            string_data={"movie.key": KEY.hex(), "other.key": "not for this Job"},
        ),
    )
    wait_for(lambda: core.read_namespaced_service_account("default", namespace), 30, "the SA")
    core.create_namespaced_pod(namespace, _pod(_job(namespace, "with-key", "hls-keys")))  # type: ignore[arg-type]
    core.create_namespaced_pod(namespace, _pod(_job(namespace, "no-secret", "absent")))  # type: ignore[arg-type]
    seen = _report(core, namespace, "with-key")
    assert seen == {
        "uid": 65532,
        "key": KEY.hex().encode().hex(),  # the Secret's bytes: 32 hex digits
        "files": ["movie.key"],
        "writable": "Read-only file system",
    }
    # optional: the pod starts without the Secret; the worker reports the
    # missing key itself (exit 2, AssetNotFound) instead of waiting for a volume.
    missing = _report(core, namespace, "no-secret")
    assert missing["key"] is None
    core.delete_namespace(namespace)
