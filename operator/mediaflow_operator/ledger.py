"""The Workflow's counters and their status writes: the one place that makes
counting exact.

**The rule: durable before ack, durable before forgotten.** A counted result
or skip is written to the Workflow status (the counter *and* its ledger entry:
``countedJobs`` holds Job UIDs, ``countedEvents`` stream sequences of the stream
``countedEventsStream``) before its NATS message is acked or anything else
relies on it. A crash in between finds the entry in the ledger; nothing is
counted twice and nothing is lost.

A finished Job is "counted" while its UID is in the *written* ledger. The
ledger is bounded (``LEDGER_MAX``): a Job still kept (``finishedJobRetentionSeconds``)
when its UID is about to drop out of it is annotated ``mediaflow.dev/counted``
first, *before* the write that drops it, so it is never neither. Most Jobs are
deleted long before that: a result costs no write of its own beyond the
(coalesced) status write, and the annotation is the exception of Workflows that
keep more than ``LEDGER_MAX`` finished Jobs.

How ``StatusLedger`` keeps it:

- ``record_finished`` counts finished Jobs in memory and writes (forced). At
  most ``RECORD_BATCH_MAX`` (half a ledger) results are in memory and not yet
  written, so a result can never be pushed out of the ledger before the write
  that holds it;
- ``count_skip`` counts a skipped event in memory; its message is handed to
  ``hold_until_written`` and acked by ``release`` after the write that holds
  its sequence. If that write fails, the held messages are let go unacked:
  JetStream redelivers them and the ledger keeps them from counting twice;
- ``dirty`` says memory is ahead of the status. It stays set across a failed
  write, so a result or skip counted by an earlier, failed attempt is written
  before anything relies on it;
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

# Results counted in memory and not yet written, at most. The ledger keeps the last
# LEDGER_MAX UIDs; more unwritten results than that would push their own first UIDs
# out of the ledger before any write held them, and those Jobs would count again.
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
        self.written: set[str] = set()  # Job UIDs in the stored ledger (countedJobs)
        self.outcomes: dict[str, str] = {}  # Job UID -> outcome, for the annotation

    def load(self, status: Mapping[str, Any]) -> None:
        """Start from the stored status (the dispatcher's start)."""
        self.tally = Tally.from_status(dict(status))
        self.written = set(self.tally.counted_jobs)
        self.dirty = False  # the tally is what the status holds

    def counted(self, job: JobView) -> bool:
        """Whether ``job``'s result is durably counted (so it may be deleted once
        expired): its UID is in the stored ledger, or it is annotated."""
        return job.counted or job.uid in self.marked or job.uid in self.written

    def set_field(self, name: str, value: Any) -> None:
        """Set a status field written with the next counter write."""
        self.fields[name] = value
        self.dirty = True
        self.ctx.wake()  # an idle dispatcher writes it on its next step

    @property
    def settled(self) -> bool:
        """Nothing waits for a status write (memory is what the status holds)."""
        return not self.dirty and not self.held

    def touch(self) -> None:
        """Something the status shows changed (a Job was created)."""
        self.dirty = True

    # --- results ---
    async def record_finished(self, jobs: list[JobView]) -> None:
        """Count finished Jobs: one status write per flush interval at most, for
        all results that arrived in it (a result waits safely on its Job)."""
        if not self.flush_due():
            return
        unwritten = sum(1 for uid in self.tally.counted_jobs if uid not in self.written)
        room = RECORD_BATCH_MAX - unwritten
        newly = 0
        for job in jobs:
            if not job.finished or self.counted(job) or self.tally.job_counted(job.uid):
                continue
            if newly >= room:
                break  # next step, after this write
            counted_as = await self._count(job)
            if counted_as is not None:
                self.outcomes[job.uid] = counted_as
                newly += 1
        if newly:
            self.dirty = True
        if (newly or unwritten) and self.dirty:
            # Also for results an earlier step counted in memory but failed to
            # write (dirty is still set).
            await self.flush(force=True)

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
        await self._mark_leaving()
        patch = {**self.tally.to_status(running), **self.fields}
        workflow = self.ctx.workflow()
        await self.ctx.rt.kube.patch_workflow_status(workflow.namespace, workflow.name, patch)
        self.written = set(self.tally.counted_jobs)
        self.dirty = False
        self.last_flush = moment

    async def _mark_leaving(self) -> None:
        """Annotate the kept Jobs whose UIDs this write drops from the ledger.
        Before the write: the ledger still holds them then, so a crash between
        the two leaves them counted either way (durable before forgotten)."""
        leaving = self.written.difference(self.tally.counted_jobs)
        if not leaving:
            return
        for job in self.ctx.jobs():
            if job.uid not in leaving or job.counted or job.uid in self.marked:
                continue
            mark = self.outcomes.get(job.uid, job.state)
            await self.ctx.rt.kube.annotate_job(
                job.namespace, job.name, {naming.ANNOTATION_COUNTED: mark}
            )
            self.marked.add(job.uid)
        for uid in leaving:
            self.outcomes.pop(uid, None)
