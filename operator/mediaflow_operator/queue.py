"""The JetStream stream holding MinIO's events and one durable consumer per Workflow.

Stream: *interest* retention (a message stays until every Workflow consumer that
existed at publish time acked it, then it is gone: no unbounded growth), plus
``max_age`` so a Workflow stuck at its concurrency limit cannot keep events
forever. It must exist before MinIO publishes, or events are lost.

Consumers: durable, explicit ack, pull. Each sees all events (every Workflow
filters bucket/prefix itself), starts at *new* messages when created (a new or
resumed Workflow processes new uploads only), and keeps its position across
operator restarts. ``max_ack_pending`` bounds what one Workflow holds unacked;
the dispatcher fetches at most ``maxConcurrentJobs - active`` messages, so it
never reaches the limit in practice. ``ack_wait`` is long enough to create a Job.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

logger = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 60.0
MAX_ACK_PENDING = 256


def stream_config(name: str, subject: str, max_age_seconds: float) -> StreamConfig:
    return StreamConfig(
        name=name,
        description="MinIO object events for mediaflow Workflows",
        subjects=[subject],
        retention=RetentionPolicy.INTEREST,
        storage=StorageType.FILE,
        max_age=max_age_seconds,
        duplicate_window=120.0,
    )


def consumer_config(durable: str, subject: str, description: str) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        description=description,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=MAX_ACK_PENDING,
        max_deliver=-1,
        filter_subject=subject,
    )


async def ensure_stream(js: JetStreamContext, name: str, subject: str, max_age: float) -> None:
    config = stream_config(name, subject, max_age)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        logger.info("created JetStream stream %s for subject %s", name, subject)
        return
    current = info.config
    if subject not in (current.subjects or []) or current.max_age != config.max_age:
        config.subjects = sorted({*(current.subjects or []), subject})
        await js.update_stream(config)
        logger.info("updated JetStream stream %s", name)


async def ensure_consumer(
    js: JetStreamContext, stream: str, durable: str, subject: str, description: str
) -> bool:
    """Create the durable consumer if missing; True if it was created."""
    try:
        await js.consumer_info(stream, durable)
        return False
    except NotFoundError:
        pass
    await js.add_consumer(stream, consumer_config(durable, subject, description))
    return True


async def delete_consumer(js: JetStreamContext, stream: str, durable: str) -> bool:
    """Delete the consumer; True if it existed."""
    try:
        await js.delete_consumer(stream, durable)
    except NotFoundError:
        return False
    return True


async def consumer_exists(js: JetStreamContext, stream: str, durable: str) -> bool:
    try:
        await js.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return True
