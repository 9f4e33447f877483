"""What the sweep remembers and decides, as pure functions and plain data.

- the window of a pass: ``[window_start, now - grace)`` over objects' last
  modification times;
- ``SweepPass``: an unfinished pass (its window, its trigger and the last key
  done), stored in ``status.sweepCursor`` so a restarted operator resumes it;
- ``next_due``: when the next pass starts (interval, or at once when the bucket
  rule has just become ready);
- ``TriedJobs``: Jobs that failed and were deleted; the sweep never creates them
  again while a window may still cover their object (``status.triedJobs``);
- ``manifest_is_current``: whether a manifest describes the object's version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mediaflow_api.workflow_status import TRIED_JOBS_MAX
from mediaflow_operator.clock import iso, parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Consecutive windows overlap by this much: an upload whose modification time
# lies just before a window's end may only become visible (listable) after it.
OVERLAP = timedelta(seconds=5)
# The sweep's clock (``clock.now``) and the status hold whole seconds.
TIME_RESOLUTION = timedelta(seconds=1)


def window_start(
    swept_until: datetime | None, active_since: datetime | None, process_existing: bool
) -> datetime:
    """Start of the next sweep window; never before the activation unless asked."""
    base = EPOCH if process_existing else (active_since or datetime.now(UTC))
    if swept_until is not None:
        return max(swept_until - OVERLAP, base)
    return base


@dataclass(frozen=True)
class SweepPass:
    """One pass over the trigger prefix, in key order: objects modified in
    ``[start, end)`` of bucket/prefix ``trigger``, done up to key ``after``."""

    start: datetime
    end: datetime
    trigger: str  # "<bucket>/<prefix>": a changed trigger abandons the pass
    after: str = ""  # the listing resumes after this key ("" = from the beginning)

    def covers(self, modified: datetime) -> bool:
        return self.start <= modified < self.end

    def advanced(self, key: str) -> SweepPass:
        """The pass with every key up to ``key`` done (keys only grow)."""
        return replace(self, after=max(self.after, key))

    def to_status(self) -> dict[str, str]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "trigger": self.trigger,
            "after": self.after,
        }

    @classmethod
    def from_status(cls, value: Mapping[str, Any] | None) -> SweepPass | None:
        if not value:
            return None
        start, end = parse_time(value.get("start")), parse_time(value.get("end"))
        if start is None or end is None:
            return None
        return cls(start, end, str(value.get("trigger") or ""), str(value.get("after") or ""))


def trigger_of(bucket: str, prefix: str) -> str:
    return f"{bucket}/{prefix}"


def next_due(
    *,
    last_started: datetime | None,
    interval: timedelta,
    grace: timedelta,
    swept_until: datetime | None,
    rule_ready_since: datetime | None,
) -> datetime:
    """When the next pass should start.

    The first pass of a dispatcher starts at once (events may have been lost
    while no operator ran), later ones every ``interval``. When the bucket rule
    became ready at ``rule_ready_since`` (the Workflow's first Ready, or the end
    of an outage of the rule) uploads before that moment had no event: a pass
    starts once its window (ending at now - grace) reaches past that moment,
    unless a finished pass already reached past it.

    Times here are whole seconds (``clock.now``): the rule became ready at some
    instant of the second ``rule_ready_since``, and uploads a moment before it
    carry that same second. A window ending at ``rule_ready_since`` (its end is
    exclusive) leaves them out, so the window must reach one second further.
    """
    if last_started is None:
        return EPOCH
    due = last_started + interval
    if rule_ready_since is not None:
        reach = rule_ready_since + TIME_RESOLUTION
        if swept_until is None or swept_until < reach:
            due = min(due, reach + grace)
    return due


@dataclass
class TriedJobs:
    """Jobs that failed and were deleted, with when they were deleted.

    A Job's name is deterministic per object version, so this is the record of
    object versions already run and counted failed. A Job was created after its
    object's last modification and deleted after that, so once every window
    that can still come starts later than the deletion, the entry can go
    (``prune``). At most ``TRIED_JOBS_MAX`` entries are kept (oldest go first).
    """

    entries: dict[str, datetime]

    @classmethod
    def from_status(cls, value: Iterable[Mapping[str, Any]] | None) -> TriedJobs:
        entries: dict[str, datetime] = {}
        for item in value or []:
            at = parse_time(item.get("at"))
            if item.get("job") and at is not None:
                entries[str(item["job"])] = at
        return cls(entries)

    def __contains__(self, job: object) -> bool:
        return job in self.entries

    def add(self, jobs: Iterable[str], at: datetime) -> None:
        for job in jobs:
            self.entries.pop(job, None)
            self.entries[job] = at
        while len(self.entries) > TRIED_JOBS_MAX:
            del self.entries[next(iter(self.entries))]

    def prune(self, horizon: datetime) -> bool:
        """Drop the entries deleted before ``horizon`` (the earliest start of any
        window still to come); returns whether any went."""
        gone = [job for job, at in self.entries.items() if at < horizon]
        for job in gone:
            del self.entries[job]
        return bool(gone)

    def to_status(self) -> list[dict[str, str]]:
        return [{"job": job, "at": iso(at)} for job, at in self.entries.items()]


@dataclass(frozen=True)
class ManifestInfo:
    """What ``stat_object`` says about a manifest."""

    last_modified: datetime
    source_etag: str  # "" when the manifest does not name its input's version


def manifest_is_current(
    object_etag: str, object_modified: datetime, manifest: ManifestInfo | None
) -> bool:
    """Whether ``manifest`` describes the object's current version, so the
    object needs no Job. A manifest of an older version means the overwrite's
    event was lost.

    Manifests name their input's ETag (``mediaflow-source-etag``). One that
    does not (written before manifests carried it) describes the current
    version if it was written after the object's last change; HTTP dates have
    whole seconds, so a manifest of the same second counts as current.
    """
    if manifest is None:
        return False
    if manifest.source_etag:
        return manifest.source_etag.strip('"') == object_etag.strip('"')
    return manifest.last_modified >= object_modified.replace(microsecond=0)
