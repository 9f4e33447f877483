"""The bucket notification rules on MinIO, shared by all Workflows of a bucket.

MinIO keeps *one* notification configuration per bucket, other tools may own
rules in it, and it rejects identical rules. So the configuration is always
recomputed from scratch: keep every rule we do not own (ours have ids starting
with ``mediaflow-``), add one rule per distinct trigger prefix of the active
Workflows on the bucket (a prefix inside another one's is already covered) and
per NATS target: the durable one (``queue_dir``) and, when configured, the fast
one (no ``queue_dir``, rule ids ending in ``-fast``), both on the same subject.
MinIO sends each event once to every target whose rule matches; the router
stores one copy of the two deliveries (docs/architecture.md, "Two MinIO
targets"). Suffixes are not put into rules: MinIO compares them
case-sensitively and allows one per rule, so the dispatcher filters them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from minio import Minio
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from mediaflow_operator import naming
from mediaflow_operator.matching import CONTENT_EVENTS
from mediaflow_operator.pools import Pool

logger = logging.getLogger(__name__)

# Only the events that mean new content (``matching.CONTENT_EVENTS``, one list for
# the rule and the dispatcher). ``s3:ObjectCreated:*`` would also send PutTagging,
# DeleteTagging, PutRetention and PutLegalHold (MinIO files them under
# ObjectCreated, see MinIO's internal/event/name.go): tagging a processed object
# would run it again. A rule set by an older operator with ``*`` differs in its
# events, so ``same_config`` sees the difference and the next reconcile replaces it.
EVENTS = sorted(CONTENT_EVENTS)

_bucket_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


def covering_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The smallest set of prefixes covering all of ``prefixes`` (sorted)."""
    result: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not any(prefix.startswith(kept) for kept in result):
            result.append(prefix)
    return result


def merged_config(
    existing: NotificationConfig, prefixes: Iterable[str], arns: Sequence[str]
) -> NotificationConfig:
    """``existing`` with our rules replaced by one rule per covering prefix and
    ARN. ``arns``: the durable target's ARN, then optionally the fast target's
    (``Settings.notify_arns``)."""
    if isinstance(arns, str) or not 1 <= len(arns) <= 2 or len(set(arns)) != len(arns):
        raise ValueError(f"expected the durable ARN and at most one other (fast), got {arns!r}")
    foreign = [q for q in existing.queue_config_list if not naming.is_our_rule(q.config_id)]
    ours = [
        QueueConfig(
            queue=arn,
            events=list(EVENTS),
            config_id=naming.rule_id(prefix, fast=position > 0),
            prefix_filter_rule=PrefixFilterRule(prefix) if prefix else None,
        )
        for prefix in covering_prefixes(prefixes)
        for position, arn in enumerate(arns)
    ]
    return NotificationConfig(
        cloud_func_config_list=list(existing.cloud_func_config_list),
        queue_config_list=foreign + ours,
        topic_config_list=list(existing.topic_config_list),
    )


def _signature(config: NotificationConfig) -> list[tuple[str, ...]]:
    def one(kind: str, target: str | None, c: object) -> tuple[str, ...]:
        prefix = getattr(c, "prefix_filter_rule", None)
        suffix = getattr(c, "suffix_filter_rule", None)
        return (
            kind,
            str(target),
            str(getattr(c, "config_id", "")),
            ",".join(sorted(getattr(c, "events", []))),
            prefix.value if prefix else "",
            suffix.value if suffix else "",
        )

    items = [one("queue", q.queue, q) for q in config.queue_config_list]
    items += [one("topic", t.topic, t) for t in config.topic_config_list]
    items += [one("lambda", f.cloud_func, f) for f in config.cloud_func_config_list]
    return sorted(items)


def same_config(a: NotificationConfig, b: NotificationConfig) -> bool:
    return _signature(a) == _signature(b)


def our_prefixes(config: NotificationConfig) -> list[str]:
    """The distinct prefixes of our rules in ``config`` (for tests and status);
    a prefix with a rule on each target is listed once."""
    return sorted(
        {
            (q.prefix_filter_rule.value if q.prefix_filter_rule else "")
            for q in config.queue_config_list
            if naming.is_our_rule(q.config_id)
        }
    )


def our_rules(config: NotificationConfig) -> list[tuple[str, str]]:
    """(prefix, ARN) of every rule of ours in ``config``, sorted (for tests)."""
    return sorted(
        ((q.prefix_filter_rule.value if q.prefix_filter_rule else ""), str(q.queue))
        for q in config.queue_config_list
        if naming.is_our_rule(q.config_id)
    )


def _apply_sync(client: Minio, bucket: str, prefixes: list[str], arns: Sequence[str]) -> bool:
    existing = client.get_bucket_notification(bucket)
    wanted = merged_config(existing, prefixes, arns)
    if same_config(existing, wanted):
        return False
    if not (wanted.queue_config_list or wanted.topic_config_list or wanted.cloud_func_config_list):
        client.delete_bucket_notification(bucket)
    else:
        client.set_bucket_notification(bucket, wanted)
    logger.info(
        "bucket %s: notification rules for prefixes %s to %s",
        bucket,
        covering_prefixes(prefixes),
        ", ".join(arns),
    )
    return True


async def apply(
    pool: Pool,
    client: Minio,
    bucket: str,
    prefixes: Callable[[], Iterable[str]],
    arns: Sequence[str],
) -> bool:
    """Make the bucket's configuration match ``prefixes()`` on every target of
    ``arns`` (durable first, see ``merged_config``); True if it changed.

    Serialised per bucket inside this process (read-modify-write of one
    document), and ``prefixes`` is called only once the bucket's lock is held:
    of two reconciles of one bucket, the one that writes last has read the
    Workflows as of after the other's write began, so it cannot put back an
    older view over a newer one (docs/architecture.md).
    """
    async with _bucket_locks[bucket]:
        wanted = list(prefixes())
        return await pool.run(_apply_sync, client, bucket, wanted, tuple(arns))
