"""Several Workflows share one bucket and its single notification configuration."""

from __future__ import annotations

import pytest
from minio.notificationconfig import (
    NotificationConfig,
    PrefixFilterRule,
    QueueConfig,
    SuffixFilterRule,
)

from tests.e2e.harness import Stack, counters, our_rule_prefixes, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]


def _foreign_rules(stack: Stack, bucket: str) -> list[str | None]:
    config = stack.minio.get_bucket_notification(bucket)
    return [q.config_id for q in config.queue_config_list if q.config_id == "other-tool-audit"]


def test_each_workflow_gets_its_objects_and_a_foreign_rule_survives(
    stack: Stack, minio_server: object
) -> None:
    bucket = stack.bucket("shared")
    arn = minio_server.notify_arn  # type: ignore[attr-defined]
    stack.minio.set_bucket_notification(
        bucket,
        NotificationConfig(
            queue_config_list=[
                QueueConfig(
                    queue=arn,
                    events=["s3:ObjectRemoved:*"],
                    config_id="other-tool-audit",
                    prefix_filter_rule=PrefixFilterRule("audit/"),
                    suffix_filter_rule=SuffixFilterRule(".log"),
                )
            ]
        ),
    )
    stack.create_workflow(
        "outer",
        {
            "trigger": {"bucket": bucket, "prefix": "media/"},
            "output": {"prefix": "out-outer/"},
            "tasks": TASKS,
        },
    )
    stack.create_workflow(
        "inner",
        {
            "trigger": {"bucket": bucket, "prefix": "media/special/"},
            "output": {"prefix": "out-inner/"},
            "tasks": TASKS,
        },
    )
    stack.create_workflow(
        "other",
        {
            "trigger": {"bucket": bucket, "prefix": "other/"},
            "output": {"prefix": "out-other/"},
            "tasks": TASKS,
        },
    )
    for name in ("outer", "inner", "other"):
        stack.wait_ready(name)
    # One rule per covering prefix: media/special/ is inside media/.
    assert our_rule_prefixes(stack.minio, bucket) == ["media/", "other/"]
    assert _foreign_rules(stack, bucket) == ["other-tool-audit"]

    for key in (
        "media/a.mp4",
        "media/b.mp4",
        "media/special/c.mp4",
        "other/d.mp4",
        "elsewhere/e.mp4",
    ):
        stack.upload(bucket, key)

    expected = {"outer": 3, "inner": 1, "other": 1}

    def all_done() -> dict[str, dict[str, int]] | None:
        got = {name: counters(stack.status(name)) for name in expected}
        ok = all(
            got[n]["succeeded"] == want and got[n]["running"] == 0 for n, want in expected.items()
        )
        return got if ok else None

    got = wait_for(all_done, 120, lambda: f"each Workflow's objects\n{stack.operator.diagnose()}")
    for name, want in expected.items():
        assert got[name] == {
            "received": want,
            "skipped": 0,
            "running": 0,
            "succeeded": want,
            "failed": 0,
        }, name
    ns = stack.namespace
    assert stack.has_manifest(bucket, f"out-inner/c.mp4.mediaflow/{ns}/inner/")
    assert stack.has_manifest(bucket, f"out-outer/special/c.mp4.mediaflow/{ns}/outer/")
    assert not stack.has_manifest(bucket, f"out-inner/a.mp4.mediaflow/{ns}/inner/")

    # Removing the outer Workflow leaves the inner one its own (narrower) rule.
    stack.delete("outer")
    wait_for(lambda: stack.gone("outer"), 60, "outer deleted")
    assert our_rule_prefixes(stack.minio, bucket) == ["media/special/", "other/"]
    assert _foreign_rules(stack, bucket) == ["other-tool-audit"]

    for name in ("inner", "other"):
        stack.delete(name)

        def deleted(n: str = name) -> bool:
            return stack.gone(n)

        wait_for(deleted, 60, f"{name} deleted")
    assert our_rule_prefixes(stack.minio, bucket) == []
    assert _foreign_rules(stack, bucket) == ["other-tool-audit"], "the foreign rule survived"


def test_workflows_made_and_deleted_together_leave_the_rule_exact(stack: Stack) -> None:
    """Eight Workflows on one bucket applied at once, then deleted at once. Each
    reconcile writes the bucket's one document from the watch-fed index, which
    may not hold the others yet; the index is read inside the bucket's lock, so
    the last write holds every prefix as soon as every Workflow is Ready (each
    Ready follows its own rule write), with no periodic reconcile needed (the
    first comes at least MEDIAFLOW_RECONCILE_INTERVAL_SECONDS after a start, and
    each at its own offset). Deleting them together must not leave a prefix of a
    deleted Workflow behind: each finalizer writes without its own, and the
    last one finds the others in the index already deleting (inactive)."""
    bucket = stack.bucket("together")
    names = [f"together-{i}" for i in range(8)]
    for i, name in enumerate(names):
        stack.create_workflow(
            name,
            {
                "trigger": {"bucket": bucket, "prefix": f"p{i}/"},
                "output": {"prefix": f"out-{i}/"},
                "tasks": TASKS,
            },
        )
    for name in names:
        stack.wait_ready(name, timeout=90)
    assert our_rule_prefixes(stack.minio, bucket) == [f"p{i}/" for i in range(8)]

    for name in names:
        stack.delete(name)
    for name in names:

        def deleted(n: str = name) -> bool:
            return stack.gone(n)

        wait_for(deleted, 60, f"{name} deleted")
    assert our_rule_prefixes(stack.minio, bucket) == [], "no prefix of a deleted Workflow left"
