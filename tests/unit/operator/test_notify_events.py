"""The notification builders: CloudEvents attributes, deterministic ids, the order
of events per object, data taken faithfully from the manifest, and events the
CloudEvents SDK reads back unchanged in structured and binary mode."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pytest
from cloudevents.core.bindings.http import from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from mediaflow_api import notification as n
from mediaflow_api.job import WorkflowRef
from mediaflow_operator.notify import events, webhook
from mediaflow_operator.notify.events import Notification, ObjectFacts
from tests.support import notification_samples as samples

pytestmark = pytest.mark.unit

FACTS = samples.FACTS
MANIFEST = samples.MANIFEST
AT = samples.FINISHED_AT
Outcome = Literal["succeeded", "failed", "superseded"]


def _finished(
    facts: ObjectFacts = FACTS,
    *,
    outcome: Outcome = "succeeded",
    reason: str = "Succeeded",
    message: str = "",
    manifest: dict[str, Any] | None = MANIFEST,
    location: tuple[str, str] | None = samples.MANIFEST_LOCATION,
) -> list[Notification]:
    return events.finished_events(
        facts,
        outcome=outcome,
        reason=reason,
        message=message,
        finished_at=AT,
        manifest=manifest,
        manifest_location=location,
    )


def _all_kinds() -> list[Notification]:
    """Every kind of event, with and without a manifest."""
    made = [events.accepted_event(FACTS), *_finished()]
    made += _finished(manifest=None, location=None)
    made += _finished(outcome="failed", reason="BadInput", manifest=samples.FAILED_MANIFEST)
    made += _finished(outcome="failed", reason="OOMKilled", manifest=None, location=None)
    made += _finished(outcome="superseded", reason="Superseded", manifest=None, location=None)
    return made


# --- attributes -----------------------------------------------------------------


def test_accepted_event_attributes() -> None:
    note = events.accepted_event(FACTS)
    event = note.event
    assert note.kind == "Accepted"
    assert note.id == event["id"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "dev.mediaflow.object.accepted"
    assert event["source"] == "/apis/mediaflow.dev/v1alpha1/namespaces/media/workflows/vod"
    assert event["subject"] == "uploads/incoming/2026/launch.mp4"
    assert event["time"] == "2026-11-26T21:03:12Z"
    assert event["datacontenttype"] == "application/json"
    assert event["dataschema"] == "https://mediaflow.dev/schemas/notification-data.v1.json"
    assert event["traceparent"] == FACTS.traceparent
    data = event["data"]
    assert data["outcome"] == "accepted"
    assert data["workflow"] == {
        "namespace": "media",
        "name": "vod",
        "uid": FACTS.workflow.uid,
        "generation": 4,
    }
    assert data["input"] == {
        "bucket": "uploads",
        "key": "incoming/2026/launch.mp4",
        "etag": FACTS.etag,
        "size": FACTS.size,
    }
    assert data["job"] == {"name": FACTS.job_name, "uid": FACTS.job_uid}
    assert data["timings"] == {
        "uploadedAt": "2026-11-26T21:03:11.482000Z",
        "acceptedAt": "2026-11-26T21:03:12Z",
    }
    for absent in ("outputs", "tasks", "task", "error", "manifest", "outputCount"):
        assert absent not in data


def test_accepted_needs_to_know_when() -> None:
    with pytest.raises(ValueError, match="accepted_at"):
        events.accepted_event(dataclasses.replace(FACTS, accepted_at=None))


def test_times_are_utc_rfc3339_whatever_zone_they_come_in() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 26, 23, 3, 12, tzinfo=plus_two)
    event = events.accepted_event(dataclasses.replace(FACTS, accepted_at=local)).event
    assert event["time"] == "2026-11-26T21:03:12Z"
    assert event["data"]["timings"]["acceptedAt"] == "2026-11-26T21:03:12Z"
    assert events.rfc3339(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


def test_version_id_and_unknowns_are_absent_not_empty() -> None:
    facts = dataclasses.replace(FACTS, etag="", size=None, version_id="", job_uid="")
    data = events.accepted_event(facts).event["data"]
    assert data["input"] == {"bucket": "uploads", "key": "incoming/2026/launch.mp4"}
    assert data["job"] == {"name": FACTS.job_name}
    versioned = dataclasses.replace(FACTS, version_id="3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
    assert events.accepted_event(versioned).event["data"]["input"]["versionId"] == (
        "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    )


# --- ids ------------------------------------------------------------------------------


def test_ids_are_stable_across_calls() -> None:
    first = [note.id for note in _all_kinds()]
    again = [note.id for note in _all_kinds()]
    assert first == again
    for value in first:
        assert uuid.UUID(value).version == 5


def test_ids_differ_across_types_tasks_and_jobs() -> None:
    succeeded = _finished()
    ids = [events.accepted_event(FACTS).id] + [note.id for note in succeeded]
    ids += [_finished(outcome="failed", reason="BadInput", manifest=None, location=None)[-1].id]
    ids += [_finished(outcome="superseded", manifest=None, location=None)[-1].id]
    assert len(ids) == len(set(ids)) == 6  # accepted, 2 tasks, succeeded, failed, superseded
    other_job = dataclasses.replace(FACTS, job_uid="6e2d3c9f-1a5b-4f4c-9b3e-7d8f0a2b3c4d")
    other = [events.accepted_event(other_job).id] + [note.id for note in _finished(other_job)]
    assert not set(other) & set(ids)


def test_ids_do_not_depend_on_what_may_change_between_publishes() -> None:
    # A re-publish after a crash may see a later time or a re-read manifest.
    later = events.finished_events(
        FACTS,
        outcome="succeeded",
        reason="Succeeded",
        message="",
        finished_at=AT + timedelta(minutes=3),
        manifest=MANIFEST,
        manifest_location=samples.MANIFEST_LOCATION,
    )
    assert [note.id for note in later] == [note.id for note in _finished()]


# --- order and content of finished events --------------------------------------------


def test_task_events_in_task_order_then_the_object_event() -> None:
    made = _finished()
    assert [note.kind for note in made] == ["TaskFinished", "TaskFinished", "Succeeded"]
    assert [note.event["data"]["task"]["name"] for note in made[:-1]] == ["web-720p", "posters"]
    assert made[-1].event["type"] == "dev.mediaflow.object.succeeded"
    assert {note.event["time"] for note in made} == {"2026-11-26T21:04:40Z"}


def test_outputs_match_the_manifest_entries() -> None:
    final = _finished()[-1].event["data"]
    entries = [(t["name"], o) for t in MANIFEST["tasks"] for o in t["outputs"]]
    assert len(final["outputs"]) == len(entries) == final["outputCount"] == 4
    for sent, (task, entry) in zip(final["outputs"], entries, strict=True):
        assert sent["task"] == task
        assert sent["bucket"] == "media"
        assert sent["key"] == entry["key"]
        assert sent["size"] == entry["size"]
        assert sent["contentType"] == entry["contentType"]
    video = final["outputs"][0]
    assert (video["duration"], video["width"], video["height"]) == (94.08, 1280, 720)
    assert (video["videoCodec"], video["audioCodec"]) == ("h264", "aac")
    assert "details" not in video
    poster = final["outputs"][2]
    assert poster["details"] == {"time": 47.04}
    assert (poster["width"], poster["height"]) == (640, 360)
    assert final["tasks"] == [
        {
            "name": "web-720p",
            "type": "transcode",
            "status": "succeeded",
            "seconds": 71.305,
            "outputs": 1,
        },
        {
            "name": "posters",
            "type": "snapshot",
            "status": "succeeded",
            "seconds": 2.118,
            "outputs": 3,
        },
    ]
    assert final["manifest"] == {"bucket": "media", "key": samples.MANIFEST_LOCATION[1]}
    assert final["timings"]["startedAt"] == "2026-11-26T21:03:15Z"
    assert final["timings"]["finishedAt"] == "2026-11-26T21:04:40Z"
    assert final["timings"]["seconds"] == 81.942


def test_a_task_event_carries_its_own_outputs_only() -> None:
    posters = _finished()[1].event["data"]
    assert posters["outcome"] == "succeeded"
    assert posters["task"]["name"] == "posters"
    assert [o["key"] for o in posters["outputs"]] == [
        o["key"] for o in MANIFEST["tasks"][1]["outputs"]
    ]
    assert posters["outputCount"] == 3
    assert "tasks" not in posters


def test_a_skipped_task_says_why() -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["tasks"].append(
        {
            "name": "preview",
            "type": "animatedImage",
            "status": "skipped",
            "seconds": 0.004,
            "outputs": [],
            "reason": "the input has no video stream",
        }
    )
    made = _finished(manifest=manifest)
    skipped = made[2].event["data"]
    assert skipped["outcome"] == "skipped"
    assert skipped["task"]["reason"] == "the input has no video stream"
    assert skipped["outputs"] == []
    assert made[-1].event["data"]["tasks"][-1]["status"] == "skipped"


def test_failed_carries_code_and_message() -> None:
    made = _finished(
        outcome="failed",
        reason="BadInput",
        message="ffprobe: moov atom not found",
        manifest=samples.FAILED_MANIFEST,
    )
    assert [note.kind for note in made] == ["Failed"]  # a failed run has no task results
    data = made[0].event["data"]
    assert made[0].event["type"] == "dev.mediaflow.object.failed"
    assert data["outcome"] == "failed"
    assert data["error"] == {"code": "BadInput", "message": "ffprobe: moov atom not found"}
    assert "outputs" not in data
    assert data["manifest"]["key"].endswith("manifest.json")


def test_failed_without_manifest_uses_the_jobs_reason() -> None:
    (note,) = _finished(
        outcome="failed",
        reason="OOMKilled",
        message="the worker ran out of memory (limit 2Gi)",
        manifest=None,
        location=None,
    )
    data = note.event["data"]
    assert data["error"] == {
        "code": "OOMKilled",
        "message": "the worker ran out of memory (limit 2Gi)",
    }
    assert "manifest" not in data
    assert "startedAt" not in data["timings"]


def test_the_manifest_fills_in_a_missing_reason() -> None:
    (note,) = _finished(outcome="failed", reason="", message="", manifest=samples.FAILED_MANIFEST)
    assert note.event["data"]["error"] == {
        "code": "BadInput",
        "message": samples.FAILED_MANIFEST["error"]["message"],
    }
    # Nothing known at all: still a code, so a receiver can always switch on it.
    (bare,) = _finished(outcome="failed", reason="", manifest=None, location=None)
    assert bare.event["data"]["error"] == {"code": "Failed", "message": ""}


def test_superseded_without_manifest() -> None:
    (note,) = _finished(outcome="superseded", reason="Superseded", manifest=None, location=None)
    data = note.event["data"]
    assert note.kind == "Superseded"
    assert note.event["type"] == "dev.mediaflow.object.superseded"
    assert data["outcome"] == "superseded"
    for absent in ("outputs", "tasks", "error", "manifest"):
        assert absent not in data


def test_a_manifest_of_another_version_is_ignored() -> None:
    older = copy.deepcopy(MANIFEST)
    older["input"]["etag"] = "0000aaaa1111bbbb2222cccc3333dddd"
    (note,) = _finished(outcome="failed", reason="OOMKilled", manifest=older)
    data = note.event["data"]
    assert "manifest" not in data
    assert "startedAt" not in data["timings"]
    # A success with a stale manifest reports no outputs rather than the old ones.
    (final,) = _finished(manifest=older)
    assert final.event["data"]["outputs"] == []
    assert events.manifest_matches(MANIFEST, FACTS)
    assert not events.manifest_matches(MANIFEST, dataclasses.replace(FACTS, key="other.mp4"))
    assert events.manifest_matches(MANIFEST, dataclasses.replace(FACTS, etag=""))


def test_succeeded_without_manifest_still_sends_the_object_event() -> None:
    (note,) = _finished(manifest=None, location=None)
    data = note.event["data"]
    assert note.kind == "Succeeded"
    assert data["outputs"] == []
    assert data["outputCount"] == 0


def test_a_manifest_with_outputs_needs_its_location() -> None:
    with pytest.raises(ValueError, match="location"):
        _finished(location=None)


def test_outputs_are_capped_and_media_outputs_win() -> None:
    segments = [
        {"key": f"o/hls/stream_0/seg_{i:05d}.ts", "size": 1000, "contentType": "video/mp2t"}
        for i in range(250)
    ]
    playlist = {
        "key": "o/hls/stream_0.m3u8",
        "size": 300,
        "contentType": "application/vnd.apple.mpegurl",
        "renditions": [{"width": 1280, "height": 720, "videoBitrate": "3000k"}],
        "codec": "h264",
    }
    manifest = copy.deepcopy(MANIFEST)
    manifest["tasks"] = [
        {
            "name": "hls",
            "type": "adaptiveStreaming",
            "status": "succeeded",
            "seconds": 40.0,
            "outputs": [*segments, playlist],
        }
    ]
    task_event, final = _finished(manifest=manifest)
    for data in (task_event.event["data"], final.event["data"]):
        assert data["outputCount"] == 251
        assert len(data["outputs"]) == n.OUTPUTS_MAX
        keys = [o["key"] for o in data["outputs"]]
        assert keys[-1] == playlist["key"]  # kept, and still in manifest order
        assert keys[:-1] == [s["key"] for s in segments[: n.OUTPUTS_MAX - 1]]
    assert task_event.event["data"]["task"]["outputs"] == 251
    assert len(json.dumps(final.event)) < 64 * 1024


# --- context, correlation, trace --------------------------------------------------------


def test_context_over_the_limit_is_cut() -> None:
    exact = "é" * n.CONTEXT_MAX
    data = events.accepted_event(dataclasses.replace(FACTS, context=exact)).event["data"]
    assert data["context"] == exact
    long = "a" * n.CONTEXT_MAX + "TAIL"
    for note in [events.accepted_event(dataclasses.replace(FACTS, context=long))]:
        assert note.event["data"]["context"] == "a" * n.CONTEXT_MAX
    final = _finished(dataclasses.replace(FACTS, context=long))[-1]
    assert len(final.event["data"]["context"]) == n.CONTEXT_MAX


def test_context_and_correlation_pass_through() -> None:
    data = events.accepted_event(FACTS).event["data"]
    assert data["context"] == FACTS.context
    assert data["correlationId"] == "upload-7f3e-2026-11-26"


def test_correlation_id_falls_back_to_the_job_name() -> None:
    facts = dataclasses.replace(FACTS, correlation_id="", context="")
    for note in [events.accepted_event(facts), *_finished(facts)]:
        assert note.event["data"]["correlationId"] == FACTS.job_name
        assert note.event["data"]["context"] == ""


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-trace",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # unknown version
    ],
)
def test_a_malformed_traceparent_is_left_out(bad: str) -> None:
    facts = dataclasses.replace(FACTS, traceparent=bad)
    for note in [events.accepted_event(facts), *_finished(facts)]:
        assert "traceparent" not in note.event


def test_a_valid_traceparent_is_on_every_event() -> None:
    for note in _all_kinds():
        assert note.event["traceparent"] == FACTS.traceparent


def test_source_uses_the_workflow() -> None:
    wf = WorkflowRef(namespace="team-a", name="podcasts")
    assert (
        events.source_of(wf) == "/apis/mediaflow.dev/v1alpha1/namespaces/team-a/workflows/podcasts"
    )


# --- schema and CloudEvents SDK ------------------------------------------------------------


def test_every_kind_validates_against_the_published_schema() -> None:
    validator = samples.event_validator()
    made = _all_kinds()
    assert {note.kind for note in made} == set(n.EVENT_TYPES)
    for note in made:
        errors = [e.message for e in validator.iter_errors(note.event)]
        assert errors == [], (note.kind, errors)
        assert note.event["type"] == n.EVENT_TYPES[note.kind]
    bare = dataclasses.replace(
        FACTS, etag="", size=None, job_uid="", traceparent="", context="", uploaded_at=None
    )
    for note in [events.accepted_event(bare), *_finished(bare, manifest=None, location=None)]:
        assert [e.message for e in validator.iter_errors(note.event)] == []


def _sdk_event(event: dict[str, Any]) -> CloudEvent:
    parsed = JSONFormat().read(CloudEvent, json.dumps(event))
    assert isinstance(parsed, CloudEvent)
    return parsed


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_the_cloudevents_sdk_reads_every_event_back(mode: str) -> None:
    fmt = JSONFormat()
    for note in _all_kinds():
        sent = _sdk_event(note.event)
        message = to_structured(sent, fmt) if mode == "structured" else to_binary(sent, fmt)
        if mode == "binary":
            assert message.headers["ce-id"] == note.id
            assert message.headers["content-type"] == "application/json"
            assert json.loads(message.body) == note.event["data"]
        got = from_http(message, fmt, CloudEvent)
        assert got.get_id() == note.id
        assert got.get_type() == note.event["type"]
        assert got.get_source() == note.event["source"]
        assert got.get_subject() == note.event["subject"]
        assert got.get_specversion() == "1.0"
        assert got.get_dataschema() == n.DATA_SCHEMA_URL
        assert got.get_time() == datetime.fromisoformat(note.event["time"].replace("Z", "+00:00"))
        assert got.get_time().tzinfo is not None
        assert got.get_extension("traceparent") == note.event["traceparent"]
        assert got.get_data() == note.event["data"]


def test_the_sdk_writes_our_structured_event_back_unchanged() -> None:
    for note in _all_kinds():
        written = json.loads(JSONFormat().write(_sdk_event(note.event)))
        assert written == note.event


def test_the_sdk_refuses_what_we_would_never_send() -> None:
    # Proof that the parse above checks something: a broken event is refused.
    broken = copy.deepcopy(events.accepted_event(FACTS).event)
    broken["specversion"] = "2.0"
    with pytest.raises(Exception, match="specversion"):
        _sdk_event(broken)


def test_the_webhook_sender_encodes_every_event() -> None:
    for note in _all_kinds():
        _, body = webhook.encode_event(note.event, binary=False)
        assert json.loads(body) == note.event
        headers, body = webhook.encode_event(note.event, binary=True)
        assert headers["ce-id"] == note.id
        assert json.loads(body) == note.event["data"]
