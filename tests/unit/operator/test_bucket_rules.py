from __future__ import annotations

import pytest
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig, TopicConfig

from mediaflow_operator import naming
from mediaflow_operator.bucket_rules import (
    covering_prefixes,
    merged_config,
    our_prefixes,
    our_rules,
    same_config,
)

pytestmark = pytest.mark.unit
ARN = "arn:minio:sqs::MEDIAFLOW:nats"
FAST_ARN = "arn:minio:sqs::MEDIAFLOW_FAST:nats"
FOREIGN = QueueConfig(
    queue="arn:minio:sqs::other:webhook", events=["s3:ObjectRemoved:*"], config_id="audit"
)


def test_nested_prefixes_collapse_into_the_outer_one() -> None:
    assert covering_prefixes(["media/special/", "media/", "other/", "media/"]) == [
        "media/",
        "other/",
    ]
    assert covering_prefixes(["a/", ""]) == [""]
    assert covering_prefixes([]) == []


def test_merge_keeps_foreign_rules_and_replaces_ours() -> None:
    stale = QueueConfig(
        queue=ARN,
        events=["s3:ObjectCreated:*"],
        config_id=naming.rule_id("old/"),
        prefix_filter_rule=PrefixFilterRule("old/"),
    )
    topic = TopicConfig(topic="arn:aws:sns:x", events=["s3:ObjectCreated:*"], config_id="t")
    existing = NotificationConfig(queue_config_list=[FOREIGN, stale], topic_config_list=[topic])
    merged = merged_config(existing, ["new/", "new/sub/"], [ARN])
    assert FOREIGN in merged.queue_config_list
    assert merged.topic_config_list == [topic]
    assert our_prefixes(merged) == ["new/"]
    ours = [q for q in merged.queue_config_list if naming.is_our_rule(q.config_id)]
    assert ours[0].queue == ARN
    assert sorted(ours[0].events) == [
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Put",
    ]


def test_a_rule_for_all_created_events_is_migrated() -> None:
    """A rule of an older operator (``s3:ObjectCreated:*``, which includes tagging)
    differs from the wanted one, so the next reconcile rewrites it."""
    old = QueueConfig(
        queue=ARN,
        events=["s3:ObjectCreated:*"],
        config_id=naming.rule_id("in/"),
        prefix_filter_rule=PrefixFilterRule("in/"),
    )
    existing = NotificationConfig(queue_config_list=[old])
    wanted = merged_config(existing, ["in/"], [ARN])
    assert not same_config(existing, wanted)
    assert same_config(wanted, merged_config(wanted, ["in/"], [ARN]))


def test_whole_bucket_rule_has_no_prefix_filter() -> None:
    merged = merged_config(NotificationConfig(), [""], [ARN])
    assert merged.queue_config_list[0].prefix_filter_rule is None


def test_no_active_workflow_leaves_only_foreign_rules() -> None:
    merged = merged_config(NotificationConfig(queue_config_list=[FOREIGN]), [], [ARN])
    assert merged.queue_config_list == [FOREIGN]


def test_recomputing_is_stable() -> None:
    once = merged_config(NotificationConfig(queue_config_list=[FOREIGN]), ["a/"], [ARN])
    twice = merged_config(once, ["a/"], [ARN])
    assert same_config(once, twice)
    assert not same_config(once, merged_config(once, ["b/"], [ARN]))


def test_each_prefix_gets_a_rule_per_target_with_ids_of_their_own() -> None:
    merged = merged_config(
        NotificationConfig(queue_config_list=[FOREIGN]), ["a/", "a/b/", "c/"], [ARN, FAST_ARN]
    )
    assert our_rules(merged) == [("a/", ARN), ("a/", FAST_ARN), ("c/", ARN), ("c/", FAST_ARN)]
    assert our_prefixes(merged) == ["a/", "c/"]
    assert FOREIGN in merged.queue_config_list
    ids = [q.config_id for q in merged.queue_config_list if naming.is_our_rule(q.config_id)]
    assert len(set(ids)) == len(ids) == 4
    by_arn = {
        q.queue: q.config_id
        for q in merged.queue_config_list
        if q.prefix_filter_rule and q.prefix_filter_rule.value == "a/"
    }
    # The durable rule keeps the id it had before the fast target existed: an
    # upgrade adds the fast rules and leaves the durable ones as they were.
    assert by_arn == {ARN: naming.rule_id("a/"), FAST_ARN: naming.rule_id("a/", fast=True)}


def test_turning_the_fast_target_on_or_off_rewrites_only_our_rules() -> None:
    durable_only = merged_config(NotificationConfig(queue_config_list=[FOREIGN]), ["a/"], [ARN])
    both = merged_config(durable_only, ["a/"], [ARN, FAST_ARN])
    assert not same_config(durable_only, both)
    assert same_config(both, merged_config(both, ["a/"], [ARN, FAST_ARN]))
    back = merged_config(both, ["a/"], [ARN])
    assert same_config(back, durable_only)
    assert merged_config(both, [], [ARN, FAST_ARN]).queue_config_list == [FOREIGN]


@pytest.mark.parametrize("arns", [[], [ARN, ARN], [ARN, FAST_ARN, "arn:minio:sqs::X:nats"], "ab"])
def test_the_targets_are_the_durable_one_and_at_most_one_other(arns: list[str] | str) -> None:
    with pytest.raises(ValueError, match="durable ARN"):
        merged_config(NotificationConfig(), ["a/"], arns)
