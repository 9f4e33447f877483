"""Decide what a Workflow does with one object: process, skip, or ignore.

- ``IGNORE``: not the Workflow's business (other bucket, outside the prefix, not
  new content: tagging, retention, legal hold) or our own output: not counted anywhere.
- ``SKIP``: an upload in the trigger directory that is not processed (suffix
  mismatch, zero-byte folder marker): counted in ``status.skipped``.
- ``PROCESS``: create a Job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mediaflow_api.metadata import OUTPUT_DIR_SUFFIX, is_mediaflow_output
from mediaflow_api.workflow import WorkflowSpec

# The events that mean new content. MinIO files tag, retention and legal-hold
# changes under s3:ObjectCreated too; another rule of a shared bucket (or a rule
# left by an older operator) may still send them, so they are ignored here as well.
CONTENT_EVENTS = frozenset(
    {
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
    }
)


class Verdict(enum.Enum):
    PROCESS = "process"
    SKIP = "skip"
    IGNORE = "ignore"


class Reason(enum.Enum):
    """Why, in one word from a closed set (the ``reason`` label of
    ``mediaflow_events_total``; ``Decision.reason`` says it in words)."""

    NOT_CONTENT = "NotContent"
    OTHER_BUCKET = "OtherBucket"
    OUTSIDE_PREFIX = "OutsidePrefix"
    MEDIAFLOW_OUTPUT = "MediaflowOutput"
    IN_OUTPUT_DIRECTORY = "InOutputDirectory"
    FOLDER_MARKER = "FolderMarker"
    SUFFIX_MISMATCH = "SuffixMismatch"
    MATCHES = "Matches"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    code: Reason


def decide(
    spec: WorkflowSpec,
    *,
    bucket: str,
    key: str,
    size: int | None,
    user_metadata: dict[str, str] | None,
    event_name: str = "s3:ObjectCreated:Put",
) -> Decision:
    """What ``spec`` does with the object ``bucket/key``."""
    trigger = spec.trigger
    if event_name not in CONTENT_EVENTS:
        return Decision(
            Verdict.IGNORE, f"event {event_name} is not new content", Reason.NOT_CONTENT
        )
    if bucket != trigger.bucket:
        return Decision(Verdict.IGNORE, "other bucket", Reason.OTHER_BUCKET)
    if not key.startswith(trigger.prefix):
        return Decision(Verdict.IGNORE, "outside the trigger prefix", Reason.OUTSIDE_PREFIX)
    output = output_decision(key, user_metadata)
    if output is not None:
        return output
    if key.endswith("/"):
        return Decision(Verdict.SKIP, "folder marker", Reason.FOLDER_MARKER)
    if trigger.suffixes:
        lowered = key.lower()
        if not any(lowered.endswith(s.lower()) for s in trigger.suffixes):
            return Decision(Verdict.SKIP, "suffix does not match", Reason.SUFFIX_MISMATCH)
    return Decision(Verdict.PROCESS, "matches", Reason.MATCHES)


def output_decision(key: str, user_metadata: dict[str, str] | None) -> Decision | None:
    """IGNORE when the object is mediaflow's own output (by its metadata or by
    lying inside an output directory), whatever the Workflow; else None. The
    router drops these before any Workflow sees them: a Job's outputs usually
    lie under the trigger prefix that made it."""
    if is_mediaflow_output(user_metadata):
        return Decision(Verdict.IGNORE, "mediaflow output", Reason.MEDIAFLOW_OUTPUT)
    if f"{OUTPUT_DIR_SUFFIX}/" in key:
        return Decision(
            Verdict.IGNORE, "inside a mediaflow output directory", Reason.IN_OUTPUT_DIRECTORY
        )
    return None
