"""The per-Workflow dispatcher: events in, Jobs out, results into the status.

One ``Dispatcher`` runs per Workflow (a kopf daemon) and is the only writer of
its counters, so counting needs no cross-process coordination. Each step:

1. record the results of finished Jobs (``status`` explains why it is exact)
   and delete counted Jobs whose retention has passed;
2. if the Workflow is active, pull at most ``maxConcurrentJobs - active Jobs``
   events from its durable consumer: backpressure stays in JetStream;
3. per event: poison -> ``term()``; not ours -> ack; skip -> count, write, ack;
   process -> create the Job (``AlreadyExists`` is fine) then ack;
   API trouble -> ``nak(delay)``, the event comes back;
4. now and then, sweep the trigger prefix for objects whose event was lost;
5. write the status when something changed, at most every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from mediaflow_api.job import ObjectRef
from mediaflow_api.workflow import CONDITION_STORAGE, LEDGER_MAX, WorkflowSpec
from mediaflow_operator import job_render, manual, metrics, naming, sweep, workflows
from mediaflow_operator.kube import status_of
from mediaflow_operator.matching import Verdict, decide
from mediaflow_operator.queue import ACK_WAIT_SECONDS
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.s3_events import BadEvent, ObjectEvent, parse_message
from mediaflow_operator.status import JobView, Tally, iso, now, parse_time, termination_summary

logger = logging.getLogger(__name__)

FETCH_BATCH_MAX = 16
NAK_DELAY_SECONDS = 5.0
PENDING_FORGET = timedelta(minutes=2)
# Results counted per status write. The ledger keeps the last LEDGER_MAX UIDs; a
# batch larger than that would push its own first UIDs out before they are marked,
# and a crash while marking would count those Jobs again.
RECORD_BATCH_MAX = LEDGER_MAX // 2


def _permanent_reason(exc: BaseException) -> str:
    """Why retrying ``exc`` can never help ("" for transient trouble): the
    object cannot be described as a Job (validation) or the API server refuses
    the Job itself (400 Bad Request, 422 Invalid)."""
    if isinstance(exc, ValidationError):
        return f"object cannot be processed: {exc.errors()[0].get('msg', exc)}"
    if status_of(exc) in (400, 422):
        body = str(getattr(exc, "body", "") or getattr(exc, "reason", ""))
        return f"the API server rejected the Job ({status_of(exc)}): {body[:500]}"
    return ""


def count_active(jobs: Iterable[JobView], pending: Iterable[str]) -> int:
    """Unfinished Jobs, including ones just created and not yet seen by the watch."""
    seen = set()
    active = 0
    for job in jobs:
        seen.add(job.name)
        if not job.finished:
            active += 1
    return active + sum(1 for name in pending if name not in seen)


def count_running(jobs: Iterable[JobView], tally: Tally, pending: Iterable[str]) -> int:
    """Jobs whose result is not recorded yet (the ``running`` counter)."""
    seen = set()
    running = 0
    for job in jobs:
        seen.add(job.name)
        if not job.counted and not tally.job_counted(job.uid):
            running += 1
    return running + sum(1 for name in pending if name not in seen)


class Dispatcher:
    # Unsettled messages are marked in progress this often (well within AckWait).
    progress_interval = ACK_WAIT_SECONDS / 4

    def __init__(
        self,
        rt: Runtime,
        body: Mapping[str, Any],
        jobs: Callable[[], list[JobView]],
        post_event: Callable[[str, str, str], None],
    ) -> None:
        self.rt = rt
        self.body = body  # kopf's live view: always the latest Workflow
        self.jobs = jobs
        self.post_event = post_event  # (type, reason, message)
        self.ident = workflows.identity(body)
        self.tally = Tally()
        self.pending: dict[str, datetime] = {}  # created Job name -> when
        self.marked: set[str] = set()  # Job UIDs annotated as counted
        self.deleted: set[str] = set()
        self.dirty = True
        self.last_flush = datetime.min.replace(tzinfo=now().tzinfo)
        self.extra_status: dict[str, Any] = {}
        self.next_sweep = now()
        self.swept_until: datetime | None = None
        self._spec: tuple[int, WorkflowSpec] | None = None
        self._sub: Any = None
        self._sub_name = ""
        self.served_request = ""
        self.queued_request = ""
        self.held: list[Any] = []  # skipped events, acked after the write that counts them
        self.log = logging.LoggerAdapter(
            logger, {"workflow": f"{self.ident.namespace}/{self.ident.name}"}
        )

    # --- reading the Workflow ---
    def spec(self) -> WorkflowSpec | None:
        generation = int((self.body.get("metadata") or {}).get("generation") or 0)
        if self._spec is None or self._spec[0] != generation:
            try:
                self._spec = (generation, workflows.parse_spec(self.body))
            except ValidationError as exc:
                self.log.warning("invalid spec, not dispatching: %s", exc.errors()[0])
                return None
        return self._spec[1]

    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    def may_dispatch(self) -> bool:
        """Active, consumer in place, and the workers' storage checked: Jobs
        started without their Secret or buckets would only fail."""
        status = self.status()
        storage_ok = any(
            c.get("type") == CONDITION_STORAGE and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        return workflows.is_active(self.body) and bool(status.get("consumer")) and storage_ok

    def identity(self) -> job_render.WorkflowIdentity:
        return workflows.identity(self.body)

    # --- main loop ---
    async def load(self) -> None:
        fresh = await self.rt.kube.get_workflow(self.ident.namespace, self.ident.name)
        status = (fresh or {}).get("status") or {}
        self.tally = Tally.from_status(status)
        self.swept_until = parse_time(status.get("sweptUntil"))
        self.dirty = False  # the tally is what the status holds

    async def run(self, stopped: Any) -> None:
        await self.load()
        failures = 0
        while not stopped:
            try:
                await self.step(stopped)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self.log.exception("dispatcher step failed (%d in a row)", failures)
                await stopped.wait(min(30.0, 1.0 * 2 ** min(failures, 5)))
        try:
            await self.release(force=True)
        except Exception:
            self.log.warning("final status write failed", exc_info=True)

    async def step(self, stopped: Any = None) -> None:
        spec = self.spec()
        jobs = self.jobs()
        self._forget_seen_pending(jobs)
        await self.record_finished(jobs)
        await self.delete_expired(jobs, spec)
        await self.serve_manual_trigger(spec, jobs)
        if spec is None or not self.may_dispatch():
            await self.release()
            await self._pause(stopped)
            return
        capacity = spec.execution.max_concurrent_jobs - count_active(jobs, self.pending)
        if capacity > 0 and now() >= self.next_sweep:
            capacity -= await self.run_sweep(spec, capacity)
        if capacity <= 0:
            await self.release()
            await self._pause(stopped)
            return
        messages = await self.fetch(min(capacity, FETCH_BATCH_MAX))
        if len(messages) > capacity:
            self.log.debug("fetch returned %d messages for %d slots", len(messages), capacity)
        if messages:
            await self.handle(spec, messages, capacity)
        await self.release()

    async def _pause(self, stopped: Any) -> None:
        """Wait one poll interval, returning early when the daemon is asked to stop."""
        if stopped is None:
            await asyncio.sleep(self.rt.settings.poll_seconds)
        else:
            await stopped.wait(self.rt.settings.poll_seconds)

    def _forget_seen_pending(self, jobs: list[JobView]) -> None:
        names = {j.name for j in jobs}
        limit = now() - PENDING_FORGET
        for name, created in list(self.pending.items()):
            if name in names or created < limit:
                del self.pending[name]

    # --- manual trigger ---
    async def serve_manual_trigger(
        self, spec: WorkflowSpec | None = None, jobs: list[JobView] | None = None
    ) -> None:
        """Serve a ``mediaflow process`` request. It takes the next free slot
        under ``maxConcurrentJobs`` (ahead of queued events); while the Workflow
        is at its limit the request waits in its annotations."""
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        request = annotations.get(naming.ANNOTATION_PROCESS_REQUEST)
        if not request or request == self.served_request:
            return
        key = annotations.get(naming.ANNOTATION_PROCESS, "")
        if spec is not None:
            active = count_active(self.jobs() if jobs is None else jobs, self.pending)
            if active >= spec.execution.max_concurrent_jobs:
                if self.queued_request != request:
                    self.queued_request = str(request)
                    self.post_event(
                        "Normal",
                        "ManualTriggerQueued",
                        f"{key} waits: {active} of {spec.execution.max_concurrent_jobs} "
                        "Jobs are running",
                    )
                return
        try:
            name = await manual.process(self.rt, self.body, key, str(request))
        except manual.ManualTriggerError as exc:
            self.post_event("Warning", "ManualTriggerFailed", str(exc))
            await manual.clear(self.rt, self.body)
        else:
            self.pending[name] = now()
            self.dirty = True
            self.post_event("Normal", "ManualTrigger", f"Job {name} processes {key}")
            self.log.info("manual trigger: Job %s for %s", name, key)
        self.served_request = str(request)

    # --- results ---
    def flush_due(self) -> bool:
        return now() - self.last_flush >= timedelta(seconds=self.rt.settings.status_flush_seconds)

    async def record_finished(self, jobs: list[JobView]) -> None:
        """Count finished Jobs: one status write per flush interval at most, for
        all results that arrived in it (a result waits safely on its Job)."""
        if not self.flush_due():
            return
        newly: list[JobView] = []
        to_mark: list[JobView] = []
        for job in jobs:
            if not job.finished or job.counted or job.uid in self.marked:
                continue
            if self.tally.job_counted(job.uid):
                to_mark.append(job)
                continue
            if len(newly) >= RECORD_BATCH_MAX:
                continue  # next step: every UID must still be in the ledger when marked
            reason, message = job.reason, job.message
            if job.state == "failed":
                try:
                    summary = termination_summary(
                        await self.rt.kube.job_pods(job.namespace, job.name)
                    )
                except Exception:
                    summary = None
                if summary is not None:
                    reason = summary.reason or reason
                    message = summary.message or message
            if self.tally.record_job(job, reason=reason, message=message, at=now()):
                newly.append(job)
                metrics.JOB_RESULTS.labels(self.ident.namespace, self.ident.name, job.state).inc()
                if job.state == "failed":
                    self.post_event(
                        "Warning",
                        "ObjectFailed",
                        f"{job.bucket}/{job.key}: {reason} {message}"[:1000],
                    )
        if newly:
            self.dirty = True
        if (newly or to_mark) and self.dirty:
            # The ledger is written before any Job is marked: also for UIDs that an
            # earlier step counted in memory but failed to write (dirty is still set).
            await self.flush(force=True)
        for job in [*newly, *to_mark]:
            await self.rt.kube.annotate_job(
                job.namespace, job.name, {naming.ANNOTATION_COUNTED: job.state}
            )
            self.marked.add(job.uid)

    async def delete_expired(self, jobs: list[JobView], spec: WorkflowSpec | None) -> None:
        retention = timedelta(
            seconds=spec.execution.finished_job_retention_seconds if spec else 600
        )
        moment = now()
        expired = []
        for job in jobs:
            counted = job.counted or job.uid in self.marked
            if not (job.finished and counted) or job.uid in self.deleted:
                continue
            if job.finished_at is None or job.finished_at + retention <= moment:
                expired.append(job)
        if not expired:
            return
        # The Job is what makes a redelivered event a no-op (AlreadyExists). An event
        # delivered but not acked (an operator killed between create and ack) comes
        # back; deleting its Job first would run the object twice.
        backlog = await self.backlog()
        if backlog is not None and backlog[1] > 0:
            self.log.debug("%d unacked event(s): finished Jobs kept for now", backlog[1])
            return
        for job in expired:
            await self.rt.kube.delete_job(job.namespace, job.name)
            self.deleted.add(job.uid)

    async def backlog(self) -> tuple[int, int] | None:
        """(undelivered, delivered but unacked) messages of the Workflow's consumer;
        None when it has none (suspended, deleted)."""
        name = self.status().get("consumer") or ""
        if not name:
            return None
        js = await self.rt.jetstream()
        try:
            info = await js.consumer_info(self.rt.settings.nats_stream, name)
        except NotFoundError:
            return None
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)

    # --- events ---
    async def fetch(self, batch: int) -> list[Any]:
        name = self.status().get("consumer") or ""
        try:
            if self._sub is None or self._sub_name != name:
                js = await self.rt.jetstream()
                self._sub = await js.pull_subscribe_bind(
                    consumer=name, stream=self.rt.settings.nats_stream
                )
                self._sub_name = name
            return list(await self._sub.fetch(batch=batch, timeout=self.rt.settings.poll_seconds))
        except NatsTimeout:
            return []
        except NotFoundError:
            self.log.info("consumer %s not found yet", name)
            self._sub = None
            await asyncio.sleep(self.rt.settings.poll_seconds)
            return []

    async def handle(self, spec: WorkflowSpec, messages: list[Any], capacity: int) -> None:
        """Settle every message: ack, nak or term. While Jobs are being created
        the unsettled messages are kept ``in_progress`` so a slow API server
        cannot make JetStream redeliver them behind our back (AckWait)."""
        unsettled = list(messages)
        keepalive = asyncio.create_task(self._keep_in_progress(unsettled))
        try:
            await self._handle(spec, messages, capacity, unsettled)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _keep_in_progress(self, unsettled: list[Any]) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            for msg in list(unsettled):
                try:
                    await msg.in_progress()
                except Exception:  # the message comes back after AckWait at worst
                    self.log.debug("in_progress failed", exc_info=True)

    async def _terminate(self, msg: Any, seq: int, reason: str) -> None:
        """A message that can never succeed: dropped with its reason recorded
        (log, a PoisonEvent on the Workflow, a metric), never redelivered."""
        self.log.warning("terminating poison event #%d: %s", seq, reason)
        self.post_event("Warning", "PoisonEvent", f"event #{seq} dropped: {reason}"[:1000])
        await msg.term()
        metrics.POISON_EVENTS.labels(self.ident.namespace, self.ident.name).inc()

    async def _handle(
        self, spec: WorkflowSpec, messages: list[Any], capacity: int, unsettled: list[Any]
    ) -> None:
        after_flush = []
        created = 0

        def settled(msg: Any) -> None:
            if msg in unsettled:
                unsettled.remove(msg)

        for msg in messages:
            seq = msg.metadata.sequence.stream
            if created >= capacity:
                # A fetch can hand over messages of an earlier, expired pull
                # request: never exceed the limit for them, let them come back.
                await msg.nak(delay=self.rt.settings.poll_seconds)
                settled(msg)
                continue
            try:
                events = parse_message(msg.data)
            except BadEvent as exc:
                await self._terminate(msg, seq, str(exc))
                settled(msg)
                continue
            try:
                skip = False
                for event in events:
                    decision = decide(
                        spec,
                        bucket=event.bucket,
                        key=event.key,
                        size=event.size,
                        user_metadata=event.user_metadata,
                        event_name=event.event_name,
                    )
                    metrics.EVENTS.labels(
                        self.ident.namespace, self.ident.name, decision.verdict.value
                    ).inc()
                    if decision.verdict is Verdict.PROCESS:
                        await self.create_job(spec, event, trigger="event")
                        created += 1
                    elif decision.verdict is Verdict.SKIP:
                        self.log.debug("skip %s/%s: %s", event.bucket, event.key, decision.reason)
                        skip = True
            except Exception as exc:
                permanent = _permanent_reason(exc)
                if permanent:
                    await self._terminate(msg, seq, permanent)
                else:
                    self.log.warning("event #%d will be redelivered: %s", seq, exc)
                    await msg.nak(delay=NAK_DELAY_SECONDS)
                settled(msg)
                continue
            if skip:
                if self.tally.record_skip(seq):
                    self.dirty = True
                # Acked only once the ledger holding ``seq`` is written (also when an
                # earlier attempt counted it in memory but its write failed); the
                # write is coalesced with the other skips of the flush interval.
                after_flush.append(msg)
            else:
                await msg.ack()
                settled(msg)
        if after_flush:
            self.held.extend(after_flush)
            for msg in after_flush:
                settled(msg)  # held until the write, well within AckWait
            await self.release()

    async def create_job(
        self,
        spec: WorkflowSpec,
        event: ObjectEvent,
        *,
        trigger: str,
        nonce: str = "",
        force: bool = False,
    ) -> str:
        ident = self.identity()
        name = naming.job_name(
            ident.namespace,
            ident.name,
            event.bucket,
            event.key,
            event.etag,
            event.version_id,
            workflow_uid=ident.uid,
            nonce=nonce,
        )
        manifest = job_render.render_job(
            workflow=ident,
            spec=spec,
            obj=ObjectRef(
                bucket=event.bucket,
                key=event.key,
                etag=event.etag,
                versionId=event.version_id,
                size=event.size,
            ),
            job_name=name,
            storage_secret=workflows.storage_secret_name(spec),
            image=self.rt.settings.worker_image,
            command=self.rt.settings.worker_command,
            trigger=trigger,
            force=force,
        )
        created = await self.rt.kube.create_job(ident.namespace, manifest)
        if created:
            metrics.JOBS_CREATED.labels(ident.namespace, ident.name, trigger).inc()
            self.pending[name] = now()
            self.extra_status["lastDispatchTime"] = iso(now())
            self.dirty = True
            self.log.info("created Job %s for %s/%s", name, event.bucket, event.key)
        else:
            self.log.info("Job %s for %s/%s already exists", name, event.bucket, event.key)
        return name

    # --- sweep ---
    async def run_sweep(self, spec: WorkflowSpec, capacity: int) -> int:
        """Create Jobs for lost events; returns how many Jobs were created."""
        self.next_sweep = now() + timedelta(seconds=self.rt.settings.sweep_interval_seconds)
        status = self.status()
        start = sweep.window_start(
            self.swept_until,
            parse_time(status.get("activeSince")),
            spec.trigger.process_existing,
        )
        end = now() - timedelta(seconds=self.rt.settings.sweep_grace_seconds)
        if end <= start:
            return 0
        backlog = await self.backlog()
        if backlog is not None and any(backlog):
            # Events still wait in the queue (or are being handled): a Job the sweep
            # made for one of them could be deleted before that event arrives, and
            # the event would run the object again. The sweep looks for *lost*
            # events, so it waits until the queue has caught up.
            self.log.debug("sweep deferred: %d queued, %d unacked events", *backlog)
            return 0
        created = 0
        complete = True
        ident = self.identity()
        for cand in await sweep.list_candidates(self.rt.minio, spec, start, end):
            name = naming.job_name(
                ident.namespace,
                ident.name,
                spec.trigger.bucket,
                cand.key,
                cand.etag,
                cand.version_id,
                workflow_uid=ident.uid,
            )
            if name in self.pending or await self.rt.kube.job_exists(ident.namespace, name):
                continue
            if await sweep.manifest_exists(self.rt.minio, spec, cand.key):
                continue
            if created >= capacity:
                complete = False  # the rest waits for the next sweep
                break
            event = ObjectEvent(
                event_name="s3:ObjectCreated:Sweep",
                bucket=spec.trigger.bucket,
                key=cand.key,
                etag=cand.etag,
                version_id=cand.version_id,
                size=cand.size,
            )
            await self.create_job(spec, event, trigger="sweep")
            created += 1
            self.log.info("sweep: %s had no Job and no manifest", cand.key)
        if complete:
            self.swept_until = end
            self.extra_status["sweptUntil"] = iso(end)
            self.dirty = True
        if created:
            self.post_event(
                "Normal", "Swept", f"created {created} Job(s) for objects without events"
            )
        return created

    # --- status ---
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
        running = count_running(self.jobs(), self.tally, self.pending)
        current = self.status()
        if current.get("running") != running:
            self.dirty = True
        if not self.dirty:
            return
        moment = now()
        if not force and not self.flush_due():
            return
        patch = {**self.tally.to_status(running), **self.extra_status}
        await self.rt.kube.patch_workflow_status(self.ident.namespace, self.ident.name, patch)
        self.dirty = False
        self.last_flush = moment
