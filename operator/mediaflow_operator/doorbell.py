"""How a dispatcher learns that its queue has events, without asking NATS.

The router rings a Workflow's doorbell right after JetStream stored an event
for it (``Doorbells.ring``); the dispatcher waits on it between steps instead
of polling its consumer. ``FetchPacer`` (pure) decides when a step fetches:

- after a ring (new events);
- after a fetch that may have left events behind (it came back full, or a
  message was put back with a delay): a free slot fetches at once;
- otherwise at most every ``fallback`` seconds, the safety net for what no
  ring announces: events put back with ``nak(delay)`` coming due, events a
  previous operator routed before this one started, a lost ring.

An idle operator with a thousand Workflows then makes a thousand fetches per
``fallback``, not per second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class Doorbells:
    """One ``asyncio.Event`` per Workflow UID, made on first use (one event loop)."""

    def __init__(self) -> None:
        self._bells: dict[str, asyncio.Event] = {}

    def bell(self, uid: str) -> asyncio.Event:
        """The doorbell of ``uid`` (the dispatcher waits on it and clears it)."""
        bell = self._bells.get(uid)
        if bell is None:
            bell = self._bells[uid] = asyncio.Event()
        return bell

    def ring(self, uid: str) -> None:
        """Tell ``uid``'s dispatcher that events are waiting. A Workflow whose
        dispatcher has not made its bell yet (or has ended) gets none: a new
        dispatcher looks at its queue once anyway (``FetchPacer``)."""
        bell = self._bells.get(uid)
        if bell is not None:
            bell.set()

    def forget(self, uid: str) -> None:
        """Drop the bell of a Workflow whose dispatcher ended."""
        self._bells.pop(uid, None)


@dataclass
class FetchPacer:
    """When a dispatcher fetches from its consumer (monotonic seconds)."""

    fallback: float
    last_fetch: float = float("-inf")
    more_waiting: bool = True  # a fresh dispatcher looks once at what is queued
    retry_at: float = float("inf")  # when events put back with a delay come due

    def due(self, at: float, rung: bool) -> bool:
        """Whether a step at ``at`` fetches (``rung``: the doorbell rang)."""
        return (
            rung
            or self.more_waiting
            or at >= self.retry_at
            or at - self.last_fetch >= self.fallback
        )

    def fetched(self, at: float, asked: int, got: int, put_back_after: float | None) -> None:
        """Record a fetch of ``asked`` that returned ``got`` messages;
        ``put_back_after``: the shortest delay of those nak'ed for later (no
        slot, API trouble, a refusal), None when none was."""
        self.last_fetch = at
        self.more_waiting = got >= asked
        self.retry_at = float("inf") if put_back_after is None else at + put_back_after

    def skipped(self) -> None:
        """A step that had no free slot: the queue may still hold events."""
        self.more_waiting = True

    def next_due(self) -> float:
        """The monotonic time of the next fetch no ring asks for: the fallback,
        or earlier when events put back with a delay come due."""
        return min(self.last_fetch + self.fallback, self.retry_at)


def idle_wait(*, at: float, poll: float, fallback: float, deadlines: list[float]) -> float:
    """How long a dispatcher with nothing in flight sleeps (monotonic seconds):
    until the earliest of ``deadlines`` (a fetch due, a finished Job expiring,
    a refusal's next probe), at least ``poll`` (a deadline already past must
    not make it spin) and at most ``fallback``. Whatever else needs a step
    wakes it earlier: its doorbell, a change of one of its Jobs or of the
    Workflow, the sweep."""
    soonest = min(deadlines, default=at + fallback)
    return max(poll, min(fallback, soonest - at))
