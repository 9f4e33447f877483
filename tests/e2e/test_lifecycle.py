"""Suspend, edit, resume and delete behave as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaflow_operator import naming
from tests.e2e.harness import (
    Stack,
    consumer_exists,
    counters,
    our_rule_prefixes,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _task_names(job: Any) -> list[str]:
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    return [t["name"] for t in json.loads(env["MEDIAFLOW_JOB"])["tasks"]]


def _job_for(stack: Stack, uid: str, key: str) -> Any:
    for job in stack.jobs(uid):
        if job.metadata.annotations.get(naming.ANNOTATION_KEY) == key:
            return job
    return None


def test_suspend_edit_resume_delete(stack: Stack, nats_server: Any) -> None:
    bucket = stack.bucket("life")
    wf = stack.create_workflow(
        "life",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "first", "analysis": {}}],
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("life")
    uid = wf["metadata"]["uid"]
    meta = stack.get("life")["metadata"]
    assert meta["finalizers"] == ["mediaflow.dev/finalizer"]
    annotations = meta.get("annotations", {})
    assert not [k for k in annotations if not k.startswith("mediaflow.dev/")], annotations
    durable = stack.status("life")["consumer"]
    assert consumer_exists(nats_server.url, "MEDIAFLOW_EVENTS", durable)
    assert our_rule_prefixes(stack.minio, bucket) == ["in/"]

    stack.upload(bucket, "in/one.mp4")
    wait_for(lambda: counters(stack.status("life"))["succeeded"] == 1, 60, "one.mp4 processed")

    # Suspend: the rule and the consumer go away, Ready says Suspended.
    stack.patch_spec("life", {"suspend": True})

    def suspended() -> bool:
        status = stack.status("life")
        ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        return bool(ready) and ready[0]["reason"] == "Suspended" and status.get("consumer") == ""

    wait_for(suspended, 60, lambda: f"suspension\n{stack.operator.diagnose()}")
    assert our_rule_prefixes(stack.minio, bucket) == []
    assert not consumer_exists(nats_server.url, "MEDIAFLOW_EVENTS", durable)
    stack.upload(bucket, "in/while-suspended.mp4")

    # Edit while suspended: new uploads get the new tasks, old Jobs keep theirs.
    stack.patch_spec("life", {"tasks": [{"name": "second", "analysis": {}}], "suspend": False})
    stack.wait_ready("life")
    assert our_rule_prefixes(stack.minio, bucket) == ["in/"]
    stack.upload(bucket, "in/two.mp4")
    wait_for(lambda: counters(stack.status("life"))["succeeded"] == 2, 60, "two.mp4 processed")
    assert _task_names(_job_for(stack, uid, "in/one.mp4")) == ["first"]
    assert _task_names(_job_for(stack, uid, "in/two.mp4")) == ["second"]
    assert _job_for(stack, uid, "in/two.mp4").metadata.annotations[
        naming.ANNOTATION_GENERATION
    ] == str(stack.get("life")["metadata"]["generation"])
    # The upload during suspension was never dispatched (its event was never sent).
    assert _job_for(stack, uid, "in/while-suspended.mp4") is None
    assert counters(stack.status("life"))["received"] == 2

    # Delete: rule and consumer gone, owned Jobs garbage-collected.
    stack.delete("life")
    wait_for(lambda: stack.gone("life"), 60, "Workflow deleted")
    assert our_rule_prefixes(stack.minio, bucket) == []
    assert not consumer_exists(nats_server.url, "MEDIAFLOW_EVENTS", durable)
    wait_for(lambda: stack.jobs(uid) == [], 60, "owned Jobs garbage-collected")


def test_finished_jobs_are_deleted_after_counting_and_counts_stay(stack: Stack) -> None:
    bucket = stack.bucket("ret")
    wf = stack.create_workflow(
        "retention",
        {
            "trigger": {"bucket": bucket},
            "tasks": [{"name": "probe", "analysis": {}}],
            "execution": {"finishedJobRetentionSeconds": 0},
        },
    )
    stack.wait_ready("retention")
    uid = wf["metadata"]["uid"]
    for i in range(3):
        stack.upload(bucket, f"clip-{i}.mp4", b"x" * (i + 1))
    wait_for(lambda: counters(stack.status("retention"))["succeeded"] == 3, 60, "3 results")
    wait_for(lambda: stack.jobs(uid) == [], 60, "counted Jobs deleted")
    assert counters(stack.status("retention")) == {
        "received": 3,
        "skipped": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 0,
    }
