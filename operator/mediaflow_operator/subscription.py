"""The dispatcher's end of its Workflow's durable JetStream consumer: pull
events, and ask how many are still waiting (``queue`` configures the consumer;
every answer also sets the ``mediaflow_backlog_messages`` gauge)."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mediaflow_operator import metrics
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.messages import QueueMessage

# A pull whose server reply is late (a NATS reconnect, a loaded server) must not
# hold the dispatcher's step: past this margin over the poll interval it is given
# up; messages it may have taken come back after AckWait, unacked.
FETCH_MARGIN_SECONDS = 10.0


class Subscription:
    """A pull subscription bound to the consumer named in the Workflow's status."""

    def __init__(self, ctx: DispatchContext) -> None:
        self.ctx = ctx
        self._sub: JetStreamContext.PullSubscription | None = None
        self._name = ""

    def consumer(self) -> str:
        return str(self.ctx.status().get("consumer") or "")

    async def fetch(self, batch: int) -> list[QueueMessage]:
        """Up to ``batch`` messages, waiting at most one poll interval."""
        settings = self.ctx.rt.settings
        name = self.consumer()
        try:
            if self._sub is None or self._name != name:
                js = await self.ctx.rt.jetstream()
                self._sub = await js.pull_subscribe_bind(consumer=name, stream=settings.nats_stream)
                self._name = name
            pulled = self._sub.fetch(batch=batch, timeout=settings.poll_seconds)
            return list(
                await asyncio.wait_for(pulled, settings.poll_seconds + FETCH_MARGIN_SECONDS)
            )
        except TimeoutError:
            # nats-py raises its own TimeoutError (a subclass) for an empty pull,
            # and a plain one when the timeout reply arrives at the deadline:
            # both mean "nothing now", not a failed step.
            return []
        except NotFoundError:
            self.ctx.log.info("consumer %s not found yet", name)
            self._sub = None
            await asyncio.sleep(settings.poll_seconds)
            return []

    async def backlog(self) -> tuple[int, int] | None:
        """(undelivered, delivered but unacked) messages of the Workflow's consumer;
        None when it has none (suspended, deleted)."""
        workflow = self.ctx.workflow()
        gauge = metrics.BACKLOG.labels(workflow.namespace, workflow.name)
        name = self.consumer()
        if not name:
            gauge.set(0)
            return None
        js = await self.ctx.rt.jetstream()
        try:
            info = await js.consumer_info(self.ctx.rt.settings.nats_stream, name)
        except NotFoundError:
            gauge.set(0)
            return None
        pending, unacked = int(info.num_pending or 0), int(info.num_ack_pending or 0)
        gauge.set(pending + unacked)
        return pending, unacked
