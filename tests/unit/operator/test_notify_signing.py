"""Standard Webhooks signing, checked by the independent reference verifier
(``standardwebhooks``), and the secret parser's errors."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mediaflow_operator.notify.signing import (
    parse_secrets,
    signature_header,
    webhook_headers,
)

pytestmark = pytest.mark.unit

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SECRET_A = "whsec_" + base64.b64encode(KEY_A).decode()
SECRET_B = "whsec_" + base64.b64encode(KEY_B).decode()
BODY = b'{"specversion":"1.0","id":"e1","data":{"k":"v \\u00e9"}}'


def test_one_key_verifies_with_the_reference_library() -> None:
    now = int(time.time())
    headers = webhook_headers([KEY_A], "msg_1", now, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET_A).verify(BODY, headers) == {
        "specversion": "1.0",
        "id": "e1",
        "data": {"k": "v é"},
    }


def test_a_changed_body_or_id_does_not_verify() -> None:
    now = int(time.time())
    headers = webhook_headers([KEY_A], "msg_1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_A).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_A).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_B).verify(BODY, headers)


def test_rotation_a_receiver_that_knows_only_the_new_key_verifies() -> None:
    now = int(time.time())
    keys = parse_secrets(f"{SECRET_A}\n  {SECRET_B}")
    headers = webhook_headers(keys, "msg_1", now, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET_B).verify(BODY, headers)
    Webhook(SECRET_A).verify(BODY, headers)


def test_a_fresh_timestamp_changes_the_signature_not_the_id() -> None:
    first = webhook_headers([KEY_A], "msg_1", 1_700_000_000, BODY)
    second = webhook_headers([KEY_A], "msg_1", 1_700_000_030, BODY)
    assert first["webhook-id"] == second["webhook-id"]
    assert first["webhook-signature"] != second["webhook-signature"]


def test_no_keys_means_unsigned() -> None:
    headers = webhook_headers([], "msg_1", 1_700_000_000, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp"}


def test_signature_header_refuses_a_dotted_id_and_no_keys() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        signature_header([KEY_A], "a.b", 1, BODY)
    with pytest.raises(ValueError, match="at least one key"):
        signature_header([], "a", 1, BODY)


def test_parse_secrets_accepts_prefixed_plain_and_unpadded_base64() -> None:
    unpadded = base64.b64encode(bytes(range(25))).decode().rstrip("=")
    assert unpadded != base64.b64encode(bytes(range(25))).decode()
    plain = base64.b64encode(KEY_B).decode()
    assert parse_secrets(f"{SECRET_A} {plain}\twhsec_{unpadded}") == [
        KEY_A,
        KEY_B,
        bytes(range(25)),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no signing secret"),
        (" \n\t", "no signing secret"),
        ("whsec_", "secret 1 of 1 is empty"),
        (f"{SECRET_A} whsec_not*base64!", "secret 2 of 2 is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
    ],
)
def test_parse_secrets_errors_say_what_is_wrong_without_the_secret(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        parse_secrets(text)
    for token in text.split():
        if token.removeprefix("whsec_"):
            assert token.removeprefix("whsec_") not in str(caught.value)
