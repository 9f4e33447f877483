"""One webhook delivery attempt against real aiohttp servers on 127.0.0.1.

Deliveries are parsed with the CloudEvents SDK and verified with the independent
Standard Webhooks library, as a receiver would. The receivers live on loopback,
which the default egress policy refuses, so the positive tests use a policy
that allows 127.0.0.0/8 and one test proves the default refuses it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks import Webhook

from mediaflow_api import __version__
from mediaflow_operator.notify.egress import EgressPolicy
from mediaflow_operator.notify.signing import parse_secrets
from mediaflow_operator.notify.webhook import (
    MAX_MESSAGE_CHARS,
    AttemptResult,
    WebhookSender,
    WebhookTarget,
)
from tests.support.pki import create_cluster_pki

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"mediaflow-test-signing-key-32byt").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"mediaflow-rotated-signing-key-32").decode()
LOOPBACK = EgressPolicy.from_settings(allowed_cidrs=["127.0.0.0/8"], environ={})
EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "6f1d2c1e-2b7a-5c55-9a44-0d7c1a2b3c4d",
    "type": "dev.mediaflow.object.succeeded",
    "source": "/apis/mediaflow.dev/v1alpha1/namespaces/media/workflows/thumbs",
    "subject": "uploads/incoming/clip 1.mp4",
    "time": "2026-11-26T21:00:00Z",
    "datacontenttype": "application/json",
    "data": {"outputs": ["thumbs/clip 1.jpg"], "context": "order-17"},
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """A request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server; ``routes`` maps a path to a handler, ``seen`` records requests."""

    host: str
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"


@asynccontextmanager
async def receiver(
    routes: dict[str, Handler] | None = None,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Receiver]:
    state = Receiver(host)
    table = routes or {}

    async def ok(_: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append(Seen(request.path, dict(request.headers), await request.read()))
        return await table.get(request.path, ok)(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


async def attempt(
    target: WebhookTarget, policy: EgressPolicy = LOOPBACK, msg_id: str = "evt-1"
) -> AttemptResult:
    sender = WebhookSender(policy)
    try:
        return await sender.send(target, EVENT, msg_id, now=int(time.time()))
    finally:
        await sender.close()


def as_receiver_sees(seen: Seen) -> Any:
    message = HTTPMessage(headers={k.lower(): v for k, v in seen.headers.items()}, body=seen.body)
    return from_http(message, JSONFormat())


def test_structured_delivery_is_signed_and_parses_as_the_event() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            # `localhost` goes through the guarded resolver (::1 is dropped: not allowed).
            target = WebhookTarget(url=sink.url(host="localhost"), secrets=parse_secrets(SECRET))
            result = await attempt(target)
            assert result.ok, result
            assert (result.status, result.retryable) == (204, False)
            (seen,) = sink.seen
            assert seen.headers["Content-Type"] == "application/cloudevents+json"
            assert seen.headers["User-Agent"] == f"mediaflow-operator/{__version__}"
            assert seen.headers["webhook-id"] == "evt-1"
            Webhook(SECRET).verify(seen.body, seen.headers)
            event = as_receiver_sees(seen)
            assert event.get_id() == EVENT["id"]
            assert event.get_type() == EVENT["type"]
            assert event.get_subject() == EVENT["subject"]
            assert event.get_data() == EVENT["data"]

    asyncio.run(scenario())


def test_binary_delivery_with_two_keys_verifies_with_the_new_one() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            target = WebhookTarget(
                url=sink.url(), secrets=parse_secrets(f"{SECRET} {NEW_SECRET}"), binary=True
            )
            result = await attempt(target)
            assert result.ok, result
            (seen,) = sink.seen
            assert seen.headers["Content-Type"] == "application/json"
            assert seen.headers["ce-type"] == EVENT["type"]
            assert seen.headers["ce-subject"] == "uploads/incoming/clip%201.mp4"
            Webhook(NEW_SECRET).verify(seen.body, seen.headers)
            event = as_receiver_sees(seen)
            assert event.get_subject() == EVENT["subject"]
            assert event.get_data() == EVENT["data"]

    asyncio.run(scenario())


def test_unsigned_target_sends_id_and_timestamp_only() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            result = await attempt(WebhookTarget(url=sink.url()))
            assert result.ok, result
            (seen,) = sink.seen
            assert "webhook-signature" not in {k.lower() for k in seen.headers}
            assert seen.headers["webhook-id"] == "evt-1"

    asyncio.run(scenario())


def test_retries_keep_the_id_with_a_fresh_timestamp() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            target = WebhookTarget(url=sink.url(), secrets=parse_secrets(SECRET))
            sender = WebhookSender(LOOPBACK)
            try:
                now = int(time.time())
                await sender.send(target, EVENT, "evt-9", now=now - 30)
                await sender.send(target, EVENT, "evt-9", now=now)
            finally:
                await sender.close()
            first, second = sink.seen
            assert first.headers["webhook-id"] == second.headers["webhook-id"] == "evt-9"
            assert (
                int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"])
                == 30
            )
            assert first.body == second.body
            Webhook(SECRET).verify(second.body, second.headers)

    asyncio.run(scenario())


def test_statuses_decide_what_is_retryable() -> None:
    async def fail(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="database\nis down " + "x" * 5000)

    async def bad(request: web.Request) -> web.StreamResponse:
        return web.Response(status=400, text="unknown event type")

    async def busy(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "17"})

    async def scenario() -> None:
        routes: dict[str, Handler] = {"/fail": fail, "/bad": bad, "/busy": busy}
        routes["/fail/t0ken-42"] = fail
        async with receiver(routes) as sink:
            failed = await attempt(WebhookTarget(url=sink.url("/fail")))
            assert (failed.ok, failed.status, failed.retryable) == (False, 500, True)
            assert "HTTP 500: database is down xxx" in failed.message
            assert len(failed.message) <= MAX_MESSAGE_CHARS
            refused = await attempt(WebhookTarget(url=sink.url("/bad")))
            assert (refused.ok, refused.status, refused.retryable) == (False, 400, False)
            assert "unknown event type" in refused.message
            limited = await attempt(WebhookTarget(url=sink.url("/busy")))
            assert (limited.status, limited.retryable, limited.retry_after) == (429, True, 17.0)
            # Messages name the host, never the path or query (they may carry a token).
            tokened = await attempt(WebhookTarget(url=sink.url("/fail/t0ken-42?sig=s3cr3t")))
            assert tokened.status == 500
            assert f"127.0.0.1:{sink.port} answered HTTP 500" in tokened.message
            assert "t0ken" not in tokened.message
            assert "s3cr3t" not in tokened.message

    asyncio.run(scenario())


def test_a_slow_receiver_times_out_within_the_bound_and_is_retryable() -> None:
    async def scenario() -> None:
        never = asyncio.Event()

        async def slow(request: web.Request) -> web.StreamResponse:
            await never.wait()  # answers only after the client gave up
            return web.Response()

        async with receiver({"/slow": slow}) as sink:
            result = await attempt(WebhookTarget(url=sink.url("/slow"), timeout_seconds=0.5))
            never.set()
        assert (result.ok, result.status, result.retryable) == (False, None, True)
        assert "no answer within 0.5s" in result.message
        assert 0.5 <= result.seconds < 2.0

    asyncio.run(scenario())


def test_an_endless_answer_is_not_read_past_the_bound() -> None:
    async def scenario() -> None:
        async def endless(status: int, request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(status=status)
            await response.prepare(request)
            chunk = b"y" * 65536
            try:
                while True:  # until the client hangs up
                    await response.write(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return response

        async def ok(request: web.Request) -> web.StreamResponse:
            return await endless(200, request)

        async def error(request: web.Request) -> web.StreamResponse:
            return await endless(503, request)

        async with receiver({"/ok": ok, "/error": error}) as sink:
            # If the whole answer were read, the attempt would end in its timeout.
            accepted = await attempt(WebhookTarget(url=sink.url("/ok"), timeout_seconds=5))
            assert (accepted.ok, accepted.status) == (True, 200), accepted
            failed = await attempt(WebhookTarget(url=sink.url("/error"), timeout_seconds=5))
            assert (failed.ok, failed.status, failed.retryable) == (False, 503, True), failed
            assert len(failed.message) <= MAX_MESSAGE_CHARS

    asyncio.run(scenario())


def test_a_same_origin_307_is_followed_with_the_same_signed_body() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "/new-hook?x=1"})

    async def scenario() -> None:
        async with receiver({"/hook": moved}) as sink:
            target = WebhookTarget(url=sink.url("/hook"), secrets=parse_secrets(SECRET))
            result = await attempt(target)
            assert result.ok, result
            assert [s.path for s in sink.seen] == ["/hook", "/new-hook"]
            final = sink.seen[1]
            assert final.body == sink.seen[0].body
            Webhook(SECRET).verify(final.body, final.headers)

    asyncio.run(scenario())


def test_redirects_elsewhere_or_too_many_are_refused() -> None:
    async def scenario() -> None:
        async with receiver(host="127.0.0.2") as other:

            async def away(request: web.Request) -> web.StreamResponse:
                return web.Response(status=307, headers={"Location": other.url()})

            async def found(request: web.Request) -> web.StreamResponse:
                return web.Response(status=302, headers={"Location": "/hook2"})

            async def loop(request: web.Request) -> web.StreamResponse:
                return web.Response(status=308, headers={"Location": "/loop"})

            routes: dict[str, Handler] = {"/away": away, "/found": found, "/loop": loop}
            async with receiver(routes) as sink:
                result = await attempt(WebhookTarget(url=sink.url("/away")))
                assert (result.ok, result.retryable, result.status) == (False, False, 307)
                assert f"127.0.0.2:{other.port}" in result.message
                assert other.seen == []

                result = await attempt(WebhookTarget(url=sink.url("/found")))
                assert (result.ok, result.retryable, result.status) == (False, False, 302)
                assert "only 307/308" in result.message
                assert [s.path for s in sink.seen] == ["/away", "/found"]

                result = await attempt(WebhookTarget(url=sink.url("/loop")))
                assert (result.ok, result.retryable) == (False, False)
                assert "more than 3 redirects" in result.message
                assert [s.path for s in sink.seen].count("/loop") == 4

    asyncio.run(scenario())


def test_the_default_policy_refuses_loopback() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            default = EgressPolicy.from_settings(environ={})
            for host in ("127.0.0.1", "localhost"):
                result = await attempt(WebhookTarget(url=sink.url(host=host)), default)
                assert (result.ok, result.retryable, result.status) == (False, False, None)
                assert "egress policy" in result.message
                assert "loopback" in result.message
            assert sink.seen == []
            # An IPv6 literal (no resolver involved) is judged too: 127.0.0.1 allowed, not ::1.
            only_v4 = EgressPolicy.from_settings(allowed_cidrs=["127.0.0.1/32"], environ={})
            result = await attempt(WebhookTarget(url=sink.url(host="[::1]")), only_v4)
            assert "loopback" in result.message

    asyncio.run(scenario())


def test_a_closed_port_is_a_retryable_connection_failure() -> None:
    async def scenario() -> None:
        async with receiver() as sink:
            url = sink.url()
        result = await attempt(WebhookTarget(url=url))
        assert (result.ok, result.retryable, result.status) == (False, True, None)
        assert "cannot connect" in result.message

    asyncio.run(scenario())


def test_https_with_the_workflows_ca_is_accepted_and_refused_without(tmp_path: Path) -> None:
    pki = create_cluster_pki(tmp_path)  # a CA and a serving certificate for localhost
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    ca_pem = pki.ca_cert.read_text()

    async def scenario() -> None:
        async with receiver(ssl_context=server_context) as sink:
            url = sink.url(host="localhost", scheme="https")
            target = WebhookTarget(url=url, secrets=parse_secrets(SECRET), ca_pem=ca_pem)
            sender = WebhookSender(LOOPBACK)
            try:
                trusted = await sender.send(target, EVENT, "evt-1", now=int(time.time()))
                again = await sender.send(target, EVENT, "evt-1", now=int(time.time()))
                assert sender.ssl_context(ca_pem) is sender.ssl_context(ca_pem)
            finally:
                await sender.close()
            assert trusted.ok, trusted
            assert again.ok, again
            assert len(sink.seen) == 2
            Webhook(SECRET).verify(sink.seen[0].body, sink.seen[0].headers)

            untrusted = await attempt(WebhookTarget(url=url))
            assert (untrusted.ok, untrusted.retryable) == (False, False)
            assert "certificate" in untrusted.message
            broken = await attempt(WebhookTarget(url=url, ca_pem="not a certificate"))
            assert (broken.ok, broken.retryable) == (False, False)
            assert "not a PEM certificate" in broken.message
            assert len(sink.seen) == 2

    asyncio.run(scenario())


def test_a_url_that_is_not_http_fails_without_a_request() -> None:
    async def scenario() -> None:
        for url in ("ftp://127.0.0.1/x", "http://[::1/x"):
            result = await attempt(WebhookTarget(url=url))
            assert (result.ok, result.retryable, result.status) == (False, False, None)
            assert "URL" in result.message

    asyncio.run(scenario())
