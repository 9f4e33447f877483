"""Two MinIO targets, one copy (issue 12, "where an upload's time goes"): the
operator sets each rule on MinIO's durable target (``queue_dir``: MinIO sends
at its next 3 s retry tick) and on its fast target (no ``queue_dir``: sent at
once), so every upload reaches MinIO's subject twice; the router stores one
copy, counts the other delivery as a duplicate, and the upload is processed once.

No timing is asserted (the latency is a bench figure, docs/performance.md):
what is checked is that both deliveries arrived and only one became work. The
durable path alone, with NATS away during the uploads, is the reliability
suite's NATS outage scenario (tests/reliability/test_faults.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from mediaflow_operator.bucket_rules import our_rules
from tests.e2e.harness import Stack, counters, operator_metric, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]
KEYS = [f"in/clip-{i}.mp4" for i in range(3)]


def _router(stack: Stack) -> tuple[float, float]:
    """The operator's router events (routed, duplicate)."""
    return (
        operator_metric(stack, "mediaflow_router_events_total", result="routed"),
        operator_metric(stack, "mediaflow_router_events_total", result="duplicate"),
    )


def test_each_upload_arrives_by_both_targets_and_is_processed_once(
    process_stack: Stack, minio_server: Any
) -> None:
    stack = process_stack
    bucket = stack.bucket("fast")
    stack.create_workflow(
        "fast",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "output": {"prefix": "out/"},
            "tasks": TASKS,
        },
    )
    stack.wait_ready("fast")
    rules = our_rules(stack.minio.get_bucket_notification(bucket))
    assert rules == [("in/", minio_server.notify_arn), ("in/", minio_server.notify_fast_arn)]

    routed, duplicate = _router(stack)
    copies = operator_metric(stack, "mediaflow_routed_copies_total")
    for key in KEYS:
        stack.upload(bucket, key)

    def settled() -> dict[str, int] | None:
        c = counters(stack.status("fast"))
        done = c["succeeded"] == len(KEYS) and c["running"] == 0
        both = _router(stack) == (routed + len(KEYS), duplicate + len(KEYS))
        return c if done and both else None

    final = wait_for(
        settled,
        90,
        lambda: (
            f"{len(KEYS)} uploads processed, each delivered twice: counters "
            f"{counters(stack.status('fast'))}, router (routed, duplicate) {_router(stack)} "
            f"from {(routed, duplicate)}\n{stack.operator.diagnose()}"
        ),
    )
    # One copy stored per upload, and one Job each: the second delivery made no work.
    assert operator_metric(stack, "mediaflow_routed_copies_total") == copies + len(KEYS)
    assert (final["received"], final["skipped"], final["failed"]) == (len(KEYS), 0, 0), final
    created = operator_metric(
        stack,
        "mediaflow_jobs_created_total",
        namespace=stack.namespace,
        workflow="fast",
        trigger="event",
    )
    assert created == len(KEYS)
