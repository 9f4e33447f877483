"""The sweep on the real stack: backfill at the Workflow's concurrency, failed
objects run once, uploads made before the bucket rule existed, overwrites
whose event was lost."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediaflow_api.metadata import MANIFEST_NAME, output_dir_for
from mediaflow_operator import naming
from mediaflow_operator.clock import parse_time
from mediaflow_operator.sweep_state import OVERLAP
from tests.e2e.harness import Stack, counters, our_rule_prefixes, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]


def _jobs_created(stack: Stack, workflow: str) -> int:
    """Jobs the operator created for ``workflow`` (all triggers), from its metrics:
    finished Jobs may be deleted already."""
    total = 0.0
    for family in text_string_to_metric_families(stack.operator.metrics_text()):
        for sample in family.samples:
            if (
                sample.name == "mediaflow_jobs_created_total"
                and sample.labels.get("namespace") == stack.namespace
                and sample.labels.get("workflow") == workflow
            ):
                total += sample.value
    return int(total)


def _swept_past(stack: Stack, workflow: str, moment: datetime) -> bool:
    """Every window still to come starts after ``moment``: no later pass can
    look at an object modified before it."""
    swept = parse_time(stack.status(workflow).get("sweptUntil"))
    return swept is not None and swept - OVERLAP > moment + timedelta(seconds=1)


def _newest_modification(stack: Stack, bucket: str, keys: list[str]) -> datetime:
    stamps = [stack.minio.stat_object(bucket, key).last_modified for key in keys]
    return max(s for s in stamps if s is not None)


def test_process_existing_backfills_at_the_workflows_concurrency(process_stack: Stack) -> None:
    """60 objects, 4 at a time, default 300 s interval: all done in a couple of
    minutes, each by exactly one Job, never more than 4 at once."""
    stack = process_stack
    bucket = stack.bucket("backfill")
    keys = [f"old/{i:03d}.mp4" for i in range(60)]
    for key in keys:
        stack.upload(bucket, key)
    wf = stack.create_workflow(
        "backfill",
        {
            "trigger": {"bucket": bucket, "prefix": "old/", "processExisting": True},
            "tasks": TASKS,
            "execution": {"maxConcurrentJobs": 4, "finishedJobRetentionSeconds": 3600},
        },
    )
    uid = wf["metadata"]["uid"]
    stack.wait_ready("backfill")
    began = time.monotonic()
    peak = 0

    def done() -> dict[str, int] | None:
        nonlocal peak
        active = [j for j in stack.jobs(uid) if not (j.status.succeeded or j.status.failed)]
        peak = max(peak, len(active))
        c = counters(stack.status("backfill"))
        return c if c["succeeded"] == 60 and c["running"] == 0 else None

    # A deadline, not a speed claim (speed is `make bench`'s): 15 rounds of 4 pods
    # took 108 s on an idle 2-core machine; within pytest-timeout's 300 s.
    final = wait_for(done, 270, lambda: f"60 objects backfilled\n{stack.operator.diagnose()}")
    took = time.monotonic() - began
    assert final == {"received": 60, "skipped": 0, "running": 0, "succeeded": 60, "failed": 0}
    jobs = stack.jobs(uid)
    assert sorted(j.metadata.annotations[naming.ANNOTATION_KEY] for j in jobs) == keys
    assert {j.metadata.labels[naming.LABEL_TRIGGER] for j in jobs} == {"sweep"}
    assert peak <= 4, f"{peak} Jobs ran at once (maxConcurrentJobs 4)"
    assert _jobs_created(stack, "backfill") == 60
    print(f"backfill of 60 objects at concurrency 4: {took:.0f} s after Ready")


def test_objects_whose_jobs_fail_without_a_manifest_run_once(sweeping_stack: Stack) -> None:
    """Bad inputs (the worker exits 2 and writes no manifest), pre-existing and
    uploaded later, with finished Jobs deleted at once and a sweep every 2 s:
    each runs once and is counted failed once; every other object is processed."""
    stack = sweeping_stack
    bucket = stack.bucket("tried")
    old_bad = [f"a-bad-input-{i}.mp4" for i in range(4)]
    old_good = [f"b-{i:02d}.mp4" for i in range(16)]
    for key in old_bad + old_good:
        stack.upload(bucket, key)
    stack.create_workflow(
        "tried",
        {
            "trigger": {"bucket": bucket, "processExisting": True},
            "tasks": TASKS,
            "execution": {"maxConcurrentJobs": 4, "finishedJobRetentionSeconds": 0},
        },
    )
    stack.wait_ready("tried")
    new_bad = [f"c-bad-input-{i}.mp4" for i in range(2)]
    new_good = [f"d-{i}.mp4" for i in range(6)]
    for key in new_bad + new_good:
        stack.upload(bucket, key)
    newest = _newest_modification(stack, bucket, new_bad + new_good)

    def settled() -> dict[str, int] | None:
        c = counters(stack.status("tried"))
        return c if c["succeeded"] == 22 and c["failed"] >= 6 and c["running"] == 0 else None

    wait_for(settled, 150, lambda: f"28 objects done\n{stack.operator.diagnose()}")
    # Let the sweep pass every object's modification time, overlap included.
    wait_for(lambda: _swept_past(stack, "tried", newest), 60, "sweeps past the last upload")
    wait_for(lambda: counters(stack.status("tried"))["running"] == 0, 60, "nothing running")
    final = counters(stack.status("tried"))
    assert final == {"received": 28, "skipped": 0, "running": 0, "succeeded": 22, "failed": 6}
    assert _jobs_created(stack, "tried") == 28, "an object was run twice"
    failures = {f["object"] for f in stack.status("tried")["lastFailures"]}
    assert failures == {f"{bucket}/{key}" for key in old_bad + new_bad}


def test_uploads_before_the_bucket_rule_do_not_wait_for_the_interval(
    process_stack: Stack,
) -> None:
    """Apply a Workflow, upload at once: the bucket rule cannot exist yet (its
    output bucket is missing until later), so the upload has no event. With
    the default 300 s interval it is processed within ~30 s of Ready."""
    stack = process_stack
    trigger = stack.bucket("early")
    output = f"early-out-{uuid.uuid4().hex[:8]}"
    wf = stack.create_workflow(
        "early",
        {"trigger": {"bucket": trigger}, "output": {"bucket": output}, "tasks": TASKS},
    )
    stack.upload(trigger, "first.mp4")

    def bucket_missing() -> bool:
        return any(
            c["type"] == "StorageReady" and c["reason"] == "BucketNotFound"
            for c in stack.status("early").get("conditions") or []
        )

    wait_for(
        bucket_missing,
        60,
        lambda: f"StorageReady=False/BucketNotFound\n{stack.operator.diagnose()}",
    )
    assert our_rule_prefixes(stack.minio, trigger) == [], "no rule before storage is ready"
    stack.minio.make_bucket(output)
    stack.wait_ready("early", timeout=60)
    ready = time.monotonic()
    wait_for(
        lambda: counters(stack.status("early"))["succeeded"] == 1,
        40,
        lambda: f"the early upload processed soon after Ready\n{stack.operator.diagnose()}",
    )
    print(f"processed {time.monotonic() - ready:.0f} s after Ready")
    [job] = stack.jobs(wf["metadata"]["uid"])
    assert job.metadata.labels[naming.LABEL_TRIGGER] == "sweep"
    assert job.metadata.annotations[naming.ANNOTATION_KEY] == "first.mp4"


def _upload_without_event(stack: Stack, bucket: str, key: str, data: bytes) -> int:
    """Upload while the bucket has no notification rule (as if someone else's
    tooling had replaced the bucket's configuration): MinIO sends no event. The
    operator restores the rule on its periodic reconcile; if it did so before
    the upload finished, try again with new content. Returns the number of
    uploads (all but the last may have had their event)."""
    attempts = 0

    def lost() -> bool:
        nonlocal attempts
        attempts += 1
        stack.minio.delete_bucket_notification(bucket)
        stack.upload(bucket, key, data + b" #%d" % attempts)
        return our_rule_prefixes(stack.minio, bucket) == []

    wait_for(lost, 60, "an upload while the bucket had no rule")
    return attempts


def test_an_overwrite_whose_event_was_lost_is_found_by_the_sweep(sweeping_stack: Stack) -> None:
    stack = sweeping_stack
    bucket = stack.bucket("overwrite")
    wf = stack.create_workflow(
        "overwrites",
        {
            "trigger": {"bucket": bucket},
            "tasks": TASKS,
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    uid = wf["metadata"]["uid"]
    stack.wait_ready("overwrites")
    stack.upload(bucket, "clip.mp4", b"version one")
    stack.upload(bucket, "kept.mp4", b"unchanged")
    wait_for(lambda: counters(stack.status("overwrites"))["succeeded"] == 2, 60, "first versions")
    manifest = output_dir_for("clip.mp4", "", "", stack.namespace, "overwrites") + MANIFEST_NAME
    written = stack.minio.stat_object(bucket, manifest).last_modified
    assert written is not None
    # A manifest that does not name its input's ETag counts as current when it is
    # not older than the object, in whole seconds: overwrite in a later second.
    wait_for(lambda: datetime.now(UTC) >= written + timedelta(seconds=1.5), 10, "a later second")
    versions = 2 + _upload_without_event(stack, bucket, "clip.mp4", b"version two")
    second = stack.minio.stat_object(bucket, "clip.mp4")
    etag = (second.etag or "").strip('"')

    def swept_job() -> Any:
        for job in stack.jobs(uid):
            if job.metadata.annotations[naming.ANNOTATION_ETAG] == etag:
                return job
        return None

    job = wait_for(swept_job, 60, lambda: f"a Job for the new version\n{stack.operator.diagnose()}")
    assert job.metadata.labels[naming.LABEL_TRIGGER] == "sweep"
    assert job.metadata.annotations[naming.ANNOTATION_KEY] == "clip.mp4"
    wait_for(
        lambda: counters(stack.status("overwrites"))["succeeded"] == versions, 60, "new version"
    )
    modified = second.last_modified
    assert modified is not None
    wait_for(lambda: _swept_past(stack, "overwrites", modified), 60, "sweeps past the overwrite")
    assert counters(stack.status("overwrites"))["succeeded"] == versions
    assert len(stack.jobs(uid)) == versions, "an object whose manifest is current ran again"
