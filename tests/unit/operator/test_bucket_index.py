"""The bucket index (what kopf keeps per Workflow, a bucket's prefixes from it),
the spread of periodic reconciles, and writing a bucket's rule from the index:
inside the bucket's lock, the Workflow being reconciled or deleted counted as
its fresh body says."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from minio.notificationconfig import NotificationConfig

from mediaflow_operator import bucket_index, bucket_rules, reconcile
from mediaflow_operator.bucket_index import BucketShare
from mediaflow_operator.pools import Pool
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit

DEADLINE = 10.0  # seconds; only reached when the behaviour under test is broken


def workflow(
    uid: str,
    bucket: str = "media",
    prefix: str = "",
    *,
    namespace: str = "ns",
    suspend: bool = False,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace, "name": f"wf-{uid}", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    trigger: dict[str, Any] = {"bucket": bucket}
    if prefix:
        trigger["prefix"] = prefix
    return {"metadata": meta, "spec": {"trigger": trigger, "suspend": suspend}}


# --- the index entry of one Workflow ---
def test_a_workflow_is_indexed_under_its_trigger_bucket() -> None:
    assert bucket_index.share_of(workflow("u1", "media", "in/")) == {
        "media": BucketShare(uid="u1", prefix="in/", active=True)
    }
    assert bucket_index.share_of(workflow("u1")) == {"media": BucketShare("u1", "", True)}


def test_a_suspended_or_deleting_workflow_is_indexed_inactive() -> None:
    assert bucket_index.share_of(workflow("u1", suspend=True))["media"].active is False
    assert bucket_index.share_of(workflow("u1", deleting=True))["media"].active is False


def test_a_workflow_without_a_bucket_gives_an_empty_entry_not_none() -> None:
    """kopf keeps an object's previous entry when the function returns None: a
    Workflow whose bucket went must leave its old bucket's entry."""
    assert bucket_index.share_of({"metadata": {"uid": "u1"}, "spec": {}}) == {}
    assert bucket_index.share_of({"metadata": {"uid": "u1"}}) == {}


# --- a bucket's prefixes ---
SHARES = [
    BucketShare("a", "in/", True),
    BucketShare("b", "other/", True),
    BucketShare("c", "paused/", False),
]


def test_only_active_workflows_give_prefixes() -> None:
    assert bucket_index.rule_prefixes(SHARES) == ["in/", "other/"]
    assert bucket_index.rule_prefixes([]) == []


def test_the_fresh_body_replaces_the_index_entry_of_the_same_workflow() -> None:
    fresher = BucketShare("a", "moved/", True)
    assert bucket_index.rule_prefixes(SHARES, current_uid="a", current=fresher) == [
        "moved/",
        "other/",
    ]
    # Suspended since the index saw it.
    assert bucket_index.rule_prefixes(
        SHARES, current_uid="a", current=BucketShare("a", "in/", False)
    ) == ["other/"]


def test_a_deleted_or_moved_workflow_adds_nothing_though_the_index_still_has_it() -> None:
    assert bucket_index.rule_prefixes(SHARES, current_uid="a", current=None) == ["other/"]


def test_workflows_outside_the_watched_namespaces_are_collected_by_bucket() -> None:
    items = [
        workflow("in-ns", "media", "a/", namespace="watched"),
        workflow("x1", "media", "b/", namespace="elsewhere"),
        workflow("x2", "logs", "", namespace="elsewhere", suspend=True),
    ]
    found = bucket_index.outside_shares(items, ("watched",))
    assert found == {
        "media": [BucketShare("x1", "b/", True)],
        "logs": [BucketShare("x2", "", False)],
    }
    assert bucket_index.outside_shares(items, ()) == {}, "cluster-wide: all are in the index"


# --- the spread of periodic reconciles ---
def test_the_first_periodic_reconcile_comes_within_one_more_interval_stable_per_uid() -> None:
    delays = [bucket_index.periodic_delay(f"uid-{i}", 120) for i in range(1000)]
    assert all(120 <= d < 240 for d in delays)
    assert bucket_index.periodic_delay("uid-7", 120) == delays[7], "the same after a restart"


def test_a_thousand_workflows_are_spread_over_the_interval() -> None:
    """Each tenth of the interval gets about a tenth of the Workflows (not all
    in one second, as with a constant initial delay)."""
    slots = [0] * 10
    for i in range(1000):
        delay = bucket_index.periodic_delay(f"00000000-0000-0000-0000-{i:012d}", 100)
        slots[int((delay - 100) // 10)] += 1
    assert min(slots) > 50, slots
    assert max(slots) < 150, slots


# --- writing a bucket's rule from the index ---
class FakeNotifications:
    """One bucket's notification document; ``hold`` keeps the next write
    waiting in its thread until released."""

    def __init__(self) -> None:
        self.config = NotificationConfig()
        self.writes: list[list[str]] = []
        self.hold = False
        self.writing = threading.Event()
        self.release = threading.Event()

    def get_bucket_notification(self, bucket: str) -> NotificationConfig:
        return self.config

    def set_bucket_notification(self, bucket: str, config: NotificationConfig) -> None:
        if self.hold:
            self.hold = False
            self.writing.set()
            assert self.release.wait(DEADLINE), "the held write was never released"
        self.config = config
        self.writes.append(bucket_rules.our_prefixes(config))

    def delete_bucket_notification(self, bucket: str) -> None:
        self.config = NotificationConfig()
        self.writes.append([])


@pytest.fixture
def pool() -> Iterator[Pool]:
    made = Pool("test-storage", 4)
    yield made
    made.shutdown()


def _rt(minio: FakeNotifications, pool: Pool) -> Any:
    return SimpleNamespace(minio=minio, storage_pool=pool, settings=Settings(), outside_shares={})


def test_a_write_that_waited_for_the_bucket_writes_the_index_as_it_is_then(pool: Pool) -> None:
    """Two reconciles of one bucket at once: the second waits for the first's
    write and must then read the index, which may have gained a Workflow
    meanwhile, instead of writing what it saw when it asked (a reader that
    read before the lock could put back an older view over a newer one)."""
    minio = FakeNotifications()
    rt = _rt(minio, pool)
    index: dict[str, list[BucketShare]] = {"media": [BucketShare("a", "a/", True)]}

    async def scenario() -> None:
        minio.hold = True
        first = asyncio.create_task(
            reconcile.sync_bucket(rt, "media", index, workflow("a", "media", "a/"))
        )
        assert await asyncio.to_thread(minio.writing.wait, DEADLINE), "first write started"
        second = asyncio.create_task(
            reconcile.sync_bucket(rt, "media", index, workflow("a", "media", "a/"))
        )
        await asyncio.sleep(0)  # one turn: the second task runs up to the bucket's lock
        assert not second.done()
        # A Workflow is indexed while the second waits (its own reconcile comes later).
        index["media"].append(BucketShare("b", "b/", True))
        minio.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), DEADLINE)

    asyncio.run(scenario())
    assert minio.writes == [["a/"], ["a/", "b/"]]


def test_a_deleted_workflow_removes_its_prefix_though_the_index_still_has_it(
    pool: Pool,
) -> None:
    minio = FakeNotifications()
    rt = _rt(minio, pool)
    index = {"media": [BucketShare("a", "a/", True), BucketShare("b", "b/", True)]}

    async def scenario() -> None:
        await reconcile.sync_bucket(rt, "media", index, workflow("a", "media", "a/"))
        await reconcile.sync_bucket(rt, "media", index, workflow("b", "media", "b/"), deleting=True)

    asyncio.run(scenario())
    assert minio.writes == [["a/", "b/"], ["a/"]]


def test_a_workflow_moved_to_another_bucket_leaves_the_old_one(pool: Pool) -> None:
    """The old bucket is synced with the new body: its index entry may still be
    on the old bucket, but the body says it is elsewhere now."""
    minio = FakeNotifications()
    rt = _rt(minio, pool)
    index = {"old": [BucketShare("a", "a/", True), BucketShare("b", "b/", True)]}
    moved = workflow("a", "new", "a/")

    asyncio.run(reconcile.sync_bucket(rt, "old", index, moved))
    assert minio.writes == [["b/"]]


def test_prefixes_of_workflows_outside_the_watched_namespaces_are_kept(pool: Pool) -> None:
    minio = FakeNotifications()
    rt = _rt(minio, pool)
    rt.outside_shares = {"media": [BucketShare("x", "theirs/", True)]}
    index = {"media": [BucketShare("a", "a/", True)]}

    asyncio.run(reconcile.sync_bucket(rt, "media", index, workflow("a", "media", "a/")))
    assert minio.writes == [["a/", "theirs/"]]
