"""Publishing a notification to a NATS subject: the operator's own NATS, or
another server named by a Secret of the Workflow's namespace.

The message is the structured-mode CloudEvent (``Content-Type:
application/cloudevents+json``, the NATS protocol binding of CloudEvents) with
``Nats-Msg-Id`` set to the event id, so a JetStream stream on the subject drops a
redelivered one. A publish counts as delivered once the server confirmed it
(flush): NATS keeps nothing for absent subscribers unless a stream covers the
subject, which is the receiver's choice.

Subjects the operator itself uses (the events subject, the outbox, inboxes,
``$``-APIs) are refused on the operator's NATS: a Workflow author must not be
able to forge upload events or another Workflow's notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NATS

from mediaflow_operator.notify.egress import EgressPolicy, EgressRefused, check_host
from mediaflow_operator.notify.webhook import AttemptResult
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.settings import Settings

PUBLISH_TIMEOUT_SECONDS = 10
RESERVED_PREFIXES = ("_INBOX.", "$")


def reserved_subject(subject: str, settings: Settings) -> str | None:
    """Why ``subject`` may not be published to on the operator's NATS, or None."""
    own = (settings.nats_subject, settings.nats_work_subject_prefix, settings.notify_subject_prefix)
    for name in own:
        if subject == name or subject.startswith(name + ".") or name.startswith(subject + "."):
            return f"subject {subject!r} overlaps the operator's own subject {name!r}"
    if subject.startswith(RESERVED_PREFIXES):
        return f"subject {subject!r} is reserved by NATS"
    return None


@dataclass(frozen=True)
class ServerSecret:
    """Another NATS server, as read from a Secret (values never logged)."""

    url: str
    user: str = ""
    password: str = ""
    token: str = ""
    ca_pem: str = ""
    version: str = ""  # the Secret's resourceVersion: a change reconnects


class NatsPublisher:
    """Publishes CloudEvents to subjects; one connection per external server."""

    def __init__(self, rt: Runtime, policy: EgressPolicy) -> None:
        self.rt = rt
        self.policy = policy
        self._external: dict[tuple[str, str], tuple[str, NATS]] = {}

    async def publish(
        self,
        subject: str,
        event: dict[str, object],
        msg_id: str,
        server: ServerSecret | None,
        *,
        secret_key: tuple[str, str] | None = None,
    ) -> AttemptResult:
        """One publish attempt; never raises."""
        started = time.monotonic()
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/cloudevents+json", "Nats-Msg-Id": msg_id}
        try:
            if server is None:
                reason = reserved_subject(subject, self.rt.settings)
                if reason:
                    return AttemptResult(False, None, False, reason, 0.0)
                nc = await self.rt.nats()
            else:
                assert secret_key is not None
                nc = await self._connect(secret_key, server)
            await nc.publish(subject, body, headers=headers)
            await nc.flush(timeout=PUBLISH_TIMEOUT_SECONDS)
        except (EgressRefused, _BadServer) as exc:  # never better on a retry
            return AttemptResult(False, None, False, str(exc), time.monotonic() - started)
        except Exception as exc:
            message = f"NATS publish to {subject!r} failed: {type(exc).__name__}: {exc}"[:300]
            return AttemptResult(False, None, True, message, time.monotonic() - started)
        return AttemptResult(True, None, False, "published", time.monotonic() - started)

    async def _connect(self, key: tuple[str, str], server: ServerSecret) -> NATS:
        cached = self._external.get(key)
        if cached is not None and cached[0] == server.version and not cached[1].is_closed:
            return cached[1]
        if cached is not None:
            await _close(cached[1])
        parts = urlsplit(server.url)
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise PermissionError(
                f"NATS server URL must be nats:// or tls://host:port, not {parts.scheme}://"
            )
        await check_host(parts.hostname, parts.port or 4222, self.policy)
        tls = None
        if parts.scheme == "tls" or server.ca_pem:
            tls = ssl.create_default_context()
            if server.ca_pem:
                tls.load_verify_locations(cadata=server.ca_pem)
        options: dict[str, object] = {}
        if server.user:
            options.update(user=server.user, password=server.password)
        if server.token:
            options["token"] = server.token
        nc = await nats.connect(
            server.url,
            name="mediaflow-notifications",
            connect_timeout=5,
            allow_reconnect=True,
            max_reconnect_attempts=3,
            tls=tls,
            **options,
        )
        self._external[key] = (server.version, nc)
        return nc

    async def close(self) -> None:
        for _, nc in self._external.values():
            await _close(nc)
        self._external.clear()


class _BadServer(Exception):
    """The Secret names a server mediaflow cannot use."""


async def _close(nc: NATS) -> None:
    with contextlib.suppress(Exception):  # closing anyway
        await asyncio.wait_for(nc.close(), 5)
