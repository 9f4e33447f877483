from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mediaflow_operator import naming
from mediaflow_operator.job_views import JobView, count_active, job_view, termination_summary
from mediaflow_operator.status import Tally, count_running, set_condition

pytestmark = pytest.mark.unit
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _job(
    name: str = "j1",
    uid: str = "u1",
    conditions: list[dict[str, Any]] | None = None,
    counted: bool = False,
) -> dict[str, Any]:
    annotations = {naming.ANNOTATION_KEY: "in/a.mp4", naming.ANNOTATION_BUCKET: "b"}
    if counted:
        annotations[naming.ANNOTATION_COUNTED] = "succeeded"
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "labels": {naming.LABEL_WORKFLOW_UID: "wf"},
            "annotations": annotations,
        },
        "status": {"conditions": conditions or []},
    }


COMPLETE = [
    {"type": "SuccessCriteriaMet", "status": "True"},
    {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"},
]
FAILED = [
    {"type": "FailureTarget", "status": "True"},
    {
        "type": "Failed",
        "status": "True",
        "reason": "PodFailurePolicy",
        "message": "exit 2",
        "lastTransitionTime": "2026-01-01T00:00:05Z",
    },
]


def test_job_view_reads_final_conditions_only() -> None:
    assert job_view(_job()).state == "active"
    assert (
        job_view(_job(conditions=[{"type": "SuccessCriteriaMet", "status": "True"}])).state
        == "active"
    )
    done = job_view(_job(conditions=COMPLETE))
    assert done.state == "succeeded"
    assert done.finished_at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    failed = job_view(_job(conditions=FAILED))
    assert (failed.state, failed.reason, failed.message) == ("failed", "PodFailurePolicy", "exit 2")
    assert job_view(_job(counted=True)).counted


def test_a_job_is_counted_once_even_when_seen_twice() -> None:
    tally = Tally()
    view = job_view(_job(conditions=COMPLETE))
    assert tally.record_job(view, at=AT)
    assert not tally.record_job(view, at=AT)
    assert tally.succeeded == 1
    assert tally.counted_jobs == ["u1"]


def test_the_ledger_survives_a_restart_through_the_status() -> None:
    tally = Tally()
    tally.record_job(job_view(_job(conditions=FAILED)), reason="BadInput", message="corrupt", at=AT)
    tally.record_skip(17)
    restored = Tally.from_status(tally.to_status(running=0))
    assert not restored.record_job(job_view(_job(conditions=FAILED)), at=AT)
    assert not restored.record_skip(17)
    assert (restored.failed, restored.skipped) == (1, 1)
    assert restored.last_failures[0]["reason"] == "BadInput"
    assert restored.last_failures[0]["object"] == "b/in/a.mp4"


def test_a_recreated_stream_starts_a_new_event_ledger() -> None:
    """Sequences restart at 1 in a re-created stream: the same number there is a
    different event and must be counted; the old stream's numbers are dropped."""
    tally = Tally()
    assert tally.record_skip(5, "2026-01-01T00:00:00+00:00")
    assert not tally.record_skip(5, "2026-01-01T00:00:00+00:00")
    restored = Tally.from_status(tally.to_status(running=0))
    assert not restored.record_skip(5, "2026-01-01T00:00:00+00:00")
    assert restored.record_skip(5, "2026-02-02T00:00:00+00:00")
    assert restored.skipped == 2
    status = restored.to_status(running=0)
    assert status["countedEvents"] == [5]
    assert status["countedEventsStream"] == "2026-02-02T00:00:00+00:00"


def test_received_is_the_sum_of_outcomes() -> None:
    tally = Tally(skipped=2, succeeded=5, failed=1)
    assert tally.to_status(running=3)["received"] == 11


def test_ledgers_and_failures_are_bounded() -> None:
    tally = Tally()
    for i in range(400):
        tally.record_job(
            JobView("ns", f"j{i}", f"u{i}", "wf", "b", f"k{i}", "failed", False, AT), at=AT
        )
        tally.record_skip(i)
    assert tally.failed == 400
    assert len(tally.counted_jobs) == 256
    assert tally.counted_jobs[-1] == "u399"
    assert len(tally.counted_events) == 256
    assert len(tally.last_failures) == 10
    assert tally.last_failures[0]["object"] == "b/k399"


def test_running_and_active_include_jobs_not_yet_seen_by_the_watch() -> None:
    active = job_view(_job("a", "ua"))
    done_uncounted = job_view(_job("d", "ud", conditions=COMPLETE))
    done_counted = job_view(_job("c", "uc", conditions=COMPLETE, counted=True))
    jobs = [active, done_uncounted, done_counted]
    assert count_active(jobs, ["a", "new"]) == 2
    assert count_running(jobs, Tally(), ["new"]) == 3
    assert count_running(jobs, Tally(counted_jobs=["ud"]), []) == 1


def test_conditions_keep_transition_time_until_the_status_changes() -> None:
    first = set_condition([], "Ready", True, "Ready", "ok", 1, AT)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same = set_condition(first, "Ready", True, "Ready", "still ok", 2, later)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Ready", False, "NotReady", "broken", 2, later)
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    both = set_condition(flipped, "QueueReady", True, "ConsumerReady", "", 2, later)
    assert [c["type"] for c in both] == ["Ready", "QueueReady"]


def test_termination_summary_from_the_newest_pod() -> None:
    def pod(finished: str, message: str, code: int = 1) -> dict[str, Any]:
        terminated = {"exitCode": code, "finishedAt": finished, "message": message}
        return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}

    old = json.dumps({"ok": False, "exitCode": 1, "reason": "Transient", "message": "first"})
    new = json.dumps({"ok": False, "exitCode": 2, "reason": "BadInput", "message": "corrupt"})
    summary = termination_summary(
        [pod("2026-01-01T00:00:01Z", old), pod("2026-01-01T00:00:09Z", new)]
    )
    assert summary is not None
    assert summary.reason == "BadInput"
    raw = termination_summary([pod("t", "Traceback: boom")])
    assert raw is not None
    assert raw.message == "Traceback: boom"
    assert termination_summary([{"status": {}}]) is None


def test_an_oom_killed_worker_is_reported_as_such_with_what_it_said() -> None:
    def pod(message: str) -> dict[str, Any]:
        terminated = {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "t", "message": message}
        return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}

    silent = termination_summary([pod("")])
    assert silent is not None
    assert (silent.reason, silent.exit_code, silent.ok) == ("OOMKilled", 137, False)
    assert "memory limit" in silent.message
    said = json.dumps({"ok": False, "exitCode": 1, "reason": "FFmpegFailed", "message": "killed"})
    spoke = termination_summary([pod(said)])
    assert spoke is not None
    assert spoke.reason == "OOMKilled"
    assert spoke.message.endswith("the worker said: killed")
