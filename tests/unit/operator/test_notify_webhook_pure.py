"""The pure parts of a webhook attempt: retry timing, Retry-After, encoding."""

from __future__ import annotations

import random

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from mediaflow_operator.notify.webhook import (
    WebhookTarget,
    encode_event,
    parse_retry_after,
    retry_delay,
)

pytestmark = pytest.mark.unit

EVENT = {
    "specversion": "1.0",
    "id": "0b4c3c1e-0000-5000-8000-000000000001",
    "type": "dev.mediaflow.object.succeeded",
    "source": "/apis/mediaflow.dev/v1alpha1/namespaces/ns/workflows/wf",
    "subject": "bucket/in/a b.mp4",
    "time": "2026-11-26T21:00:00Z",
    "datacontenttype": "application/json",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "data": {"outputs": ["x.mp4"], "context": "é"},
}


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 20, 1000])
def test_retry_delay_is_within_the_upper_half_of_its_capped_step(attempt: int) -> None:
    rng = random.Random(attempt)
    step = min(300.0, 2.0 ** (attempt - 1))
    delays = [retry_delay(attempt, rng=rng) for _ in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert len(set(delays)) > 100  # jittered, not one value


def test_retry_delay_grows_until_the_cap() -> None:
    rng = random.Random(1)
    assert retry_delay(1, base=2.0, cap=10.0, rng=rng) <= 2.0
    assert retry_delay(4, base=2.0, cap=10.0, rng=rng) >= 5.0
    assert retry_delay(50, base=2.0, cap=10.0, rng=rng) <= 10.0
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(0)


def test_retry_delay_honours_retry_after_up_to_the_cap() -> None:
    rng = random.Random(3)
    assert retry_delay(1, rng=rng, retry_after=42.0) == 42.0
    assert retry_delay(1, rng=rng, retry_after=3600.0) == 300.0
    assert 0.5 <= retry_delay(1, rng=rng, retry_after=0.0) <= 1.0


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now) == 100.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0
    # 1_700_000_000 is 22:13:20 UTC.
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) is None


def test_structured_encoding_round_trips_through_the_sdk() -> None:
    headers, body = encode_event(EVENT, binary=False)
    assert headers["content-type"] == "application/cloudevents+json"
    assert headers["traceparent"] == EVENT["traceparent"]
    event = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
    assert event.get_id() == EVENT["id"]
    assert event.get_subject() == "bucket/in/a b.mp4"
    assert event.get_data() == EVENT["data"]


def test_binary_encoding_round_trips_through_the_sdk() -> None:
    headers, body = encode_event(EVENT, binary=True)
    assert headers["content-type"] == "application/json"
    assert headers["ce-type"] == "dev.mediaflow.object.succeeded"
    event = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
    assert event.get_subject() == "bucket/in/a b.mp4"
    assert event.get_extension("traceparent") == EVENT["traceparent"]
    assert event.get_data() == EVENT["data"]


def test_an_invalid_event_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a valid CloudEvent"):
        encode_event({"specversion": "1.0", "id": "x"}, binary=False)


def test_target_repr_hides_secrets() -> None:
    target = WebhookTarget(url="https://h/x", secrets=[b"s3cr3t-key-bytes"], ca_pem="PEM")
    assert "s3cr3t" not in repr(target)
