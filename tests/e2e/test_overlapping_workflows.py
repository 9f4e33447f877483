"""Workflows that share objects never touch each other's results, and the
newest version of an object always wins (defects 1 and 6 of issue 10).

Both run on the real node with the fake worker image, which honours the same
output contract as the real worker: outputs and manifest in the Workflow's own
directory, stamped with the source ETag, and a Job whose input was overwritten
while it ran ends *superseded* (exit 0, reason ``Superseded``, nothing written).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaflow_api import metadata as md
from tests.e2e.harness import Stack, counters, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]


def _manifest(stack: Stack, bucket: str, directory: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        stack.minio.get_object(bucket, directory + md.MANIFEST_NAME).read()
    )
    return doc


def _all_keys(stack: Stack, bucket: str) -> list[str]:
    return sorted(
        o.object_name
        for o in stack.minio.list_objects(bucket, recursive=True)
        if o.object_name is not None
    )


def test_two_workflows_on_nested_prefixes_each_keep_their_own_results(
    process_stack: Stack,
) -> None:
    stack = process_stack
    bucket = stack.bucket("overlap")
    # Default outputs: each Workflow writes next to the input, inside the
    # trigger prefix of both (the loop rule keeps those outputs from counting).
    outer = stack.create_workflow(
        "outer", {"trigger": {"bucket": bucket, "prefix": "media/"}, "tasks": TASKS}
    )
    inner = stack.create_workflow(
        "inner", {"trigger": {"bucket": bucket, "prefix": "media/special/"}, "tasks": TASKS}
    )
    stack.wait_ready("outer")
    stack.wait_ready("inner")
    for key in ("media/a.mp4", "media/special/c.mp4"):
        stack.upload(bucket, key)
    expected = {"outer": 2, "inner": 1}

    def settled() -> dict[str, dict[str, int]] | None:
        got = {name: counters(stack.status(name)) for name in expected}
        done = all(
            got[n]["succeeded"] + got[n]["failed"] >= want and got[n]["running"] == 0
            for n, want in expected.items()
        )
        return got if done else None

    got = wait_for(settled, 120, lambda: f"both Workflows' objects\n{stack.operator.diagnose()}")
    for name, want in expected.items():
        assert got[name] == {
            "received": want,
            "skipped": 0,
            "running": 0,
            "succeeded": want,
            "failed": 0,
        }, name
        assert int(stack.status(name).get("superseded") or 0) == 0, name

    # One Job per Workflow and object: media/special/c.mp4 has two, one each.
    ns = stack.namespace
    for wf, keys in (
        (outer, ["media/a.mp4", "media/special/c.mp4"]),
        (inner, ["media/special/c.mp4"]),
    ):
        jobs = stack.jobs(wf["metadata"]["uid"])
        assert sorted(j.metadata.annotations["mediaflow.dev/key"] for j in jobs) == keys
    # Each Workflow has its own manifest for the shared object, naming it.
    for name, prefix in (("outer", "media/"), ("inner", "media/special/")):
        directory = md.output_dir_for("media/special/c.mp4", prefix, prefix, ns, name)
        assert _manifest(stack, bucket, directory)["workflow"] == f"{ns}/{name}"
        assert f"{directory}probe/result.txt" in _all_keys(stack, bucket)
    a_dir = md.output_dir_for("media/a.mp4", "media/", "media/", ns, "outer")
    assert _manifest(stack, bucket, a_dir)["workflow"] == f"{ns}/outer"
    assert not stack.has_manifest(
        bucket, md.output_dir_for("media/a.mp4", "media/", "media/", ns, "inner")
    )
    # Nothing else was written: no shared directory, no manifest of the old layout.
    assert not stack.has_manifest(bucket, "media/special/c.mp4" + md.OUTPUT_DIR_SUFFIX + "/")


def test_an_object_overwritten_while_its_job_runs_counts_one_superseded_and_one_success(
    slow_stack: Stack,
) -> None:
    stack = slow_stack  # each worker runs 3 s before it looks at its input again
    bucket = stack.bucket("overwrite")
    wf = stack.create_workflow(
        "latest", {"trigger": {"bucket": bucket, "prefix": "in/"}, "tasks": TASKS}
    )
    stack.wait_ready("latest")
    uid = wf["metadata"]["uid"]
    stack.upload(bucket, "in/clip.mp4", b"version one")
    wait_for(lambda: stack.jobs(uid) or None, 60, "the first version's Job")
    stack.upload(bucket, "in/clip.mp4", b"version two, longer")
    newest = str(stack.minio.stat_object(bucket, "in/clip.mp4").etag).strip('"')

    def settled() -> dict[str, Any] | None:
        status = stack.status("latest")
        c = counters(status)
        total = c["succeeded"] + c["failed"] + int(status.get("superseded") or 0)
        return status if total >= 2 and c["running"] == 0 else None

    status = wait_for(settled, 120, lambda: f"both versions' Jobs\n{stack.operator.diagnose()}")
    assert counters(status) == {
        "received": 2,
        "skipped": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
    }
    assert status["superseded"] == 1
    assert status.get("lastFailures") == []

    # Both results are in the ledger (counted once each: one succeeded, one superseded).
    assert sorted(status["countedJobs"]) == sorted(j.metadata.uid for j in stack.jobs(uid))
    jobs = stack.jobs(uid)
    assert all(j.status.succeeded == 1 and not j.status.failed for j in jobs)
    # The newest version's results are what is left.
    directory = md.output_dir_for("in/clip.mp4", "in/", "in/", stack.namespace, "latest")
    assert _manifest(stack, bucket, directory)["input"]["etag"] == newest
    for key in (directory + md.MANIFEST_NAME, directory + "probe/result.txt"):
        meta = dict(stack.minio.stat_object(bucket, key).metadata or {})
        assert md.user_metadata_value(meta, md.SOURCE_ETAG) == newest, key
