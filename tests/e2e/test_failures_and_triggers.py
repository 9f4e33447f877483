"""Failures are recorded with reasons; poison events, manual triggers and the sweep."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import nats
import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from mediaflow_operator import cli, naming
from tests.e2e.harness import Stack, counters, put_secret, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]


def _events(stack: Stack, name: str) -> list[Any]:
    items = client.CoreV1Api(stack.api).list_namespaced_event(stack.namespace).items
    return [e for e in items if e.involved_object.name == name]


def test_bad_input_fails_at_once_with_the_workers_reason(stack: Stack) -> None:
    bucket = stack.bucket("fail")
    wf = stack.create_workflow(
        "fails",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "execution": {"backoffLimit": 3, "finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("fails")
    stack.upload(bucket, "bad-input.mkv")
    stack.upload(bucket, "good.mkv")

    def settled() -> dict[str, int] | None:
        c = counters(stack.status("fails"))
        return c if c["failed"] == 1 and c["succeeded"] == 1 and c["running"] == 0 else None

    wait_for(settled, 90, lambda: f"one failure, one success\n{stack.operator.diagnose()}")
    failure = stack.status("fails")["lastFailures"][0]
    assert failure["object"] == f"{bucket}/bad-input.mkv"
    assert failure["reason"] == "BadInput"
    assert failure["message"] == "not a media file"
    # podFailurePolicy: exit code 2 fails the Job without using the 3 retries.
    [job] = [
        j
        for j in stack.jobs(wf["metadata"]["uid"])
        if j.metadata.annotations[naming.ANNOTATION_KEY] == "bad-input.mkv"
    ]
    assert (job.status.failed or 0) == 1
    wait_for(
        lambda: any(e.reason == "ObjectFailed" for e in _events(stack, "fails")),
        30,
        "an ObjectFailed Event on the Workflow",
    )


def _router_events(stack: Stack, result: str) -> float:
    """The operator's ``mediaflow_router_events_total{result=...}`` now."""
    for family in text_string_to_metric_families(stack.operator.metrics_text()):
        for sample in family.samples:
            if sample.name == "mediaflow_router_events_total" and sample.labels == {
                "result": result
            }:
                return float(sample.value)
    return 0.0


def test_poison_event_is_terminated_and_work_goes_on(
    stack: Stack, nats_server: Any, minio_server: Any
) -> None:
    bucket = stack.bucket("poison")
    stack.create_workflow("poisoned", {"trigger": {"bucket": bucket}, "tasks": TASKS})
    stack.wait_ready("poisoned")
    before = _router_events(stack, "poison")

    async def publish() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish(minio_server.notify_subject, b"{not json")
        await nc.close()

    asyncio.run(publish())
    stack.upload(bucket, "after.mp4")
    wait_for(lambda: counters(stack.status("poisoned"))["succeeded"] == 1, 60, "later upload done")
    # Unparseable, it belongs to no Workflow: the router terminates it, counts it
    # and logs it with its stream sequence.
    wait_for(
        lambda: _router_events(stack, "poison") == before + 1,
        30,
        lambda: f"the router counting the poison event: {stack.operator.diagnose()}",
    )
    assert "terminating unparseable event #" in stack.operator.log_text()
    assert counters(stack.status("poisoned"))["failed"] == 0


def test_manual_trigger_reprocesses_an_existing_object(
    stack: Stack, kube_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = stack.bucket("manual")
    wf = stack.create_workflow("manual", {"trigger": {"bucket": bucket}, "tasks": TASKS})
    stack.wait_ready("manual")
    stack.upload(bucket, "clip.mp4")
    wait_for(lambda: counters(stack.status("manual"))["succeeded"] == 1, 60, "first run")
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    assert cli.main(["process", "-n", stack.namespace, "manual", "clip.mp4", "--wait", "60"]) == 0
    wait_for(lambda: counters(stack.status("manual"))["succeeded"] == 2, 60, "manual run")
    triggers = sorted(
        j.metadata.labels[naming.LABEL_TRIGGER] for j in stack.jobs(wf["metadata"]["uid"])
    )
    assert triggers[-1] == "manual" or "manual" in triggers


def test_sweep_processes_existing_objects_when_asked(sweeping_stack: Stack) -> None:
    stack = sweeping_stack
    bucket = stack.bucket("sweep")
    for key in ("old/a.mp4", "old/b.mp4", "old/notes.txt"):
        stack.upload(bucket, key)
    other = stack.bucket("sweep-no")
    stack.upload(other, "old/c.mp4")
    # Times have whole seconds: an object of the Workflow's very second counts as
    # the Workflow's (an upload right after applying it must not be missed).
    modified = stack.minio.stat_object(other, "old/c.mp4").last_modified
    assert modified is not None
    wait_for(
        lambda: datetime.now(UTC) >= modified.replace(microsecond=0) + timedelta(seconds=1.2),
        5,
        "a later second than the old object's",
    )
    stack.create_workflow(
        "existing",
        {
            "trigger": {
                "bucket": bucket,
                "prefix": "old/",
                "suffixes": [".mp4"],
                "processExisting": True,
            },
            "tasks": TASKS,
        },
    )
    stack.create_workflow(
        "new-only", {"trigger": {"bucket": other, "prefix": "old/"}, "tasks": TASKS}
    )
    stack.wait_ready("existing")
    stack.wait_ready("new-only")
    wait_for(
        lambda: counters(stack.status("existing"))["succeeded"] == 2,
        60,
        lambda: f"existing objects swept\n{stack.operator.diagnose()}",
    )

    # The sweep went past the old object of the Workflow that did not ask for it.
    def swept_past_activation() -> bool:
        status = stack.status("new-only")
        swept, active = status.get("sweptUntil"), status.get("activeSince")
        return bool(swept and active and swept > active)

    wait_for(swept_past_activation, 30, "a sweep of new-only past its activation")
    assert counters(stack.status("new-only"))["received"] == 0
    # Later sweeps do not process the same objects again.
    first = stack.status("existing")["sweptUntil"]
    wait_for(lambda: stack.status("existing")["sweptUntil"] != first, 30, "another sweep")
    assert counters(stack.status("existing"))["succeeded"] == 2
    assert "sweep:" in stack.operator.log_text()


def test_a_missing_bucket_is_reported_and_the_workflow_recovers(stack: Stack) -> None:
    bucket = f"late-{uuid.uuid4().hex[:8]}"
    stack.create_workflow("late", {"trigger": {"bucket": bucket}, "tasks": TASKS})

    def reported() -> dict[str, Any] | None:
        for cond in stack.status("late").get("conditions") or []:
            if cond["type"] == "StorageReady" and cond["reason"] == "BucketNotFound":
                return cast(dict[str, Any], cond)
        return None

    cond = wait_for(
        reported, 60, lambda: f"StorageReady=False/BucketNotFound\n{stack.operator.diagnose()}"
    )
    assert cond["status"] == "False"
    assert bucket in cond["message"]
    assert stack.condition("late", "Ready") == "False"
    stack.minio.make_bucket(bucket)
    stack.wait_ready("late", timeout=90)
    stack.upload(bucket, "now.mp4")
    wait_for(
        lambda: counters(stack.status("late"))["succeeded"] == 1, 60, "processed after recovery"
    )


def test_own_storage_secret_is_checked_then_used(stack: Stack, minio_server: Any) -> None:
    bucket = stack.bucket("own")
    stack.create_workflow(
        "own-secret",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "storage": {"secretRef": {"name": "creds"}},
        },
    )

    def reason() -> str | None:
        for cond in stack.status("own-secret").get("conditions") or []:
            if cond["type"] == "StorageReady":
                return str(cond["reason"])
        return None

    wait_for(lambda: reason() == "SecretNotFound", 60, "StorageReady=False/SecretNotFound")
    put_secret(stack.api, stack.namespace, "creds", {"endpoint": minio_server.endpoint})
    wait_for(lambda: reason() == "SecretIncomplete", 60, "StorageReady=False/SecretIncomplete")
    put_secret(
        stack.api,
        stack.namespace,
        "creds",
        {
            "endpoint": minio_server.endpoint,
            "accessKey": minio_server.access_key,
            "secretKey": minio_server.secret_key,
        },
    )
    stack.wait_ready("own-secret", timeout=90)
    stack.upload(bucket, "mine.mp4")
    wait_for(lambda: counters(stack.status("own-secret"))["succeeded"] == 1, 60, "processed")
    [job] = stack.jobs()
    refs = {
        e.value_from.secret_key_ref.name
        for e in job.spec.template.spec.containers[0].env
        if e.value_from is not None
    }
    assert refs == {"creds"}
