"""Delivering one sink's notifications from the outbox, and what the status says
about it.

One ``SinkWorker`` per (Workflow, sink), an asyncio task of the Workflow's
dispatcher, reads the sink's durable consumer. Per fetch it delivers the
notifications of different objects at the same time and those of one object
one after another, in stream order (task events before the object's final
event); a slow or dead receiver only holds its own sink, never dispatching or
another sink or Workflow. An attempt that fails is retried after an
exponential backoff with jitter until the sink's ``maxAttempts`` are spent
(attempts before an operator restart count, from the message's delivery
count); the message is marked in progress while it waits, so JetStream does
not hand it to anyone else. Every retry carries the same id.

``DeliveryBook`` holds the per-sink results and is their one writer into
``status.notifications``: durable before ack, like the ledger — a delivered or
given-up message is acked only after the write that counts it, so a crash in
between delivers it again (same id) and counts it once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from mediaflow_operator import metrics
from mediaflow_operator.clock import iso, now, parse_time
from mediaflow_operator.notify import outbox
from mediaflow_operator.notify.nats_sink import NatsPublisher, ServerSecret
from mediaflow_operator.notify.signing import parse_secrets
from mediaflow_operator.notify.sinks import Sink
from mediaflow_operator.notify.webhook import (
    AttemptResult,
    WebhookSender,
    WebhookTarget,
    retry_delay,
)

if TYPE_CHECKING:
    from mediaflow_operator.context import DispatchContext

logger = logging.getLogger(__name__)

QUEUE_MAX_ATTEMPTS = 8  # NATS sinks have no maxAttempts field: the webhook default
PROGRESS_SECONDS = 30.0  # in_progress while waiting, well within outbox.ACK_WAIT_SECONDS
SECRET_CACHE_SECONDS = 30.0
FETCH_MARGIN_SECONDS = 10.0
PENDING_SECONDS = 15.0  # how often the pending gauge is refreshed (one consumer_info)


@dataclass
class SinkTally:
    """One sink's results, as ``status.notifications[]`` shows them."""

    sink: str
    target: str
    delivered: int = 0
    failed: int = 0
    last_delivery_time: str | None = None
    last_failure: dict[str, Any] | None = None
    last_event_posted: float = 0.0  # monotonic time of the last NotificationFailed Event
    suppressed: int = 0  # failures since that Event

    def to_status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "sink": self.sink,
            "target": self.target,
            "delivered": self.delivered,
            "failed": self.failed,
        }
        if self.last_delivery_time:
            doc["lastDeliveryTime"] = self.last_delivery_time
        if self.last_failure:
            doc["lastFailure"] = self.last_failure
        return doc


@dataclass
class DeliveryBook:
    """Per-sink delivery results of one Workflow and the acks waiting for their write."""

    ctx: DispatchContext
    tallies: dict[str, SinkTally] = field(default_factory=dict)  # by sink label+target
    held: list[tuple[Msg, bool]] = field(default_factory=list)  # (message, delivered?)
    _held_seqs: set[int] = field(default_factory=set)  # stream sequences in ``held``
    dirty: bool = False
    last_flush: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def load(self, status: Mapping[str, Any]) -> None:
        """Continue the counts of the stored status (an operator restart)."""
        for entry in status.get("notifications") or []:
            tally = SinkTally(
                sink=str(entry.get("sink") or ""),
                target=str(entry.get("target") or ""),
                delivered=int(entry.get("delivered") or 0),
                failed=int(entry.get("failed") or 0),
                last_delivery_time=entry.get("lastDeliveryTime"),
                last_failure=entry.get("lastFailure"),
            )
            self.tallies[f"{tally.sink}|{tally.target}"] = tally

    def tally(self, sink: Sink) -> SinkTally:
        key = f"{sink.label}|{sink.target}"
        if key not in self.tallies:
            self.tallies[key] = SinkTally(sink.label, sink.target)
        return self.tallies[key]

    def _hold(self, msg: Msg, ok: bool) -> bool:
        """Keep ``msg`` until the write that counts it; False when a delivery of
        the same stream message already waits for that write (JetStream handed
        it out again while a write failed for longer than ack_wait): it is
        settled with the others, but counted once."""
        seq = _sequence(msg)
        first = seq not in self._held_seqs
        self._held_seqs.add(seq)
        self.held.append((msg, ok))
        self.dirty = True
        return first

    def delivered(self, sink: Sink, msg: Msg) -> None:
        if self._hold(msg, True):
            tally = self.tally(sink)
            tally.delivered += 1
            tally.last_delivery_time = iso(now())

    def failed(self, sink: Sink, msg: Msg, failure: dict[str, Any]) -> SinkTally:
        tally = self.tally(sink)
        if self._hold(msg, False):
            tally.failed += 1
            tally.last_failure = failure
        return tally

    async def flush(self, sinks: list[Sink], *, force: bool = False) -> None:
        """Write ``status.notifications`` (the sinks now configured, in spec order)
        when something changed and the interval passed, then settle the held
        messages: delivered ones acked, given-up ones terminated. Results that
        arrive during the write wait for the next one."""
        async with self._lock:
            interval = self.ctx.rt.settings.status_flush_seconds
            if not self.dirty or (not force and time.monotonic() - self.last_flush < interval):
                return
            workflow = self.ctx.workflow()
            entries = [self.tally(s).to_status() for s in sinks]
            held, self.held = self.held, []
            self.dirty = False
            try:
                await self.ctx.rt.kube.patch_workflow_status(
                    workflow.namespace, workflow.name, {"notifications": entries}
                )
            except Exception:
                # Kept, with their counts: the next write carries them, and only
                # then are they settled (a crash meanwhile: delivered again, same
                # id, counted from the last written status).
                self.held = held + self.held
                self.dirty = True
                raise
            self.last_flush = time.monotonic()
            self._held_seqs.difference_update(_sequence(msg) for msg, _ in held)
        for msg, ok in held:
            with contextlib.suppress(Exception):  # redelivered and deduplicated by id
                await (msg.ack() if ok else msg.term())


def _sequence(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)


class SinkSource(Protocol):
    """The sinks as the Workflow's spec says now (``notifier.Notifier``)."""

    def sinks(self) -> list[Sink]: ...

    def sink(self, key: str) -> Sink | None: ...


class SinkWorker:
    """Delivers the outbox messages of one sink of one Workflow."""

    def __init__(
        self,
        ctx: DispatchContext,
        key: str,
        source: SinkSource,
        book: DeliveryBook,
        sender: WebhookSender,
        publisher: NatsPublisher,
    ) -> None:
        self.ctx = ctx
        self.key = key
        self.source = source
        self.book = book
        self.sender = sender
        self.publisher = publisher
        self.stopping = False
        self._sub: Any = None
        self._pending_at = 0.0
        self._secrets: dict[str, tuple[float, dict[str, str]]] = {}

    async def run(self) -> None:
        """Fetch and deliver until stopped; failures back off and retry."""
        failures = 0
        while not self.stopping:
            sink = self.source.sink(self.key)
            if sink is None:
                return
            try:
                await self._report_pending(sink)
                messages = await self._fetch(sink)
                if messages:
                    await self._deliver_batch(messages)
                await self.book.flush(self.source.sinks())
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self.ctx.log.warning(
                    "notifications to %s: delivery step failed (%d in a row)",
                    sink.label,
                    failures,
                    exc_info=True,
                )
                self._sub = None
                await asyncio.sleep(min(30.0, 2.0**failures))

    async def _report_pending(self, sink: Sink) -> None:
        """Set the pending gauge from the consumer, at most every ``PENDING_SECONDS``."""
        if self._sub is None or time.monotonic() - self._pending_at < PENDING_SECONDS:
            return
        self._pending_at = time.monotonic()
        workflow = self.ctx.workflow()
        js = await self.ctx.rt.jetstream()
        try:
            info = await js.consumer_info(
                self.ctx.rt.settings.notify_stream, outbox.consumer_name(workflow.uid, sink)
            )
        except NotFoundError:
            self._sub = None  # deleted (the Workflow or the sink is going away)
            return
        metrics.NOTIFICATIONS_PENDING.labels(workflow.namespace, workflow.name, sink.label).set(
            int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        )

    async def _fetch(self, sink: Sink) -> list[Msg]:
        settings = self.ctx.rt.settings
        workflow = self.ctx.workflow()
        if self._sub is None:
            if (self.ctx.body.get("metadata") or {}).get("deletionTimestamp"):
                return []  # its queues are being deleted: never create them again
            js = await self.ctx.rt.jetstream()
            name = await outbox.ensure_consumer(
                js,
                settings,
                workflow.uid,
                sink,
                f"Workflow {workflow.namespace}/{workflow.name} {sink.label}",
            )
            self._sub = await js.pull_subscribe_bind(consumer=name, stream=settings.notify_stream)
        try:
            pulled = self._sub.fetch(
                batch=settings.notify_concurrency, timeout=settings.poll_seconds
            )
            return list(
                await asyncio.wait_for(pulled, settings.poll_seconds + FETCH_MARGIN_SECONDS)
            )
        except TimeoutError:
            return []
        except NotFoundError:
            self._sub = None
            return []

    async def _deliver_batch(self, messages: list[Msg]) -> None:
        """Objects at the same time, each object's messages in order."""
        by_object: dict[str, list[Msg]] = {}
        for msg in messages:
            by_object.setdefault(_object_of(msg), []).append(msg)
        await asyncio.gather(*(self._deliver_in_order(group) for group in by_object.values()))

    async def _deliver_in_order(self, group: list[Msg]) -> None:
        for msg in group:
            if self.stopping:
                with contextlib.suppress(Exception):
                    await msg.nak()  # the next operator delivers it at once
                continue
            await self._deliver(msg)

    async def _deliver(self, msg: Msg) -> None:
        sink = self.source.sink(self.key)
        if sink is None:
            return
        try:
            event = json.loads(msg.data)
            if not isinstance(event, dict) or "id" not in event:
                raise ValueError("not a CloudEvent")
        except ValueError as exc:
            self._give_up(sink, msg, {}, 0, f"unreadable outbox message: {exc}")
            return
        workflow = self.ctx.workflow()
        labels = (workflow.namespace, workflow.name, sink.label)
        attempts = max(0, int(msg.metadata.num_delivered or 1) - 1)
        limit = sink.webhook.max_attempts if sink.webhook else QUEUE_MAX_ATTEMPTS
        while True:
            result = await self._attempt(sink, event)
            attempts += 1
            if result.ok:
                metrics.NOTIFICATION_DELIVERIES.labels(*labels, "delivered").inc()
                happened = parse_time(str(event.get("time") or ""))
                if happened is not None:
                    metrics.NOTIFICATION_LATENCY.labels(*labels).observe(
                        max(0.0, (datetime.now(UTC) - happened).total_seconds())
                    )
                self.book.delivered(sink, msg)
                return
            if not result.retryable or attempts >= limit:
                metrics.NOTIFICATION_DELIVERIES.labels(
                    *labels, "refused" if not result.retryable else "failed"
                ).inc()
                self._give_up(sink, msg, event, attempts, result.message)
                return
            metrics.NOTIFICATION_DELIVERIES.labels(*labels, "retried").inc()
            delay = retry_delay(attempts, retry_after=result.retry_after)
            self.ctx.log.info(
                "notification %s to %s failed (attempt %d of %d), retry in %.1f s: %s",
                event["id"],
                sink.label,
                attempts,
                limit,
                delay,
                result.message,
            )
            if not await self._wait(msg, delay):
                return  # stopping: left unacked (nak'ed), the next operator goes on

    async def _wait(self, msg: Msg, seconds: float) -> bool:
        """Sleep ``seconds`` keeping ``msg`` ours; False when stopping meanwhile."""
        deadline = time.monotonic() + seconds
        marked = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            if self.stopping:
                with contextlib.suppress(Exception):
                    await msg.nak()
                return False
            await asyncio.sleep(min(left, 1.0))
            if time.monotonic() - marked >= PROGRESS_SECONDS:
                marked = time.monotonic()
                with contextlib.suppress(Exception):
                    await msg.in_progress()
        with contextlib.suppress(Exception):
            await msg.in_progress()
        return True

    def _give_up(
        self, sink: Sink, msg: Msg, event: Mapping[str, Any], attempts: int, why: str
    ) -> None:
        failure = {
            "time": iso(now()),
            "eventId": str(event.get("id") or "")[:128],
            "type": str(event.get("type") or "")[:128],
            "object": str(event.get("subject") or "")[:1100],
            "attempts": attempts,
            "message": why[:1024],
        }
        tally = self.book.failed(sink, msg, failure)
        self.ctx.log.warning(
            "notification %s to %s (%s) given up after %d attempt(s): %s",
            failure["eventId"],
            sink.label,
            sink.target,
            attempts,
            why,
            extra={"object": failure["object"]},
        )
        interval = self.ctx.rt.settings.notify_failure_event_seconds
        moment = time.monotonic()
        if tally.last_event_posted and moment - tally.last_event_posted < interval:
            tally.suppressed += 1
            return
        more = f" ({tally.suppressed} more since the last Event)" if tally.suppressed else ""
        tally.last_event_posted, tally.suppressed = moment, 0
        self.ctx.post_event(
            "Warning",
            "NotificationFailed",
            f"{sink.label} {sink.target}: {failure['object']} {failure['type']} given up after "
            f"{attempts} attempt(s): {why}{more}"[:1000],
        )

    async def _attempt(self, sink: Sink, event: dict[str, Any]) -> AttemptResult:
        try:
            if sink.webhook is not None:
                return await self._post(sink, event)
            assert sink.queue is not None
            server = None
            ref = sink.queue.server_secret_ref
            if ref is not None:
                data = await self._secret(ref.name)
                if "url" not in data:
                    return AttemptResult(
                        False, None, True, f"Secret {ref.name} has no key 'url'", 0.0
                    )
                server = ServerSecret(
                    url=data["url"],
                    user=data.get("user", ""),
                    password=data.get("password", ""),
                    token=data.get("token", ""),
                    ca_pem=data.get("ca.crt", ""),
                    version=data.get("__version__", ""),
                )
            workflow = self.ctx.workflow()
            return await self.publisher.publish(
                sink.queue.subject,
                event,
                str(event["id"]),
                server,
                secret_key=(workflow.namespace, ref.name) if ref else None,
            )
        except _SecretProblem as exc:
            return AttemptResult(False, None, True, str(exc), 0.0)

    async def _post(self, sink: Sink, event: dict[str, Any]) -> AttemptResult:
        hook = sink.webhook
        assert hook is not None
        secrets: list[bytes] = []
        if hook.signing_secret_ref is not None:
            data = await self._secret(hook.signing_secret_ref.name)
            if "key" not in data:
                raise _SecretProblem(f"Secret {hook.signing_secret_ref.name} has no key 'key'")
            try:
                secrets = parse_secrets(data["key"])
            except ValueError as exc:
                raise _SecretProblem(f"Secret {hook.signing_secret_ref.name}: {exc}") from None
        ca_pem = None
        if hook.ca_secret_ref is not None:
            data = await self._secret(hook.ca_secret_ref.name)
            if "ca.crt" not in data:
                raise _SecretProblem(f"Secret {hook.ca_secret_ref.name} has no key 'ca.crt'")
            ca_pem = data["ca.crt"]
        target = WebhookTarget(
            url=hook.url,
            secrets=secrets,
            binary=hook.content_mode == "binary",
            timeout_seconds=float(hook.timeout_seconds),
            ca_pem=ca_pem,
        )
        return await self.sender.send(target, event, str(event["id"]), now=int(time.time()))

    async def _secret(self, name: str) -> dict[str, str]:
        """The Secret's values (decoded), cached briefly: a rotated key is used
        within ``SECRET_CACHE_SECONDS``."""
        cached = self._secrets.get(name)
        if cached is not None and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
            return cached[1]
        namespace = self.ctx.workflow().namespace
        try:
            secret = await self.ctx.rt.kube.read_secret(namespace, name)
        except Exception as exc:
            raise _SecretProblem(f"Secret {name} could not be read: {type(exc).__name__}") from None
        if secret is None:
            raise _SecretProblem(f"Secret {namespace}/{name} not found")
        values = {
            k: base64.b64decode(v).decode(errors="replace")
            for k, v in (secret.get("data") or {}).items()
        }
        values["__version__"] = str((secret.get("metadata") or {}).get("resourceVersion") or "")
        self._secrets[name] = (time.monotonic(), values)
        return values


class _SecretProblem(Exception):
    """A Secret a sink needs is missing or wrong (retried: it may be fixed)."""


def _object_of(msg: Msg) -> str:
    try:
        return str(json.loads(msg.data).get("subject") or "")
    except ValueError:
        return ""
