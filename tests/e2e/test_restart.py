"""SIGKILL the operator in the middle of a burst: every object once, counters exact."""

from __future__ import annotations

import pytest

from tests.e2e.harness import OperatorProcess, Stack, counters, wait_for

pytestmark = pytest.mark.e2e


def test_sigkill_mid_burst_loses_nothing_and_duplicates_nothing(slow_stack: Stack) -> None:
    stack = slow_stack
    bucket = stack.bucket("kill")
    wf = stack.create_workflow(
        "burst",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "execution": {"maxConcurrentJobs": 4, "finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("burst")
    uid = wf["metadata"]["uid"]
    first = [f"in/first-{i:02d}.mp4" for i in range(10)]
    for key in first:
        stack.upload(bucket, key)
    stack.upload(bucket, "in/skip-me/")  # a folder marker: counted as skipped

    # Kill while Jobs are running and the backlog still waits in the queue.
    wait_for(lambda: len(stack.jobs(uid)) >= 4, 60, "the first Jobs")
    assert isinstance(stack.operator, OperatorProcess)  # a local process to SIGKILL
    stack.operator.kill()
    assert len(stack.jobs(uid)) < len(first), "killed before the backlog was dispatched"
    during = [f"in/during-{i:02d}.mp4" for i in range(4)]
    for key in during:
        stack.upload(bucket, key)
    stack.operator.start()

    def done() -> dict[str, int] | None:
        c = counters(stack.status("burst"))
        return c if c["succeeded"] + c["failed"] >= 14 and c["running"] == 0 else None

    final = wait_for(
        done, 240, lambda: f"14 results after the restart\n{stack.operator.diagnose()}"
    )
    assert final == {"received": 15, "skipped": 1, "running": 0, "succeeded": 14, "failed": 0}
    jobs = stack.jobs(uid)
    keys = [j.metadata.annotations["mediaflow.dev/key"] for j in jobs]
    assert sorted(keys) == sorted(first + during), "one Job per object, none twice"

    # Every Job's result is in the ledger (countedJobs), which is what lets the
    # dispatcher delete it later and keeps a restart from counting it again.
    uids = sorted(j.metadata.uid for j in jobs)
    assert sorted(stack.status("burst")["countedJobs"]) == uids
    status = stack.status("burst")
    assert len(status["countedJobs"]) == 14
