"""Bounded thread pools, one per kind of blocking call.

The Kubernetes and MinIO clients are synchronous, so every call runs in a
thread. With ``asyncio.to_thread`` they would all share the loop's default
executor (min(32, cpus + 4) threads: 6 on a 2-core node), and a slow MinIO
(sweep listings, manifest reads, a bucket rule on a server that hangs until
its read timeout) would hold every thread while Job creates and status writes
of every Workflow queue behind it. Each kind gets its own pool instead
(``Runtime.kube_pool``, ``Runtime.storage_pool``, sized by
``MEDIAFLOW_KUBE_THREADS`` and ``MEDIAFLOW_STORAGE_THREADS``): a slow dependency
fills only its own pool, and the number of requests in flight to each server
is bounded by its pool's size whatever the number of Workflows.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Pool:
    """A named, bounded thread pool; ``run`` a blocking call in it."""

    def __init__(self, name: str, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"pool {name!r} needs at least one thread, not {threads}")
        self.name = name
        self.threads = threads
        # The thread names show in the SIGUSR1 dump (diagnostics): which pool is stuck.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in one of the pool's threads, with the caller's
        context variables (as ``asyncio.to_thread`` does). Calls queue in order
        when every thread is busy; a cancelled caller stops waiting, but a call
        already running in a thread runs to its end (threads cannot be stopped)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        """Refuse new calls and drop the queued ones; running calls finish in
        their threads (bounded by the clients' timeouts), unawaited."""
        self._executor.shutdown(wait=False, cancel_futures=True)
