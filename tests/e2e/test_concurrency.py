"""maxConcurrentJobs bounds the Jobs that exist at once; the backlog waits in JetStream."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client

from mediaflow_operator import cli, naming
from tests.e2e.harness import Stack, counters, wait_for

pytestmark = pytest.mark.e2e


def test_never_more_than_max_concurrent_jobs_and_all_finish(slow_stack: Stack) -> None:
    stack = slow_stack
    bucket = stack.bucket("conc")
    wf = stack.create_workflow(
        "limited",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "execution": {"maxConcurrentJobs": 2, "finishedJobRetentionSeconds": 600},
        },
    )
    stack.wait_ready("limited")
    uid = wf["metadata"]["uid"]
    peak = 0
    seen: set[str] = set()
    stop = threading.Event()

    def observe() -> None:
        nonlocal peak
        while not stop.is_set():
            active = 0
            for job in stack.jobs(uid):
                seen.add(job.metadata.name)
                done = any(
                    c.type in ("Complete", "Failed") and c.status == "True"
                    for c in (job.status.conditions or [])
                )
                active += 0 if done else 1
            peak = max(peak, active)
            time.sleep(0.1)

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    try:
        for i in range(10):
            stack.upload(bucket, f"in/video-{i}.mp4")

        def all_done() -> dict[str, int] | None:
            c = counters(stack.status("limited"))
            return c if c["succeeded"] == 10 and c["running"] == 0 else None

        final = wait_for(all_done, 180, lambda: f"10 Jobs done\n{stack.operator.diagnose()}")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert peak <= 2, f"saw {peak} active Jobs at once"
    assert peak == 2, "the limit was never reached: the test proves nothing"
    assert len(seen) == 10
    assert final == {"received": 10, "skipped": 0, "running": 0, "succeeded": 10, "failed": 0}


def test_a_manual_trigger_waits_for_a_free_slot(
    slow_stack: Stack, kube_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = slow_stack
    bucket = stack.bucket("mq")
    stack.upload(bucket, "in/old.mp4")  # before the Workflow: only a manual trigger runs it
    wf = stack.create_workflow(
        "queued",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "execution": {"maxConcurrentJobs": 1},
        },
    )
    stack.wait_ready("queued")
    uid = wf["metadata"]["uid"]
    peak = 0
    stop = threading.Event()

    def observe() -> None:
        nonlocal peak
        while not stop.is_set():
            active = sum(
                0
                if any(
                    c.type in ("Complete", "Failed") and c.status == "True"
                    for c in (job.status.conditions or [])
                )
                else 1
                for job in stack.jobs(uid)
            )
            peak = max(peak, active)
            time.sleep(0.1)

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    try:
        stack.upload(bucket, "in/new-0.mp4")
        stack.upload(bucket, "in/new-1.mp4")
        wait_for(lambda: len(stack.jobs(uid)) >= 1, 60, "the first Job")
        monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
        assert (
            cli.main(["process", "-n", stack.namespace, "queued", "in/old.mp4", "--wait", "0"]) == 0
        )

        def queued_event() -> bool:
            items = client.CoreV1Api(stack.api).list_namespaced_event(stack.namespace).items
            return any(
                e.reason == "ManualTriggerQueued" and e.involved_object.name == "queued"
                for e in items
            )

        wait_for(
            queued_event, 30, lambda: f"a ManualTriggerQueued Event\n{stack.operator.diagnose()}"
        )

        def all_done() -> dict[str, int] | None:
            c = counters(stack.status("queued"))
            return c if c["succeeded"] == 3 and c["running"] == 0 else None

        final = wait_for(all_done, 120, lambda: f"3 Jobs done\n{stack.operator.diagnose()}")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert peak == 1, f"saw {peak} active Jobs at once with maxConcurrentJobs 1"
    assert final == {"received": 3, "skipped": 0, "running": 0, "succeeded": 3, "failed": 0}
    triggers = sorted(j.metadata.labels[naming.LABEL_TRIGGER] for j in stack.jobs(uid))
    assert triggers == ["event", "event", "manual"]
