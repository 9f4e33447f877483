"""The sinks of a Workflow and which notifications each one gets (pure).

A sink's *key* names its queue in the outbox (subject and consumer): a hash of
what the sink is (the URL; the subject and its server), not its place in the
list, so reordering or editing other sinks never sends one sink's pending
notifications to another receiver. Its *label* (``webhook-0``, ``queue-1``) is
for people and metrics: short and bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mediaflow_api.workflow import QueueNotification, WebhookNotification, WorkflowSpec
from mediaflow_operator import metrics
from mediaflow_operator.notify.events import Notification

SinkKind = Literal["webhook", "queue"]


@dataclass(frozen=True)
class Sink:
    """One configured receiver of a Workflow's notifications."""

    key: str  # stable id of the receiver: outbox subject token and consumer name part
    label: str  # webhook-<i> / queue-<i>: status, Events, metrics
    kind: SinkKind
    events: frozenset[str]
    webhook: WebhookNotification | None = None
    queue: QueueNotification | None = None

    @property
    def target(self) -> str:
        """Where it goes, for people: the URL without query (it may hold a token),
        or ``nats:<subject>`` (``@<secret>`` for another server)."""
        if self.webhook is not None:
            return self.webhook.url.split("?", 1)[0].split("#", 1)[0]
        assert self.queue is not None
        server = self.queue.server_secret_ref
        return f"nats:{self.queue.subject}" + (f"@{server.name}" if server else "")


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]


def sinks_for(spec: WorkflowSpec) -> list[Sink]:
    """Every sink of the spec, webhooks first, in spec order."""
    sinks: list[Sink] = []
    for i, hook in enumerate(spec.notifications.webhooks):
        sinks.append(
            Sink(
                key="w" + _key("webhook", hook.url),
                label=metrics.sink_id("webhook", i),
                kind="webhook",
                events=frozenset(hook.events),
                webhook=hook,
            )
        )
    for i, queue in enumerate(spec.notifications.queues):
        server = queue.server_secret_ref.name if queue.server_secret_ref else ""
        sinks.append(
            Sink(
                key="q" + _key("queue", queue.subject, server),
                label=metrics.sink_id("queue", i),
                kind="queue",
                events=frozenset(queue.events),
                queue=queue,
            )
        )
    return sinks


def wanted_kinds(sinks: Iterable[Sink]) -> frozenset[str]:
    """The notification kinds at least one sink wants (nothing to build otherwise)."""
    return frozenset().union(*(s.events for s in sinks))


def route(sinks: list[Sink], notifications: list[Notification]) -> list[tuple[Sink, Notification]]:
    """(sink, notification) for every sink that wants it, in notification order
    (per object: task events, then the final one)."""
    return [(sink, n) for n in notifications for sink in sinks if n.kind in sink.events]
