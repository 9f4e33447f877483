"""One Workflow's notifications: what the dispatcher calls, and the sink workers.

The dispatcher announces an accepted object (``job_accepted``, after its Job
was created and before its event is acked) and a finished one
(``job_finished``, before the ledger counts it): each builds the events
(``events``), keeps those some sink wants (``sinks.route``) and publishes them
to the outbox. Only when that succeeded does the caller go on, so a result in
the status always has its notifications durable. A Workflow without sinks
costs nothing here: no manifest read, no publish.

``sync`` (every dispatcher step) keeps one ``SinkWorker`` task per configured
sink and removes the consumers and pending notifications of sinks that were
removed from the spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from minio.error import S3Error

from mediaflow_api.job import ObjectRef, WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import metrics, naming
from mediaflow_operator.clock import now
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import JobPlan
from mediaflow_operator.job_views import JobView, Outcome
from mediaflow_operator.notify import outbox
from mediaflow_operator.notify.deliver import DeliveryBook, SinkWorker
from mediaflow_operator.notify.events import ObjectFacts, accepted_event, finished_events
from mediaflow_operator.notify.sinks import Sink, route, sinks_for, wanted_kinds
from mediaflow_operator.sweep_source import manifest_key

MANIFEST_MAX_BYTES = 8 * 1024 * 1024  # a manifest beyond this is not read into an event


class Notifier:
    """The notifications of one Workflow (part of its dispatcher)."""

    def __init__(self, ctx: DispatchContext, spec: Callable[[], WorkflowSpec | None]) -> None:
        self.ctx = ctx
        self._spec = spec
        self.book = DeliveryBook(ctx)
        self.workers: dict[str, tuple[SinkWorker, asyncio.Task[None]]] = {}
        self._cached: tuple[int, list[Sink]] | None = None
        self._known_keys: set[str] | None = None  # sink keys whose leftovers were checked

    # --- the sinks of now ---
    def sinks(self) -> list[Sink]:
        """The sinks of the current spec (none while it does not parse)."""
        generation = self.ctx.workflow().generation
        if self._cached is None or self._cached[0] != generation:
            spec = self._spec()
            if spec is None:
                return self._cached[1] if self._cached else []
            self._cached = (generation, sinks_for(spec))
        return self._cached[1]

    def sink(self, key: str) -> Sink | None:
        return next((s for s in self.sinks() if s.key == key), None)

    def load(self, status: Mapping[str, Any]) -> None:
        self.book.load(status)

    # --- publishing ---
    async def job_accepted(self, job_name: str, job_uid: str, facts: ObjectFacts) -> None:
        """Publish the Accepted event of a created (or found) Job, when a sink wants it."""
        sinks = self.sinks()
        if "Accepted" not in wanted_kinds(sinks):
            return
        if not job_uid:
            job_uid = await self.ctx.rt.kube.job_uid(facts.workflow.namespace, job_name) or ""
        facts = _with(facts, job_uid=job_uid)
        await self._publish(sinks, [accepted_event(facts)])

    async def job_finished(
        self, job: JobView, *, outcome: Outcome, reason: str, message: str
    ) -> None:
        """Publish the events of a finished Job; raises when they could not be
        made durable (the Job then waits, uncounted, for the next step)."""
        sinks = self.sinks()
        if not sinks:
            return
        spec = self._spec()
        workflow = self.ctx.workflow()
        manifest = location = None
        if spec is not None and outcome != "superseded":
            location = (
                spec.output_bucket,
                manifest_key(spec, workflow.namespace, workflow.name, job.key),
            )
            manifest = await read_manifest(self.ctx, *location)
        facts = facts_of(job, workflow)
        notifications = finished_events(
            facts,
            outcome=outcome,
            reason=reason,
            message=message,
            finished_at=job.finished_at or now(),
            manifest=manifest,
            manifest_location=location if manifest is not None else None,
        )
        await self._publish(sinks, notifications)

    async def _publish(self, sinks: list[Sink], notifications: list[Any]) -> None:
        routed = route(sinks, notifications)
        if not routed:
            return
        js = await self.ctx.rt.jetstream()
        await outbox.publish(js, self.ctx.rt.settings, self.ctx.workflow().uid, routed)
        workflow = self.ctx.workflow()
        for sink, _ in routed:
            metrics.NOTIFICATIONS_ENQUEUED.labels(
                workflow.namespace, workflow.name, sink.label
            ).inc()

    # --- sink workers ---
    async def sync(self) -> None:
        """One worker per configured sink; the leftovers of removed sinks go."""
        sinks = self.sinks()
        keys = {s.key for s in sinks}
        for key in list(self.workers):
            if key not in keys:
                worker, task = self.workers.pop(key)
                worker.stopping = True
                task.cancel()
        # A Workflow that never had sinks has no leftovers: no NATS round trips.
        if self._known_keys != keys and (keys or self.book.tallies or self._known_keys):
            try:
                js = await self.ctx.rt.jetstream()
                removed = await outbox.forget_sinks(
                    js, self.ctx.rt.settings, self.ctx.workflow().uid, keys
                )
            except Exception as exc:  # NATS away: tried again next step
                self.ctx.log.warning("notification queues not checked: %s", exc)
            else:
                if removed:
                    self.ctx.log.info(
                        "removed the notification queues of %d removed sink(s)", len(removed)
                    )
                self._known_keys = keys
        if not sinks:
            return
        sender, publisher = self.ctx.rt.notify_clients()
        for sink in sinks:
            if sink.key not in self.workers:
                worker = SinkWorker(self.ctx, sink.key, self, self.book, sender, publisher)
                self.workers[sink.key] = (worker, asyncio.create_task(worker.run()))

    async def stop(self) -> None:
        """Stop the workers: messages in delivery are nak'ed for the next operator."""
        for worker, _ in self.workers.values():
            worker.stopping = True
        tasks = [task for _, task in self.workers.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.workers.clear()
        with contextlib.suppress(Exception):
            await self.book.flush(self.sinks(), force=True)


def facts_of(job: JobView, workflow: WorkflowRef) -> ObjectFacts:
    """What a Job tells about its object (the annotations ``job_render`` wrote)."""
    return ObjectFacts(
        workflow=workflow,
        bucket=job.bucket,
        key=job.key,
        etag=job.etag,
        version_id="",  # the manifest names the version it describes
        size=None,  # the manifest's input size fills it in
        job_name=job.name,
        job_uid=job.uid,
        context=job.context,
        correlation_id=job.correlation_id or job.name,
        traceparent=job.traceparent,
        accepted_at=job.created_at,
    )


def accepted_facts(
    workflow: WorkflowRef, obj: ObjectRef, plan: JobPlan, *, uploaded_at: datetime | None = None
) -> ObjectFacts:
    """What is known about an object when its Job was created (its annotations,
    as ``job_render`` planned them)."""
    annotations = (plan.manifest.get("metadata") or {}).get("annotations") or {}
    return ObjectFacts(
        workflow=workflow,
        bucket=obj.bucket,
        key=obj.key,
        etag=obj.etag,
        version_id=obj.version_id,
        size=obj.size,
        job_name=plan.name,
        job_uid="",
        context=annotations.get(naming.ANNOTATION_CONTEXT, ""),
        correlation_id=annotations.get(naming.ANNOTATION_CORRELATION_ID, "") or plan.name,
        traceparent=annotations.get(naming.ANNOTATION_TRACEPARENT, ""),
        accepted_at=now(),
        uploaded_at=uploaded_at,
    )


def _with(facts: ObjectFacts, **changes: Any) -> ObjectFacts:
    return replace(facts, **changes)


def _read_manifest(ctx: DispatchContext, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = ctx.rt.minio.get_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return None
        raise
    try:
        body = response.read(MANIFEST_MAX_BYTES + 1)
    finally:
        response.close()
        response.release_conn()
    if len(body) > MANIFEST_MAX_BYTES:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def read_manifest(ctx: DispatchContext, bucket: str, key: str) -> dict[str, Any] | None:
    """The run's manifest; None when there is none (an OOM kill) or it is unreadable.
    MinIO trouble raises: the Job is counted (and announced) next step."""
    return await ctx.rt.storage(_read_manifest, ctx, bucket, key)
