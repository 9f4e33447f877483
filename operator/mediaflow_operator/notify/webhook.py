"""One signed, guarded HTTP delivery attempt of a CloudEvent, and retry timing.

``WebhookSender.send`` makes exactly one attempt and says what happened
(``AttemptResult``); the delivery loop (``deliver.py``) decides about retries
with ``retry_delay``. The rules an attempt follows, and why:

- the event is encoded by the CloudEvents SDK (structured
  ``application/cloudevents+json``, or binary: ``ce-*`` headers + JSON data) and
  the exact body bytes are signed (``signing.py``); every attempt has a fresh
  ``webhook-timestamp`` (receivers refuse old ones) and the same ``webhook-id``
  (receivers deduplicate on it);
- connections go only to addresses the egress policy allows (``egress.py``);
- TLS is always verified, a Workflow's CA is added to the system's;
- redirects are followed only with 307/308 to the same origin (the method and
  signed body stay the same, and a redirect cannot lead the operator elsewhere);
- everything is bounded: one total timeout per attempt, at most 64 KiB of the
  answer read, at most ~200 characters of it in the message;
- messages name the host only, never the full URL (it may carry a token in its
  path or query) and never a secret.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from yarl import URL

from mediaflow_api import __version__
from mediaflow_operator.notify.egress import (
    EgressPolicy,
    EgressRefused,
    GuardedResolver,
    check_literal,
)
from mediaflow_operator.notify.signing import webhook_headers

USER_AGENT = f"mediaflow-operator/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_SNIPPET_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_REDIRECTS = 3
# Statuses worth another attempt: the receiver timed out, is rate limiting, or failed.
RETRYABLE_STATUSES = frozenset({408, 429})
# Distinct CAs kept as SSL contexts (one per Workflow CA in use is typical).
SSL_CONTEXT_CACHE = 64


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how to deliver; ``secrets`` empty = unsigned deliveries."""

    url: str
    secrets: list[bytes] = field(default_factory=list, repr=False)
    binary: bool = False
    timeout_seconds: float = 10.0
    ca_pem: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to.

    ``message`` is short (for status and Events): the host, the answer and a
    snippet of the response body, never a secret or the full URL.
    ``retry_after`` is the receiver's ``Retry-After`` in seconds, when it sent one.
    """

    ok: bool
    status: int | None
    retryable: bool
    message: str
    seconds: float
    retry_after: float | None = None


def encode_event(event: Mapping[str, Any], *, binary: bool) -> tuple[dict[str, str], bytes]:
    """HTTP headers and body of a structured-mode CloudEvent dict, via the SDK.

    Raises ValueError when the dict is not a valid CloudEvent.
    """
    fmt = JSONFormat()
    try:
        parsed = fmt.read(CloudEvent, json.dumps(dict(event)).encode())
        message = to_binary(parsed, fmt) if binary else to_structured(parsed, fmt)
    except (BaseCloudEventException, TypeError, ValueError) as exc:
        raise ValueError(f"not a valid CloudEvent: {exc}") from exc
    headers = dict(message.headers)
    traceparent = event.get("traceparent")
    if isinstance(traceparent, str):
        # W3C trace context on the request too, so a receiver's HTTP tracing joins it.
        headers["traceparent"] = traceparent
    return headers, message.body


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` that a ``Retry-After`` value asks for (delta or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    rng: random.Random | None = None,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after ``attempt`` failed attempts (1 = after the first).

    Exponential backoff ``base * 2**(attempt-1)`` capped at ``cap``, with *equal
    jitter*: a uniform draw from the upper half of that step. Jitter spreads the
    retries of many deliveries that failed together (one sink down for every
    Workflow); the guaranteed lower half keeps an attempt budget spanning a known
    minimum time, which full jitter (0 to the step) would not: eight attempts
    could then all fall within seconds of an outage. A receiver's ``Retry-After``
    is honoured up to ``cap``: the delay is at least what it asked for.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    # The exponent is bounded so a large attempt number cannot overflow.
    step = min(cap, base * 2.0 ** min(attempt - 1, 62))
    delay = (rng or random).uniform(step / 2, step)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _snippet(body: bytes) -> str:
    """The start of a response body, on one line, printable."""
    text = body[: MAX_SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text)).strip()
    return text[:MAX_SNIPPET_CHARS] + ("…" if len(text) > MAX_SNIPPET_CHARS else "")


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _host(url: URL) -> str:
    return f"{url.host}:{url.port}" if url.port is not None else str(url.host)


async def _read_bounded(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """At most MAX_RESPONSE_BYTES of the body; True when more was left unread."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await response.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), not response.content.at_eof()


class _Failure(Exception):
    """An attempt that ended before a final answer (a refused redirect, ...)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class WebhookSender:
    """Delivers single attempts over one aiohttp session with the guarded resolver.

    Create and use it inside the event loop; ``close()`` it when done.
    """

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._contexts: OrderedDict[str | None, ssl.SSLContext] = OrderedDict()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._resolver = GuardedResolver(self.policy)
            connector = aiohttp.TCPConnector(resolver=self._resolver)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                # No proxy from the environment: a proxy would connect on our behalf,
                # past the resolver that checks addresses.
                trust_env=False,
                # Answers are read raw and bounded; no decompression (no zip bomb).
                auto_decompress=False,
                # Sinks share this session; no cookie may travel from one to another.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def ssl_context(self, ca_pem: str | None) -> ssl.SSLContext:
        """The verifying context for a CA (None = the system's CAs only), cached.

        Raises ValueError when ``ca_pem`` holds no PEM certificate.
        """
        context = self._contexts.get(ca_pem)
        if context is not None:
            self._contexts.move_to_end(ca_pem)
            return context
        context = ssl.create_default_context()
        if ca_pem is not None:
            try:
                context.load_verify_locations(cadata=ca_pem)
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(f"the CA (ca.crt) is not a PEM certificate: {exc}") from None
        self._contexts[ca_pem] = context
        if len(self._contexts) > SSL_CONTEXT_CACHE:
            self._contexts.popitem(last=False)
        return context

    async def send(
        self, target: WebhookTarget, event: Mapping[str, Any], msg_id: str, *, now: int
    ) -> AttemptResult:
        """One delivery attempt of ``event`` to ``target``; never raises for its outcome.

        ``msg_id`` is the ``webhook-id`` (the same on every attempt), ``now`` the
        attempt's Unix time (``webhook-timestamp``).
        """
        started = time.monotonic()

        def result(
            ok: bool,
            status: int | None,
            retryable: bool,
            message: str,
            retry_after: float | None = None,
        ) -> AttemptResult:
            return AttemptResult(
                ok=ok,
                status=status,
                retryable=retryable,
                message=_short(message),
                seconds=time.monotonic() - started,
                retry_after=retry_after,
            )

        try:
            url = URL(target.url)
        except ValueError:
            # Not echoed: a URL may carry a token.
            return result(False, None, False, "the webhook URL is not a valid URL")
        if url.scheme not in ("http", "https") or not url.host:
            return result(False, None, False, "the webhook URL must be http(s)://host/...")
        where = _host(url)
        try:
            headers, body = encode_event(event, binary=target.binary)
            headers.update(webhook_headers(target.secrets, msg_id, now, body))
            context = self.ssl_context(target.ca_pem) if url.scheme == "https" else None
        except ValueError as exc:
            return result(False, None, False, str(exc))
        try:
            async with asyncio.timeout(target.timeout_seconds):
                return await self._post(url, headers, body, context, now, result)
        except TimeoutError:
            return result(
                False, None, True, f"{where}: no answer within {target.timeout_seconds:g}s"
            )
        except EgressRefused as exc:
            return result(False, None, False, f"{where} refused by the egress policy: {exc}")
        except _Failure as exc:
            return result(False, exc.status, exc.retryable, exc.message)
        except aiohttp.ClientConnectorCertificateError as exc:
            # A certificate that does not verify is configuration (CA, name), like a
            # 4xx: retrying within minutes will not fix it.
            return result(
                False, None, False, f"{where}: TLS certificate not trusted: {exc.certificate_error}"
            )
        except aiohttp.ClientConnectorError as exc:
            refused = exc.os_error if isinstance(exc.os_error, EgressRefused) else None
            if refused is not None:
                return result(
                    False, None, False, f"{where} refused by the egress policy: {refused}"
                )
            return result(False, None, True, f"{where}: cannot connect: {exc.os_error}")
        except (aiohttp.ClientError, OSError) as exc:
            text = str(exc).replace(str(url), where) or type(exc).__name__
            return result(False, None, True, f"{where}: {type(exc).__name__}: {text}")

    async def _post(
        self,
        url: URL,
        headers: dict[str, str],
        body: bytes,
        context: ssl.SSLContext | None,
        now: int,
        result: Callable[..., AttemptResult],
    ) -> AttemptResult:
        """POST, following same-origin 307/308 redirects; the answer as a result."""
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            assert current.host is not None  # checked by send, kept by the origin rule
            # aiohttp connects to an IP literal without asking the resolver.
            check_literal(current.host, self.policy)
            async with self._client().post(
                current,
                data=body,
                headers=headers,
                ssl=context if context is not None else True,
                allow_redirects=False,
            ) as response:
                status = response.status
                if 300 <= status < 400:
                    current = self._redirect_target(url, current, response, hop)
                    continue
                answer, truncated = await _read_bounded(response)
                if truncated:
                    # Drop the connection rather than drain an answer of any size.
                    response.close()
                retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
                message = f"{_host(current)} answered HTTP {status}"
                snippet = _snippet(answer)
                if snippet and not 200 <= status < 300:
                    message += f": {snippet}"
                if 200 <= status < 300:
                    return result(True, status, False, message)
                retryable = status in RETRYABLE_STATUSES or status >= 500
                return result(False, status, retryable, message, retry_after)
        raise AssertionError("unreachable: the loop returns or raises")

    @staticmethod
    def _redirect_target(
        origin: URL, current: URL, response: aiohttp.ClientResponse, hop: int
    ) -> URL:
        """The next URL of a redirect we follow, or a _Failure saying why not."""
        status = response.status
        location = response.headers.get("Location")
        if not location:
            raise _Failure(
                f"{_host(current)} answered HTTP {status} without a Location",
                retryable=False,
                status=status,
            )
        try:
            target = current.join(URL(location))
            same_origin = target.origin() == origin.origin()
        except ValueError:
            raise _Failure(
                f"{_host(current)} answered HTTP {status} with an invalid Location",
                retryable=False,
                status=status,
            ) from None
        if status not in (307, 308) or not same_origin:
            raise _Failure(
                f"{_host(current)} answered HTTP {status} redirecting to "
                f"{target.scheme}://{_host(target)}; only 307/308 to the same scheme, "
                "host and port are followed",
                retryable=False,
                status=status,
            )
        if hop == MAX_REDIRECTS:
            raise _Failure(
                f"{_host(current)}: more than {MAX_REDIRECTS} redirects",
                retryable=False,
                status=status,
            )
        return target

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            # The connector closes only a resolver it made itself.
            await self._resolver.close()
            self._resolver = None
