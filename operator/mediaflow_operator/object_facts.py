"""What a Job carries about its upload so it can be followed end to end: the
W3C trace context, the pass-through context and the correlation id. Pure
functions: ``job_render`` writes them into the Job's annotations, ``job_views``
reads them back, notifications repeat them.

- **traceparent** (W3C Trace Context, version ``00``): when the object's user
  metadata carries a valid ``traceparent``, the Job continues that trace (same
  trace id and flags, a new span id); otherwise it starts a trace of its own.
  Either way the ids are derived from the Job's identity, never random: a
  re-render of the same object version is byte-identical (``plan_job`` is
  pure and a redelivered event must plan the same Job). A fresh trace is
  marked sampled (flags ``01``) so a tracing backend downstream keeps it.
- **context**: user metadata ``mediaflow-context`` when set and at most
  ``CONTEXT_MAX`` characters, else the Workflow's ``spec.notifications.context``
  (an over-long override is ignored, not cut: a truncated blob would reach the
  application as if whole).
- **correlation id**: user metadata ``mediaflow-correlation-id`` when set and
  sane (at most ``CORRELATION_ID_MAX`` printable characters), else the Job name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mediaflow_api.metadata import CONTEXT, CORRELATION_ID, TRACEPARENT, user_metadata_value

CONTEXT_MAX = 1000
CORRELATION_ID_MAX = 128
SAMPLED = "01"

_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?$"
)


@dataclass(frozen=True)
class TraceParent:
    """One W3C ``traceparent``: trace id, parent (span) id, trace flags."""

    trace_id: str
    parent_id: str
    flags: str

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The trace context of a ``traceparent`` header value; None when absent or
    invalid (W3C rules: lowercase hex, version ``ff`` invalid, version ``00``
    exactly 55 characters, higher versions may append ``-`` fields, all-zero
    trace or parent ids invalid)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, rest = match["version"], match["rest"]
    if version == "ff" or (version == "00" and rest):
        return None
    if set(match["trace"]) == {"0"} or set(match["parent"]) == {"0"}:
        return None
    return TraceParent(trace_id=match["trace"], parent_id=match["parent"], flags=match["flags"])


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def job_traceparent(parent: TraceParent | None, identity: str) -> TraceParent:
    """The Job's own span: a child of ``parent`` when given, else the root of a
    new trace. ``identity`` names the Job (namespace/name); the same inputs
    always give the same ids."""
    if parent is None:
        trace_id, flags = _digest("trace", identity)[:32], SAMPLED
    else:
        trace_id, flags = parent.trace_id, parent.flags
    span_id = _digest("span", identity, trace_id)[:16]
    if set(span_id) == {"0"}:  # all zeros is invalid; 2**-64, but cheap to rule out
        span_id = "0" * 15 + "1"
    return TraceParent(trace_id=trace_id, parent_id=span_id, flags=flags)


@dataclass(frozen=True)
class ObjectFacts:
    """What a Job carries about its object (the ``mediaflow.dev/*`` annotations)."""

    traceparent: str
    context: str
    correlation_id: str


def correlation_id_of(value: str | None) -> str | None:
    """``value`` when it is a usable correlation id, else None."""
    if not value or len(value) > CORRELATION_ID_MAX:
        return None
    if not value.isprintable() or value.strip() != value:
        return None
    return value


def object_facts(
    user_metadata: Mapping[str, str] | None,
    *,
    workflow_context: str,
    job_name: str,
    identity: str,
) -> ObjectFacts:
    """The facts of one Job from its object's user metadata (any of the
    spellings S3 and MinIO use), the Workflow's context and the Job's name."""
    parent = parse_traceparent(user_metadata_value(user_metadata, TRACEPARENT))
    context = user_metadata_value(user_metadata, CONTEXT)
    if context is None or len(context) > CONTEXT_MAX:
        context = workflow_context
    correlation = correlation_id_of(user_metadata_value(user_metadata, CORRELATION_ID))
    return ObjectFacts(
        traceparent=str(job_traceparent(parent, identity)),
        context=context,
        correlation_id=correlation or job_name,
    )
