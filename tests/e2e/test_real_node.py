"""What only a real node can show: the operator's Jobs run as containers of the
project's images under containerd, with their security context, memory limit,
deadline and termination message enforced and reported by the kubelet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from mediaflow_operator import naming
from tests.e2e.harness import FAKE_WORKER_IMAGE, WORKER_IMAGE, Stack, counters, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pods(stack: Stack, job_name: str) -> list[Any]:
    core = client.CoreV1Api(stack.api)
    return list(
        core.list_namespaced_pod(stack.namespace, label_selector=f"job-name={job_name}").items
    )


def _only_job(stack: Stack, workflow_uid: str) -> Any:
    jobs = stack.jobs(workflow_uid)
    return jobs[0] if len(jobs) == 1 else None


def _running_pod(stack: Stack, job_name: str) -> Any:
    for pod in _pods(stack, job_name):
        statuses = pod.status.container_statuses or []
        if statuses and statuses[0].state.running and not pod.metadata.deletion_timestamp:
            return pod
    return None


def test_worker_pods_are_containers_of_the_image_locked_down_by_the_runtime(
    stack: Stack, kube_cluster: Any
) -> None:
    bucket = stack.bucket("node")
    wf = stack.create_workflow(
        "on-node",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("on-node")
    stack.upload(bucket, "clip.mp4")
    wait_for(lambda: counters(stack.status("on-node"))["succeeded"] == 1, 90, "the Job to succeed")
    job = _only_job(stack, wf["metadata"]["uid"])
    [pod] = _pods(stack, job.metadata.name)
    assert pod.spec.node_name == kube_cluster.node.name
    status = pod.status.container_statuses[0]
    assert status.image == FAKE_WORKER_IMAGE
    assert status.container_id.startswith("containerd://")
    # The runtime's own record of the container (the OCI spec runc ran).
    container_id = status.container_id.removeprefix("containerd://")
    info = json.loads(kube_cluster.node.ctr("containers", "info", container_id))
    oci = info["Spec"]
    assert oci["root"]["readonly"] is True
    # The Job's securityContext decides the user, whatever the image says.
    run_as = pod.spec.security_context.run_as_user
    assert run_as, "the Job sets a user"
    assert run_as != 0
    assert oci["process"]["user"]["uid"] == run_as
    assert not oci["process"]["capabilities"].get("bounding")
    assert oci["process"]["noNewPrivileges"] is True
    assert not any(m["destination"].startswith(TOKEN_DIR) for m in oci["mounts"])
    assert any(m["destination"] == "/scratch" for m in oci["mounts"])
    # The worker's summary came back through the kubelet's termination message.
    summary = json.loads(status.state.terminated.message)
    assert summary["ok"] is True
    assert summary["manifest"].endswith("manifest.json")


def test_an_oom_killed_worker_is_reported_in_the_workflow_status(
    real_worker_stack: Stack, tmp_path: Path
) -> None:
    stack = real_worker_stack
    bucket = stack.bucket("oom")
    wf = stack.create_workflow(
        "oom",
        {
            "trigger": {"bucket": bucket},
            "tasks": [{"name": "hd", "transcode": {"preset": "h264-1080p"}}],
            "execution": {
                "backoffLimit": 0,
                "finishedJobRetentionSeconds": 3600,
                "resources": {"limits": {"memory": "96Mi"}},
            },
        },
    )
    stack.wait_ready("oom")
    clip = tmp_path / "big.mp4"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc2=size=1920x1080:rate=25:duration=4", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-y", str(clip),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    stack.upload(bucket, "big.mp4", clip.read_bytes())
    wait_for(lambda: counters(stack.status("oom"))["failed"] == 1, 240, "the Job to fail")
    failure = stack.status("oom")["lastFailures"][0]
    assert failure["object"] == f"{bucket}/big.mp4"
    assert failure["reason"] == "OOMKilled"
    assert "memory limit" in failure["message"]
    job = _only_job(stack, wf["metadata"]["uid"])
    [pod] = _pods(stack, job.metadata.name)
    assert pod.status.container_statuses[0].image == WORKER_IMAGE
    assert pod.status.container_statuses[0].state.terminated.reason == "OOMKilled"


def test_a_deleted_worker_pod_is_retried_and_not_counted_as_a_failure(
    lingering_stack: Stack,
) -> None:
    stack = lingering_stack
    bucket = stack.bucket("evict")
    wf = stack.create_workflow(
        "evicted",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "execution": {"backoffLimit": 2, "finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("evicted")
    stack.upload(bucket, "clip.mp4")
    job = wait_for(lambda: _only_job(stack, wf["metadata"]["uid"]), 60, "the Job")
    pod = wait_for(lambda: _running_pod(stack, job.metadata.name), 90, "its pod to run")
    client.CoreV1Api(stack.api).delete_namespaced_pod(
        pod.metadata.name, stack.namespace, grace_period_seconds=1
    )
    wait_for(
        lambda: counters(stack.status("evicted"))["succeeded"] == 1,
        180,
        lambda: f"the retried Job to succeed\n{stack.operator.diagnose()}",
    )
    assert counters(stack.status("evicted"))["failed"] == 0
    assert not stack.status("evicted").get("lastFailures")
    done = stack.batch.read_namespaced_job(job.metadata.name, stack.namespace)
    assert done.status.succeeded == 1
    names = {p.metadata.name for p in _pods(stack, job.metadata.name)}
    assert pod.metadata.name not in names, "a new pod did the work"
    assert job.metadata.annotations[naming.ANNOTATION_KEY] == "clip.mp4"


def test_a_stuck_worker_is_ended_by_its_deadline(lingering_stack: Stack) -> None:
    stack = lingering_stack
    bucket = stack.bucket("stuck")
    wf = stack.create_workflow(
        "stuck",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "execution": {"activeDeadlineSeconds": 10, "finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("stuck")
    stack.upload(bucket, "clip.mp4")
    wait_for(lambda: counters(stack.status("stuck"))["failed"] == 1, 120, "the deadline")
    failure = stack.status("stuck")["lastFailures"][0]
    assert failure["reason"] == "DeadlineExceeded"
    job = _only_job(stack, wf["metadata"]["uid"])
    wait_for(lambda: _running_pod(stack, job.metadata.name) is None, 60, "the pod to be stopped")
