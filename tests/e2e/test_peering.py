"""Active/standby with kopf peering: the standby creates nothing while the active
replica lives, takes over after a SIGKILL, hands back when the active one
returns, and every object is processed once with exact counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from tests.e2e.harness import OperatorProcess, Stack, counters, wait_for
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


def _priorities(stack: Stack, peering: str) -> list[int]:
    found = cast(
        dict[str, Any],
        client.CustomObjectsApi(stack.api).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", peering
        ),
    )
    return sorted(int(p["priority"]) for p in (found.get("status") or {}).values())


def _created(log: str) -> int:
    return log.count("created Job ")


def test_standby_stays_idle_takes_over_after_sigkill_and_hands_back(
    peered_stack: Stack, tmp_path: Path
) -> None:
    stack = peered_stack
    active = stack.operator
    assert isinstance(active, OperatorProcess)  # local processes of one peering
    env = dict(active.env)
    env["MEDIAFLOW_PEERING_PRIORITY"] = "10"
    env["MEDIAFLOW_LIVENESS_ENDPOINT"] = f"http://127.0.0.1:{free_port()}/healthz"
    env["MEDIAFLOW_METRICS_PORT"] = str(free_port())
    standby = OperatorProcess(env, tmp_path / "standby.log")
    standby.start()
    try:
        # Both peers keep themselves alive in the peering object. A peer starts
        # paused and resumes only once it sees no live peer of a higher priority.
        wait_for(
            lambda: _priorities(stack, env["MEDIAFLOW_PEERING_NAME"]) == [10, 100],
            60,
            lambda: f"both peers in the peering object\n{standby.diagnose()}",
        )
        assert "Resuming operations" in active.log_text()
        bucket = stack.bucket("peer")
        wf = stack.create_workflow(
            "peered",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "execution": {"maxConcurrentJobs": 3, "finishedJobRetentionSeconds": 3600},
            },
        )
        stack.wait_ready("peered", timeout=90)
        uid = wf["metadata"]["uid"]
        first = [f"in/first-{i:02d}.mp4" for i in range(6)]
        for key in first:
            stack.upload(bucket, key)
        stack.upload(bucket, "in/folder/")  # skipped, counted once

        wait_for(
            lambda: len(stack.jobs(uid)) >= 3, 90, lambda: f"the first Jobs\n{active.diagnose()}"
        )
        # A Job is visible in the API before the operator that created it has
        # logged it (the creates of a batch run concurrently): wait for the lines.
        wait_for(lambda: _created(active.log_text()) >= 3, 30, "the active logged its first Jobs")
        assert _created(standby.log_text()) == 0, "the standby created Jobs next to the active"
        assert "Resuming operations" not in standby.log_text()

        active.kill()
        assert len(stack.jobs(uid)) < len(first), "killed before the backlog was dispatched"
        during = [f"in/during-{i:02d}.mp4" for i in range(4)]
        for key in during:
            stack.upload(bucket, key)

        def done() -> dict[str, int] | None:
            c = counters(stack.status("peered"))
            return c if c["succeeded"] + c["failed"] >= 10 and c["running"] == 0 else None

        final = wait_for(done, 180, lambda: f"10 results after the takeover\n{standby.diagnose()}")
        assert final == {"received": 11, "skipped": 1, "running": 0, "succeeded": 10, "failed": 0}
        keys = sorted(j.metadata.annotations["mediaflow.dev/key"] for j in stack.jobs(uid))
        assert keys == sorted(first + during), "one Job per object, none twice"
        assert "Resuming operations" in standby.log_text()
        assert _created(standby.log_text()) >= len(during), "the standby did not take over"
        assert len(stack.status("peered")["countedJobs"]) == 10

        # The higher-priority operator comes back: the standby pauses and hands over.
        active.start()
        wait_for(
            lambda: "Pausing operations in favour of" in standby.log_text(),
            60,
            lambda: f"the standby to pause again\n{standby.diagnose()}",
        )
        by_standby = _created(standby.log_text())
        after = [f"in/after-{i:02d}.mp4" for i in range(3)]
        for key in after:
            stack.upload(bucket, key)

        def all_done() -> dict[str, int] | None:
            c = counters(stack.status("peered"))
            return c if c["succeeded"] + c["failed"] >= 13 and c["running"] == 0 else None

        final = wait_for(
            all_done, 120, lambda: f"13 results after the hand-back\n{active.diagnose()}"
        )
        assert final == {"received": 14, "skipped": 1, "running": 0, "succeeded": 13, "failed": 0}
        keys = sorted(j.metadata.annotations["mediaflow.dev/key"] for j in stack.jobs(uid))
        assert keys == sorted(first + during + after)
        assert _created(standby.log_text()) == by_standby, "the paused standby kept creating Jobs"
        assert len(stack.status("peered")["countedJobs"]) == 13
    finally:
        standby.stop()
