"""Sample Workflow specs and a fake queue message shared by the unit tests."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

BASE: dict[str, Any] = {
    "trigger": {"bucket": "uploads", "prefix": "incoming/", "suffixes": [".mp4", ".mov"]},
    "tasks": [{"name": "thumbs", "snapshot": {"times": ["1"]}}],
}


def spec(**overrides: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced."""
    result = copy.deepcopy(BASE)
    result.update(copy.deepcopy(overrides))
    return result


class FakeMsg:
    """A JetStream message that logs how it was settled: (action, stream sequence)."""

    def __init__(self, log: list[tuple[str, Any]], seq: int, data: bytes) -> None:
        self.log, self.data = log, data
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))

    async def ack(self) -> None:
        self.log.append(("ack", self.metadata.sequence.stream))

    async def nak(self, delay: float | None = None) -> None:
        self.log.append(("nak", self.metadata.sequence.stream))

    async def term(self) -> None:
        self.log.append(("term", self.metadata.sequence.stream))

    async def in_progress(self) -> None:
        self.log.append(("in_progress", self.metadata.sequence.stream))
