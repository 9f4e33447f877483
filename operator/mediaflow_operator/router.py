"""The router: MinIO's events in, one copy per matching Workflow out.

One task per operator process reads the events MinIO publishes (the stream's
``nats_subject``) through its own durable consumer (``queue.router_durable``),
parses each message once, finds its Workflows in the route index
(``routing``), and publishes the message unchanged on each one's subject
(``routing.work_subject``) with a ``Nats-Msg-Id`` of its own
(``routing.message_id``). Only when JetStream has stored every copy is the
original acked: a router that dies before the ack leaves the original unacked,
JetStream hands it out again after AckWait, and the copies already stored are
dropped as duplicates (the stream's duplicate window is longer than AckWait).
The doorbell (``doorbell``) of a Workflow is rung when its copy is stored, not
when it turns out a duplicate (a duplicate is nothing new to fetch).

- every copy of a message was already stored (``PubAck.duplicate``): the same
  event delivered again, normally by MinIO's second target (the fast one
  without ``queue_dir`` and the durable one both publish every event,
  docs/architecture.md "Two MinIO targets"): ack, counted as
  ``result="duplicate"``, and no doorbell rings (the first delivery rang them);
- unparseable message: ``term`` (logged with its sequence and counted in
  ``mediaflow_router_events_total{result="poison"}``: it has no Workflow to be
  shown on);
- no Workflow matches: ack;
- a copy is refused or times out (the stream is full, NATS is away): the
  message and every later one of the batch are put back untried, in order, and
  the router backs off; MinIO's events wait in the stream meanwhile.

The router runs while at least one dispatcher of this process runs
(``RouterService``): with kopf peering a standby replica, whose daemons are
paused, routes nothing from an index it no longer updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import Header, PubAck
from nats.js.errors import NotFoundError

from mediaflow_operator import metrics
from mediaflow_operator.messages import QueueMessage, sequence
from mediaflow_operator.routing import RouteIndex, message_id, targets, work_subject
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.s3_events import BadEvent, ObjectEvent, parse_message

logger = logging.getLogger(__name__)

FETCH_BATCH = 256
# A long poll: the pull returns as soon as one event is there.
FETCH_WAIT_SECONDS = 5.0
FETCH_MARGIN_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 10.0
# Messages of one batch whose copies are being stored at once.
PUBLISH_PARALLEL = 64
RETRY_DELAY_SECONDS = 2.0


class CopyFailed(Exception):
    """A copy was not stored: the batch's rest was put back (already logged)."""


class Router:
    """One operator's router (see the module doc)."""

    def __init__(self, rt: Runtime, index: RouteIndex) -> None:
        self.rt = rt
        self.index = index
        self._sub: JetStreamContext.PullSubscription | None = None
        self._lost = False  # the consumer was not found: ensure it on the next bind

    async def run(self) -> None:
        """Route until cancelled; a failed step is logged and tried again with backoff."""
        failures = 0
        while True:
            try:
                await self.step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except CopyFailed:
                failures += 1
                await asyncio.sleep(min(30.0, RETRY_DELAY_SECONDS * 2 ** min(failures, 4)))
            except Exception:
                failures += 1
                self._sub = None  # bind again: the stream or the connection may be new
                self._lost = True
                logger.exception("router step failed (%d in a row)", failures)
                await asyncio.sleep(min(30.0, RETRY_DELAY_SECONDS * 2 ** min(failures, 4)))

    async def step(self) -> int:
        """Fetch one batch (waiting up to ``FETCH_WAIT_SECONDS``) and route it;
        the number of messages fetched."""
        sub = await self._subscription()
        try:
            pulled = sub.fetch(batch=FETCH_BATCH, timeout=FETCH_WAIT_SECONDS)
            messages = await asyncio.wait_for(pulled, FETCH_WAIT_SECONDS + FETCH_MARGIN_SECONDS)
        except TimeoutError:
            return 0  # nothing now (nats-py raises a TimeoutError subclass or the plain one)
        except NotFoundError:
            logger.info("router consumer gone (stream re-created?): creating it again")
            self._sub = None
            self._lost = True
            return 0
        await self.route(messages)
        return len(messages)

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            # The consumer is made with the stream (Runtime.jetstream): before any
            # bucket rule exists. A lost one (stream re-created) is made again.
            js = await self.rt.jetstream(check_stream=self._lost)
            self._lost = False
            self._sub = await js.pull_subscribe_bind(
                consumer=self.rt.router_durable, stream=self.rt.settings.nats_stream
            )
        return self._sub

    async def route(self, messages: Sequence[QueueMessage]) -> None:
        """Route ``messages``: each parsed and matched in order, then the copies
        of the whole batch stored concurrently (``PUBLISH_PARALLEL`` messages in
        flight: one PubAck round trip per event, one after another, capped a
        burst at the router), then each original acked in order. On a failed
        copy that message and every later one go back (copies of later ones
        that were stored meanwhile are duplicates when they come back)."""
        js = await self.rt.jetstream()
        routed: list[tuple[QueueMessage, list[str], Sequence[ObjectEvent]]] = []
        for msg in messages:
            try:
                events = parse_message(msg.data)
            except BadEvent as exc:
                logger.warning("terminating unparseable event #%d: %s", sequence(msg), exc)
                metrics.ROUTER_EVENTS.labels("poison").inc()
                await msg.term()
                continue
            uids = targets(self.index, events)
            if not uids:
                metrics.ROUTER_EVENTS.labels("unmatched").inc()
                await msg.ack()
                continue
            routed.append((msg, uids, events))
        parallel = asyncio.Semaphore(PUBLISH_PARALLEL)

        async def store(
            msg: QueueMessage, uids: list[str], events: Sequence[ObjectEvent]
        ) -> list[str]:
            async with parallel:
                return await self._publish(js, msg, uids, events)

        results: list[list[str] | BaseException] = await asyncio.gather(
            *(store(*item) for item in routed), return_exceptions=True
        )
        for position, ((msg, _, _), result) in enumerate(zip(routed, results, strict=True)):
            if isinstance(result, BaseException):
                rest = [item[0] for item in routed[position:]]
                logger.warning(
                    "routing event #%d failed, %d event(s) put back: %s",
                    sequence(msg),
                    len(rest),
                    result,
                )
                metrics.ROUTER_EVENTS.labels("retried").inc(len(rest))
                for later in rest:
                    with contextlib.suppress(Exception):  # AckWait brings it back anyway
                        await later.nak(delay=RETRY_DELAY_SECONDS)
                raise CopyFailed(str(result)) from result
            await msg.ack()
            metrics.ROUTER_EVENTS.labels("routed" if result else "duplicate").inc()
            metrics.ROUTED_COPIES.inc(len(result))

    async def _publish(
        self,
        js: JetStreamContext,
        msg: QueueMessage,
        uids: list[str],
        events: Sequence[ObjectEvent],
    ) -> list[str]:
        """Store one copy per Workflow (concurrently; each waits for its PubAck)
        and ring the doorbell of each Workflow whose copy is new; the UIDs of
        those. Raises the first failure once every publish has ended: the copies
        stored meanwhile have rung their doorbells, so a Workflow whose copy turns
        out a duplicate when the message comes back has been woken for it."""
        prefix = self.rt.settings.nats_work_subject_prefix
        seq = sequence(msg)
        results: list[PubAck | BaseException] = await asyncio.gather(
            *(
                js.publish(
                    work_subject(prefix, uid),
                    msg.data,
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={Header.MSG_ID: message_id(self.rt.stream_id, seq, uid, events)},
                )
                for uid in uids
            ),
            return_exceptions=True,
        )
        stored = [
            uid
            for uid, result in zip(uids, results, strict=True)
            if isinstance(result, PubAck) and not result.duplicate
        ]
        for uid in stored:
            self.rt.doorbells.ring(uid)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return stored


class RouterService:
    """Runs the router while at least one dispatcher of this process runs."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._users = 0
        self._task: asyncio.Task[None] | None = None

    def acquire(self, index: RouteIndex) -> None:
        """A dispatcher starts: start the router if it is not running."""
        self._users += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(Router(self.rt, index).run(), name="router")

    async def release(self) -> None:
        """A dispatcher ended: stop the router when it was the last one."""
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
