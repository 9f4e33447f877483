"""Parse the S3 event messages MinIO publishes to NATS.

MinIO's payload is ``{"EventName", "Key": "<bucket>/<key>", "Records": [...]}``
with one S3 event record per object. In a record the object key is Go's
``url.QueryEscape`` of the real key (space -> ``+``), so it is decoded with
``unquote_plus``. Anything that does not parse is a *poison* message: the
dispatcher terminates it with the reason from ``BadEvent``. The record's
``eventTime`` (when MinIO saw the upload) is kept for the upload-to-Job
latency metric; a missing or malformed one is no reason to drop the event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_plus

from mediaflow_api.job import ObjectRef


class BadEvent(ValueError):
    """The message is not an S3 event we understand; retrying cannot help."""


@dataclass(frozen=True)
class ObjectEvent:
    """One object event: which object version, what happened, its user
    metadata, and when it happened (None when the record does not say)."""

    event_name: str
    obj: ObjectRef
    user_metadata: dict[str, str] = field(default_factory=dict)
    event_time: datetime | None = None
    # MinIO's ``sequencer``: tells apart two events of the same object version
    # (an upload repeated), and is the same when MinIO sends one event twice.
    sequencer: str = ""

    @property
    def is_create(self) -> bool:
        return self.event_name.startswith("s3:ObjectCreated:")


def parse_message(data: bytes) -> list[ObjectEvent]:
    """All records of one message; raises ``BadEvent`` for anything malformed."""
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadEvent("not a JSON object")
    records = payload.get("Records")
    if not isinstance(records, list) or not records:
        raise BadEvent("no Records")
    return [_parse_record(record) for record in records]


def _parse_record(record: object) -> ObjectEvent:
    if not isinstance(record, dict):
        raise BadEvent("record is not an object")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
        event_name = record.get("eventName", "")
    except (KeyError, TypeError) as exc:
        raise BadEvent(f"record lacks {exc}") from None
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        raise BadEvent("record has no bucket or key")
    metadata = obj.get("userMetadata") or {}
    if not isinstance(metadata, dict):
        raise BadEvent("userMetadata is not an object")
    size = obj.get("size")
    return ObjectEvent(
        event_name=str(event_name),
        obj=ObjectRef(
            bucket=bucket,
            key=unquote_plus(raw_key),
            etag=str(obj.get("eTag") or "").strip('"'),
            versionId=str(obj.get("versionId") or ""),
            size=size if isinstance(size, int) else None,
        ),
        user_metadata={str(k): str(v) for k, v in metadata.items()},
        event_time=_event_time(record.get("eventTime")),
        sequencer=str(obj.get("sequencer") or ""),
    )


def _event_time(value: object) -> datetime | None:
    """``eventTime`` (RFC 3339, e.g. ``2026-01-01T00:00:00.123Z``) as an aware
    datetime; None when absent or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
