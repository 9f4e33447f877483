"""A snapshot of what the operator is waiting on, for stalls nobody can attach
a debugger to: ``kill -USR1 <pid>`` logs the stack of every asyncio task and
every thread (the blocking Kubernetes and MinIO calls run in threads).

A dispatcher that makes no progress and logs nothing is either awaiting
something that never completes or blocked behind a full thread pool; the dump
says which, in the operator's own log.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sys
import threading
import traceback
from typing import Any

logger = logging.getLogger(__name__)

DUMP_BEGIN = "diagnostics: task dump begins"
DUMP_END = "diagnostics: task dump ends"


def awaiting_chain(coro: Any) -> list[str]:
    """Where a suspended coroutine waits, outermost first: the frames along its
    ``await`` chain (``Task.get_stack`` shows only the outermost one)."""
    lines = []
    seen = 0
    while coro is not None and seen < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        seen += 1
    if coro is not None:
        lines.append(f"  ... awaiting {coro!r}")
    return lines


def render_dump(loop: asyncio.AbstractEventLoop) -> str:
    """Where each of the loop's tasks and each thread is, as text."""
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"{len(tasks)} asyncio task(s)\n")
    for task in tasks:
        out.write(f"--- task {task.get_name()}\n")
        out.write("\n".join(awaiting_chain(task.get_coro())) + "\n")
    names = {t.ident: t.name for t in threading.enumerate()}
    frames = sys._current_frames()
    out.write(f"{len(frames)} thread(s)\n")
    for ident, frame in frames.items():
        out.write(f"--- thread {names.get(ident, ident)}\n")
        out.write("".join(traceback.format_stack(frame, limit=30)))
    return out.getvalue()


def install_dump_on_signal(loop: asyncio.AbstractEventLoop) -> None:
    """Log ``render_dump`` whenever the process receives SIGUSR1 (idempotent)."""

    def dump() -> None:
        logger.warning("%s\n%s%s", DUMP_BEGIN, render_dump(loop), DUMP_END)

    loop.add_signal_handler(signal.SIGUSR1, dump)
