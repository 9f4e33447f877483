"""The Helm chart installed for real on the stack's node: the operator, the
bundled MinIO and NATS JetStream from the images `make images` built, the
chart's `helm test` hook, a real upload processed by the real worker, an
upgrade that keeps the Workflow and its counters, and an uninstall that
leaves no workload behind."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import RESTRICTED, counters, ensure_namespace, wait_for
from tests.support.helm import CHART, run_helm
from tests.support.workflow_api import create_workflow_object, is_ready, workflow_status

pytestmark = pytest.mark.e2e


@dataclass
class Release:
    """One install of the chart, with the namespace its Workflows live in."""

    api: client.ApiClient
    kubeconfig: Path
    name: str
    namespace: str
    workflows: str

    def helm(
        self, *args: str, timeout: float = 420, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against the stack; with ``check``, fail with its output."""
        kubeconfig, namespace = self.kubeconfig, self.namespace
        return run_helm(
            *args, kubeconfig=kubeconfig, namespace=namespace, timeout=timeout, check=check
        )

    def values(self) -> list[str]:
        return [
            # Default values otherwise: the bundled servers' claims bind to the
            # node's pre-made volumes (its default StorageClass).
            # Only this test's namespace: other tests run operators of their own.
            "--set",
            f"rbac.namespaces={{{self.workflows}}}",
            # The smoke test's and the test's Workflows use the default storage Secret.
            "--set",
            f"storage.shareWithNamespaces={{{self.workflows}}}",
        ]

    def workload(self) -> list[str]:
        apps = client.AppsV1Api(self.api)
        core = client.CoreV1Api(self.api)
        found = [
            f"deployment/{d.metadata.name}"
            for d in apps.list_namespaced_deployment(self.namespace).items
        ]
        found += [
            f"statefulset/{s.metadata.name}"
            for s in apps.list_namespaced_stateful_set(self.namespace).items
        ]
        found += [
            f"pod/{p.metadata.name}"
            for p in core.list_namespaced_pod(self.namespace).items
            if not p.metadata.deletion_timestamp
        ]
        return found


@pytest.fixture
def release(kube_cluster: Any) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    api = kube_cluster.api_client()
    rel = Release(
        api=api,
        kubeconfig=kube_cluster.kubeconfig,
        name=f"mf-{suffix}",
        namespace=f"mediaflow-{suffix}",
        workflows=f"media-{suffix}",
    )
    ensure_namespace(api, rel.namespace, labels=RESTRICTED)
    ensure_namespace(api, rel.workflows, labels=RESTRICTED)
    try:
        yield rel
    finally:
        rel.helm("uninstall", rel.name, "--wait", "--timeout", "2m", check=False)
        core = client.CoreV1Api(api)
        for namespace in (rel.workflows, rel.namespace):
            core.delete_namespace(namespace)


def _workflow_status(rel: Release, name: str) -> dict[str, Any]:
    return workflow_status(rel.api, rel.workflows, name)


def _storage_pod(name: str, secret: str, bucket: str, key: str | None) -> dict[str, Any]:
    """A pod of the worker image (it has ffmpeg and the MinIO client) that creates
    the bucket in the chart's MinIO with the chart's credentials, and with a
    ``key`` makes a short clip and uploads it there."""
    upload = (
        "import subprocess\n"
        "subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i',"
        " 'testsrc=size=320x240:rate=10:duration=2', '-pix_fmt', 'yuv420p', '-c:v', 'libx264',"
        " '/scratch/clip.mp4'], check=True)\n"
        f"c.fput_object({bucket!r}, {key!r}, '/scratch/clip.mp4')\n"
    )
    script = (
        "import os\n"
        "from minio import Minio\n"
        "c = Minio(os.environ['ENDPOINT'], access_key=os.environ['AK'],"
        " secret_key=os.environ['SK'], secure=False)\n"
        f"c.make_bucket({bucket!r}) if not c.bucket_exists({bucket!r}) else None\n"
    ) + (upload if key else "")

    def env(name: str, key_: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key_}}}

    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "upload",
                    "image": f"ghcr.io/mediaflow/worker:{_app_version()}",
                    "command": ["python", "-c", script],
                    "env": [
                        env("ENDPOINT", "endpoint"),
                        env("AK", "accessKey"),
                        env("SK", "secretKey"),
                    ],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }


def _ready(rel: Release, name: str) -> bool:
    return is_ready(_workflow_status(rel, name))


def _succeeded(core: client.CoreV1Api, namespace: str, pod: str) -> bool:
    phase = core.read_namespaced_pod(pod, namespace).status.phase
    assert phase != "Failed", f"pod {pod} failed"
    return bool(phase == "Succeeded")


def _app_version() -> str:
    from mediaflow_api import __version__

    return __version__


@pytest.mark.timeout(600)
def test_the_chart_installs_processes_an_upload_upgrades_and_uninstalls(release: Release) -> None:
    rel = release
    rel.helm("install", rel.name, str(CHART), *rel.values(), "--wait", "--timeout", "5m")
    status = json.loads(rel.helm("status", rel.name, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    claims = client.CoreV1Api(rel.api).list_namespaced_persistent_volume_claim(rel.namespace).items
    assert sorted(c.status.phase for c in claims) == ["Bound", "Bound"], "MinIO's and NATS's data"
    # The chart's own proof: a smoke Workflow becomes Ready.
    rel.helm("test", rel.name, "--timeout", "4m")

    # A real upload, processed by the real worker the chart configured.
    bucket = f"uploads-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(rel.api)
    secret = next(
        s.metadata.name
        for s in core.list_namespaced_secret(rel.namespace).items
        if s.data and {"endpoint", "accessKey", "secretKey"} <= s.data.keys()
    )
    # Storage pods run in the release namespace, where the Secret is.
    core.create_namespaced_pod(rel.namespace, _storage_pod("bucket", secret, bucket, None))  # type: ignore[arg-type]  # a plain manifest
    wait_for(lambda: _succeeded(core, rel.namespace, "bucket"), 120, "the bucket to be created")
    create_workflow_object(
        rel.api,
        rel.workflows,
        {"trigger": {"bucket": bucket}, "tasks": [{"name": "probe", "analysis": {}}]},
        name="videos",
    )
    wait_for(lambda: _ready(rel, "videos"), 120, "the Workflow to be Ready")
    core.create_namespaced_pod(rel.namespace, _storage_pod("upload", secret, bucket, "clip.mp4"))  # type: ignore[arg-type]  # a plain manifest
    wait_for(
        lambda: counters(_workflow_status(rel, "videos"))["succeeded"] == 1,
        240,
        "the upload to be processed through the chart's MinIO, NATS and operator",
    )
    before = counters(_workflow_status(rel, "videos"))

    # An upgrade with changed values keeps the Workflow and its counters.
    rel.helm(
        "upgrade", rel.name, str(CHART), *rel.values(), "--set", "operator.logFormat=text",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    wait_for(lambda: _ready(rel, "videos"), 120, "the Workflow Ready again after the upgrade")
    assert counters(_workflow_status(rel, "videos")) == before

    for pod in ("bucket", "upload"):  # ours, not the chart's
        core.delete_namespaced_pod(pod, rel.namespace, grace_period_seconds=0)
    rel.helm("uninstall", rel.name, "--wait", "--timeout", "3m")
    wait_for(lambda: rel.workload() == [], 120, "no workload left after helm uninstall")
    # What survives on purpose: the Workflow (a CRD object, not the chart's) and the
    # storage Secret (resource-policy keep, so a reinstall finds MinIO's credentials).
    assert _workflow_status(rel, "videos")
