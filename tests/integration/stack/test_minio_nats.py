"""MinIO publishes object events to NATS JetStream, with user metadata, on
the local stack: the path every mediaflow event takes."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import nats
import nats.js.errors
import pytest
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig
from nats.js.api import ConsumerConfig, DeliverPolicy

pytestmark = pytest.mark.integration


async def _fetch_events(
    url: str, subject: str, bucket: str, upload: Callable[[], object], count: int
) -> list[dict[str, Any]]:
    """Upload, then collect ``count`` events about ``bucket`` from JetStream.

    The subject is fixed by MinIO's target, and other tests (the operator)
    may already own a stream on it: reuse that one, create one otherwise.
    """
    connection = await nats.connect(url)
    js = connection.jetstream()
    created = None
    try:
        try:
            stream = await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            created = stream = f"SMOKE{uuid.uuid4().hex[:6].upper()}"
            await js.add_stream(name=stream, subjects=[subject])
        subscription = await js.pull_subscribe(
            subject,
            durable=f"smoke-{uuid.uuid4().hex[:6]}",
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )
        await asyncio.to_thread(upload)
        events: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(events) < count and asyncio.get_running_loop().time() < deadline:
            try:
                messages = await subscription.fetch(1, timeout=2)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                event = json.loads(message.data)
                await message.ack()
                if event["Records"][0]["s3"]["bucket"]["name"] == bucket:
                    events.append(event)
        await subscription.unsubscribe()
        return events
    finally:
        if created:
            await js.delete_stream(created)
        await connection.close()


def test_an_upload_arrives_as_a_jetstream_message_with_user_metadata(
    minio_server: Any, nats_server: Any
) -> None:
    minio = minio_server.client()
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    minio.set_bucket_notification(
        bucket,
        NotificationConfig(
            queue_config_list=[
                QueueConfig(
                    queue=minio_server.notify_arn,
                    events=["s3:ObjectCreated:*"],
                    config_id="smoke",
                    prefix_filter_rule=PrefixFilterRule("incoming/"),
                )
            ]
        ),
    )

    def upload() -> None:
        minio.put_object(bucket, "elsewhere/skip.txt", io.BytesIO(b"no"), 2)
        minio.put_object(
            bucket,
            "incoming/clip one.mp4",
            io.BytesIO(b"data"),
            4,
            metadata={"x-amz-meta-origin": "camera-7"},
        )

    events = asyncio.run(
        _fetch_events(nats_server.url, minio_server.notify_subject, bucket, upload, 1)
    )
    assert len(events) == 1, events
    record = events[0]["Records"][0]
    assert events[0]["EventName"] == "s3:ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    # Keys in events are query-escaped ("/" too): consumers must unquote_plus them.
    assert record["s3"]["object"]["key"] == "incoming%2Fclip+one.mp4"
    assert urllib.parse.unquote_plus(record["s3"]["object"]["key"]) == "incoming/clip one.mp4"
    assert record["s3"]["object"]["userMetadata"]["X-Amz-Meta-Origin"] == "camera-7"
    assert record["s3"]["object"]["size"] == 4
    assert record["s3"]["object"]["eTag"]


def test_minio_rejects_a_rule_for_an_unknown_target(minio_server) -> None:  # type: ignore[no-untyped-def]
    from minio.error import S3Error

    minio = minio_server.client()
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    with pytest.raises(S3Error) as rejected:
        minio.set_bucket_notification(
            bucket,
            NotificationConfig(
                queue_config_list=[
                    QueueConfig(
                        queue="arn:minio:sqs::nobody:nats",
                        events=["s3:ObjectCreated:*"],
                        config_id="x",
                    )
                ]
            ),
        )
    assert rejected.value.code in {"InvalidArgument", "InvalidARNNotification", "InvalidArn"}


def _rule(arn: str, config_id: str) -> QueueConfig:
    return QueueConfig(
        queue=arn,
        events=["s3:ObjectCreated:Put"],
        config_id=config_id,
        prefix_filter_rule=PrefixFilterRule("incoming/"),
    )


def test_the_fast_target_alone_delivers_an_event(minio_server: Any, nats_server: Any) -> None:
    """The second target (no queue dir) exists on the stack's MinIO and
    publishes on the same subject as the durable one."""
    minio = minio_server.client()
    bucket = f"fast-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    minio.set_bucket_notification(
        bucket,
        NotificationConfig(queue_config_list=[_rule(minio_server.notify_fast_arn, "fast")]),
    )

    def upload() -> None:
        minio.put_object(bucket, "incoming/a.mp4", io.BytesIO(b"data"), 4)

    events = asyncio.run(
        _fetch_events(nats_server.url, minio_server.notify_subject, bucket, upload, 1)
    )
    assert [e["Key"] for e in events] == [f"{bucket}/incoming/a.mp4"]


def test_both_targets_publish_the_same_record_which_the_router_stores_once(
    minio_server: Any, nats_server: Any
) -> None:
    """What the router's deduplication rests on: with a rule on each target
    (same prefix, two ARNs, which MinIO accepts), one upload reaches the subject
    twice with the same record (same sequencer, etag, version), so both
    messages get the same copy id (``routing.message_id``)."""
    from mediaflow_operator.routing import message_id
    from mediaflow_operator.s3_events import parse_message

    minio = minio_server.client()
    bucket = f"both-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    minio.set_bucket_notification(
        bucket,
        NotificationConfig(
            queue_config_list=[
                _rule(minio_server.notify_arn, "durable"),
                _rule(minio_server.notify_fast_arn, "fast"),
            ]
        ),
    )

    def upload() -> None:
        minio.put_object(bucket, "incoming/a.mp4", io.BytesIO(b"data"), 4)

    events = asyncio.run(
        _fetch_events(nats_server.url, minio_server.notify_subject, bucket, upload, 2)
    )
    assert len(events) == 2, events
    assert events[0] == events[1]
    first, second = (parse_message(json.dumps(e).encode()) for e in events)
    assert first[0].sequencer, "MinIO sets a sequencer: the copy id comes from the event"
    assert message_id("s", 1, "wf", first) == message_id("s", 2, "wf", second)
