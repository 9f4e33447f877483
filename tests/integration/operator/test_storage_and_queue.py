"""The operator's MinIO and JetStream steps against the real servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats
import pytest
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from mediaflow_operator import bucket_rules, naming, queue
from mediaflow_operator.bucket_rules import our_prefixes, our_rules
from mediaflow_operator.pools import Pool

pytestmark = pytest.mark.integration
POOL = Pool("test-storage", 2)  # the operator's storage pool (idle threads end with the run)


async def _apply(client: Any, bucket: str, prefixes: list[str], arns: list[str]) -> bool:
    return await bucket_rules.apply(POOL, client, bucket, lambda: prefixes, arns)


def test_bucket_rules_are_merged_kept_and_removed_on_real_minio(minio_server: Any) -> None:
    """Our rules on both targets (the same prefix twice, one ARN each: MinIO
    accepts it, it refuses only identical rules), next to a foreign rule."""
    client = minio_server.client()
    bucket = f"rules-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    arn, fast = minio_server.notify_arn, minio_server.notify_fast_arn
    arns = [arn, fast]
    foreign = QueueConfig(
        queue=arn,
        events=["s3:ObjectRemoved:*"],
        config_id="someone-else",
        prefix_filter_rule=PrefixFilterRule("logs/"),
    )
    client.set_bucket_notification(bucket, NotificationConfig(queue_config_list=[foreign]))

    async def scenario() -> None:
        assert await _apply(client, bucket, ["a/", "a/b/", "c/"], arns)
        config = client.get_bucket_notification(bucket)
        assert our_prefixes(config) == ["a/", "c/"], "MinIO keeps our rule ids"
        assert our_rules(config) == [("a/", arn), ("a/", fast), ("c/", arn), ("c/", fast)]
        assert "someone-else" in [q.config_id for q in config.queue_config_list]
        # A second reconcile with the same input changes nothing.
        assert not await _apply(client, bucket, ["c/", "a/"], arns)
        # The fast target turned off: only its rules go.
        assert await _apply(client, bucket, ["a/", "c/"], [arn])
        assert our_rules(client.get_bucket_notification(bucket)) == [("a/", arn), ("c/", arn)]
        assert await _apply(client, bucket, [], arns)
        config = client.get_bucket_notification(bucket)
        assert [q.config_id for q in config.queue_config_list] == ["someone-else"]

    asyncio.run(scenario())


def test_last_rule_removed_leaves_an_empty_configuration(minio_server: Any) -> None:
    client = minio_server.client()
    bucket = f"rules-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)

    async def scenario() -> None:
        arns = [minio_server.notify_arn, minio_server.notify_fast_arn]
        await _apply(client, bucket, [""], arns)
        assert our_prefixes(client.get_bucket_notification(bucket)) == [""]
        await _apply(client, bucket, [], arns)
        assert client.get_bucket_notification(bucket).queue_config_list == []

    asyncio.run(scenario())


def test_stream_and_consumers_on_real_jetstream(nats_server: Any) -> None:
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = f"test.{stream}"

    async def scenario() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            limits = queue.StreamLimits(max_age_seconds=3600, max_bytes=10 << 20, max_msgs=5000)
            first = await queue.ensure_stream(js, stream, [subject], limits)
            again = await queue.ensure_stream(js, stream, [subject], limits)  # idempotent
            assert queue.stream_identity(first) == queue.stream_identity(again) != ""
            info = await js.stream_info(stream)
            assert str(getattr(info.config.retention, "value", info.config.retention)) == "interest"
            assert (info.config.max_bytes, info.config.max_msgs) == (10 << 20, 5000)
            assert str(getattr(info.config.discard, "value", info.config.discard)) == "new"
            # Other limits in the settings: the existing stream is updated, not replaced.
            bigger = queue.StreamLimits(max_age_seconds=3600, max_bytes=20 << 20, max_msgs=9000)
            updated = await queue.ensure_stream(js, stream, [subject], bigger)
            assert (updated.config.max_bytes, updated.config.max_msgs) == (20 << 20, 9000)
            assert queue.stream_identity(updated) == queue.stream_identity(first)
            durable = naming.consumer_name("ns", "wf", "uid-1")
            assert await queue.ensure_consumer(js, stream, durable, subject, "test")
            assert not await queue.ensure_consumer(js, stream, durable, subject, "test")
            # Published after the consumer exists: delivered; acked: gone (interest retention).
            await js.publish(subject, b"{}")
            sub = await js.pull_subscribe_bind(consumer=durable, stream=stream)
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack_sync()
            info = await js.stream_info(stream)
            assert info.state.messages == 0
            assert await queue.delete_consumer(js, stream, durable)
            assert not await queue.consumer_exists(js, stream, durable)
            assert not await queue.delete_consumer(js, stream, durable)
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(scenario())
