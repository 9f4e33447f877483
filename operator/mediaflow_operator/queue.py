"""The JetStream stream holding MinIO's events and one durable consumer per Workflow.

Stream: *interest* retention (a message stays until every Workflow consumer that
existed at publish time acked it, then it is gone), plus ``max_age`` so a
Workflow stuck at its concurrency limit cannot keep events forever, plus
``max_bytes``/``max_msgs`` so NATS's disk cannot fill. At the limit the stream
*discards new* messages: MinIO's publish fails and MinIO keeps the event in its
``queue_dir`` and retries it, so nothing a Workflow still needs is dropped
silently (discard-old would delete the oldest unprocessed events without a
trace). ``stream_watch`` raises an alarm well before the limit. The stream must
exist before MinIO publishes, or events are lost.

Consumers: durable, explicit ack, pull, only for Workflows that dispatch
(``reconcile.ensure_queue``): a consumer nobody reads would hold every event.
Each sees all events (every Workflow filters bucket/prefix itself), starts at
*new* messages when created (a new or resumed Workflow processes new uploads
only), and keeps its position across operator restarts. ``max_ack_pending``
bounds what one Workflow holds unacked; the dispatcher fetches at most
``maxConcurrentJobs - active`` messages, so it never reaches the limit in
practice. ``ack_wait`` is long enough to create a Job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import NotFoundError

logger = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 60.0
MAX_ACK_PENDING = 256
CONSUMER_LIST_PAGE = 256  # JetStream's page size for CONSUMER.LIST
CONSUMER_PREFIX = "wf_"  # naming.consumer_name
CONSUMER_DESCRIPTION = "Workflow {namespace}/{name}"


@dataclass(frozen=True)
class StreamLimits:
    max_age_seconds: float
    max_bytes: int
    max_msgs: int


def stream_config(name: str, subject: str, limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=name,
        description="MinIO object events for mediaflow Workflows",
        subjects=[subject],
        retention=RetentionPolicy.INTEREST,
        storage=StorageType.FILE,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        max_msgs=limits.max_msgs,
        discard=DiscardPolicy.NEW,
        duplicate_window=120.0,
    )


def needs_update(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether the existing stream lacks our subject or has other limits."""
    return (
        not set(wanted.subjects or []) <= set(current.subjects or [])
        or current.max_age != wanted.max_age
        or current.max_bytes != wanted.max_bytes
        or current.max_msgs != wanted.max_msgs
        or current.discard != wanted.discard
    )


def stream_identity(info: StreamInfo) -> str:
    """What tells one incarnation of the stream from the next: its creation time
    (a deleted and re-created stream of the same name starts its sequences at 1
    again, so sequences are only unique together with this)."""
    return info.created.isoformat() if info.created else ""


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


async def ensure_stream(
    js: JetStreamContext, name: str, subject: str, limits: StreamLimits
) -> StreamInfo:
    """Create the stream or bring its subjects and limits up to date; its info."""
    config = stream_config(name, subject, limits)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = await js.add_stream(config)
        logger.info("created JetStream stream %s for subject %s", name, subject)
        return info
    if needs_update(info.config, config):
        config.subjects = sorted({*(info.config.subjects or []), subject})
        info = await js.update_stream(config)
        logger.info(
            "updated JetStream stream %s (max_bytes=%d, max_msgs=%d)",
            name,
            limits.max_bytes,
            limits.max_msgs,
        )
    return info


async def list_consumers(js: JetStreamContext, stream: str) -> list[ConsumerInfo]:
    """Every consumer of ``stream`` (JetStream lists them a page at a time)."""
    found: list[ConsumerInfo] = []
    while True:
        page = await js.consumers_info(stream, offset=len(found) or None)
        found.extend(page)
        if len(page) < CONSUMER_LIST_PAGE:
            return found


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
