"""A pull that times out in any of nats-py's ways is an empty fetch, and a pull
that hangs cannot hold the dispatcher's step."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest

from mediaflow_operator import subscription
from mediaflow_operator.subscription import Subscription

pytestmark = pytest.mark.unit


class FakePull:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 (nats-py's signature)
        if self.behaviour == "nats-timeout":
            raise nats.errors.TimeoutError
        if self.behaviour == "plain-timeout":
            # nats-py 2.x when the timeout reply arrives at the deadline.
            raise TimeoutError
        await asyncio.sleep(3600)  # a reply that never comes
        return []


def _subscription(behaviour: str) -> Subscription:
    pull = FakePull(behaviour)

    async def jetstream() -> Any:
        async def bind(consumer: str, stream: str) -> FakePull:
            return pull

        return SimpleNamespace(pull_subscribe_bind=bind)

    ctx: Any = SimpleNamespace(
        status=lambda: {"consumer": "wf_x"},
        rt=SimpleNamespace(
            settings=SimpleNamespace(poll_seconds=0.01, nats_stream="S"), jetstream=jetstream
        ),
        log=SimpleNamespace(info=lambda *a: None),
    )
    return Subscription(ctx)


@pytest.mark.parametrize("behaviour", ["nats-timeout", "plain-timeout"])
def test_a_timed_out_pull_is_an_empty_fetch(behaviour: str) -> None:
    assert asyncio.run(_subscription(behaviour).fetch(4)) == []


def test_a_hung_pull_is_given_up_after_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscription, "FETCH_MARGIN_SECONDS", 0.05)

    async def bounded() -> list[Any]:
        # The outer limit only guards the test; the fetch must end well before it.
        return await asyncio.wait_for(_subscription("hang").fetch(4), 5)

    assert asyncio.run(bounded()) == []
