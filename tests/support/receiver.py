"""A real HTTP receiver for notification tests: an aiohttp server on 127.0.0.1
in a thread of its own, recording every request it gets.

``answer`` decides the response status per request, given how many times that
``webhook-id`` was seen before (0 for its first attempt): e.g. fail the first
two attempts with 500, then accept. ``stop()``/``start()`` take it away and
bring it back on the same port (a receiver outage).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .processes import free_port


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    attempt: int  # 0 for the first request with this webhook-id
    at: float  # time.time() when it arrived

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


def accept_all(attempt: int) -> int:
    return 200


@dataclass
class WebhookReceiver:
    """Records requests; ``answer(attempt) -> status``."""

    answer: Callable[[int], int] = accept_all
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/media"

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            attempt = sum(1 for r in self.requests if r.webhook_id == headers.get("webhook-id"))
            status = self.answer(attempt)
            self.requests.append(
                Received(request.method, request.path, headers, body, status, attempt, time.time())
            )
        return web.Response(status=status, text="ok" if status < 300 else "not now")

    def start(self) -> WebhookReceiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = self._runner = None
