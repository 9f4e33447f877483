"""Refused Job creations: what counts as a refusal, the backoff, and the
episode logic that reports once per episode instead of once per try."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from mediaflow_operator.admission import (
    BACKOFF_MAX_SECONDS,
    AdmissionGate,
    Refusal,
    backoff_seconds,
    refusal_of,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUOTA = (
    'jobs.batch "mf-videos-abc" is forbidden: exceeded quota: q, requested: '
    "count/jobs.batch=1, used: count/jobs.batch=0, limited: count/jobs.batch=0"
)


def _body(message: str) -> str:
    return json.dumps({"kind": "Status", "status": "Failure", "message": message})


def test_forbidden_invalid_and_too_large_are_refusals_and_the_rest_is_transient() -> None:
    for code in (400, 403, 413, 422):
        assert refusal_of(code, _body("no")) == Refusal(code, "no")
    for code in (None, 404, 409, 429, 500, 503):
        assert refusal_of(code, _body("no")) is None


def test_the_refusal_message_is_the_api_servers_without_the_job_name() -> None:
    refusal = refusal_of(403, _body(QUOTA), "mf-videos-abc")
    assert refusal is not None
    assert refusal.message.startswith("jobs.batch is forbidden: exceeded quota: q")
    assert "mf-videos-abc" not in refusal.message
    # Two uploads refused for the same cause give the same message.
    other = refusal_of(403, _body(QUOTA.replace("abc", "xyz")), "mf-videos-xyz")
    assert other == refusal
    # A body that is not a Status still gives a message.
    assert refusal_of(422, "garbage") == Refusal(422, "HTTP 422")


def test_backoff_doubles_from_five_seconds_up_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in range(0, 8)] == [0, 5, 10, 20, 40, 80, 160, 300]
    assert backoff_seconds(1000) == BACKOFF_MAX_SECONDS


def test_an_episode_is_reported_when_it_starts_changes_and_ends_not_per_try() -> None:
    gate = AdmissionGate()
    assert gate.allows(T0)
    assert not gate.refused
    assert not gate.pending_report
    quota = Refusal(403, "exceeded quota")
    assert gate.on_refused(quota, T0) is True
    assert gate.pending_report
    gate.pending_report = False  # written
    # One probe per backoff period: closed until 5 s, then 10 s after the next refusal.
    assert not gate.allows(T0 + timedelta(seconds=4))
    assert gate.wait_seconds(T0) == 5
    assert gate.allows(T0 + timedelta(seconds=5))
    assert gate.on_refused(quota, T0 + timedelta(seconds=5)) is False
    assert not gate.pending_report  # same message: nothing new to report
    assert not gate.allows(T0 + timedelta(seconds=14))
    assert gate.allows(T0 + timedelta(seconds=15))
    # Another cause (or a changed quota) is news.
    assert gate.on_refused(Refusal(403, "denied by policy"), T0 + timedelta(seconds=15))
    assert gate.pending_report
    gate.pending_report = False
    # The first create that succeeds ends the episode, once.
    assert gate.on_admitted() is True
    assert gate.pending_report
    assert not gate.refused
    assert gate.allows(T0)
    gate.pending_report = False
    assert gate.on_admitted() is False
    assert not gate.pending_report
    # A new episode starts over at 5 s.
    gate.on_refused(quota, T0 + timedelta(seconds=100))
    assert gate.wait_seconds(T0 + timedelta(seconds=100)) == 5


def test_events_put_back_come_back_before_the_next_probe() -> None:
    gate = AdmissionGate()
    gate.on_refused(Refusal(403, "quota"), T0)
    assert 0 < gate.nak_delay(T0) < gate.wait_seconds(T0)


def test_events_put_back_together_come_back_in_their_order_whatever_each_naks_latency() -> None:
    gate = AdmissionGate()
    gate.on_refused(Refusal(403, "quota"), T0)
    delays = gate.put_back_delays(T0, 6)
    assert delays[0] == gate.nak_delay(T0)
    # Each comes back later than the one before by more than a slow nak's latency
    # (the refused probe's nak, sent first, once came back after the five others).
    gaps = [later - earlier for earlier, later in itertools.pairwise(delays)]
    assert all(round(gap, 6) >= 0.05 for gap in gaps), delays
    # ... and all before the next probe.
    assert delays[-1] < gate.wait_seconds(T0)


def test_a_restarted_dispatcher_inside_an_episode_tries_at_once_and_reports_only_news() -> None:
    gate = AdmissionGate()
    gate.resume("exceeded quota")
    assert gate.refused
    assert gate.allows(T0)
    assert not gate.pending_report
    assert gate.on_refused(Refusal(403, "exceeded quota"), T0) is False
    assert gate.on_admitted() is True
