from __future__ import annotations

import json

import pytest

from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.matching import Verdict, decide
from mediaflow_operator.s3_events import BadEvent, parse_message

from .samples import spec

pytestmark = pytest.mark.unit

SPEC = WorkflowSpec.model_validate(spec())


def _verdict(
    key: str,
    bucket: str = "uploads",
    meta: dict[str, str] | None = None,
    event: str = "s3:ObjectCreated:Put",
) -> Verdict:
    return decide(
        SPEC, bucket=bucket, key=key, size=1, user_metadata=meta, event_name=event
    ).verdict


@pytest.mark.parametrize(
    ("key", "verdict"),
    [
        ("incoming/a.mp4", Verdict.PROCESS),
        ("incoming/UPPER.MP4", Verdict.PROCESS),
        ("incoming/deep/er/x.Mov", Verdict.PROCESS),
        ("incoming/notes.txt", Verdict.SKIP),
        ("incoming/folder/", Verdict.SKIP),
        ("incoming/a.mp4.mediaflow/thumbs/1.mp4", Verdict.IGNORE),
        ("other/a.mp4", Verdict.IGNORE),
        ("incominga.mp4", Verdict.IGNORE),
    ],
)
def test_keys(key: str, verdict: Verdict) -> None:
    assert _verdict(key) is verdict


def test_other_bucket_and_non_create_events_are_ignored() -> None:
    assert _verdict("incoming/a.mp4", bucket="media") is Verdict.IGNORE
    assert _verdict("incoming/a.mp4", event="s3:ObjectRemoved:Delete") is Verdict.IGNORE


@pytest.mark.parametrize(
    "event",
    [
        "s3:ObjectCreated:PutTagging",
        "s3:ObjectCreated:DeleteTagging",
        "s3:ObjectCreated:PutRetention",
        "s3:ObjectCreated:PutLegalHold",
        "s3:ObjectAccessed:Get",
    ],
)
def test_changes_that_are_not_new_content_are_ignored(event: str) -> None:
    assert _verdict("incoming/a.mp4", event=event) is Verdict.IGNORE


@pytest.mark.parametrize(
    "event",
    [
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
    ],
)
def test_new_content_is_processed(event: str) -> None:
    assert _verdict("incoming/a.mp4", event=event) is Verdict.PROCESS


@pytest.mark.parametrize(
    "name", ["X-Amz-Meta-Mediaflow-Output", "mediaflow-output", "x-amz-meta-mediaflow-output"]
)
def test_our_output_is_never_processed(name: str) -> None:
    assert _verdict("incoming/out.mp4", meta={name: "true"}) is Verdict.IGNORE


def test_no_suffixes_means_every_key() -> None:
    everything = WorkflowSpec.model_validate(spec(trigger={"bucket": "uploads"}))
    assert (
        decide(everything, bucket="uploads", key="x.bin", size=3, user_metadata={}).verdict
        is Verdict.PROCESS
    )


def _minio_message(key_escaped: str, **obj: object) -> bytes:
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "uploads"},
            "object": {
                "key": key_escaped,
                "size": 5,
                "eTag": "abc",
                "userMetadata": {"X-Amz-Meta-A": "1"},
                **obj,
            },
        },
    }
    return json.dumps(
        {"EventName": "s3:ObjectCreated:Put", "Key": "uploads/x", "Records": [record]}
    ).encode()


def test_minio_query_escaped_keys_are_decoded() -> None:
    [event] = parse_message(_minio_message("incoming%2Fwith+space+and%2Bplus+%C3%BC.mp4"))
    assert event.obj.key == "incoming/with space and+plus ü.mp4"
    assert event.obj.bucket == "uploads"
    assert event.obj.etag == "abc"
    assert event.obj.size == 5
    assert event.user_metadata == {"X-Amz-Meta-A": "1"}
    assert event.is_create


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[]",
        b"{}",
        b'{"Records": []}',
        b'{"Records": [{"s3": {}}]}',
        b"\xff\xfe",
        b'{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}',
    ],
)
def test_poison_messages_raise_bad_event(data: bytes) -> None:
    with pytest.raises(BadEvent):
        parse_message(data)
