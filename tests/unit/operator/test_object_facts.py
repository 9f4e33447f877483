"""The upload's facts on its Job: W3C trace context, pass-through context,
correlation id (object_facts), rendered onto the Job and read back (JobView)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mediaflow_api.job import TRACEPARENT_ENV, ObjectRef, WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import naming
from mediaflow_operator.job_render import plan_job
from mediaflow_operator.job_views import job_view
from mediaflow_operator.object_facts import (
    CONTEXT_MAX,
    CORRELATION_ID_MAX,
    TraceParent,
    job_traceparent,
    object_facts,
    parse_traceparent,
)
from mediaflow_operator.s3_events import parse_message

from .samples import spec

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
UPSTREAM = f"00-{TRACE}-{PARENT}-01"
SHAPE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
IDENT = WorkflowRef(namespace="media", name="videos", uid="uid-1", generation=3)
OBJ = ObjectRef(bucket="uploads", key="incoming/a.mp4", etag="abc", size=10)


# --- traceparent ---


def test_a_valid_traceparent_parses() -> None:
    assert parse_traceparent(UPSTREAM) == TraceParent(TRACE, PARENT, "01")
    assert parse_traceparent(f" {UPSTREAM} ") == TraceParent(TRACE, PARENT, "01")
    assert str(TraceParent(TRACE, PARENT, "00")) == f"00-{TRACE}-{PARENT}-00"
    # A later version may append fields: the first four are still understood.
    assert parse_traceparent(f"cc-{TRACE}-{PARENT}-01-what-comes-next") == TraceParent(
        TRACE, PARENT, "01"
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        UPSTREAM.upper(),  # W3C: uppercase hex is invalid
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 is exactly 55 characters
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-1",
        f"cc-{TRACE}-{PARENT}-01x",
    ],
)
def test_an_invalid_traceparent_is_none(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_the_job_continues_an_upstream_trace_with_a_new_span() -> None:
    parent = TraceParent(TRACE, PARENT, "00")
    child = job_traceparent(parent, "media/mf-a")
    assert child.trace_id == TRACE
    assert child.flags == "00"  # the upstream's sampling decision stands
    assert child.parent_id != PARENT
    assert SHAPE.match(str(child))
    assert job_traceparent(parent, "media/mf-a") == child  # pure
    assert job_traceparent(parent, "media/mf-b").parent_id != child.parent_id


def test_without_an_upstream_trace_the_ids_derive_from_the_job() -> None:
    one = job_traceparent(None, "media/mf-a")
    assert SHAPE.match(str(one))
    assert one.flags == "01"
    assert job_traceparent(None, "media/mf-a") == one
    other = job_traceparent(None, "media/mf-b")
    assert other.trace_id != one.trace_id
    assert parse_traceparent(str(one)) == one  # valid W3C


# --- context and correlation id ---


def _facts(metadata: dict[str, str] | None, workflow_context: str = "wf") -> Any:
    return object_facts(
        metadata, workflow_context=workflow_context, job_name="mf-a", identity="media/mf-a"
    )


@pytest.mark.parametrize(
    "key", ["X-Amz-Meta-Mediaflow-Context", "x-amz-meta-mediaflow-context", "mediaflow-context"]
)
def test_the_objects_context_overrides_the_workflows_in_any_spelling(key: str) -> None:
    assert _facts({key: '{"order": 7}'}).context == '{"order": 7}'


def test_without_an_override_the_workflows_context_is_used() -> None:
    assert _facts(None).context == "wf"
    assert _facts({"X-Amz-Meta-Other": "x"}).context == "wf"
    assert _facts(None, workflow_context="").context == ""


def test_an_over_long_context_override_is_ignored_not_cut() -> None:
    assert _facts({"X-Amz-Meta-Mediaflow-Context": "x" * CONTEXT_MAX}).context == "x" * CONTEXT_MAX
    assert _facts({"X-Amz-Meta-Mediaflow-Context": "x" * (CONTEXT_MAX + 1)}).context == "wf"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("order-7", "order-7"),
        ("c" * CORRELATION_ID_MAX, "c" * CORRELATION_ID_MAX),
        ("c" * (CORRELATION_ID_MAX + 1), "mf-a"),
        ("", "mf-a"),
        ("line\nbreak", "mf-a"),
        (" padded", "mf-a"),
    ],
)
def test_the_correlation_id_is_the_objects_when_sane_else_the_job_name(
    value: str, expected: str
) -> None:
    assert _facts({"X-Amz-Meta-Mediaflow-Correlation-Id": value}).correlation_id == expected
    assert _facts(None).correlation_id == "mf-a"


def test_an_invalid_upstream_traceparent_starts_a_trace_of_the_jobs_own() -> None:
    facts = _facts({"X-Amz-Meta-Traceparent": "nonsense"})
    assert facts.traceparent == str(job_traceparent(None, "media/mf-a"))
    continued = _facts({"X-Amz-Meta-Traceparent": UPSTREAM})
    assert continued.traceparent.startswith(f"00-{TRACE}-")


# --- on the Job, and back ---


def _plan(metadata: dict[str, str] | None, context: str = "") -> dict[str, Any]:
    overrides: dict[str, Any] = {"notifications": {"context": context}} if context else {}
    return plan_job(
        IDENT,
        WorkflowSpec.model_validate(spec(**overrides)),
        OBJ,
        image="worker:1",
        command=["mediaflow-worker", "job"],
        trigger="event",
        user_metadata=metadata,
    ).manifest


def test_the_job_carries_the_facts_as_annotations_and_the_worker_gets_traceparent() -> None:
    metadata = {
        "X-Amz-Meta-Traceparent": UPSTREAM,
        "X-Amz-Meta-Mediaflow-Context": "ctx-of-object",
        "X-Amz-Meta-Mediaflow-Correlation-Id": "order-7",
    }
    job = _plan(metadata, context="ctx-of-workflow")
    annotations = job["metadata"]["annotations"]
    traceparent = annotations[naming.ANNOTATION_TRACEPARENT]
    assert traceparent.startswith(f"00-{TRACE}-")
    assert not traceparent.endswith(PARENT + "-01")
    assert annotations[naming.ANNOTATION_CONTEXT] == "ctx-of-object"
    assert annotations[naming.ANNOTATION_CORRELATION_ID] == "order-7"
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[TRACEPARENT_ENV] == {"name": TRACEPARENT_ENV, "value": traceparent}
    # Rendering is pure: the same object plans the very same Job.
    assert json.dumps(_plan(metadata, context="ctx-of-workflow"), sort_keys=True) == json.dumps(
        job, sort_keys=True
    )


def test_a_job_without_metadata_gets_the_workflows_context_and_its_own_name() -> None:
    job = _plan(None, context="ctx-of-workflow")
    annotations = job["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_CONTEXT] == "ctx-of-workflow"
    assert annotations[naming.ANNOTATION_CORRELATION_ID] == job["metadata"]["name"]
    assert SHAPE.match(annotations[naming.ANNOTATION_TRACEPARENT])
    assert naming.ANNOTATION_CONTEXT not in _plan(None)["metadata"]["annotations"]


def test_the_job_view_reads_the_facts_and_times_back() -> None:
    job = _plan({"X-Amz-Meta-Mediaflow-Context": "ctx"})
    job["metadata"] |= {"uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"}
    job["status"] = {"startTime": "2026-01-01T00:00:02Z"}
    view = job_view(job)
    annotations = job["metadata"]["annotations"]
    assert view.traceparent == annotations[naming.ANNOTATION_TRACEPARENT]
    assert view.context == "ctx"
    assert view.correlation_id == job["metadata"]["name"]
    assert view.created_at is not None
    assert view.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert view.started_at is not None
    assert view.started_at.second == 2
    # A Job from before these annotations existed still reads.
    bare = job_view({"metadata": {"name": "old"}})
    assert (bare.traceparent, bare.context, bare.correlation_id) == ("", "", "")
    assert bare.created_at is None
    assert bare.started_at is None


# --- the S3 event's time ---


def _message(**record: Any) -> bytes:
    body = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": "uploads"}, "object": {"key": "incoming%2Fa.mp4"}},
        **record,
    }
    return json.dumps({"Records": [body]}).encode()


def test_the_event_time_is_parsed_and_a_bad_one_is_no_poison() -> None:
    [event] = parse_message(_message(eventTime="2026-01-01T00:00:01.250Z"))
    assert event.event_time is not None
    assert event.event_time.isoformat() == "2026-01-01T00:00:01.250000+00:00"
    for bad in (
        {},
        {"eventTime": "yesterday"},
        {"eventTime": 7},
        {"eventTime": "2026-01-01T00:00:01"},
    ):
        [event] = parse_message(_message(**bad))
        assert event.event_time is None, bad
