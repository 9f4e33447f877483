"""What the sweep reads from MinIO: one page of the trigger prefix at a time,
and the manifest of an object for one Workflow.

Listing is in key order (the only order S3 lists in), a page at a time from a
key (``start_after``), so a pass needs memory for one page whatever the size of
the prefix, and it can resume from the last key done. The calls block, so they
run in the storage pool (``pools``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from minio import Minio
from minio.error import S3Error

from mediaflow_api.metadata import MANIFEST_NAME, SOURCE_ETAG, output_dir_for
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.pools import Pool
from mediaflow_operator.sweep_state import EPOCH, ManifestInfo

PAGE_SIZE = 1000  # S3's own page size: one request per page
NOT_FOUND = ("NoSuchKey", "NoSuchObject", "NotFound")


@dataclass(frozen=True)
class Listed:
    """One object of a listing page."""

    key: str
    etag: str
    version_id: str
    size: int
    last_modified: datetime
    user_metadata: dict[str, str] = field(default_factory=dict)


def _list_page(client: Minio, bucket: str, prefix: str, after: str, limit: int) -> list[Listed]:
    page: list[Listed] = []
    for obj in client.list_objects(
        bucket,
        prefix=prefix or None,
        recursive=True,
        start_after=after or None,
        include_user_meta=True,
    ):
        if obj.is_dir or obj.object_name is None or obj.last_modified is None:
            continue
        page.append(
            Listed(
                key=obj.object_name,
                etag=(obj.etag or "").strip('"'),
                version_id=obj.version_id or "",
                size=obj.size or 0,
                last_modified=obj.last_modified,
                user_metadata=dict(obj.metadata or {}),
            )
        )
        if len(page) >= limit:
            break  # the generator would fetch the next page: stop before it does
    return page


async def list_page(
    pool: Pool, client: Minio, bucket: str, prefix: str, after: str, limit: int = PAGE_SIZE
) -> list[Listed]:
    """Up to ``limit`` objects under ``prefix`` whose keys sort after ``after``,
    in key order (fewer than ``limit``: the listing is complete)."""
    return await pool.run(_list_page, client, bucket, prefix, after, limit)


def manifest_key(spec: WorkflowSpec, namespace: str, workflow: str, key: str) -> str:
    """Where this Workflow's manifest of input ``key`` lives (in ``spec.output_bucket``)."""
    directory = output_dir_for(key, spec.trigger.prefix, spec.output_prefix, namespace, workflow)
    return directory + MANIFEST_NAME


def _stat_manifest(client: Minio, bucket: str, key: str) -> ManifestInfo | None:
    try:
        stat = client.stat_object(bucket, key)
    except S3Error as exc:
        if exc.code in NOT_FOUND:
            return None
        raise
    metadata = stat.metadata or {}
    source = metadata.get(f"x-amz-meta-{SOURCE_ETAG}") or ""
    return ManifestInfo(last_modified=stat.last_modified or EPOCH, source_etag=str(source))


async def stat_manifest(pool: Pool, client: Minio, bucket: str, key: str) -> ManifestInfo | None:
    """The manifest's time and the input version it names; None when there is none."""
    return await pool.run(_stat_manifest, client, bucket, key)
