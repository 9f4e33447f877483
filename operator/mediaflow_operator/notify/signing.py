"""Standard Webhooks signatures (https://www.standardwebhooks.com/), pure.

A receiver verifies a delivery with any Standard Webhooks library: the signed
content is ``{webhook-id}.{webhook-timestamp}.{body}`` (the exact body bytes),
HMAC-SHA256 with the secret's key, base64, sent as ``v1,<signature>``. Several
secrets give several space-separated signatures, which is how a secret is
rotated without a window where the receiver rejects deliveries: the sender
signs with the old and the new key until every receiver knows the new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SIGNATURE_VERSION = "v1"
# The spec asks for keys of 24 to 64 bytes; a shorter one is refused because a
# short HMAC key is guessable, a longer one does no harm.
MIN_KEY_BYTES = 24

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def _decode_one(token: str, position: int, count: int) -> bytes:
    """The key of one secret; errors name its position, never its value."""
    which = f"signing secret {position} of {count}"
    encoded = token.removeprefix(SECRET_PREFIX)
    if not encoded:
        raise ValueError(f"{which} is empty after the {SECRET_PREFIX!r} prefix")
    # Like the reference libraries, accept base64 whose '=' padding was dropped.
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"{which} is not base64 (expected {SECRET_PREFIX}<base64 of 24 to 64 random bytes>)"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{which} decodes to {len(key)} bytes; Standard Webhooks keys have "
            f"{MIN_KEY_BYTES} to 64 bytes"
        )
    return key


def parse_secrets(text: str) -> list[bytes]:
    """The HMAC keys of one or more whitespace-separated secrets.

    Each secret is ``whsec_<base64>`` or plain base64 (as the reference libraries
    accept). Raises ValueError naming which secret is wrong and why; the message
    never contains a secret.
    """
    tokens = text.split()
    if not tokens:
        raise ValueError("no signing secret: the value is empty or only whitespace")
    return [_decode_one(token, i, len(tokens)) for i, token in enumerate(tokens, start=1)]


def signature_header(secrets: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` per key, space-separated."""
    if not secrets:
        raise ValueError("signature_header needs at least one key")
    if "." in msg_id:
        # The signed content is dot-separated; a dot in the id would make two
        # different (id, timestamp) pairs sign the same content.
        raise ValueError(f"webhook-id {msg_id!r} must not contain '.'")
    content = f"{msg_id}.{timestamp}.".encode() + body
    signatures = (
        base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")
        for key in secrets
    )
    return " ".join(f"{SIGNATURE_VERSION},{signature}" for signature in signatures)


def webhook_headers(
    secrets: list[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt.

    With no keys the delivery is unsigned: only ``webhook-id`` and
    ``webhook-timestamp`` (still useful to a receiver for deduplication).
    """
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}
    if secrets:
        headers[SIGNATURE_HEADER] = signature_header(secrets, msg_id, timestamp, body)
    return headers
