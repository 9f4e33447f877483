"""The periodic sweep: catch uploads whose event was lost.

MinIO can lose events across restarts, so each active Workflow periodically
lists its trigger prefix and creates Jobs for objects that have neither a Job
nor a manifest. Each sweep only looks at objects modified in a window
``[sweptUntil - overlap, now - grace)``: young objects are left to their events,
and an object is considered by a bounded number of sweeps, so a failed object
is not retried forever. The first window starts at the Workflow's activation,
or at the epoch with ``trigger.processExisting``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.error import S3Error

from mediaflow_api.metadata import MANIFEST_NAME, output_dir_for
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.matching import Verdict, decide

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True)
class Candidate:
    key: str
    etag: str
    size: int | None
    version_id: str
    last_modified: datetime


def window_start(
    swept_until: datetime | None, active_since: datetime | None, process_existing: bool
) -> datetime:
    """Start of the next sweep window; never before the activation unless asked."""
    base = EPOCH if process_existing else (active_since or datetime.now(UTC))
    if swept_until is not None:
        return max(swept_until - OVERLAP, base)
    return base


def _list_candidates(
    client: Minio, spec: WorkflowSpec, start: datetime, end: datetime
) -> list[Candidate]:
    found = []
    for obj in client.list_objects(
        spec.trigger.bucket,
        prefix=spec.trigger.prefix or None,
        recursive=True,
        include_user_meta=True,
    ):
        if obj.is_dir or obj.object_name is None or obj.last_modified is None:
            continue
        if not (start <= obj.last_modified < end):
            continue
        verdict = decide(
            spec,
            bucket=spec.trigger.bucket,
            key=obj.object_name,
            size=obj.size,
            user_metadata=dict(obj.metadata or {}),
        )
        if verdict.verdict is Verdict.PROCESS:
            found.append(
                Candidate(
                    key=obj.object_name,
                    etag=(obj.etag or "").strip('"'),
                    size=obj.size,
                    version_id=obj.version_id or "",
                    last_modified=obj.last_modified,
                )
            )
    return sorted(found, key=lambda c: c.last_modified)


async def list_candidates(
    client: Minio, spec: WorkflowSpec, start: datetime, end: datetime
) -> list[Candidate]:
    return await asyncio.to_thread(_list_candidates, client, spec, start, end)


def _manifest_exists(client: Minio, spec: WorkflowSpec, key: str) -> bool:
    manifest = output_dir_for(key, spec.trigger.prefix, spec.output_prefix) + MANIFEST_NAME
    try:
        client.stat_object(spec.output_bucket, manifest)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return False
        raise
    return True


async def manifest_exists(client: Minio, spec: WorkflowSpec, key: str) -> bool:
    return await asyncio.to_thread(_manifest_exists, client, spec, key)
