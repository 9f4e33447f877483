"""The delivery book: every result counted once in status.notifications, and a
message settled only after the write that counts it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_api.job import WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.notify.deliver import DeliveryBook
from mediaflow_operator.notify.sinks import Sink, sinks_for

pytestmark = pytest.mark.unit


class FakeMsg:
    def __init__(self, seq: int) -> None:
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def term(self) -> None:
        self.settled.append("term")


def fake_msg(seq: int) -> Any:
    """A NATS message as the book sees it (typed loosely: it stands in for ``Msg``)."""
    return FakeMsg(seq)


class FakeKube:
    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None  # set: a write waits for it
        self.fail = False

    async def patch_workflow_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("API server away")
        self.writes.append(patch)


class FakeCtx:
    def __init__(self, kube: FakeKube) -> None:
        self.rt = SimpleNamespace(kube=kube, settings=SimpleNamespace(status_flush_seconds=0.0))

    def workflow(self) -> WorkflowRef:
        return WorkflowRef(namespace="media", name="vod", uid="u1", generation=1)

    def status(self) -> dict[str, Any]:
        return {}


def two_sinks() -> list[Sink]:
    spec = WorkflowSpec.model_validate(
        {
            "trigger": {"bucket": "media"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "notifications": {
                "webhooks": [{"url": "https://a.example.com/h"}, {"url": "https://b.example.com/h"}]
            },
        }
    )
    return sinks_for(spec)


FAILURE = {"message": "503", "attempts": 8}


def book_with(kube: FakeKube) -> DeliveryBook:
    return DeliveryBook(FakeCtx(kube))  # type: ignore[arg-type]


def test_a_result_that_arrives_during_a_write_is_written_next_not_lost() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        book = book_with(kube)
        a, b = two_sinks()
        first, second = fake_msg(1), fake_msg(2)
        book.failed(a, first, FAILURE)
        kube.gate = asyncio.Event()
        writing = asyncio.create_task(book.flush([a, b]))
        await asyncio.sleep(0)  # the first write is in flight
        book.failed(b, second, FAILURE)  # the other sink's worker gives up meanwhile
        kube.gate.set()
        await writing
        assert first.settled == ["term"]
        assert second.settled == [], "not settled before a write counts it"
        await book.flush([a, b])
        assert [e["failed"] for e in kube.writes[-1]["notifications"]] == [1, 1]
        assert second.settled == ["term"]

    asyncio.run(scenario())


def test_a_failed_write_keeps_the_counts_and_the_messages_for_the_next() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        book = book_with(kube)
        a, b = two_sinks()
        msg = fake_msg(7)
        book.delivered(a, msg)
        kube.fail = True
        with pytest.raises(RuntimeError):
            await book.flush([a, b])
        assert msg.settled == []
        # JetStream hands the same message out again (ack_wait passed): counted once.
        again = fake_msg(7)
        book.delivered(a, again)
        kube.fail = False
        await book.flush([a, b])
        entries = kube.writes[-1]["notifications"]
        assert [e["delivered"] for e in entries] == [1, 0]
        assert [e["sink"] for e in entries] == ["webhook-0", "webhook-1"]
        assert msg.settled == ["ack"]
        assert again.settled == ["ack"]

    asyncio.run(scenario())


def test_counts_continue_from_the_stored_status() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        book = book_with(kube)
        a, b = two_sinks()
        book.load(
            {
                "notifications": [
                    {"sink": "webhook-0", "target": a.target, "delivered": 41, "failed": 2}
                ]
            }
        )
        book.delivered(a, fake_msg(1))
        await book.flush([a, b])
        first, second = kube.writes[-1]["notifications"]
        assert (first["delivered"], first["failed"]) == (42, 2)
        assert (second["delivered"], second["failed"]) == (0, 0)

    asyncio.run(scenario())
