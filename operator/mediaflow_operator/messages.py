"""Settling queue messages: the typed face of a JetStream message, and a batch
that keeps its unsettled messages alive.

Every fetched message ends in exactly one way:

- ``ack``: done (its Job exists, or it is none of the Workflow's business);
- ``nak(delay)``: try again later (API trouble, no free slot);
- ``term``: never again (poison: unparseable, or a Job that can never exist);
- *held*: a skipped upload whose ack waits for the status write that counts it
  (``ledger.StatusLedger.hold_until_written``).

While a batch is open its unsettled messages (held ones included) are marked
``in_progress`` every ``interval``: a slow API server must not let AckWait run
out and JetStream redeliver them behind the dispatcher's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol


class _Sequence(Protocol):
    @property
    def stream(self) -> int: ...


class _Metadata(Protocol):
    @property
    def sequence(self) -> _Sequence: ...


class QueueMessage(Protocol):
    """What the dispatcher uses of a JetStream message (``nats.aio.msg.Msg``)."""

    @property
    def data(self) -> bytes: ...

    @property
    def metadata(self) -> _Metadata: ...

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None: ...

    async def term(self) -> None: ...

    async def in_progress(self) -> None: ...


def sequence(msg: QueueMessage) -> int:
    """The message's stream sequence: its identity in the ``countedEvents`` ledger."""
    return msg.metadata.sequence.stream


class Batch:
    """The messages of one fetch, from delivery until each is settled or held."""

    def __init__(
        self,
        messages: Sequence[QueueMessage],
        interval: float,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._unsettled = list(messages)
        self._interval = interval
        self._log = log
        self._keepalive: asyncio.Task[None] | None = None
        self.held: list[QueueMessage] = []
        # The shortest delay a message was put back with (None: none was):
        # when the dispatcher should look at its queue again.
        self.put_back_after: float | None = None

    async def __aenter__(self) -> Batch:
        self._keepalive = asyncio.create_task(self._keep_in_progress())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        self._unsettled.clear()

    async def ack(self, msg: QueueMessage) -> None:
        await msg.ack()
        self._settled(msg)

    async def nak(self, msg: QueueMessage, delay: float) -> None:
        await msg.nak(delay=delay)
        self._settled(msg)
        if self.put_back_after is None or delay < self.put_back_after:
            self.put_back_after = delay

    async def term(self, msg: QueueMessage) -> None:
        await msg.term()
        self._settled(msg)

    def hold(self, msg: QueueMessage) -> None:
        """Keep ``msg`` unacked (and in progress) until the batch closes; the
        caller hands ``held`` to the ledger, which acks after the write."""
        self.held.append(msg)

    def _settled(self, msg: QueueMessage) -> None:
        if msg in self._unsettled:
            self._unsettled.remove(msg)

    async def _keep_in_progress(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for msg in list(self._unsettled):
                try:
                    await msg.in_progress()
                except Exception:  # the message comes back after AckWait at worst
                    self._log.debug("in_progress failed", exc_info=True)
