"""The JetStream stream of events, the router's consumer and one durable
consumer per Workflow.

Stream: two kinds of subjects. MinIO publishes every bucket's events on
``nats_subject``; the router (``router``) reads them through its consumer
(``router_durable``) and republishes each on ``<nats_work_subject_prefix>.<uid>``
of every Workflow it is for (``routing``). *Interest* retention: a message stays
until every consumer whose filter matches it acked it (MinIO's original: the
router; a copy: its Workflow), and a copy for a subject nobody consumes is
dropped at once. ``max_age`` keeps a Workflow stuck at its concurrency limit
from holding events forever; ``max_bytes``/``max_msgs`` keep NATS's disk from
filling. At the limit the stream *discards new* messages: MinIO's publish fails
and MinIO keeps the event in its ``queue_dir`` and retries (a copy the router
cannot store puts its original back), so nothing a Workflow still needs is
dropped silently (discard-old would delete the oldest unprocessed events
without a trace). ``stream_watch`` raises an alarm well before the limit. The
stream must exist before MinIO publishes, or events are lost. The duplicate
window (longer than AckWait) drops the copies a restarted router stores again.

Workflow consumers: durable, explicit ack, pull, filtered on the Workflow's own
subject, only for Workflows that dispatch (``reconcile.ensure_queue``); each
starts at *new* messages when created (a new or resumed Workflow processes new
uploads only) and keeps its position across operator restarts.
``max_ack_pending`` bounds what one Workflow holds unacked; the dispatcher
fetches at most ``maxConcurrentJobs - active`` messages, so it never reaches the
limit in practice. ``ack_wait`` is long enough to create a Job. A consumer of an
older operator (filtered on MinIO's subject) is switched to the Workflow's
subject in place.
"""

from __future__ import annotations

import hashlib
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
# Not CONSUMER_PREFIX: stream_watch's orphan sweep never takes it for a Workflow's.
ROUTER_PREFIX = "mediaflow-router"
ROUTER_MAX_ACK_PENDING = 4096
# Longer than ACK_WAIT_SECONDS: a copy stored again after a redelivery is dropped.
DUPLICATE_WINDOW_SECONDS = 300.0


@dataclass(frozen=True)
class StreamLimits:
    max_age_seconds: float
    max_bytes: int
    max_msgs: int
    max_consumers: int = 10_000


def stream_config(name: str, subjects: list[str], limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=name,
        description="MinIO object events for mediaflow Workflows",
        subjects=subjects,
        retention=RetentionPolicy.INTEREST,
        storage=StorageType.FILE,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        max_msgs=limits.max_msgs,
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        # Explicit: a stream that sets none gets nats-server's default cap of 1,000
        # consumers, one per Workflow (-1, "unlimited", counts as none).
        max_consumers=limits.max_consumers,
    )


def needs_update(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether the existing stream lacks our subject or has other limits."""
    return (
        not set(wanted.subjects or []) <= set(current.subjects or [])
        or current.max_age != wanted.max_age
        or current.max_bytes != wanted.max_bytes
        or current.max_msgs != wanted.max_msgs
        or current.max_consumers != wanted.max_consumers
        or current.discard != wanted.discard
        or (current.duplicate_window or 0) < (wanted.duplicate_window or 0)
    )


def stream_identity(info: StreamInfo) -> str:
    """What tells one incarnation of the stream from the next: its creation time
    (a deleted and re-created stream of the same name starts its sequences at 1
    again, so sequences are only unique together with this)."""
    return info.created.isoformat() if info.created else ""


def router_durable(namespaces: tuple[str, ...]) -> str:
    """The router consumer of an operator that watches ``namespaces`` (all when
    empty). Operators of different namespaces on one stream each route every
    event to their own Workflows, so each has a consumer of its own; the
    replicas of one operator (peering) share theirs."""
    if not namespaces:
        return ROUTER_PREFIX
    digest = hashlib.sha256(" ".join(sorted(namespaces)).encode()).hexdigest()[:12]
    return f"{ROUTER_PREFIX}-{digest}"


def router_consumer_config(durable: str, subject: str, inactive_seconds: float) -> ConsumerConfig:
    """The router's consumer: MinIO's events, from the first one the stream holds
    when it is created (with interest retention these are only events some
    consumer still needs). JetStream deletes it after ``inactive_seconds``
    without a pull: a router whose operator was removed for good must not hold
    every event of the stream (its operator makes it again when it returns; what
    was published meanwhile is the sweep's)."""
    return ConsumerConfig(
        durable_name=durable,
        description="mediaflow router: MinIO events to the Workflows they are for",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=ROUTER_MAX_ACK_PENDING,
        max_deliver=-1,
        filter_subject=subject,
        inactive_threshold=inactive_seconds,
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


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: list[str], limits: StreamLimits
) -> StreamInfo:
    """Create the stream or bring its subjects and limits up to date; its info."""
    config = stream_config(name, subjects, limits)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = await js.add_stream(config)
        logger.info("created JetStream stream %s for subjects %s", name, ", ".join(subjects))
        return info
    if needs_update(info.config, config):
        config.subjects = sorted({*(info.config.subjects or []), *subjects})
        info = await js.update_stream(config)
        logger.info(
            "updated JetStream stream %s (subjects %s, max_bytes=%d, max_msgs=%d)",
            name,
            ", ".join(config.subjects),
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
    """Create the durable consumer if missing, or switch its filter to
    ``subject`` (a consumer made by an older operator); True if it was created."""
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        await js.add_consumer(stream, consumer_config(durable, subject, description))
        return True
    if info.config.filter_subject != subject:
        # JetStream updates a durable's filter in place (its position is kept).
        await js.add_consumer(stream, consumer_config(durable, subject, description))
        logger.info(
            "consumer %s now reads %s (was %s)", durable, subject, info.config.filter_subject
        )
    return False


async def ensure_router_consumer(
    js: JetStreamContext, stream: str, durable: str, subject: str, inactive_seconds: float
) -> bool:
    """Create the router's consumer if missing; True if it was created."""
    try:
        await js.consumer_info(stream, durable)
        return False
    except NotFoundError:
        pass
    await js.add_consumer(stream, router_consumer_config(durable, subject, inactive_seconds))
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
