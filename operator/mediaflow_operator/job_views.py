"""The dispatcher's view of its Jobs: summaries of Job objects, the Jobs just
created that the watch has not delivered yet, and what is active or running.
Pure functions and plain data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from mediaflow_api.job import TerminationSummary
from mediaflow_operator import naming
from mediaflow_operator.clock import now, parse_time

JobState = Literal["active", "succeeded", "failed"]
# How a finished Job is counted. ``superseded``: the Job ended Complete, but its
# input changed while it ran and it left nothing (the worker's summary says so).
Outcome = Literal["succeeded", "failed", "superseded"]
# A created Job the watch has not shown after this long is forgotten (it was
# deleted, or the watch will show it anyway).
PENDING_FORGET = timedelta(minutes=2)


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
    # The upload's facts (object_facts; "" on Jobs made before they existed) and
    # the Job's own times: created (accepted) and started (status.startTime).
    etag: str = ""  # the object version it runs on
    traceparent: str = ""
    context: str = ""
    correlation_id: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None

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
        etag=annotations.get(naming.ANNOTATION_ETAG, ""),
        traceparent=annotations.get(naming.ANNOTATION_TRACEPARENT, ""),
        context=annotations.get(naming.ANNOTATION_CONTEXT, ""),
        correlation_id=annotations.get(naming.ANNOTATION_CORRELATION_ID, ""),
        created_at=parse_time(meta.get("creationTimestamp")),
        started_at=parse_time(status.get("startTime")),
    )


OOM_KILLED = "OOMKilled"


def outcome_of(job: JobView, summary: TerminationSummary | None) -> Outcome:
    """How a finished Job counts. A Complete Job is ``superseded`` when the
    worker's summary says so (it exits 0 then, see ``mediaflow_api.job``),
    else ``succeeded``; a Failed Job is ``failed`` whatever its pods said."""
    if job.state == "failed":
        return "failed"
    if summary is not None and summary.superseded:
        return "superseded"
    return "succeeded"


def termination_summary(pods: list[dict[str, Any]]) -> TerminationSummary | None:
    """The worker's summary from the newest terminated pod: what it wrote, or
    what the kubelet saw when the worker could not write (an OOM kill)."""
    best: tuple[str, TerminationSummary] | None = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            summary = _summary_of(terminated)
            if summary is None:
                continue
            stamp = terminated.get("finishedAt") or ""
            if best is None or stamp > best[0]:
                best = (stamp, summary)
    return best[1] if best else None


def _summary_of(terminated: dict[str, Any]) -> TerminationSummary | None:
    text = terminated.get("message") or ""
    code = terminated.get("exitCode")
    exit_code = int(code) if code is not None else 1  # 0 is a real exit code
    summary: TerminationSummary | None = None
    if text:
        try:
            summary = TerminationSummary.model_validate(json.loads(text))
        except ValueError:
            summary = TerminationSummary(ok=False, exitCode=exit_code, message=text[:1024])
    if terminated.get("reason") == OOM_KILLED:
        # The kernel killed a process of the container (often FFmpeg, so the
        # worker may still have written its own account): the cause to show is
        # the memory limit.
        said = f"; the worker said: {summary.message}" if summary and summary.message else ""
        return TerminationSummary(
            ok=False,
            exitCode=exit_code,
            reason=OOM_KILLED,
            message=f"the worker exceeded its memory limit (raise resources.limits.memory){said}"[
                :1024
            ],
        )
    return summary


class PendingJobs:
    """Jobs this dispatcher created that the watch-fed index does not show yet:
    they count against ``maxConcurrentJobs`` and as ``running`` at once.

    A name leaves when the index shows the Job, when the Job's deletion is seen
    (``discard``: kopf merges the events of one object that arrive within its
    batch window, so a Job created and deleted at once may never reach the
    index), or after ``PENDING_FORGET``."""

    def __init__(self) -> None:
        self._created: dict[str, datetime] = {}

    def add(self, name: str) -> None:
        self._created[name] = now()

    def forget_seen(self, jobs: Iterable[JobView]) -> None:
        """Drop the names the index shows now, and the ones waited on too long."""
        names = {j.name for j in jobs}
        limit = now() - PENDING_FORGET
        for name, created in list(self._created.items()):
            if name in names or created < limit:
                del self._created[name]

    def discard(self, name: str) -> None:
        """The Job ``name`` was deleted: it holds no slot any more."""
        self._created.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._created

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._created))


def forget_deleted_job(
    pending_by_workflow: Mapping[str, PendingJobs], event_type: str, body: Mapping[str, Any]
) -> str:
    """On a Job watch event: a DELETED Job leaves its dispatcher's pending set.
    Returns the UID of the Job's Workflow."""
    view = job_view(dict(body))
    if event_type == "DELETED":
        pending = pending_by_workflow.get(view.workflow_uid)
        if pending is not None:
            pending.discard(view.name)
    return view.workflow_uid


def count_active(jobs: Iterable[JobView], pending: Iterable[str]) -> int:
    """Unfinished Jobs, including ones just created and not yet seen by the watch."""
    seen = set()
    active = 0
    for job in jobs:
        seen.add(job.name)
        if not job.finished:
            active += 1
    return active + sum(1 for name in pending if name not in seen)
