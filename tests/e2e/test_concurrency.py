"""maxConcurrentJobs bounds the Jobs that exist at once; the backlog waits in JetStream."""

from __future__ import annotations

import threading
import time

import pytest

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

        final = wait_for(all_done, 180, f"10 Jobs done\n{stack.operator.log_tail()}")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert peak <= 2, f"saw {peak} active Jobs at once"
    assert peak == 2, "the limit was never reached: the test proves nothing"
    assert len(seen) == 10
    assert final == {"received": 10, "skipped": 0, "running": 0, "succeeded": 10, "failed": 0}
