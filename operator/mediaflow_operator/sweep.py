"""The sweep: find uploads whose event was lost, and backfill with
``trigger.processExisting``.

MinIO can lose events (restarts, a bucket rule that did not exist yet or was
removed for a while), so each active Workflow lists its trigger prefix and
creates Jobs for objects that have neither a Job nor a manifest of their
current version (``sweep_state.manifest_is_current``).

**Off the dispatch path.** The sweep runs as its own asyncio task per
dispatcher. It lists a page at a time (``sweep_source``: key order, bounded
memory) and puts the objects that need a Job into a small bounded queue; the
dispatcher's step takes from it only as many as there are free slots *after*
the events (``launch_ready``), so events keep flowing and the backfill runs at
the Workflow's concurrency: a pass goes on as soon as slots free up.

**Passes and windows.** A pass looks at objects modified in
``[window_start, now - grace)``: young objects are left to their events.
Consecutive windows overlap by ``OVERLAP``; the first starts at the Workflow's
activation, or at the epoch with ``trigger.processExisting``. A pass walks the
prefix in key order, S3's only order: it resumes from a key (``start_after``)
after a restart (``status.sweepCursor``), which an order by time could not
without holding the whole listing. Passes start every
``MEDIAFLOW_SWEEP_INTERVAL_SECONDS``, once when the dispatcher starts, and
``grace`` after the bucket rule became ready (the Workflow's first Ready, a
resume, the end of an outage of the rule): uploads made before the rule
existed have no event and should not wait for the interval (the window of
that pass reaches a whole second past the moment, ``sweep_state.next_due``).

**Each object version runs once.** A pass never looks at a key twice, and a
Job that failed (an OOM kill leaves no manifest) is remembered when it is
deleted (``sweep_state.TriedJobs``, in the status before the deletion), so the
next window's overlap does not create it again: it is counted failed once.

**Deferral.** A pass does not go on while the Workflow's consumer still has
queued or unacked events, and the dispatcher only takes candidates when a
fetch came back short: a Job the sweep made for an object whose event is
merely *late* could be counted and deleted before that event arrives, and the
event would then run the object a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mediaflow_api.job import ObjectRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import CONDITION_NOTIFICATION
from mediaflow_operator import workflows
from mediaflow_operator.admission import JobRefused
from mediaflow_operator.clock import iso, now, parse_time
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import job_name_for
from mediaflow_operator.launch import Launcher
from mediaflow_operator.ledger import StatusLedger
from mediaflow_operator.logs import object_fields
from mediaflow_operator.matching import Verdict, decide
from mediaflow_operator.subscription import Subscription
from mediaflow_operator.sweep_source import (
    PAGE_SIZE,
    Listed,
    list_page,
    manifest_key,
    stat_manifest,
)
from mediaflow_operator.sweep_state import (
    EPOCH,
    OVERLAP,
    SweepPass,
    TriedJobs,
    manifest_is_current,
    next_due,
    trigger_of,
    window_start,
)

__all__ = ["EPOCH", "OVERLAP", "Sweeper", "window_start"]

QUEUE_MAX = 64  # candidates found but not yet taken: bounds the sweep's memory
RETRY_MAX_SECONDS = 60.0  # longest pause after a failed create of a candidate's Job


@dataclass(frozen=True)
class Candidate:
    """An object version that needs a Job."""

    obj: ObjectRef
    job: str
    modified: datetime  # the object's last change, as listed
    # As listed (trace context, context, correlation id); not part of its identity.
    user_metadata: dict[str, str] = field(default_factory=dict, compare=False)


class Sweeper:
    """The sweep of one Workflow: its task (producer) and the dispatcher's side
    (``launch_ready``, ``remember_failed``)."""

    def __init__(
        self,
        ctx: DispatchContext,
        subscription: Subscription,
        ledger: StatusLedger,
        launcher: Launcher,
        spec: Callable[[], WorkflowSpec | None],
    ) -> None:
        self.ctx = ctx
        self.subscription = subscription
        self.ledger = ledger
        self.launcher = launcher
        self.spec = spec
        self.queue: asyncio.Queue[Candidate] = asyncio.Queue(maxsize=QUEUE_MAX)
        self.swept_until: datetime | None = None
        self.current: SweepPass | None = None
        self.tried = TriedJobs({})
        self.last_started: datetime | None = None  # None: no pass yet in this process
        self.created = 0  # Jobs of the current pass
        self._held: Candidate | None = None  # taken from the queue, not launched yet
        self._examined = ""  # the last key the producer is done with
        self._taken = ""  # the key of the last candidate taken
        self._rule: tuple[str, datetime] | None = None  # (what the rule's state was, seen at)
        self._retry_at = EPOCH
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    # --- state ---
    def load(self, status: Mapping[str, Any]) -> None:
        """Where the sweep stood (the dispatcher's start)."""
        self.swept_until = parse_time(status.get("sweptUntil"))
        self.current = SweepPass.from_status(status.get("sweepCursor"))
        self.tried = TriedJobs.from_status(status.get("triedJobs"))
        if self.current is not None:
            self._examined = self._taken = self.current.after

    def remember_failed(self, jobs: list[str]) -> None:
        """Failed Jobs about to be deleted: never created again by the sweep.
        The caller writes the status before it deletes them."""
        if jobs:
            self.tried.add(jobs, now())
            self.ledger.set_field("triedJobs", self.tried.to_status())

    def due(self) -> datetime:
        settings = self.ctx.rt.settings
        return next_due(
            last_started=self.last_started,
            interval=timedelta(seconds=settings.sweep_interval_seconds),
            grace=timedelta(seconds=settings.sweep_grace_seconds),
            swept_until=self.swept_until,
            rule_ready_since=self._rule[1] if self._rule else None,
        )

    def observe_rule(self) -> None:
        """Note when the bucket rule became ready, as this dispatcher sees it.

        The moment is when the status first *shows* it (the reconciler writes
        the condition after applying the rule), not the condition's transition
        time, which is taken before the rule is applied.
        """
        status = self.ctx.status()
        for cond in status.get("conditions") or []:
            if cond.get("type") != CONDITION_NOTIFICATION or cond.get("status") != "True":
                continue
            state = "|".join(
                str(v)
                for v in (
                    cond.get("lastTransitionTime"),
                    cond.get("reason"),
                    status.get("activeSince"),
                )
            )
            if self._rule is None or self._rule[0] != state:
                self._rule = (state, now())

    # --- the task ---
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                busy = await self.tick()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self.ctx.log.exception("sweep failed (%d in a row)", failures)
                await asyncio.sleep(min(30.0, 1.0 * 2 ** min(failures, 5)))
                continue
            if not busy:
                await asyncio.sleep(self.ctx.rt.settings.poll_seconds)

    async def tick(self) -> bool:
        """Start or continue a pass when one is due: one page at most. Returns
        whether there is more to do at once."""
        self.observe_rule()
        if not workflows.may_dispatch(self.ctx.body):
            return False
        if self.current is None and now() < self.due():
            return False
        spec = self.spec()
        if spec is None:
            return False
        return await self.advance(spec)

    async def advance(self, spec: WorkflowSpec) -> bool:
        """One page of the current pass (started if there is none)."""
        trigger = trigger_of(spec.trigger.bucket, spec.trigger.prefix)
        if self.current is not None and self.current.trigger != trigger:
            self.ctx.log.info("sweep: the trigger changed, the unfinished pass is dropped")
            self.current = None
        active_since = parse_time(self.ctx.status().get("activeSince"))
        if (
            self.current is not None
            and not spec.trigger.process_existing
            and active_since is not None
            and self.current.end <= active_since
        ):
            # Suspended and resumed since the pass began: what it had left are
            # uploads of before the resume, which a resume does not process.
            self.ctx.log.info("sweep: the pass from before the resume is dropped")
            self.current = None
        if self.current is None:
            self.last_started = now()
            start = window_start(self.swept_until, active_since, spec.trigger.process_existing)
            end = now() - timedelta(seconds=self.ctx.rt.settings.sweep_grace_seconds)
            if end <= start:
                self._complete(end, spec)
                return False
            self.current = SweepPass(start, end, trigger)
            self.created = 0
            self._examined = self._taken = ""
        backlog = await self.subscription.backlog()
        if backlog is not None and any(backlog):
            self.ctx.log.debug("sweep deferred: %d queued, %d unacked events", *backlog)
            return False
        # The listing goes on from the last key examined; the stored cursor may lag
        # behind it (candidates not launched yet) and is where a restart resumes.
        after = max(self._examined, self.current.after)
        page = await list_page(
            self.ctx.rt.storage_pool,
            self.ctx.rt.minio,
            spec.trigger.bucket,
            spec.trigger.prefix,
            after,
            PAGE_SIZE,
        )
        known = self._known()
        for item in page:
            candidate = await self._candidate(spec, self.current, item, known)
            if candidate is not None:
                await self.queue.put(candidate)
                self.ctx.wake()
            self._examined = item.key
        self._progress()
        if len(page) < PAGE_SIZE:
            await self.queue.join()  # every candidate of the pass is launched (or dropped)
            self._complete(self.current.end, spec)
            return False
        return True

    async def _candidate(
        self, spec: WorkflowSpec, sweep: SweepPass, item: Listed, known: set[str]
    ) -> Candidate | None:
        """The Job ``item`` needs, or None (outside the window, not ours, done,
        in progress, or already failed)."""
        if not sweep.covers(item.last_modified):
            return None
        bucket = spec.trigger.bucket
        verdict = decide(
            spec, bucket=bucket, key=item.key, size=item.size, user_metadata=item.user_metadata
        )
        if verdict.verdict is not Verdict.PROCESS:
            return None
        try:
            obj = ObjectRef(
                bucket=bucket,
                key=item.key,
                etag=item.etag,
                versionId=item.version_id,
                size=item.size,
            )
        except ValidationError as exc:
            self.ctx.log.warning("sweep: %s cannot be processed: %s", item.key, exc.errors()[0])
            return None
        workflow = self.ctx.workflow()
        job = job_name_for(workflow, obj)
        if job in self.tried or job in known or job in self.ctx.pending:
            return None
        candidate = Candidate(
            obj=obj, job=job, modified=item.last_modified, user_metadata=item.user_metadata
        )
        return None if await self._has_current_manifest(spec, candidate) else candidate

    async def _has_current_manifest(self, spec: WorkflowSpec, candidate: Candidate) -> bool:
        """Whether this Workflow's manifest of the candidate's object describes
        its listed version. Asked when listing, and again right before the Job
        is created: a candidate can wait in the queue for minutes, and an event
        that was merely late (MinIO holds events a few seconds) may have run its
        Job meanwhile, which a short retention already removed from the index."""
        workflow = self.ctx.workflow()
        manifest = await stat_manifest(
            self.ctx.rt.storage_pool,
            self.ctx.rt.minio,
            spec.output_bucket,
            manifest_key(spec, workflow.namespace, workflow.name, candidate.obj.key),
        )
        return manifest_is_current(candidate.obj.etag, candidate.modified, manifest)

    def _known(self) -> set[str]:
        """Names of the Workflow's Jobs (the watch-fed index) and those just created."""
        return {j.name for j in self.ctx.jobs()} | set(self.ctx.pending)

    def idle(self) -> bool:
        """No object the sweep found waits for a slot."""
        return self.queue.empty() and self._held is None

    def _progress(self) -> None:
        """Store how far the pass is: past every key examined once no candidate
        waits, else up to the last candidate taken (keys before it are done)."""
        if self.current is None:
            return
        done = self._examined if self.idle() else self._taken
        if done and done > self.current.after:
            self.current = self.current.advanced(done)
            self.ledger.set_field("sweepCursor", self.current.to_status())

    def _complete(self, end: datetime, spec: WorkflowSpec) -> None:
        self.swept_until = max(self.swept_until or end, end)
        self.current = None
        horizon = window_start(
            self.swept_until,
            parse_time(self.ctx.status().get("activeSince")),
            spec.trigger.process_existing,
        )
        if self.tried.prune(horizon):
            self.ledger.set_field("triedJobs", self.tried.to_status())
        self.ledger.set_field("sweptUntil", iso(self.swept_until))
        self.ledger.set_field("sweepCursor", None)
        if self.created:
            self.ctx.post_event(
                "Normal", "Swept", f"created {self.created} Job(s) for objects without events"
            )
            self.created = 0

    # --- the dispatcher's side ---
    async def launch_ready(self, spec: WorkflowSpec, free: int) -> int:
        """Create Jobs for up to ``free`` waiting candidates; returns how many.
        A failed create keeps its candidate for a later step (with a growing
        pause), so events are never held up by the sweep."""
        if free <= 0 or now() < self._retry_at:
            return 0
        created = 0
        known = self._known()
        while created < free:
            if self._held is None:
                try:
                    self._held = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            candidate = self._held
            prefix = spec.trigger.prefix
            ours = candidate.obj.bucket == spec.trigger.bucket and candidate.obj.key.startswith(
                prefix
            )
            if (
                ours
                and candidate.job not in self.tried
                and candidate.job not in known
                and not await self._has_current_manifest(spec, candidate)
            ):
                try:
                    await self.launcher.launch(
                        spec,
                        candidate.obj,
                        trigger="sweep",
                        user_metadata=candidate.user_metadata,
                    )
                except ValidationError as exc:
                    self.ctx.log.warning(
                        "sweep: %s cannot be processed: %s", candidate.obj.key, exc.errors()[0]
                    )
                except JobRefused:
                    # The candidate stays held; the dispatcher reports the refusal
                    # once per episode and waits with the gate's backoff.
                    raise
                except Exception as exc:
                    self._failures += 1
                    pause = min(RETRY_MAX_SECONDS, 2.0**self._failures)
                    self._retry_at = now() + timedelta(seconds=pause)
                    self.ctx.log.warning(
                        "sweep: Job for %s not created (retry in %.0f s): %s",
                        candidate.obj.key,
                        pause,
                        exc,
                    )
                    return created
                else:
                    created += 1
                    self.created += 1
                    self.ctx.log.info(
                        "sweep: %s had no Job and no manifest of its version",
                        candidate.obj.key,
                        extra=object_fields(candidate.obj.bucket, candidate.obj.key, candidate.job),
                    )
            self._failures = 0
            self._held = None
            self._taken = candidate.obj.key
            self.queue.task_done()
        self._progress()
        return created
