"""The notification events: CloudEvents 1.0 in structured mode, as JSON-ready dicts.

Pure builders. Per object: ``accepted_event`` when its Job exists, then from
``finished_events`` one ``dev.mediaflow.task.finished`` per task of the run's
manifest (in task order) followed by the object's final event (succeeded,
failed or superseded). The ``data`` is ``mediaflow_api.notification.NotificationData``;
every sink gets the same dict (binary mode moves the attributes to headers).

The ``id`` is a UUID derived from (Job uid, type, task name): a re-publish after
an operator crash, and every retry, carries the same id, so receivers can
deduplicate on it. Things the builders cannot trust are mended rather than
refused, because refusing would lose the event: a context over
``CONTEXT_MAX`` characters is cut, a malformed traceparent is left out, and a
manifest that describes another version of the input is ignored.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mediaflow_api import notification as n
from mediaflow_api.job import WorkflowRef
from mediaflow_api.workflow import GROUP, PLURAL, VERSION

# uuid5 namespace of every event id (itself uuid5 of mediaflow's schema URL).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, n.SCHEMA_BASE_URL)
_TRACEPARENT = re.compile(n.TRACEPARENT_PATTERN)
# Manifest output facts that have a field of their own; the rest goes to ``details``.
_OUTPUT_FIELDS = ("contentType", "duration", "width", "height", "videoCodec", "audioCodec")
# Manifest output keys that say where the file is (not facts about it).
_OUTPUT_LOCATION = {"bucket", "key", "path", "size"}

_FINAL: dict[str, tuple[n.EventKind, str]] = {
    "succeeded": ("Succeeded", n.TYPE_SUCCEEDED),
    "failed": ("Failed", n.TYPE_FAILED),
    "superseded": ("Superseded", n.TYPE_SUPERSEDED),
}


@dataclass(frozen=True)
class ObjectFacts:
    """What the operator knows about one object version and its Job."""

    workflow: WorkflowRef
    bucket: str
    key: str
    etag: str
    version_id: str
    size: int | None
    job_name: str
    job_uid: str
    context: str = ""
    correlation_id: str = ""
    traceparent: str = ""
    accepted_at: datetime | None = None
    uploaded_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """One event to send: ``kind`` is the name users list in a sink's ``events``."""

    kind: n.EventKind
    event: dict[str, Any]

    @property
    def id(self) -> str:
        """The CloudEvent id (stable across retries and re-publishes)."""
        event_id: str = self.event["id"]
        return event_id


def event_id(job_uid: str, event_type: str, task: str = "") -> str:
    """The deterministic id of one event of one Job."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{job_uid}\n{event_type}\n{task}"))


def source_of(workflow: WorkflowRef) -> str:
    """The CloudEvent ``source``: the Workflow's API path."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{workflow.namespace}/{PLURAL}/{workflow.name}"


def clip_context(context: str) -> str:
    """The pass-through context as sent: its first ``CONTEXT_MAX`` characters."""
    return context[: n.CONTEXT_MAX]


def valid_traceparent(value: str) -> str | None:
    """``value`` when it is a W3C traceparent (version 00, not all-zero ids), else None."""
    value = value.strip()
    if not _TRACEPARENT.match(value):
        return None
    _, trace_id, parent_id, _ = value.split("-")
    if set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return value


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with ``Z`` (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _as_utc(moment)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _envelope(
    facts: ObjectFacts, event_type: str, at: datetime, data: n.NotificationData, task: str = ""
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": n.SPECVERSION,
        "id": event_id(facts.job_uid or facts.job_name, event_type, task),
        "source": source_of(facts.workflow),
        "type": event_type,
        "subject": f"{facts.bucket}/{facts.key}",
        "time": rfc3339(at),
        "datacontenttype": n.DATA_CONTENT_TYPE,
        "dataschema": n.DATA_SCHEMA_URL,
    }
    traceparent = valid_traceparent(facts.traceparent)
    if traceparent:
        event["traceparent"] = traceparent
    event["data"] = n.data_json(data)
    return event


def _data(
    facts: ObjectFacts,
    outcome: n.Outcome,
    *,
    timings: n.EventTimings,
    size: int | None = None,
    **parts: Any,
) -> n.NotificationData:
    wf = facts.workflow
    return n.NotificationData(
        workflow=n.EventWorkflow(
            namespace=wf.namespace, name=wf.name, uid=wf.uid or None, generation=wf.generation
        ),
        input=n.EventInput(
            bucket=facts.bucket,
            key=facts.key,
            etag=facts.etag or None,
            versionId=facts.version_id or None,
            size=facts.size if facts.size is not None else size,
        ),
        job=n.EventJob(name=facts.job_name, uid=facts.job_uid or None),
        outcome=outcome,
        correlationId=facts.correlation_id or facts.job_name,
        context=clip_context(facts.context),
        timings=timings,
        **parts,
    )


def accepted_event(facts: ObjectFacts) -> Notification:
    """``dev.mediaflow.object.accepted``: the object's Job exists. Its time is
    ``facts.accepted_at`` (``ValueError`` without it: the event says when)."""
    if facts.accepted_at is None:
        raise ValueError(f"accepted event for Job {facts.job_name}: accepted_at is not known")
    timings = n.EventTimings(uploadedAt=_utc(facts.uploaded_at), acceptedAt=_utc(facts.accepted_at))
    data = _data(facts, "accepted", timings=timings)
    return Notification("Accepted", _envelope(facts, n.TYPE_ACCEPTED, facts.accepted_at, data))


def manifest_matches(manifest: dict[str, Any], facts: ObjectFacts) -> bool:
    """Whether ``manifest`` describes this object version: an older run's
    manifest (read after an OOM kill of the newer run, say) must not lend its
    tasks and outputs to this Job's event. Without an ETag on either side
    there is nothing to compare, and the manifest is taken as it is."""
    source = manifest.get("input")
    if not isinstance(source, dict):
        return True
    if source.get("bucket", facts.bucket) != facts.bucket:
        return False
    if source.get("key", facts.key) != facts.key:
        return False
    etag = source.get("etag")
    return not (facts.etag and etag and etag != facts.etag)


def output_of(task: str, bucket: str, entry: dict[str, Any]) -> n.EventOutput:
    """One manifest output entry (``key``, ``size`` and the task's facts) as
    a payload output: known facts get their own field, the rest ``details``.
    The entry's own ``bucket`` (custom output names, ``tasks[].output``) wins
    over the Workflow's output ``bucket``."""
    own = {name: entry[name] for name in _OUTPUT_FIELDS if entry.get(name) is not None}
    details = {
        k: v
        for k, v in entry.items()
        if k not in _OUTPUT_FIELDS and k not in _OUTPUT_LOCATION and v is not None
    }
    return n.EventOutput(
        task=task,
        bucket=str(entry.get("bucket") or bucket),
        key=str(entry.get("key") or entry.get("path") or ""),
        size=int(entry.get("size") or 0),
        details=details or None,
        **own,
    )


def _bounded(outputs: list[n.EventOutput]) -> list[n.EventOutput]:
    """At most ``OUTPUTS_MAX`` outputs, in manifest order; past the limit the ones
    with media facts (playlists, videos, images) win over bare segments."""
    if len(outputs) <= n.OUTPUTS_MAX:
        return outputs

    def described(o: n.EventOutput) -> bool:
        return any(v is not None for v in (o.duration, o.width, o.height, o.video_codec, o.details))

    ranked = sorted(range(len(outputs)), key=lambda i: (not described(outputs[i]), i))
    keep = sorted(ranked[: n.OUTPUTS_MAX])
    return [outputs[i] for i in keep]


def _task_of(entry: dict[str, Any]) -> n.EventTask:
    return n.EventTask(
        name=str(entry.get("name", "")),
        type=str(entry.get("type", "")),
        status=entry.get("status", "succeeded"),
        seconds=float(entry.get("seconds") or 0.0),
        outputs=len(entry.get("outputs") or []),
        reason=entry.get("reason") or None,
    )


def finished_events(
    facts: ObjectFacts,
    *,
    outcome: Literal["succeeded", "failed", "superseded"],
    reason: str,
    message: str,
    finished_at: datetime,
    manifest: dict[str, Any] | None,
    manifest_location: tuple[str, str] | None,
) -> list[Notification]:
    """The events of a finished object, in sending order: one
    ``dev.mediaflow.task.finished`` per task of ``manifest`` (Workflow order),
    then the object's own event. ``reason``/``message`` are the Job's (the
    termination summary, or the Job condition when the worker could not say,
    e.g. ``OOMKilled``); a failed event carries them as ``error`` (the
    manifest's error fills in what they lack). ``manifest_location`` is
    (bucket, key) of ``manifest``; the outputs live in that bucket."""
    kind, final_type = _FINAL[outcome]
    if manifest is not None and not manifest_matches(manifest, facts):
        manifest = None
    at = _as_utc(finished_at)
    doc = manifest or {}
    # Outputs are only reported for a success: a failed or superseded worker deletes its own.
    entries: list[dict[str, Any]] = (
        [t for t in doc.get("tasks") or [] if isinstance(t, dict)] if outcome == "succeeded" else []
    )
    if entries and manifest_location is None:
        raise ValueError(f"Job {facts.job_name}: a manifest with outputs needs its location")
    out_bucket = manifest_location[0] if manifest_location else ""
    where = (
        n.EventManifest(bucket=manifest_location[0], key=manifest_location[1])
        if manifest is not None and manifest_location is not None
        else None
    )
    timings = n.EventTimings(
        uploadedAt=_utc(facts.uploaded_at),
        acceptedAt=_utc(facts.accepted_at),
        startedAt=_parse_time(doc.get("startedAt")),
        finishedAt=at,
        seconds=doc.get("seconds") if isinstance(doc.get("seconds"), int | float) else None,
    )
    input_doc = doc.get("input")
    size = input_doc.get("size") if isinstance(input_doc, dict) else None
    size = size if isinstance(size, int) else None

    events: list[Notification] = []
    tasks: list[n.EventTask] = []
    outputs: list[n.EventOutput] = []
    for entry in entries:
        task = _task_of(entry)
        task_outputs = [
            output_of(task.name, out_bucket, o)
            for o in entry.get("outputs") or []
            if isinstance(o, dict)
        ]
        tasks.append(task)
        outputs.extend(task_outputs)
        data = _data(
            facts,
            task.status,
            timings=timings,
            size=size,
            task=task,
            outputs=_bounded(task_outputs),
            output_count=len(task_outputs),
            manifest=where,
        )
        events.append(
            Notification(
                "TaskFinished",
                _envelope(facts, n.TYPE_TASK_FINISHED, at, data, task=task.name),
            )
        )

    parts: dict[str, Any] = {"manifest": where}
    if outcome == "succeeded":
        parts["outputs"] = _bounded(outputs)
        parts["output_count"] = len(outputs)
        parts["tasks"] = tasks or None
    elif outcome == "failed":
        recorded = doc.get("error")
        recorded = recorded if isinstance(recorded, dict) else {}
        parts["error"] = n.EventError(
            code=reason or str(recorded.get("reason") or "") or "Failed",
            message=message or str(recorded.get("message") or ""),
        )
    data = _data(facts, outcome, timings=timings, size=size, **parts)
    events.append(Notification(kind, _envelope(facts, final_type, at, data)))
    return events
