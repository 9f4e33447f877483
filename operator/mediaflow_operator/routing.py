"""Which Workflows an event is for: the router's index and its matching (pure).

MinIO publishes every bucket's events on one subject. The router (``router``)
parses each event once, looks its bucket up in this index and republishes it
on the subject of each Workflow whose trigger prefix holds the key
(``work_subject``), where that Workflow's own consumer reads it. Work is then
proportional to the matching copies of each event, not to every event times every Workflow.

``handlers.py`` registers ``route_of`` as a kopf index on Workflows, so the
index follows the watch. A Workflow is routed to only while it is active *and*
its status names its consumer: the reconcile writes ``status.consumer`` after
creating the consumer, and a message published to a subject nobody consumes
is dropped at once by the interest-retention stream. Uploads made before the
router knew the Workflow are the sweep's (its rule-ready pass covers every
upload up to a second after the rule was seen ready, and the index changes
with the same watch event that shows the rule ready): docs/architecture.md,
"Routing".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mediaflow_operator import workflows
from mediaflow_operator.matching import CONTENT_EVENTS, output_decision
from mediaflow_operator.s3_events import ObjectEvent


@dataclass(frozen=True)
class Route:
    """One Workflow as the router sees it: where its events go."""

    uid: str
    prefix: str


# What the router reads: kopf's index (a live view, updated in place) is one.
RouteIndex = Mapping[str, Iterable[Route]]


def route_of(body: Mapping[str, Any]) -> dict[str, Route]:
    """The index entry of one Workflow: ``{trigger bucket: its route}`` while it
    is active and has a consumer, else empty (an empty dict, not None: kopf
    keeps an object's old entry when its index function returns None)."""
    trigger = (body.get("spec") or {}).get("trigger") or {}
    bucket = trigger.get("bucket")
    consumer = (body.get("status") or {}).get("consumer")
    if not isinstance(bucket, str) or not bucket or not consumer:
        return {}
    if not workflows.is_active(body):
        return {}
    return {bucket: Route(uid=workflows.ref(body).uid, prefix=str(trigger.get("prefix") or ""))}


def targets(index: RouteIndex, events: Iterable[ObjectEvent]) -> list[str]:
    """The UIDs of the Workflows that get a message with ``events`` (one
    message's records), in a stable order, each once. Not-new-content events
    and mediaflow's own outputs go to nobody; what is left goes to every
    Workflow on the bucket whose prefix holds the key, and the Workflow's
    dispatcher decides the rest (suffixes, folder markers) with its spec."""
    found: dict[str, None] = {}
    for event in events:
        if event.event_name not in CONTENT_EVENTS:
            continue
        if output_decision(event.obj.key, event.user_metadata) is not None:
            continue
        for route in index.get(event.obj.bucket, ()):
            if event.obj.key.startswith(route.prefix):
                found.setdefault(route.uid, None)
    return sorted(found)


def work_subject(prefix: str, uid: str) -> str:
    """The subject of one Workflow's routed events."""
    return f"{prefix}.{uid}"


def work_subjects(prefix: str) -> str:
    """The stream subject that holds every Workflow's routed events."""
    return f"{prefix}.*"


def message_id(stream_id: str, sequence: int, uid: str, events: Sequence[ObjectEvent]) -> str:
    """The ``Nats-Msg-Id`` of the copy of one message for Workflow ``uid``.

    From the events' identity (bucket, key, version, MinIO's sequencer) when
    every record has a sequencer: one event that MinIO sent twice (a retry from
    its ``queue_dir`` after a lost acknowledgement) becomes one copy. Else from
    the message's stream sequence (``stream_id`` tells apart the sequences of a
    re-created stream). Either way a router that stores its copies again after
    a crash (before its ack) is deduplicated by JetStream within the stream's
    duplicate window."""
    if events and all(e.sequencer for e in events):
        identity = "\n".join(
            f"{e.obj.bucket}\n{e.obj.key}\n{e.obj.version_id}\n{e.obj.etag}\n{e.sequencer}"
            for e in events
        )
        return f"ev:{hashlib.sha256(identity.encode()).hexdigest()[:32]}:{uid}"
    return f"seq:{stream_id}:{sequence}:{uid}"
