"""The Workflow's counters and their status writes: the one place that makes
counting exact.

**The rule: durable before ack, durable before mark.** A counted result or
skip is written to the Workflow status (the counter *and* its ledger entry:
``countedJobs`` holds Job UIDs, ``countedEvents`` stream sequences of the stream
``countedEventsStream``) before
its Job is annotated ``mediaflow.dev/counted`` or its NATS message is acked.
A crash in between finds the entry in the ledger and only marks or acks;
nothing is counted twice and nothing is lost.

How ``StatusLedger`` keeps it:

- ``record_finished`` counts finished Jobs in memory, writes (forced), and
  only then marks each Job. A batch holds at most half a ledger
  (``RECORD_BATCH_MAX``), so every UID is still in the written ledger when
  its Job is marked;
- ``count_skip`` counts a skipped event in memory; its message is handed to
  ``hold_until_written`` and acked by ``release`` after the write that holds
  its sequence. If that write fails, the held messages are let go unacked:
  JetStream redelivers them and the ledger keeps them from counting twice;
- ``dirty`` says memory is ahead of the status. It stays set across a failed
  write, so a result or skip counted by an earlier, failed attempt is written
  before it is marked or acked on the next attempt;
- writes are coalesced: at most one per ``status_flush_seconds`` (results wait
  safely on their Jobs, skips in ``held``); only the final write on shutdown
  is forced past the interval;
- ``running`` is derived on every write (``status.count_running``), never
  accumulated.

One dispatcher per Workflow is the only writer of these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from mediaflow_api.workflow_status import LEDGER_MAX
from mediaflow_operator import metrics, naming
from mediaflow_operator.clock import now
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_views import JobView, Outcome, outcome_of, termination_summary
from mediaflow_operator.logs import object_fields
from mediaflow_operator.messages import QueueMessage
from mediaflow_operator.status import Tally, count_running

# Results counted per status write. The ledger keeps the last LEDGER_MAX UIDs; a
# batch larger than that would push its own first UIDs out before they are marked,
# and a crash while marking would count those Jobs again.
RECORD_BATCH_MAX = LEDGER_MAX // 2


class FinishAnnouncer(Protocol):
    """Makes a finished Job's notifications durable (``notify.notifier.Notifier``)."""

    async def job_finished(
        self, job: JobView, *, outcome: Outcome, reason: str, message: str
    ) -> None: ...


class StatusLedger:
    """The in-memory tally of one Workflow and the writes that make it durable."""

    def __init__(self, ctx: DispatchContext, announce: FinishAnnouncer | None = None) -> None:
        self.ctx = ctx
        self.announce = announce
        self.tally = Tally()
        self.dirty = True  # memory ahead of the stored status (unknown until loaded)
        self.last_flush = datetime.min.replace(tzinfo=now().tzinfo)
        self.fields: dict[str, Any] = {}  # other status fields (lastDispatchTime, sweptUntil)
        self.held: list[QueueMessage] = []  # skipped events, acked after the write that counts them
        self.marked: set[str] = set()  # Job UIDs annotated as counted

    def load(self, status: Mapping[str, Any]) -> None:
        """Start from the stored status (the dispatcher's start)."""
        self.tally = Tally.from_status(dict(status))
        self.dirty = False  # the tally is what the status holds

    def counted(self, job: JobView) -> bool:
        """Whether ``job`` is marked counted (so it may be deleted once expired)."""
        return job.counted or job.uid in self.marked

    def set_field(self, name: str, value: Any) -> None:
        """Set a status field written with the next counter write."""
        self.fields[name] = value
        self.dirty = True

    def touch(self) -> None:
        """Something the status shows changed (a Job was created)."""
        self.dirty = True

    # --- results ---
    async def record_finished(self, jobs: list[JobView]) -> None:
        """Count finished Jobs: one status write per flush interval at most, for
        all results that arrived in it (a result waits safely on its Job)."""
        if not self.flush_due():
            return
        newly: list[tuple[JobView, str]] = []
        to_mark: list[tuple[JobView, str]] = []
        for job in jobs:
            if not job.finished or self.counted(job):
                continue
            if self.tally.job_counted(job.uid):
                # Counted by an earlier attempt; the mark only records that it
                # was (the ledger, not the mark's value, keeps it from counting twice).
                to_mark.append((job, job.state))
                continue
            if len(newly) >= RECORD_BATCH_MAX:
                continue  # next step: every UID must still be in the ledger when marked
            counted_as = await self._count(job)
            if counted_as is not None:
                newly.append((job, counted_as))
        if newly:
            self.dirty = True
        if (newly or to_mark) and self.dirty:
            # The ledger is written before any Job is marked: also for UIDs that an
            # earlier step counted in memory but failed to write (dirty is still set).
            await self.flush(force=True)
        for job, mark in [*newly, *to_mark]:
            await self.ctx.rt.kube.annotate_job(
                job.namespace, job.name, {naming.ANNOTATION_COUNTED: mark}
            )
            self.marked.add(job.uid)

    async def _count(self, job: JobView) -> Outcome | None:
        """Count one result in memory (with the worker's reason for a failure);
        returns its outcome, or None when it was not counted (already counted,
        or a Complete Job whose pods cannot be read now: counted next step)."""
        reason, message = job.reason, job.message
        try:
            # Also for Complete Jobs: only the summary tells a superseded Job
            # (exit 0) from a success.
            summary = termination_summary(await self.ctx.rt.kube.job_pods(job.namespace, job.name))
        except Exception:
            if job.state != "failed":
                # Counting it succeeded could be wrong (superseded) and never
                # corrected; the Job waits, finished and uncounted, for the next step.
                return None
            summary = None
        if summary is not None and job.state == "failed":
            reason = summary.reason or reason
            message = summary.message or message
        outcome = outcome_of(job, summary)
        if self.announce is not None:
            # Durable before counted: once the status says it finished, its
            # notifications are in the outbox (a crash here publishes them again,
            # with the same ids).
            try:
                await self.announce.job_finished(
                    job, outcome=outcome, reason=reason, message=message
                )
            except Exception as exc:
                self.ctx.log.warning(
                    "Job %s: its notifications could not be stored, counted later: %s",
                    job.name,
                    exc,
                )
                return None
        if not self.tally.record_job(
            job, outcome=outcome, reason=reason, message=message, at=now()
        ):
            return None
        workflow = self.ctx.workflow()
        said = (summary.reason if summary is not None else "") or reason
        metrics.JOB_RESULTS.labels(
            workflow.namespace, workflow.name, outcome, metrics.job_reason(outcome, said)
        ).inc()
        if job.started_at is not None and job.finished_at is not None:
            metrics.JOB_DURATION.labels(workflow.namespace, workflow.name, outcome).observe(
                max(0.0, (job.finished_at - job.started_at).total_seconds())
            )
        self.ctx.log.info(
            "Job %s for %s/%s %s (%s)",
            job.name,
            job.bucket,
            job.key,
            outcome,
            said or outcome,
            extra=object_fields(job.bucket, job.key, job.name),
        )
        if outcome == "failed":
            self.ctx.post_event(
                "Warning", "ObjectFailed", f"{job.bucket}/{job.key}: {reason} {message}"[:1000]
            )
        elif outcome == "superseded" and summary is not None:
            self.ctx.post_event(
                "Normal", "ObjectSuperseded", f"{job.bucket}/{job.key}: {summary.message}"[:1000]
            )
        return outcome

    # --- skips ---
    def count_skip(self, seq: int) -> None:
        """Count a skipped event in memory; its message must be held, not acked.
        Keyed by the stream's identity too (``Tally.record_skip``)."""
        if self.tally.record_skip(seq, self.ctx.rt.stream_id):
            self.dirty = True

    def hold_until_written(self, messages: list[QueueMessage]) -> None:
        """Ack ``messages`` after the next successful write (``release``). Also when
        their skip was counted by an earlier attempt whose write failed: the write
        is what makes the ledger hold their sequences."""
        self.held.extend(messages)

    # --- writes ---
    def flush_due(self) -> bool:
        interval = timedelta(seconds=self.ctx.rt.settings.status_flush_seconds)
        return now() - self.last_flush >= interval

    async def release(self, force: bool = False) -> None:
        """Write the status if due, then ack the skipped events it made durable.
        If the write fails they are let go unacked: JetStream redelivers them
        and the ledger keeps them from being counted twice."""
        try:
            await self.flush(force=force)
        except Exception:
            self.held.clear()
            raise
        if self.held and not self.dirty:
            held, self.held = self.held, []
            for msg in held:
                await msg.ack()

    async def flush(self, force: bool = False) -> None:
        """Write counters, ledgers and fields when something changed and the
        interval has passed (or ``force``)."""
        running = count_running(self.ctx.jobs(), self.tally, self.ctx.pending)
        if self.ctx.status().get("running") != running:
            self.dirty = True
        if not self.dirty:
            return
        moment = now()
        if not force and not self.flush_due():
            return
        patch = {**self.tally.to_status(running), **self.fields}
        workflow = self.ctx.workflow()
        await self.ctx.rt.kube.patch_workflow_status(workflow.namespace, workflow.name, patch)
        self.dirty = False
        self.last_flush = moment
