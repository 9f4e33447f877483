"""The per-Workflow dispatcher: events in, Jobs out, results into the status.

One ``Dispatcher`` runs per Workflow (a kopf daemon) and is the only writer of
its counters, so counting needs no cross-process coordination. Each step:

1. keep one delivery task per notification sink (``notify.notifier``); record
   the results of finished Jobs (``ledger``: their notifications durable in the
   outbox before they are counted, counted before marked) and delete counted
   Jobs whose retention has passed;
2. serve a manual request (``manual``) if a slot is free;
3. if the Workflow may dispatch, pull at most ``maxConcurrentJobs - active
   Jobs`` events from its durable consumer (``subscription``): backpressure
   stays in JetStream. It pulls only when the router rang its doorbell, when
   the last pull may have left events behind, or every
   ``dispatch_fallback_seconds`` (``doorbell.FetchPacer``): an idle Workflow
   asks NATS nothing. When no more events are waiting, the free slots go to
   objects the sweep found (``sweep``: its own task lists the trigger prefix,
   off this path);
4. settle every event (``messages``): poison -> ``term``; not ours -> ack;
   skip -> count, hold, ack after the write (``ledger``: durable before ack);
   process -> create the Job (``launch``; ``AlreadyExists`` is fine), then ack;
   API trouble -> ``nak(delay)``, the event comes back;
   a refused create (``admission``: quota, policy, invalid Job) -> the batch
   stops: that event and the rest are nak'ed untried, in order, and the
   Workflow's fetching pauses with backoff (one probe create per period)
   until a create succeeds;
5. write the status when something changed, at most every few seconds, and
   the JobsAdmitted condition when a refusal episode starts, changes or ends
   (``conditions``), with one Event and one log line each.

Poison is only what can never succeed for *this object* (an unparseable
event, an object that cannot be described as a Job). Whatever the API server
refuses is a problem of the spec or the namespace, the same for every upload:
those events wait in the queue until the cause is lifted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mediaflow_api.templates import TemplateError
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import CONDITION_JOBS_ADMITTED
from mediaflow_operator import conditions, metrics, workflows
from mediaflow_operator.admission import JobRefused, Refusal
from mediaflow_operator.clock import now
from mediaflow_operator.conditions import Step
from mediaflow_operator.context import DispatchContext, PostEvent
from mediaflow_operator.doorbell import FetchPacer, idle_wait
from mediaflow_operator.job_views import JobView, count_active
from mediaflow_operator.launch import Launcher
from mediaflow_operator.ledger import StatusLedger
from mediaflow_operator.logs import WorkflowLogger, object_fields
from mediaflow_operator.manual import ManualTrigger
from mediaflow_operator.matching import Verdict, decide
from mediaflow_operator.messages import Batch, QueueMessage, sequence
from mediaflow_operator.notify.notifier import Notifier
from mediaflow_operator.queue import ACK_WAIT_SECONDS
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.s3_events import BadEvent, ObjectEvent, parse_message
from mediaflow_operator.subscription import Subscription
from mediaflow_operator.sweep import Sweeper
from mediaflow_operator.template_refs import resolve_spec

logger = logging.getLogger(__name__)

# Events pulled per step: several waves of LAUNCH_PARALLEL creates, so that the
# pause between batches (ack, pull, bookkeeping) is paid once per 64 Jobs, not 16.
FETCH_BATCH_MAX = 64
# Job creates of one batch in flight at once (each waits for a thread of the
# shared Kubernetes pool too, so N Workflows never exceed MEDIAFLOW_KUBE_THREADS).
LAUNCH_PARALLEL = 8
NAK_DELAY_SECONDS = 5.0
DEFAULT_RETENTION_SECONDS = 600  # finished Jobs of a Workflow whose spec does not parse


def _permanent_reason(exc: BaseException) -> str:
    """Why retrying ``exc`` can never help ("" for transient trouble): the
    object cannot be described as a Job (validation). A Job the API server
    refuses is not the object's fault (``JobRefused``: the event waits)."""
    if isinstance(exc, ValidationError):
        return f"object cannot be processed: {exc.errors()[0].get('msg', exc)}"
    return ""


@dataclass
class _Plan:
    """What one message asks of this Workflow: Jobs to create, and whether one
    of its records is skipped (counted, the message held until written)."""

    msg: QueueMessage
    events: list[ObjectEvent] = field(default_factory=list)
    skip: bool = False


class Dispatcher:
    # Unsettled messages are marked in progress this often (well within AckWait).
    progress_interval = ACK_WAIT_SECONDS / 4

    def __init__(
        self,
        rt: Runtime,
        body: Mapping[str, Any],
        jobs: Callable[[], list[JobView]],
        post_event: PostEvent,
    ) -> None:
        log = WorkflowLogger(logger, workflows.ref(body))
        self.ctx = ctx = DispatchContext(rt, body, jobs, post_event, log)
        self.log = log
        # Notifications do not depend on templates: finished Jobs are announced
        # also while a template is missing.
        self.notifier = Notifier(ctx, self.parsed_spec)
        self.ledger = StatusLedger(ctx, self.notifier)
        self.subscription = Subscription(ctx)
        self.launcher = Launcher(ctx, self.ledger, self.notifier)
        self.sweeper = Sweeper(ctx, self.subscription, self.ledger, self.launcher, self.spec)
        self.manual = ManualTrigger(ctx, self.ledger)
        self.deleted: set[str] = set()  # Job UIDs deleted by this dispatcher
        self.uid = workflows.ref(body).uid
        self.bell = rt.doorbells.bell(self.uid)
        self.wakeup = rt.wakeups.bell(self.uid)
        self.pacer = FetchPacer(fallback=rt.settings.dispatch_fallback_seconds)
        self._parsed: tuple[int, WorkflowSpec] | None = None
        self._spec: tuple[int, tuple[str, ...], WorkflowSpec] | None = None
        self._template_error = ""

    def parsed_spec(self) -> WorkflowSpec | None:
        """The typed spec of the current generation, references unresolved (None
        while it does not parse)."""
        workflow = self.ctx.workflow()
        if self._parsed is None or self._parsed[0] != workflow.generation:
            try:
                self._parsed = (workflow.generation, workflows.parse_spec(self.ctx.body))
            except ValidationError as exc:
                self.log.warning("invalid spec, not dispatching: %s", exc.errors()[0])
                return None
        return self._parsed[1]

    def spec(self) -> WorkflowSpec | None:
        """The typed spec of the current generation with its templates resolved
        (None while it does not parse or a template is missing or does not fit:
        nothing is dispatched, the uploads wait in the queue)."""
        workflow = self.ctx.workflow()
        parsed = self.parsed_spec()
        if parsed is None or not any(t.refers_to_templates for t in parsed.tasks):
            return parsed
        catalog = self.ctx.rt.templates
        # Re-resolved when the generation or one of its templates changed: a Job
        # carries the templates' settings as they were when it was created.
        fingerprint = catalog.fingerprint(parsed, workflow.namespace)
        if self._spec is None or self._spec[:2] != (workflow.generation, fingerprint):
            try:
                resolved = resolve_spec(parsed, workflow.namespace, catalog)
            except TemplateError as exc:
                if exc.message != self._template_error:
                    self.log.warning("templates not resolved, not dispatching: %s", exc.message)
                    self._template_error = exc.message
                return None
            self._template_error = ""
            self._spec = (workflow.generation, fingerprint, resolved)
        return self._spec[2]

    # --- main loop ---
    async def load(self) -> None:
        """Read the counters and the sweep position from the stored status."""
        workflow = self.ctx.workflow()
        fresh = await self.ctx.rt.kube.get_workflow(workflow.namespace, workflow.name)
        status = (fresh or {}).get("status") or {}
        self.ledger.load(status)
        self.sweeper.load(status)
        self.notifier.load(status)
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == CONDITION_JOBS_ADMITTED
                and condition.get("status") == "False"
            ):
                # Still refused when the last operator stopped: the first create
                # that succeeds must clear the condition.
                self.launcher.gate.resume(str(condition.get("message") or ""))

    async def run(self, stopped: Any) -> None:
        await self.load()
        self.sweeper.start()
        failures = 0
        workflow = self.ctx.workflow()
        self.ctx.rt.dispatching.add((workflow.namespace, workflow.name))
        self.ctx.rt.pending_jobs[self.uid] = self.ctx.pending
        try:
            while not stopped:
                try:
                    await self.step(stopped)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except JobRefused:
                    failures = 0  # reported once per episode by _report_admission
                    await self._pause(stopped)
                except Exception:
                    failures += 1
                    self.log.exception("dispatcher step failed (%d in a row)", failures)
                    await stopped.wait(min(30.0, 1.0 * 2 ** min(failures, 5)))
        finally:
            self.ctx.rt.dispatching.discard((workflow.namespace, workflow.name))
            if self.ctx.rt.pending_jobs.get(self.uid) is self.ctx.pending:
                del self.ctx.rt.pending_jobs[self.uid]
            self.ctx.rt.doorbells.forget(self.uid)
            self.ctx.rt.wakeups.forget(self.uid)
            await self.sweeper.stop()
            await self.notifier.stop()
        try:
            await self.ledger.release(force=True)
        except Exception:
            self.log.warning("final status write failed", exc_info=True)

    async def step(self, stopped: Any = None) -> None:
        self.wakeup.clear()  # before reading: a change during the step is kept
        spec = self.spec()
        jobs = self.ctx.jobs()
        self.ctx.pending.forget_seen(jobs)
        await self._observe(jobs)
        await self.notifier.sync()
        await self.ledger.record_finished(jobs)
        await self.delete_expired(jobs, spec or self.parsed_spec())
        await self.manual.serve(spec or self.parsed_spec(), jobs)
        await self._report_admission()
        gate = self.launcher.gate
        if spec is None or not workflows.may_dispatch(self.ctx.body) or not gate.allows(now()):
            await self.ledger.release()
            await self._pause(stopped)
            return
        capacity = spec.execution.max_concurrent_jobs - count_active(jobs, self.ctx.pending)
        if capacity <= 0:
            await self.ledger.release()
            await self._pause(stopped)
            return
        asked = min(capacity, FETCH_BATCH_MAX)
        messages: list[QueueMessage] = []
        if self.pacer.due(time.monotonic(), self.bell.is_set()):
            self.bell.clear()  # before the pull: a ring during it is kept
            started = time.monotonic()
            messages = await self.subscription.fetch(asked)
            if len(messages) > capacity:
                self.log.debug("fetch returned %d messages for %d slots", len(messages), capacity)
            put_back_after = await self.handle(spec, messages, capacity) if messages else None
            self.pacer.fetched(started, asked, len(messages), put_back_after)
        if len(messages) < asked:
            # No more events waiting: the slots left go to the sweep's objects.
            free = spec.execution.max_concurrent_jobs - count_active(
                self.ctx.jobs(), self.ctx.pending
            )
            await self.sweeper.launch_ready(spec, free)
        await self._report_admission()
        await self.ledger.release()
        if not self.pacer.more_waiting:
            await self._pause(stopped, wake_on_bell=True)

    async def _observe(self, jobs: list[JobView]) -> None:
        """Set the Workflow's active-Jobs gauge (no I/O; its backlog gauge is
        set by ``stream_watch`` for every Workflow at once)."""
        workflow = self.ctx.workflow()
        metrics.ACTIVE_JOBS.labels(workflow.namespace, workflow.name).set(
            count_active(jobs, self.ctx.pending)
        )

    async def _report_admission(self) -> None:
        """Write JobsAdmitted when a refusal episode started, changed its message
        or ended; one Event and one log line each, never one per try."""
        gate = self.launcher.gate
        if not gate.pending_report:
            return
        workflow = self.ctx.workflow()
        refusal = gate.refusal
        if refusal is None:
            step = Step(True, "JobsCreated", "the API server accepts the Workflow's Jobs")
        else:
            step = Step(False, "JobCreationRefused", refusal.message)
        await conditions.write(
            self.ctx.rt.kube,
            workflow,
            {CONDITION_JOBS_ADMITTED: step},
            active=workflows.is_active(self.ctx.body),
            at=now(),
        )
        gate.pending_report = False
        if refusal is None:
            self.log.info("Job creation admitted again: processing the queued uploads")
            self.ctx.post_event("Normal", "JobCreationAdmitted", step.message)
        else:
            self.log.warning(
                "Job creation refused (%d), uploads wait in the queue; next try in %.0f s: %s",
                refusal.code,
                gate.wait_seconds(now()),
                refusal.message,
            )
            self.ctx.post_event("Warning", "JobCreationRefused", refusal.message[:1000])

    async def _pause(self, stopped: Any, *, wake_on_bell: bool = False) -> None:
        """Wait until the next step: one poll interval while anything is in
        flight, longer when the Workflow is idle (``_wait_seconds``); early when
        the daemon is asked to stop, when one of the Workflow's Jobs or the
        Workflow changes or the sweep found work (the wakeup), and
        (``wake_on_bell``: the step could take events) when the router rings. A
        step that cannot take events (no free slot, refusals) must not wake on
        the bell: it would spin while the bell stays set."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.wakeup.wait())]
        if stopped is not None:
            waits.append(asyncio.ensure_future(stopped.wait()))
        if wake_on_bell:
            waits.append(asyncio.ensure_future(self.bell.wait()))
        try:
            await asyncio.wait(
                waits, timeout=self._wait_seconds(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()

    def _wait_seconds(self) -> float:
        """The longest pause before the next step. One poll interval while a Job
        runs or awaits counting, a status write or a manual request waits, the
        sweep holds objects or creates are being refused; else (idle) until the
        next thing that has a time: a fetch no ring asks for, a kept Job's
        retention ending (``doorbell.idle_wait``)."""
        settings = self.ctx.rt.settings
        poll = settings.poll_seconds
        jobs = self.ctx.jobs()
        in_flight = (
            count_active(jobs, self.ctx.pending) > 0
            or any(j.finished and not self.ledger.counted(j) for j in jobs)
            or not self.ledger.settled
            or self.manual.waiting()
            or not self.sweeper.idle()
            or self.launcher.gate.refused
        )
        if in_flight:
            return poll
        at = time.monotonic()
        deadlines = [self.pacer.next_due()]
        expiry = self._next_expiry(jobs)
        if expiry is not None:
            deadlines.append(at + expiry)
        return idle_wait(
            at=at, poll=poll, fallback=settings.dispatch_fallback_seconds, deadlines=deadlines
        )

    def _next_expiry(self, jobs: list[JobView]) -> float | None:
        """Seconds until the first kept, counted Job's retention ends (None: none)."""
        spec = self.spec()
        retention = (
            spec.execution.finished_job_retention_seconds if spec else DEFAULT_RETENTION_SECONDS
        )
        moment = datetime.now(UTC)  # not clock.now(): whole seconds would wake it early
        ends = [
            (job.finished_at + timedelta(seconds=retention) - moment).total_seconds()
            for job in jobs
            if job.finished and job.finished_at is not None and job.uid not in self.deleted
        ]
        return min(ends, default=None)

    # --- finished Jobs ---
    async def delete_expired(self, jobs: list[JobView], spec: WorkflowSpec | None) -> None:
        """Delete counted Jobs whose retention has passed, unless an event may
        still be redelivered for one of them."""
        retention = timedelta(
            seconds=spec.execution.finished_job_retention_seconds
            if spec
            else DEFAULT_RETENTION_SECONDS
        )
        moment = now()
        expired = []
        for job in jobs:
            if not (job.finished and self.ledger.counted(job)) or job.uid in self.deleted:
                continue
            if job.finished_at is None or job.finished_at + retention <= moment:
                expired.append(job)
        if not expired:
            return
        # The Job is what makes a redelivered event a no-op (AlreadyExists). An event
        # delivered but not acked (an operator killed between create and ack) comes
        # back; deleting its Job first would run the object twice.
        backlog = await self.subscription.backlog()
        if backlog is not None and backlog[1] > 0:
            self.log.debug("%d unacked event(s): finished Jobs kept for now", backlog[1])
            return
        # A failed Job is the record that its object version ran: the sweep must
        # not create it again once it is gone (durable before delete).
        failed = [job.name for job in expired if job.state == "failed"]
        if failed:
            self.sweeper.remember_failed(failed)
            await self.ledger.flush(force=True)
        for job in expired:
            await self.ctx.rt.kube.delete_job(job.namespace, job.name)
            self.deleted.add(job.uid)

    # --- events ---
    async def handle(
        self, spec: WorkflowSpec, messages: list[QueueMessage], capacity: int
    ) -> float | None:
        """Settle every message of one fetch; the skipped ones are acked once the
        status write that counts them succeeded. Returns the shortest delay a
        message was put back with (None: none was).

        Each message is first parsed and matched (in order, no I/O), then the
        Jobs of the batch are created concurrently (``LAUNCH_PARALLEL`` in
        flight; one at a time while a refusal episode is open, so a probe is one
        create): a create is one API round trip, and one at a time capped a
        Workflow at one Job per round trip whatever the API server could take."""
        async with Batch(messages, self.progress_interval, self.log) as batch:
            plans: list[_Plan] = []
            reserved = 0
            for msg in messages:
                plan = await self._plan(spec, batch, msg)
                if plan is None:
                    continue  # settled: poison, or nothing to create
                if plan.events and reserved >= capacity:
                    # A fetch can hand over messages of an earlier, expired pull
                    # request: never exceed the limit for them, let them come back.
                    await batch.nak(msg, delay=self.ctx.rt.settings.poll_seconds)
                    continue
                reserved += len(plan.events)
                plans.append(plan)
            await self._launch_all(spec, batch, plans)
        if batch.held:
            self.ledger.hold_until_written(batch.held)
            await self.ledger.release()
        return batch.put_back_after

    async def _plan(self, spec: WorkflowSpec, batch: Batch, msg: QueueMessage) -> _Plan | None:
        """Parse and match one message. None when it is settled here already
        (poison: terminated; nothing for this Workflow: acked)."""
        try:
            events = parse_message(msg.data)
        except BadEvent as exc:
            await self._terminate(batch, msg, str(exc))
            return None
        workflow = self.ctx.workflow()
        plan = _Plan(msg)
        for event in events:
            decision = decide(
                spec,
                bucket=event.obj.bucket,
                key=event.obj.key,
                size=event.obj.size,
                user_metadata=event.user_metadata,
                event_name=event.event_name,
            )
            metrics.EVENTS.labels(
                workflow.namespace, workflow.name, decision.verdict.value, decision.code.value
            ).inc()
            if decision.verdict is Verdict.PROCESS:
                plan.events.append(event)
            elif decision.verdict is Verdict.SKIP:
                self.log.debug(
                    "skip %s/%s: %s",
                    event.obj.bucket,
                    event.obj.key,
                    decision.reason,
                    extra=object_fields(event.obj.bucket, event.obj.key),
                )
                plan.skip = True
        if not plan.events and not plan.skip:
            await batch.ack(msg)
            return None
        return plan

    async def _launch_all(self, spec: WorkflowSpec, batch: Batch, plans: list[_Plan]) -> None:
        """Create the planned Jobs and settle their messages. A refused create
        stops the batch: the messages not tried yet are nak'ed, in order, to come
        back just before the next probe; creates already in flight finish. The
        gate records the batch's outcome once, in message order (``_record``)."""
        gate = self.launcher.gate
        parallel = asyncio.Semaphore(1 if gate.refused else LAUNCH_PARALLEL)
        refusals: dict[int, Refusal] = {}
        put_back: dict[int, QueueMessage] = {}
        admitted = False

        async def settle(position: int, plan: _Plan) -> None:
            nonlocal admitted
            async with parallel:
                if refusals:
                    put_back[position] = plan.msg  # untried
                    return
                try:
                    created = await self._launch(spec, batch, plan)
                except JobRefused as refused:
                    refusals[position] = refused.refusal
                    put_back[position] = plan.msg
                    return
                admitted = admitted or created

        await asyncio.gather(*(settle(i, plan) for i, plan in enumerate(plans)))
        if refusals:
            gate.on_refused(refusals[min(refusals)], now())
        elif admitted:
            gate.on_admitted()
        # In order: they come back just before the next probe, spaced so that
        # redelivery keeps that order.
        positions = sorted(put_back)
        for position, delay in zip(
            positions, gate.put_back_delays(now(), len(positions)), strict=True
        ):
            await batch.nak(put_back[position], delay=delay)

    async def _launch(self, spec: WorkflowSpec, batch: Batch, plan: _Plan) -> bool:
        """Create the Jobs of one message and settle it; whether the API server
        admitted a create. Raises ``JobRefused`` with the message unsettled."""
        seq = sequence(plan.msg)
        admitted = False
        try:
            for event in plan.events:
                await self.launcher.launch(
                    spec,
                    event.obj,
                    trigger="event",
                    user_metadata=event.user_metadata,
                    event_time=event.event_time,
                    record=False,
                )
                admitted = True
        except JobRefused:
            raise  # the batch stops here (_launch_all)
        except Exception as exc:
            permanent = _permanent_reason(exc)
            if permanent:
                await self._terminate(batch, plan.msg, permanent)
            else:
                self.log.warning("event #%d will be redelivered: %s", seq, exc)
                await batch.nak(plan.msg, delay=NAK_DELAY_SECONDS)
            return admitted
        if plan.skip:
            self.ledger.count_skip(seq)
            batch.hold(plan.msg)
        else:
            await batch.ack(plan.msg)
        return admitted

    async def _terminate(self, batch: Batch, msg: QueueMessage, reason: str) -> None:
        """A message that can never succeed: dropped with its reason recorded
        (log, a PoisonEvent on the Workflow, a metric), never redelivered."""
        seq = sequence(msg)
        workflow = self.ctx.workflow()
        self.log.warning("terminating poison event #%d: %s", seq, reason)
        self.ctx.post_event("Warning", "PoisonEvent", f"event #{seq} dropped: {reason}"[:1000])
        await batch.term(msg)
        metrics.POISON_EVENTS.labels(workflow.namespace, workflow.name).inc()
