"""The sweep's pure parts (window, pass cursor, when due, tried Jobs, current
manifests) and its producer/consumer hand-over with a fake MinIO listing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from minio.error import S3Error

from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import TRIED_JOBS_MAX, WorkflowStatus
from mediaflow_operator import sweep
from mediaflow_operator.clock import iso
from mediaflow_operator.dispatch import Dispatcher
from mediaflow_operator.doorbell import Doorbells
from mediaflow_operator.pools import Pool
from mediaflow_operator.settings import Settings
from mediaflow_operator.sweep_state import (
    EPOCH,
    ManifestInfo,
    SweepPass,
    TriedJobs,
    manifest_is_current,
    next_due,
)

from .samples import spec

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
# The fake MinIO's calls run in threads as the real ones do (idle threads end with the run).
STORAGE_POOL = Pool("test-storage", 2)
TRIGGER = {"bucket": "uploads", "prefix": "in/", "suffixes": [".mp4"], "processExisting": True}


# --- pass cursor ---
def test_a_pass_round_trips_through_the_status_and_only_moves_forward() -> None:
    sweep = SweepPass(EPOCH, T0, "uploads/incoming/")
    assert sweep.covers(T0 - MINUTE)
    assert not sweep.covers(T0)
    later = sweep.advanced("incoming/b.mp4").advanced("incoming/a.mp4")
    assert later.after == "incoming/b.mp4"
    stored = later.to_status()
    WorkflowStatus.model_validate({"sweepCursor": stored})  # fits the CRD's schema
    assert SweepPass.from_status(stored) == later
    assert SweepPass.from_status(None) is None
    assert SweepPass.from_status({"start": iso(T0)}) is None


# --- when a pass is due ---
def test_the_first_pass_is_at_once_then_every_interval() -> None:
    kw: dict[str, Any] = {"interval": 5 * MINUTE, "grace": MINUTE, "rule_ready_since": None}
    assert next_due(last_started=None, swept_until=None, **kw) == EPOCH
    assert next_due(last_started=T0, swept_until=T0 - MINUTE, **kw) == T0 + 5 * MINUTE


def test_a_rule_that_became_ready_brings_a_pass_after_the_grace() -> None:
    kw: dict[str, Any] = {"interval": 5 * MINUTE, "grace": MINUTE}
    ready = T0 + 10 * timedelta(seconds=1)
    # The last pass ended before the rule existed: uploads before it had no event.
    due = next_due(last_started=T0, swept_until=T0 - MINUTE, rule_ready_since=ready, **kw)
    assert due == ready + SECOND + MINUTE
    # A pass that reached past the second in which the rule became ready is enough.
    after = ready + SECOND
    due = next_due(last_started=after + MINUTE, swept_until=after, rule_ready_since=ready, **kw)
    assert due == after + 6 * MINUTE


def test_a_pass_that_ended_in_the_second_the_rule_became_ready_is_not_enough() -> None:
    """Times are whole seconds: uploads made a moment before the rule was ready
    carry the second it became ready in, and a window ending at that second
    (exclusive) leaves them out. The pass that started exactly ``grace`` after
    the rule was seen ended there; another must follow at once, not after the
    interval (the stall the backfill e2e test showed on a loaded machine)."""
    kw: dict[str, Any] = {"interval": 5 * MINUTE, "grace": MINUTE}
    ready = T0 + 10 * SECOND
    started = ready + MINUTE  # its window ended at started - grace == ready
    due = next_due(last_started=started, swept_until=ready, rule_ready_since=ready, **kw)
    assert due == ready + SECOND + MINUTE
    assert due < started + 5 * MINUTE


# --- tried Jobs ---
def test_tried_jobs_are_kept_until_no_window_can_cover_them() -> None:
    tried = TriedJobs.from_status(None)
    tried.add(["mf-a"], T0)
    tried.add(["mf-b"], T0 + MINUTE)
    assert "mf-a" in tried
    assert "mf-c" not in tried
    assert not tried.prune(T0)  # a window may still start at T0: deleted at T0 stays
    assert tried.prune(T0 + timedelta(seconds=1))
    assert "mf-a" not in tried
    assert "mf-b" in tried
    stored = tried.to_status()
    WorkflowStatus.model_validate({"triedJobs": stored})
    assert TriedJobs.from_status(stored) == tried


def test_tried_jobs_are_bounded_oldest_first() -> None:
    tried = TriedJobs.from_status(None)
    tried.add([f"mf-{i}" for i in range(TRIED_JOBS_MAX + 5)], T0)
    assert len(tried.to_status()) == TRIED_JOBS_MAX
    assert "mf-0" not in tried
    assert f"mf-{TRIED_JOBS_MAX + 4}" in tried


# --- manifests ---
def test_a_manifest_counts_only_for_the_version_it_names() -> None:
    later = ManifestInfo(last_modified=T0 + MINUTE, source_etag="v1")
    assert manifest_is_current("v1", T0, later)
    assert manifest_is_current('"v1"', T0, ManifestInfo(T0, '"v1"'))
    assert not manifest_is_current("v2", T0, later), "an overwrite whose event was lost"
    assert not manifest_is_current("v1", T0, None)


def test_a_manifest_without_the_source_etag_counts_when_not_older_than_the_object() -> None:
    modified = T0 + timedelta(milliseconds=300)
    assert manifest_is_current("v2", modified, ManifestInfo(T0, ""))  # same second
    assert manifest_is_current("v2", modified, ManifestInfo(T0 + MINUTE, ""))
    assert not manifest_is_current("v2", modified, ManifestInfo(T0 - MINUTE, ""))


# --- producer and consumer, with a fake MinIO ---
@dataclass
class FakeObject:
    object_name: str
    last_modified: datetime
    etag: str
    size: int = 3
    is_dir: bool = False
    version_id: str | None = None
    metadata: dict[str, str] | None = None


@dataclass
class FakeMinio:
    objects: dict[str, FakeObject]
    manifests: dict[str, FakeObject] = field(default_factory=dict)
    listed_after: list[str | None] = field(default_factory=list)

    def list_objects(self, bucket: str, **kw: Any) -> Any:
        self.listed_after.append(kw.get("start_after"))
        for key in sorted(self.objects):
            if kw.get("start_after") and key <= kw["start_after"]:
                continue
            if key.startswith(kw.get("prefix") or ""):
                yield self.objects[key]

    def stat_object(self, bucket: str, key: str) -> Any:
        if key not in self.manifests:
            raise S3Error(None, "NoSuchKey", "no", key, "r", "h")
        found = self.manifests[key]
        return SimpleNamespace(last_modified=found.last_modified, metadata=found.metadata)


@dataclass
class FakeKube:
    created: list[str] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)

    async def create_job(self, namespace: str, manifest: dict[str, Any]) -> str:
        self.created.append(manifest["metadata"]["annotations"]["mediaflow.dev/key"])
        return f"uid-{manifest['metadata']['name']}"

    async def patch_workflow_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.status.append(patch)


def _sweeper(minio: FakeMinio, kube: FakeKube, status: dict[str, Any]) -> Dispatcher:
    body = {
        "metadata": {"namespace": "ns", "name": "videos", "uid": "wf-uid", "generation": 1},
        "spec": spec(trigger=TRIGGER),
        "status": {
            "consumer": "c",
            "activeSince": iso(T0),
            "conditions": [{"type": "StorageReady", "status": "True"}],
            **status,
        },
    }
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01, sweep_grace_seconds=0),
        kube=kube,
        minio=minio,
        storage_pool=STORAGE_POOL,
    )
    dispatcher = Dispatcher(rt, body, lambda: [], lambda *e: None)  # type: ignore[arg-type]

    async def no_backlog() -> tuple[int, int]:
        return (0, 0)

    dispatcher.subscription.backlog = no_backlog  # type: ignore[method-assign]
    dispatcher.sweeper.load(body["status"])
    return dispatcher


def _spec() -> WorkflowSpec:
    return WorkflowSpec.model_validate(spec(trigger=TRIGGER))


async def _sweep_pass(dispatcher: Dispatcher, slots: int) -> None:
    """One whole pass: the sweep's task lists, the dispatcher launches up to
    ``slots`` Jobs per step, until the pass is complete."""
    sweeper = dispatcher.sweeper

    async def produce() -> None:
        while await sweeper.advance(_spec()):
            pass

    producer = asyncio.create_task(produce())
    while not producer.done():
        await sweeper.launch_ready(_spec(), slots)
        await asyncio.sleep(0.001)
    await producer


def test_a_pass_hands_over_in_key_order_only_what_needs_a_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep, "PAGE_SIZE", 2)
    old = T0 - MINUTE
    minio = FakeMinio(
        {
            k: FakeObject(k, old, f"e-{k}")
            for k in ("in/c.mp4", "in/a.mp4", "in/b.mp4", "in/notes.txt", "in/d.mp4")
        }
    )
    # b has a current manifest; d's manifest is of an older version (lost overwrite event).
    manifest_dir = ".mediaflow/ns/videos/manifest.json"
    minio.manifests["in/b.mp4" + manifest_dir] = FakeObject(
        "m", old, "", metadata={"x-amz-meta-mediaflow-source-etag": "e-in/b.mp4"}
    )
    minio.manifests["in/d.mp4" + manifest_dir] = FakeObject(
        "m", old, "", metadata={"x-amz-meta-mediaflow-source-etag": "older"}
    )
    kube = FakeKube()
    dispatcher = _sweeper(minio, kube, {})
    sweeper = dispatcher.sweeper

    asyncio.run(_sweep_pass(dispatcher, 1))
    assert kube.created == ["in/a.mp4", "in/c.mp4", "in/d.mp4"]
    assert minio.listed_after[:3] == [None, "in/b.mp4", "in/d.mp4"], "page by page from a key"
    assert sweeper.current is None
    assert sweeper.swept_until is not None
    assert dispatcher.ledger.fields["sweepCursor"] is None


def test_an_unfinished_pass_resumes_after_its_last_key_and_skips_tried_jobs() -> None:
    old = T0 - MINUTE
    minio = FakeMinio({k: FakeObject(k, old, f"e-{k}") for k in ("in/a.mp4", "in/b.mp4")})
    minio.objects["in/c.mp4"] = FakeObject("in/c.mp4", old, "e-c")
    kube = FakeKube()
    cursor = SweepPass(EPOCH, T0, "uploads/in/", after="in/a.mp4").to_status()
    probe = _sweeper(minio, FakeKube(), {})
    from mediaflow_api.job import ObjectRef
    from mediaflow_operator.job_render import job_name_for

    tried_c = job_name_for(
        probe.ctx.workflow(), ObjectRef(bucket="uploads", key="in/c.mp4", etag="e-c")
    )
    dispatcher = _sweeper(
        minio, kube, {"sweepCursor": cursor, "triedJobs": [{"job": tried_c, "at": iso(T0)}]}
    )

    asyncio.run(_sweep_pass(dispatcher, 4))
    assert minio.listed_after[0] == "in/a.mp4"
    assert kube.created == ["in/b.mp4"], "a resumed pass starts after its cursor; c failed before"


async def _until(condition: Callable[[], bool]) -> None:
    """Let the producer task run until ``condition`` holds, for at most about
    5 s (the caller asserts it)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)


def test_the_queue_bounds_what_the_sweep_holds_and_the_cursor_waits_for_launches() -> None:
    old = T0 - MINUTE
    keys = [f"in/{i:03d}.mp4" for i in range(200)]
    minio = FakeMinio({k: FakeObject(k, old, f"e-{k}") for k in keys})
    kube = FakeKube()
    dispatcher = _sweeper(minio, kube, {})
    sweeper = dispatcher.sweeper

    async def run() -> None:
        producer = asyncio.create_task(sweeper.advance(_spec()))
        await _until(lambda: sweeper.queue.full())
        assert sweeper.queue.full()
        assert kube.created == []
        assert sweeper.current is not None
        assert sweeper.current.after == ""
        await sweeper.launch_ready(_spec(), 4)
        assert kube.created == keys[:4]
        assert sweeper.current.after == keys[3], "the cursor is the last key launched"
        producer.cancel()

    asyncio.run(run())


def test_a_candidate_whose_late_event_ran_its_job_meanwhile_is_not_run_again() -> None:
    """Listed before its (late) event made a Job; that Job ran, wrote the manifest
    and was deleted while the candidate waited: the sweep must not run it again."""
    old = T0 - MINUTE
    keys = ["in/a.mp4", "in/b.mp4"]
    minio = FakeMinio({k: FakeObject(k, old, f"e-{k}") for k in keys})
    kube = FakeKube()
    dispatcher = _sweeper(minio, kube, {})
    sweeper = dispatcher.sweeper

    async def run() -> None:
        producer = asyncio.create_task(sweeper.advance(_spec()))
        await _until(lambda: sweeper.queue.qsize() == 2)
        assert sweeper.queue.qsize() == 2
        # Meanwhile a's event ran its Job (now gone from the index): a's manifest.
        minio.manifests["in/a.mp4.mediaflow/ns/videos/manifest.json"] = FakeObject(
            "m", T0, "", metadata={"x-amz-meta-mediaflow-source-etag": "e-in/a.mp4"}
        )
        await sweeper.launch_ready(_spec(), 4)
        await asyncio.wait_for(producer, 5)  # the pass completes: both taken

    asyncio.run(run())
    assert kube.created == ["in/b.mp4"]


# --- the window's start: activation ---
def test_activation_is_the_creation_of_a_workflow_applied_active() -> None:
    from mediaflow_operator.reconcile import activation_time

    created = {"creationTimestamp": iso(T0), "generation": 1}
    # Uploads right after `kubectl apply` are in the window, though the rule came later.
    assert activation_time({"metadata": created}, T0 + MINUTE) == T0
    # Resumed (or edited before it could activate): the reconcile that notices it.
    resumed = {"creationTimestamp": iso(T0), "generation": 3}
    assert activation_time({"metadata": resumed}, T0 + MINUTE) == T0 + MINUTE
    assert activation_time({"metadata": {}}, T0) == T0


def test_a_pass_is_due_when_the_rule_becomes_ready_and_again_after_an_outage() -> None:
    dispatcher = _sweeper(FakeMinio({}), FakeKube(), {})
    sweeper = dispatcher.sweeper
    status = dispatcher.ctx.body["status"]
    sweeper.last_started = datetime.now(UTC)  # a pass just ran, reaching a minute ago
    sweeper.swept_until = datetime.now(UTC) - MINUTE
    sweeper.observe_rule()
    assert sweeper.due() > datetime.now(UTC), "no rule yet: the interval"
    rule = {"type": "NotificationReady", "status": "True", "lastTransitionTime": iso(T0)}
    status["conditions"].append(rule)
    sweeper.observe_rule()
    assert sweeper.due() <= datetime.now(UTC) + timedelta(seconds=1), "grace 0: at once"
    sweeper.swept_until = datetime.now(UTC) + MINUTE  # that pass reached the rule
    assert sweeper.due() > datetime.now(UTC) + MINUTE
    rule["lastTransitionTime"] = iso(T0 + MINUTE)  # False meanwhile, True again
    sweeper.swept_until = datetime.now(UTC) - MINUTE
    sweeper.observe_rule()
    assert sweeper.due() <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_pass_from_before_a_resume_is_dropped() -> None:
    old = T0 - MINUTE
    minio = FakeMinio({"in/a.mp4": FakeObject("in/a.mp4", old, "e-a")})
    kube = FakeKube()
    trigger = {**TRIGGER, "processExisting": False}
    cursor = SweepPass(EPOCH, T0, "uploads/in/").to_status()
    dispatcher = _sweeper(minio, kube, {"sweepCursor": cursor, "activeSince": iso(T0 + MINUTE)})
    wf_spec = WorkflowSpec.model_validate(spec(trigger=trigger))
    assert asyncio.run(dispatcher.sweeper.advance(wf_spec)) is False
    assert kube.created == []
    assert dispatcher.sweeper.current is None
