"""The periodic sweep: catch uploads whose event was lost.

MinIO can lose events across restarts, so each active Workflow periodically
lists its trigger prefix and creates Jobs for objects that have neither a Job
nor a manifest. Each sweep only looks at objects modified in a window
``[sweptUntil - overlap, now - grace)``: young objects are left to their events,
and an object is considered by a bounded number of sweeps, so a failed object
is not retried forever. The first window starts at the Workflow's activation,
or at the epoch with ``trigger.processExisting``.

A sweep is deferred while the Workflow's consumer still has queued or unacked
events: a Job the sweep made for an object whose event is merely *late* could
be counted and deleted before that event arrives, and the event would then run
the object a second time. Lost events are found once the queue has caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from minio import Minio
from minio.error import S3Error

from mediaflow_api.job import ObjectRef, WorkflowRef
from mediaflow_api.metadata import MANIFEST_NAME, output_dir_for
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.clock import iso, now, parse_time
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import job_name_for
from mediaflow_operator.launch import Launcher
from mediaflow_operator.ledger import StatusLedger
from mediaflow_operator.matching import Verdict, decide
from mediaflow_operator.subscription import Subscription

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)


def window_start(
    swept_until: datetime | None, active_since: datetime | None, process_existing: bool
) -> datetime:
    """Start of the next sweep window; never before the activation unless asked."""
    base = EPOCH if process_existing else (active_since or datetime.now(UTC))
    if swept_until is not None:
        return max(swept_until - OVERLAP, base)
    return base


def _list_candidates(
    client: Minio, spec: WorkflowSpec, start: datetime, end: datetime
) -> list[ObjectRef]:
    found: list[tuple[datetime, ObjectRef]] = []
    for obj in client.list_objects(
        spec.trigger.bucket,
        prefix=spec.trigger.prefix or None,
        recursive=True,
        include_user_meta=True,
    ):
        if obj.is_dir or obj.object_name is None or obj.last_modified is None:
            continue
        if not (start <= obj.last_modified < end):
            continue
        verdict = decide(
            spec,
            bucket=spec.trigger.bucket,
            key=obj.object_name,
            size=obj.size,
            user_metadata=dict(obj.metadata or {}),
        )
        if verdict.verdict is Verdict.PROCESS:
            ref = ObjectRef(
                bucket=spec.trigger.bucket,
                key=obj.object_name,
                etag=(obj.etag or "").strip('"'),
                versionId=obj.version_id or "",
                size=obj.size,
            )
            found.append((obj.last_modified, ref))
    return [ref for _, ref in sorted(found, key=lambda pair: pair[0])]


async def list_candidates(
    client: Minio, spec: WorkflowSpec, start: datetime, end: datetime
) -> list[ObjectRef]:
    """Objects of the window that the Workflow would process, oldest first."""
    return await asyncio.to_thread(_list_candidates, client, spec, start, end)


def _manifest_exists(client: Minio, spec: WorkflowSpec, key: str, workflow: WorkflowRef) -> bool:
    # This Workflow's own manifest: another Workflow's result for the same
    # object says nothing about this one's work.
    directory = output_dir_for(
        key, spec.trigger.prefix, spec.output_prefix, workflow.namespace, workflow.name
    )
    manifest = directory + MANIFEST_NAME
    try:
        client.stat_object(spec.output_bucket, manifest)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return False
        raise
    return True


async def manifest_exists(
    client: Minio, spec: WorkflowSpec, key: str, workflow: WorkflowRef
) -> bool:
    return await asyncio.to_thread(_manifest_exists, client, spec, key, workflow)


class Sweeper:
    """The sweep of one Workflow: when it is due, its window, and its Jobs."""

    def __init__(
        self,
        ctx: DispatchContext,
        subscription: Subscription,
        ledger: StatusLedger,
        launcher: Launcher,
    ) -> None:
        self.ctx = ctx
        self.subscription = subscription
        self.ledger = ledger
        self.launcher = launcher
        self.next_sweep = now()
        self.swept_until: datetime | None = None

    def load(self, status: Mapping[str, Any]) -> None:
        self.swept_until = parse_time(status.get("sweptUntil"))

    def due(self) -> bool:
        return now() >= self.next_sweep

    async def run(self, spec: WorkflowSpec, capacity: int) -> int:
        """Create Jobs for lost events, at most ``capacity``; returns how many."""
        settings = self.ctx.rt.settings
        self.next_sweep = now() + timedelta(seconds=settings.sweep_interval_seconds)
        start = window_start(
            self.swept_until,
            parse_time(self.ctx.status().get("activeSince")),
            spec.trigger.process_existing,
        )
        end = now() - timedelta(seconds=settings.sweep_grace_seconds)
        if end <= start:
            return 0
        backlog = await self.subscription.backlog()
        if backlog is not None and any(backlog):
            self.ctx.log.debug("sweep deferred: %d queued, %d unacked events", *backlog)
            return 0
        created = 0
        complete = True
        workflow = self.ctx.workflow()
        minio = self.ctx.rt.minio
        for obj in await list_candidates(minio, spec, start, end):
            name = job_name_for(workflow, obj)
            if name in self.ctx.pending or await self.ctx.rt.kube.job_exists(
                workflow.namespace, name
            ):
                continue
            if await manifest_exists(minio, spec, obj.key, workflow):
                continue
            if created >= capacity:
                complete = False  # the rest waits for the next sweep
                break
            await self.launcher.launch(spec, obj, trigger="sweep")
            created += 1
            self.ctx.log.info("sweep: %s had no Job and no manifest", obj.key)
        if complete:
            self.swept_until = end
            self.ledger.set_field("sweptUntil", iso(end))
        if created:
            self.ctx.post_event(
                "Normal", "Swept", f"created {created} Job(s) for objects without events"
            )
        return created
