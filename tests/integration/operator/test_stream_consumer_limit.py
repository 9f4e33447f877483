"""The stream holds more consumers than nats-server's default cap (1,000 per
stream that sets no limit of its own): one per Workflow, so a large
installation reaches it. Found by the pipeline benchmark with 1,000 Workflows."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats
import pytest

from mediaflow_operator import naming, queue

pytestmark = pytest.mark.integration

WORKFLOWS = 1_010  # past the server's default cap of 1,000


def test_the_stream_takes_a_consumer_per_workflow_past_the_servers_default_cap(
    nats_server: Any,
) -> None:
    stream = f"C{uuid.uuid4().hex[:8]}"
    subject = f"test.{stream}"

    async def scenario() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            # The limits an operator starts with: the stream as an older operator
            # made it (no consumer limit), then updated in place.
            old = await js.add_stream(name=stream, subjects=[subject])
            assert old.config.max_consumers in (None, -1, 0)
            limits = queue.StreamLimits(
                max_age_seconds=3600, max_bytes=10 << 20, max_msgs=5000, max_consumers=2_000
            )
            info = await queue.ensure_stream(js, stream, [subject], limits)
            assert info.config.max_consumers == 2_000
            semaphore = asyncio.Semaphore(32)

            async def one(i: int) -> bool:
                async with semaphore:
                    durable = naming.consumer_name("ns", f"wf{i}", f"uid-{i}")
                    return await queue.ensure_consumer(js, stream, durable, subject, "test")

            created = await asyncio.gather(*(one(i) for i in range(WORKFLOWS)))
            assert all(created)
            assert len(await queue.list_consumers(js, stream)) == WORKFLOWS
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(scenario())
