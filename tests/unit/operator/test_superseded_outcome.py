"""A superseded Job (its input changed while it ran) is an outcome of its own.

The worker exits 0 with the termination-summary reason ``Superseded``; the Job
ends Complete. The operator must read that summary for Complete Jobs too, count
the Job as ``superseded`` (never ``succeeded``, never ``failed``) and keep
``received = skipped + running + succeeded + failed + superseded``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_api.job import EXIT_OK, REASON_SUPERSEDED, TerminationSummary
from mediaflow_operator import naming
from mediaflow_operator.dispatch import Dispatcher
from mediaflow_operator.doorbell import Doorbells
from mediaflow_operator.job_views import JobView, job_view, outcome_of, termination_summary
from mediaflow_operator.settings import Settings
from mediaflow_operator.status import Tally
from mediaflow_worker import termination

from .samples import spec
from .test_dispatch import FakeKube

pytestmark = pytest.mark.unit
AT = datetime(2026, 1, 1, tzinfo=UTC)
COMPLETE = [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}]
FAILED = [
    {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "lastTransitionTime": "2026-01-01T00:00:05Z",
    }
]
BODY = {
    "metadata": {"namespace": "ns", "name": "videos", "uid": "wf-uid", "generation": 1},
    "spec": spec(),
    "status": {"consumer": "c", "conditions": [{"type": "StorageReady", "status": "True"}]},
}


def _job(uid: str, conditions: list[dict[str, Any]]) -> JobView:
    return job_view(
        {
            "metadata": {
                "name": f"mf-videos-{uid}",
                "namespace": "ns",
                "uid": uid,
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
                "annotations": {
                    naming.ANNOTATION_KEY: "incoming/a.mp4",
                    naming.ANNOTATION_BUCKET: "uploads",
                },
            },
            "status": {"conditions": conditions},
        }
    )


def _pod(summary: TerminationSummary, exit_code: int = EXIT_OK) -> dict[str, Any]:
    """A pod as the kubelet reports it, with the worker's own summary bytes."""
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "message": termination.render(summary).decode(),
        "finishedAt": "2026-01-01T00:00:04Z",
    }
    return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}


SUPERSEDED = TerminationSummary(
    ok=True,
    exitCode=EXIT_OK,
    reason=REASON_SUPERSEDED,
    message="s3://uploads/incoming/a.mp4 was overwritten while the Job ran",
)
SUCCEEDED = TerminationSummary(ok=True, exitCode=EXIT_OK, reason="Succeeded", outputs=3)


def test_the_outcome_of_a_finished_job_comes_from_its_state_and_the_workers_summary() -> None:
    complete, failed = _job("c", COMPLETE), _job("f", FAILED)
    superseded = termination_summary([_pod(SUPERSEDED)])
    assert superseded is not None
    assert superseded.superseded
    assert outcome_of(complete, superseded) == "superseded"
    assert outcome_of(complete, termination_summary([_pod(SUCCEEDED)])) == "succeeded"
    # Pods already gone (or an older worker without the reason): a success.
    assert outcome_of(complete, None) == "succeeded"
    # A Failed Job is a failure whatever an earlier pod said.
    assert outcome_of(failed, superseded) == "failed"


def test_superseded_is_counted_once_kept_apart_and_part_of_received() -> None:
    tally = Tally(skipped=2, succeeded=5, failed=1)
    job = _job("s", COMPLETE)
    assert tally.record_job(job, outcome="superseded", at=AT)
    assert not tally.record_job(job, outcome="superseded", at=AT)
    status = tally.to_status(running=3)
    assert (status["superseded"], status["succeeded"], status["failed"]) == (1, 5, 1)
    assert status["received"] == 2 + 3 + 5 + 1 + 1
    assert status["lastFailures"] == []  # not a failure
    restored = Tally.from_status(status)
    assert restored.superseded == 1
    assert not restored.record_job(job, outcome="superseded", at=AT)


@dataclass
class PodsKube(FakeKube):
    """FakeKube whose Jobs have pods, and which records the counted marks."""

    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pods_error: Exception | None = None
    marks: dict[str, str] = field(default_factory=dict)

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        if self.pods_error is not None:
            raise self.pods_error
        return self.pods.get(name, [])

    async def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        await super().annotate_job(namespace, name, annotations)
        self.marks[name] = annotations[naming.ANNOTATION_COUNTED]


def _dispatcher(kube: PodsKube, jobs: list[JobView]) -> Dispatcher:
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01),
        kube=kube,
    )
    return Dispatcher(rt, BODY, lambda: list(jobs), lambda *e: None)  # type: ignore[arg-type]


def test_a_complete_job_that_says_superseded_is_not_counted_as_a_success() -> None:
    superseded, succeeded = _job("s", COMPLETE), _job("ok", COMPLETE)
    kube = PodsKube(
        [],
        pods={superseded.name: [_pod(SUPERSEDED)], succeeded.name: [_pod(SUCCEEDED)]},
    )
    dispatcher = _dispatcher(kube, [superseded, succeeded])
    asyncio.run(dispatcher.load())
    asyncio.run(dispatcher.ledger.record_finished([superseded, succeeded]))
    written = kube.status
    assert (written["succeeded"], written["superseded"], written["failed"]) == (1, 1, 0)
    assert written["received"] == 2
    assert written["running"] == 0
    assert written["lastFailures"] == []
    # Counted by the ledger alone: no write of their own on the Jobs.
    assert sorted(written["countedJobs"]) == sorted([superseded.uid, succeeded.uid])
    assert kube.marks == {}


def test_a_complete_job_whose_pods_cannot_be_read_waits_instead_of_counting_a_guess() -> None:
    job = _job("s", COMPLETE)
    kube = PodsKube([], pods={job.name: [_pod(SUPERSEDED)]}, pods_error=RuntimeError("API down"))
    dispatcher = _dispatcher(kube, [job])
    asyncio.run(dispatcher.load())
    asyncio.run(dispatcher.ledger.record_finished([job]))
    assert "countedJobs" not in kube.status
    assert dispatcher.ledger.tally.succeeded == 0
    kube.pods_error = None
    asyncio.run(dispatcher.ledger.record_finished([job]))
    assert kube.status["countedJobs"] == [job.uid]
    assert (kube.status["superseded"], kube.status["succeeded"]) == (1, 0)
