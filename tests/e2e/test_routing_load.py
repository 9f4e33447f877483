"""Routing at scale (issue 12): 200 Workflows on 20 buckets, nested and
disjoint prefixes, every upload processed once by exactly the Workflows whose
bucket and prefix hold it, and by no other; the router parses each event once
and stores one copy per matching Workflow.

Small enough for CI on two cores: 55 Jobs of the fake worker. The uploads are
made well after every Workflow is Ready and the sweep's first periodic pass is
minutes away, so every Job here comes from an event the router routed (each
Job's trigger label says so).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator import naming
from tests.e2e.harness import Stack, counters, operator_metric, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

BUCKETS = 20
# Ten Workflows per bucket: nested and disjoint prefixes.
PREFIXES = ("", "a/", "a/b/", "a/b/c/", "x/", "x/y/", "a/x/", "b/", "c/", "d/")
# Bucket i gets KEYS[i % 3]: 4, 3 and 1 matching Workflows.
KEYS = ("a/b/c/one.mp4", "x/y/two.mp4", "z/three.mp4")
TASKS = [{"name": "probe", "analysis": {}}]


@pytest.fixture
def routing_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator as a process, with reconciles and sweeps far apart: 200
    Workflows must not spend the two cores on periodic work, and no sweep may
    stand in for a routed event."""
    yield from stack_fixture(
        kube_cluster,
        minio_server,
        nats_server,
        tmp_path,
        sweep_interval=3600,
        extra_env={"MEDIAFLOW_RECONCILE_INTERVAL_SECONDS": "3600"},
    )


def _workflows(stack: Stack) -> list[dict[str, Any]]:
    listed = stack.custom.list_namespaced_custom_object(GROUP, VERSION, stack.namespace, PLURAL)
    return list(cast(dict[str, Any], listed)["items"])


def _ready(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return bool(status.get("consumer")) and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def test_two_hundred_workflows_on_twenty_buckets_get_exactly_their_uploads(
    routing_stack: Stack,
) -> None:
    stack = routing_stack
    buckets = [stack.bucket(f"route{i:02d}") for i in range(BUCKETS)]
    trigger: dict[str, tuple[str, str]] = {}  # Workflow -> (bucket, prefix)
    for b, bucket in enumerate(buckets):
        for p, prefix in enumerate(PREFIXES):
            name = f"r{b:02d}-{p}"
            trigger[name] = (bucket, prefix)
            stack.create_workflow(
                name,
                {
                    "trigger": {"bucket": bucket, "prefix": prefix},
                    "tasks": TASKS,
                    "execution": {"finishedJobRetentionSeconds": 3600},
                },
            )
    wait_for(
        lambda: sum(_ready(wf) for wf in _workflows(stack)) == len(trigger),
        600,
        lambda: (
            f"{sum(_ready(wf) for wf in _workflows(stack))} of {len(trigger)} Workflows Ready\n"
            f"{stack.operator.diagnose()}"
        ),
    )
    uids = {wf["metadata"]["name"]: wf["metadata"]["uid"] for wf in _workflows(stack)}
    routed_before = operator_metric(stack, "mediaflow_routed_copies_total")
    events_before = {
        result: operator_metric(stack, "mediaflow_router_events_total", result=result)
        for result in ("routed", "duplicate")
    }

    uploads = [(bucket, KEYS[b % len(KEYS)]) for b, bucket in enumerate(buckets)]
    # Routed to nobody: mediaflow's own output, and a key under no prefix but "".
    ignored = [(buckets[0], "a/b/c/one.mp4.mediaflow/ns/wf/out.json")]
    for bucket, key in uploads + ignored:
        stack.upload(bucket, key)
    # A folder marker: skipped (counted) by the three Workflows whose prefix holds it.
    marker = (buckets[1], "a/b/")
    stack.upload(*marker, data=b"")

    expected = {
        name: sorted(key for b, key in uploads if b == bucket and key.startswith(prefix))
        for name, (bucket, prefix) in trigger.items()
    }
    skips = {
        name: int(bucket == marker[0] and marker[1].startswith(prefix))
        for name, (bucket, prefix) in trigger.items()
    }
    total = sum(len(keys) for keys in expected.values())
    assert total == 55  # 7 buckets x 4 + 7 x 3 + 6 x 1: the test's own arithmetic

    def settled() -> dict[str, dict[str, int]] | None:
        found = {
            wf["metadata"]["name"]: counters(wf.get("status") or {}) for wf in _workflows(stack)
        }
        done = all(
            found[name]["succeeded"] == len(keys)
            and found[name]["skipped"] == skips[name]
            and found[name]["running"] == 0
            for name, keys in expected.items()
        )
        return found if done else None

    final = wait_for(
        settled,
        600,
        lambda: f"every Workflow counted its uploads\n{stack.operator.diagnose()}",
    )
    # Exactly the matching Workflows, each once: Jobs by Workflow and key.
    jobs = stack.jobs()
    by_workflow: dict[str, list[str]] = {}
    triggers = set()
    for job in jobs:
        uid = job.metadata.labels[naming.LABEL_WORKFLOW_UID]
        by_workflow.setdefault(uid, []).append(job.metadata.annotations[naming.ANNOTATION_KEY])
        triggers.add(job.metadata.labels[naming.LABEL_TRIGGER])
    assert len(jobs) == total
    for name, keys in expected.items():
        assert sorted(by_workflow.get(uids[name], [])) == keys, name
        c = final[name]
        assert (c["received"], c["failed"]) == (len(keys) + skips[name], 0), (name, c)
    assert triggers == {"event"}, "a Job came from the sweep, not from a routed event"
    # One copy stored per matching Workflow, for the uploads and the folder marker.
    wait_for(
        lambda: (
            operator_metric(stack, "mediaflow_routed_copies_total") - routed_before
            == total + sum(skips.values())
        ),
        30,
        lambda: (
            "the router's copies counted: "
            f"{operator_metric(stack, 'mediaflow_routed_copies_total') - routed_before}"
        ),
    )
    # MinIO's two targets (durable and fast) publish every event: each upload
    # and the marker are routed once and arrive once more as a duplicate.
    matched = len(uploads) + 1  # every bucket has a Workflow on "", the marker too

    def router_events() -> dict[str, float]:
        return {
            result: operator_metric(stack, "mediaflow_router_events_total", result=result) - before
            for result, before in events_before.items()
        }

    wait_for(
        lambda: router_events() == {"routed": matched, "duplicate": matched},
        30,
        lambda: f"each event routed once and once a duplicate: {router_events()}",
    )
