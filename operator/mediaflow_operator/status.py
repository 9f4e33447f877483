"""Status arithmetic: the counters with their ledgers, and conditions. Pure.

``Tally`` is what the Workflow status holds about results: ``skipped``,
``succeeded``, ``failed``, ``superseded``, the last failures, and the bounded ledgers
``countedJobs`` (Job UIDs) and ``countedEvents`` (stream sequences) that make
counting idempotent. ``running`` is never stored as a running total: it is
derived from the Job list (``count_running``), and
``received = skipped + running + succeeded + failed + superseded``. *When* a tally may be
written, and what must wait for that write, is ``ledger``'s business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mediaflow_api.workflow_status import LAST_FAILURES_MAX, LEDGER_MAX
from mediaflow_operator.clock import iso
from mediaflow_operator.job_views import JobView, Outcome


@dataclass
class Tally:
    """The stored counters of one Workflow plus their idempotency ledgers."""

    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    superseded: int = 0
    last_failures: list[dict[str, Any]] = field(default_factory=list)
    counted_jobs: list[str] = field(default_factory=list)
    counted_events: list[int] = field(default_factory=list)
    events_stream: str = ""  # identity of the stream whose sequences counted_events holds

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> Tally:
        status = status or {}
        return cls(
            skipped=int(status.get("skipped") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=int(status.get("failed") or 0),
            superseded=int(status.get("superseded") or 0),
            last_failures=list(status.get("lastFailures") or []),
            counted_jobs=list(status.get("countedJobs") or []),
            counted_events=[int(s) for s in status.get("countedEvents") or []],
            events_stream=str(status.get("countedEventsStream") or ""),
        )

    def job_counted(self, uid: str) -> bool:
        return uid in self.counted_jobs

    def event_counted(self, seq: int) -> bool:
        return seq in self.counted_events

    def record_job(
        self,
        job: JobView,
        *,
        outcome: Outcome | None = None,
        reason: str = "",
        message: str = "",
        at: datetime,
    ) -> bool:
        """Count a finished Job once, as ``outcome`` (default: its state, see
        ``job_views.outcome_of``); False if its UID is already in the ledger."""
        if not job.finished or self.job_counted(job.uid):
            return False
        outcome = outcome or ("failed" if job.state == "failed" else "succeeded")
        if outcome == "succeeded":
            self.succeeded += 1
        elif outcome == "superseded":
            self.superseded += 1
        else:
            self.failed += 1
            failure = {
                "object": f"{job.bucket}/{job.key}",
                "job": job.name,
                "reason": (reason or job.reason or "Failed")[:128],
                "message": (message or job.message)[:1024],
                "time": iso(at),
            }
            self.last_failures = [failure, *self.last_failures][:LAST_FAILURES_MAX]
        self.counted_jobs = [*self.counted_jobs, job.uid][-LEDGER_MAX:]
        return True

    def record_skip(self, seq: int, stream: str = "") -> bool:
        """Count a skipped event once (by stream sequence). Sequences are unique
        only within one incarnation of the stream (``stream``, its identity): a
        deleted and re-created stream starts at 1 again, so the ledger of the old
        one is cleared when the first event of the new one is counted; none of
        its events can come back (their stream is gone)."""
        if stream and stream != self.events_stream:
            self.counted_events = []
            self.events_stream = stream
        if self.event_counted(seq):
            return False
        self.skipped += 1
        self.counted_events = [*self.counted_events, seq][-LEDGER_MAX:]
        return True

    def to_status(self, running: int) -> dict[str, Any]:
        return {
            "received": self.skipped + running + self.succeeded + self.failed + self.superseded,
            "skipped": self.skipped,
            "running": running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "superseded": self.superseded,
            "lastFailures": self.last_failures,
            "countedJobs": self.counted_jobs,
            "countedEvents": self.counted_events,
            "countedEventsStream": self.events_stream,
        }


def count_running(jobs: Iterable[JobView], tally: Tally, pending: Iterable[str]) -> int:
    """Jobs whose result is not recorded yet (the ``running`` counter): Jobs of the
    index neither marked nor in the ledger, plus created ones the index lacks."""
    seen = set()
    running = 0
    for job in jobs:
        seen.add(job.name)
        if not job.counted and not tally.job_counted(job.uid):
            running += 1
    return running + sum(1 for name in pending if name not in seen)


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    ok: bool | None,
    reason: str,
    message: str,
    generation: int,
    at: datetime,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with one condition set; the transition time
    only moves when the status changes."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    result = [dict(c) for c in conditions if c.get("type") != type_]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = (
        previous.get("lastTransitionTime")
        if previous and previous.get("status") == status and previous.get("lastTransitionTime")
        else iso(at)
    )
    result.append(
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message[:2048],
            "lastTransitionTime": transition,
            "observedGeneration": generation,
        }
    )
    order = {"Ready": 0}
    return sorted(result, key=lambda c: (order.get(c["type"], 1), c["type"]))
