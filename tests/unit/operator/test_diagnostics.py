"""The task dump names what each task awaits and what each thread runs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

import pytest

from mediaflow_operator import diagnostics

pytestmark = pytest.mark.unit


def test_the_dump_shows_an_awaiting_task_and_a_blocked_thread() -> None:
    released = threading.Event()

    def blocked_in_a_thread() -> None:
        released.wait(10)

    async def waits_forever(event: asyncio.Event) -> None:
        await event.wait()

    async def scenario() -> str:
        event = asyncio.Event()
        task = asyncio.create_task(waits_forever(event), name="the-stuck-one")
        worker = asyncio.create_task(asyncio.to_thread(blocked_in_a_thread))
        await asyncio.sleep(0)
        try:
            return diagnostics.render_dump(asyncio.get_running_loop())
        finally:
            released.set()
            event.set()
            await asyncio.gather(task, worker)

    dump = asyncio.run(scenario())
    assert "--- task the-stuck-one" in dump
    assert "in waits_forever" in dump
    assert "in blocked_in_a_thread" in dump


def test_sigusr1_logs_the_dump() -> None:
    records: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        logged = asyncio.Event()

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record.getMessage())
                logged.set()

        handler = Collect()
        log = logging.getLogger(diagnostics.__name__)
        log.addHandler(handler)
        diagnostics.install_dump_on_signal(loop)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(logged.wait(), 5)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
            log.removeHandler(handler)

    asyncio.run(scenario())
    assert records[0].startswith(diagnostics.DUMP_BEGIN)
    assert records[0].endswith(diagnostics.DUMP_END)
    assert "--- task" in records[0]
