"""Refused Job creations: which API answers are refusals, and the backoff of one
Workflow's dispatcher while its Jobs are refused. Pure (no I/O).

A *refusal* is an answer that retrying at once cannot change: 403 Forbidden
(an exhausted ResourceQuota, an admission policy or webhook, a terminating
namespace, a missing permission), 400/422 (the rendered Job is invalid: a spec
problem, the same for every object) and 413 (too large). The events wait in
the queue: they are neither lost nor terminated, because lifting the quota or
fixing the spec makes them succeed. Answers of other kinds (5xx, timeouts,
429) are transient and retried as before.

``AdmissionGate`` holds one *episode*: from the first refusal to the next
create that succeeds. While it lasts the dispatcher makes one probe create per
backoff period (5 s doubling to 5 min), and the Workflow reports it once per
episode or changed message (condition ``JobsAdmitted``, an Event, one log
line), never once per try.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

REFUSAL_STATUSES = frozenset({400, 403, 413, 422})
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 300.0
# Events nak'ed during an episode come back a little before the next probe, so
# the probe's fetch finds them (in stream order) before any newer upload.
NAK_LEAD = 0.8
# Events put back together come back this far apart, in their order. With one
# delay for all, each one's redelivery time is the delay plus its own nak's
# latency, so a nak that was slower by a few ms (the refused probe's, sent
# first) came back after the rest and was created last.
PUT_BACK_SPACING_SECONDS = 0.05


@dataclass(frozen=True)
class Refusal:
    """The API server's refusal of a Job create."""

    code: int  # HTTP status (0: read back from a stored condition)
    message: str  # the API server's message, without the name of the Job


class JobRefused(Exception):
    """A Job create was refused (see ``Refusal``); the event must wait."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"Job creation refused ({refusal.code}): {refusal.message}")
        self.refusal = refusal


def api_message(status: int, body: Any, fallback: str = "") -> str:
    """The ``message`` of a Kubernetes Status body (JSON text), else ``fallback``."""
    try:
        parsed = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return fallback or f"HTTP {status}"


def refusal_of(status: int | None, body: Any, job_name: str = "") -> Refusal | None:
    """The refusal an API answer means, or None when it is not one."""
    if status not in REFUSAL_STATUSES:
        return None
    message = api_message(status, body)
    if job_name:
        # One message per cause, not per object: the Job's name varies by upload.
        message = message.replace(f' "{job_name}"', "").replace(job_name, "<job>")
    return Refusal(code=status, message=message[:1024])


def backoff_seconds(failures: int) -> float:
    """The wait after ``failures`` refusals in a row: 5 s doubling, at most 5 min."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(failures - 1, 16)))


class AdmissionGate:
    """Whether one Workflow's dispatcher may try to create a Job now, and what
    it must report. ``pending_report`` is set when the condition must be
    written (episode started, message changed, episode ended) and cleared by
    the caller once written."""

    def __init__(self) -> None:
        self.refusal: Refusal | None = None
        self.failures = 0
        self.next_try: datetime | None = None
        self.pending_report = False

    @property
    def refused(self) -> bool:
        """Whether an episode is open (the last create was refused)."""
        return self.refusal is not None

    def resume(self, message: str) -> None:
        """Start inside an episode read back from the stored condition (an
        operator restart): try at once, report only when something changes."""
        self.refusal = Refusal(code=0, message=message)
        self.failures = 0
        self.next_try = None

    def allows(self, at: datetime) -> bool:
        """Whether a create may be tried at ``at`` (always, outside an episode)."""
        return self.next_try is None or at >= self.next_try

    def wait_seconds(self, at: datetime) -> float:
        """How long until the next probe (0 when one may be tried now)."""
        if self.next_try is None:
            return 0.0
        return max(0.0, (self.next_try - at).total_seconds())

    def nak_delay(self, at: datetime) -> float:
        """The redelivery delay of events put back during the episode."""
        return self.wait_seconds(at) * NAK_LEAD

    def put_back_delays(self, at: datetime, count: int) -> list[float]:
        """The redelivery delays of ``count`` events put back together, in
        their order: the first just before the next probe, each next one
        ``PUT_BACK_SPACING_SECONDS`` later, so JetStream hands them back in
        the same order whatever each nak's latency was."""
        first = self.nak_delay(at)
        return [first + rank * PUT_BACK_SPACING_SECONDS for rank in range(count)]

    def on_refused(self, refusal: Refusal, at: datetime) -> bool:
        """Record a refusal; True when it must be reported (a new episode or a
        new message, e.g. another cause or a changed quota)."""
        previous = self.refusal
        self.failures += 1
        self.next_try = at + timedelta(seconds=backoff_seconds(self.failures))
        self.refusal = refusal
        news = previous is None or previous.message != refusal.message
        self.pending_report = self.pending_report or news
        return news

    def on_admitted(self) -> bool:
        """Record a successful create; True when it ends an episode."""
        if self.refusal is None:
            return False
        self.refusal = None
        self.failures = 0
        self.next_try = None
        self.pending_report = True
        return True
