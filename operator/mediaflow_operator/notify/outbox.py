"""The outbox: a JetStream work-queue stream holding notifications until delivered.

A notification is published here *before* the result it announces is counted
(``ledger``) or the event that accepted it is acked (``launch``): once the
Workflow's status says an object finished, its notification is durable, and a
crash in between only publishes it again. Each message has the Nats-Msg-Id
``<event id>.<sink key>``, so JetStream drops a second publish within the
duplicate window, and a later one reaches the receiver with the same id (at
least once, deduplicated by id).

One subject per (Workflow, sink): ``<prefix>.<workflow uid>.<sink key>``, and one
durable pull consumer per subject (``deliver``). Work-queue retention removes a
message when its consumer acks it and keeps it while no consumer exists (an
operator that is down, a sink whose consumer is created later); ``max_age``
and ``max_bytes`` bound what a dead receiver can pile up. At the limit new
notifications are refused (discard new) and the results they announce wait,
uncounted, on their Jobs.
"""

from __future__ import annotations

import contextlib
import json
import logging

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import NotFoundError

from mediaflow_operator.notify.events import Notification
from mediaflow_operator.notify.sinks import Sink
from mediaflow_operator.settings import Settings

logger = logging.getLogger(__name__)

# A delivery attempt (HTTP timeout ≤ 60 s) must end well within this, and the
# deliverer marks long retries in progress; a message a dead operator held comes
# back after it.
ACK_WAIT_SECONDS = 120.0
MAX_ACK_PENDING = 256
CONSUMER_LIST_PAGE = 256  # JetStream's page size for CONSUMER.LIST
CONSUMER_PREFIX = "mfn_"
HEADER_SINK = "Mediaflow-Sink"


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.notify_stream,
        description="mediaflow notifications waiting for delivery",
        subjects=[f"{settings.notify_subject_prefix}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=float(settings.notify_stream_max_age_seconds),
        max_bytes=settings.notify_stream_max_bytes,
        discard=DiscardPolicy.NEW,
        duplicate_window=settings.notify_duplicate_window_seconds,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> StreamInfo:
    """Create the outbox stream, or bring its limits up to date."""
    config = stream_config(settings)
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        info = await js.add_stream(config)
        logger.info("created JetStream stream %s for notifications", config.name)
        return info
    current = info.config
    if (
        current.max_age != config.max_age
        or current.max_bytes != config.max_bytes
        or current.duplicate_window != config.duplicate_window
    ):
        config.retention = current.retention  # JetStream cannot change it in place
        info = await js.update_stream(config)
    return info


def subject(settings: Settings, workflow_uid: str, sink: Sink) -> str:
    """The outbox subject of one sink of one Workflow (UIDs are subject-safe)."""
    return f"{settings.notify_subject_prefix}.{workflow_uid}.{sink.key}"


def consumer_name(workflow_uid: str, sink: Sink) -> str:
    """Durable consumer of one sink (JetStream names allow [A-Za-z0-9_-])."""
    return f"{CONSUMER_PREFIX}{workflow_uid}_{sink.key}"


def consumer_config(name: str, filter_subject: str, description: str) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=name,
        description=description,
        # Everything waiting for this sink, also what was published before the
        # consumer existed (a new operator, a sink added while uploads finished).
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=MAX_ACK_PENDING,
        max_deliver=-1,
        filter_subject=filter_subject,
    )


async def publish(
    js: JetStreamContext,
    settings: Settings,
    workflow_uid: str,
    routed: list[tuple[Sink, Notification]],
) -> None:
    """Publish each (sink, notification), in order, each acknowledged by JetStream
    before the next (the order per object is the order in the stream)."""
    for sink, notification in routed:
        await js.publish(
            subject(settings, workflow_uid, sink),
            json.dumps(notification.event, separators=(",", ":")).encode(),
            stream=settings.notify_stream,
            headers={"Nats-Msg-Id": f"{notification.id}.{sink.key}", HEADER_SINK: sink.label},
        )


async def ensure_consumer(
    js: JetStreamContext, settings: Settings, workflow_uid: str, sink: Sink, description: str
) -> str:
    """Create the sink's durable consumer if missing; its name."""
    name = consumer_name(workflow_uid, sink)
    try:
        await js.consumer_info(settings.notify_stream, name)
    except NotFoundError:
        await js.add_consumer(
            settings.notify_stream,
            consumer_config(name, subject(settings, workflow_uid, sink), description),
        )
    return name


async def forget_sinks(
    js: JetStreamContext, settings: Settings, workflow_uid: str, keep: set[str]
) -> list[str]:
    """Delete the consumers and purge the pending notifications of this Workflow's
    sinks that are no longer configured (``keep``: the sink keys still wanted;
    empty when the Workflow is deleted). Returns the sink keys removed."""
    stream = settings.notify_stream
    base = f"{settings.notify_subject_prefix}.{workflow_uid}."
    prefix = f"{CONSUMER_PREFIX}{workflow_uid}_"
    found: set[str] = set()
    info = await js.stream_info(stream, subjects_filter=base + "*")
    found.update(name[len(base) :] for name in (info.state.subjects or {}))
    offset = 0
    while True:
        page = await js.consumers_info(stream, offset=offset or None)
        found.update(
            (i.name or "")[len(prefix) :] for i in page if (i.name or "").startswith(prefix)
        )
        offset += len(page)
        if len(page) < CONSUMER_LIST_PAGE:
            break
    removed = sorted(found - keep)
    for key in removed:
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(stream, prefix + key)
        await js.purge_stream(stream, subject=base + key)
    return removed
