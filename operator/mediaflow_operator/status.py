"""Status arithmetic: Job outcomes, exact counters, conditions. Pure functions.

Counters stay exact across operator restarts and repeated observations:

- ``running`` is never stored as a running total: it is the number of this
  Workflow's Jobs whose result is not yet recorded (derived from the Job list);
- a finished Job is counted by one status write that bumps ``succeeded`` or
  ``failed`` *and* appends the Job's UID to ``countedJobs`` (a bounded ledger);
  only afterwards is the Job marked ``mediaflow.dev/counted`` (and later
  deleted). A restart between the two steps finds the UID in the ledger and
  only marks the Job; a Job seen twice is marked already;
- a skipped event is counted the same way with its stream sequence number in
  ``countedEvents``, and acked only after that write;
- ``received = skipped + running + succeeded + failed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mediaflow_api.job import TerminationSummary
from mediaflow_api.workflow import LAST_FAILURES_MAX, LEDGER_MAX
from mediaflow_operator import naming

JobState = Literal["active", "succeeded", "failed"]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class JobView:
    """What the operator needs to know about one of its Jobs."""

    namespace: str
    name: str
    uid: str
    workflow_uid: str
    bucket: str
    key: str
    state: JobState
    counted: bool
    finished_at: datetime | None
    reason: str = ""
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.state != "active"


def job_view(body: dict[str, Any]) -> JobView:
    """Summarise a Job (as a dict from the API or a kopf body)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    status = body.get("status") or {}
    state: JobState = "active"
    reason = message = ""
    finished_at = None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            state = "succeeded"
        elif cond.get("type") == "Failed":
            state = "failed"
            reason = cond.get("reason") or "Failed"
            message = cond.get("message") or ""
        else:
            continue
        finished_at = parse_time(cond.get("lastTransitionTime"))
    if state == "succeeded":
        finished_at = parse_time(status.get("completionTime")) or finished_at
    return JobView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        workflow_uid=labels.get(naming.LABEL_WORKFLOW_UID, ""),
        bucket=annotations.get(naming.ANNOTATION_BUCKET, ""),
        key=annotations.get(naming.ANNOTATION_KEY, ""),
        state=state,
        counted=naming.ANNOTATION_COUNTED in annotations,
        finished_at=finished_at,
        reason=reason,
        message=message,
    )


def termination_summary(pods: list[dict[str, Any]]) -> TerminationSummary | None:
    """The worker's summary from the newest terminated pod, if it wrote one."""
    best: tuple[str, TerminationSummary] | None = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            text = terminated.get("message")
            if not text:
                continue
            try:
                summary = TerminationSummary.model_validate(json.loads(text))
            except ValueError:
                summary = TerminationSummary(
                    ok=False, exitCode=int(terminated.get("exitCode") or 1), message=text[:1024]
                )
            stamp = terminated.get("finishedAt") or ""
            if best is None or stamp > best[0]:
                best = (stamp, summary)
    return best[1] if best else None


@dataclass
class Tally:
    """The stored counters of one Workflow plus their idempotency ledgers."""

    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    last_failures: list[dict[str, Any]] = field(default_factory=list)
    counted_jobs: list[str] = field(default_factory=list)
    counted_events: list[int] = field(default_factory=list)

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> Tally:
        status = status or {}
        return cls(
            skipped=int(status.get("skipped") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=int(status.get("failed") or 0),
            last_failures=list(status.get("lastFailures") or []),
            counted_jobs=list(status.get("countedJobs") or []),
            counted_events=[int(s) for s in status.get("countedEvents") or []],
        )

    def job_counted(self, uid: str) -> bool:
        return uid in self.counted_jobs

    def event_counted(self, seq: int) -> bool:
        return seq in self.counted_events

    def record_job(
        self, job: JobView, *, reason: str = "", message: str = "", at: datetime
    ) -> bool:
        """Count a finished Job once; False if its UID is already in the ledger."""
        if not job.finished or self.job_counted(job.uid):
            return False
        if job.state == "succeeded":
            self.succeeded += 1
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

    def record_skip(self, seq: int) -> bool:
        """Count a skipped event once (by stream sequence)."""
        if self.event_counted(seq):
            return False
        self.skipped += 1
        self.counted_events = [*self.counted_events, seq][-LEDGER_MAX:]
        return True

    def to_status(self, running: int) -> dict[str, Any]:
        return {
            "received": self.skipped + running + self.succeeded + self.failed,
            "skipped": self.skipped,
            "running": running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "lastFailures": self.last_failures,
            "countedJobs": self.counted_jobs,
            "countedEvents": self.counted_events,
        }


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
