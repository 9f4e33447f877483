"""S3 access through minio-py: streaming download with a size cap, uploads
with mediaflow's user metadata, and deletes for cleanup."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from mediaflow_api import metadata as md
from mediaflow_api.job import ObjectRef, WorkerJob
from mediaflow_worker.config import StorageSettings
from mediaflow_worker.content_types import content_type
from mediaflow_worker.errors import (
    AssetError,
    AssetNotFoundError,
    InputChangedError,
    InputNotFoundError,
    InputRejectedError,
    ProcessTimeoutError,
    StorageError,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
MAX_ASSET_BYTES = 20 * 1024 * 1024
# Every S3 request is bounded: a silent server costs at most this long per
# attempt (minio-py's default is 5 minutes, retried 5 times), so the checks
# against the wall-time deadline between chunks and parts come round in time.
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30
_NOT_FOUND = ("NoSuchKey", "NoSuchBucket", "NoSuchVersion")
_TRANSPORT_ERRORS = (MinioException, HTTPError, OSError)


def _ascii(value: str) -> str:
    """S3 user metadata travels in HTTP headers: ASCII only (keys may not be)."""
    return quote(value, safe="/ -_.~:@+=,")


def output_metadata(job: WorkerJob, task: str) -> dict[str, str]:
    """User metadata every output carries (marks it as mediaflow output)."""
    return {
        md.OUTPUT_MARKER: "true",
        md.WORKFLOW: _ascii(f"{job.workflow.namespace}/{job.workflow.name}"),
        md.TASK: _ascii(task),
        md.SOURCE_BUCKET: _ascii(job.input.bucket),
        md.SOURCE_KEY: _ascii(job.input.key),
        md.SOURCE_ETAG: _ascii(job.input.etag),
    }


@dataclass(frozen=True)
class OutputStamp:
    """Who made an output: the Workflow (``namespace/name``) and the source
    ETag it was made from, as ``output_metadata`` wrote them."""

    workflow: str
    source_etag: str
    # The input it was made from (empty where the metadata lacks it).
    source_bucket: str = ""
    source_key: str = ""

    def same_as(self, other: OutputStamp) -> bool:
        return self.workflow == other.workflow and _norm_etag(self.source_etag) == _norm_etag(
            other.source_etag
        )

    def same_source(self, other: OutputStamp) -> bool:
        """Made by the same Workflow from the same input (any version): what a
        custom-named output may replace or clean up."""
        return (
            bool(self.workflow)
            and self.workflow == other.workflow
            and self.source_bucket == other.source_bucket
            and self.source_key == other.source_key
        )


def stamp_of(job: WorkerJob) -> OutputStamp:
    """The stamp every output of ``job`` carries."""
    meta = output_metadata(job, "")
    return OutputStamp(
        workflow=meta[md.WORKFLOW],
        source_etag=meta[md.SOURCE_ETAG],
        source_bucket=meta[md.SOURCE_BUCKET],
        source_key=meta[md.SOURCE_KEY],
    )


def http_client() -> urllib3.PoolManager:
    """minio-py's default HTTP client with short timeouts and fewer retries."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=3, read=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


def make_client(settings: StorageSettings) -> Minio:
    """A minio-py client for ``settings``."""
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http_client(),
    )


class _DeadlinePassed(Exception):
    """Raised inside minio-py's upload loop (which then aborts the multipart
    upload) when the wall-time deadline passes between parts."""


class _Abandoned(Exception):
    """Raised inside minio-py's upload loop when the caller gave the upload up
    (another output's upload failed): it aborts the multipart upload."""


class _DeadlineProgress:
    """A minio-py ``progress`` object that stops an upload at a deadline, or
    once ``stop`` is set; minio-py calls ``update`` as it reads each part,
    before sending it."""

    def __init__(
        self,
        deadline: float | None,
        clock: Callable[[], float],
        stop: threading.Event | None = None,
    ) -> None:
        self._deadline = deadline
        self._clock = clock
        self._stop = stop

    def set_meta(self, object_name: str, total_length: int) -> None:
        self.check()

    def update(self, size: int) -> None:
        self.check()

    def check(self) -> None:
        if self._stop is not None and self._stop.is_set():
            raise _Abandoned
        if self._deadline is not None and self._clock() >= self._deadline:
            raise _DeadlinePassed


def _norm_etag(etag: str) -> str:
    return etag.strip().strip('"')


class Storage:
    """The worker's S3 operations, each mapping failures onto the taxonomy."""

    def __init__(self, client: Minio, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock

    def _check_deadline(self, deadline: float | None, what: str) -> None:
        if deadline is not None and self._clock() >= deadline:
            raise ProcessTimeoutError(f"{what} stopped at the wall-time limit")

    def download_input(
        self, ref: ObjectRef, dest: Path, max_bytes: int, deadline: float | None = None
    ) -> int:
        """Stream ``ref`` to ``dest`` in chunks (never whole in memory).

        Refuses objects above ``max_bytes`` before and while reading, and
        objects whose ETag no longer matches the event's. Stops with
        ``ProcessTimeoutError`` once ``deadline`` (``time.monotonic()``) passes."""
        self._check_deadline(deadline, "the input download")
        version = ref.version_id or None
        try:
            stat = self.client.stat_object(ref.bucket, ref.key, version_id=version)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise InputNotFoundError(
                    f"input s3://{ref.bucket}/{ref.key} does not exist"
                ) from exc
            raise StorageError(f"cannot read input metadata: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"cannot reach storage: {type(exc).__name__}") from exc
        if ref.etag and stat.etag and _norm_etag(stat.etag) != _norm_etag(ref.etag):
            raise InputChangedError(
                "the input was overwritten after the event (ETag differs); "
                "the newer version gets its own Job"
            )
        if stat.size is not None and stat.size > max_bytes:
            raise InputRejectedError(f"the input is {stat.size} bytes; the limit is {max_bytes}")
        written = 0
        response = None
        try:
            response = self.client.get_object(ref.bucket, ref.key, version_id=version)
            with dest.open("wb") as handle:
                for chunk in response.stream(CHUNK_BYTES):
                    self._check_deadline(deadline, "the input download")
                    written += len(chunk)
                    if written > max_bytes:
                        raise InputRejectedError(f"the input is larger than {max_bytes} bytes")
                    handle.write(chunk)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise InputNotFoundError(
                    f"input s3://{ref.bucket}/{ref.key} does not exist"
                ) from exc
            raise StorageError(f"cannot download input: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"input download failed: {type(exc).__name__}") from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return written

    def _stat(self, bucket: str, key: str) -> Object | None:
        """``stat_object`` of ``bucket/key``; None when it does not exist."""
        try:
            return self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise StorageError(f"cannot read metadata of {key}: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"cannot reach storage: {type(exc).__name__}") from exc

    def current_etag(self, bucket: str, key: str) -> str | None:
        """The ETag of the current version of ``bucket/key`` (quotes removed),
        or None when it does not exist (any more)."""
        stat = self._stat(bucket, key)
        return None if stat is None else _norm_etag(stat.etag or "")

    def output_stamp(self, bucket: str, key: str) -> OutputStamp | None:
        """The stamp of an output (empty fields where its metadata lacks
        them), or None when the object does not exist."""
        stat = self._stat(bucket, key)
        if stat is None:
            return None
        meta = dict(stat.metadata or {})
        return OutputStamp(
            workflow=md.user_metadata_value(meta, md.WORKFLOW) or "",
            source_etag=md.user_metadata_value(meta, md.SOURCE_ETAG) or "",
            source_bucket=md.user_metadata_value(meta, md.SOURCE_BUCKET) or "",
            source_key=md.user_metadata_value(meta, md.SOURCE_KEY) or "",
        )

    def download_asset(self, bucket: str, key: str, dest: Path) -> Path:
        """Fetch a watermark image; a missing or oversized one is an
        ``AssetError`` (exit 2: the spec names it, retrying cannot help)."""
        try:
            stat = self.client.stat_object(bucket, key)
            if stat.size is not None and stat.size > MAX_ASSET_BYTES:
                raise AssetError(f"watermark image s3://{bucket}/{key} is larger than 20 MiB")
            self.client.fget_object(bucket, key, str(dest))
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise AssetNotFoundError(
                    f"watermark image s3://{bucket}/{key} does not exist"
                ) from exc
            raise StorageError(f"cannot download watermark: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"watermark download failed: {type(exc).__name__}") from exc
        return dest

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        """A small JSON object (the previous manifest), or None if absent/unreadable."""
        response = None
        try:
            response = self.client.get_object(bucket, key)
            data = response.read(4 * 1024 * 1024 + 1)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise StorageError(f"cannot read {key}: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"cannot read {key}: {type(exc).__name__}") from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        try:
            value = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        meta: Mapping[str, str],
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Upload one file: multipart above 5 MiB (minio-py), parts one after
        the other so that the ``deadline`` is checked before each; a passed
        deadline aborts the multipart upload and raises ``ProcessTimeoutError``.
        ``stop`` set (the upload is given up) aborts it the same way, with a
        ``StorageError``."""
        self._check_deadline(deadline, f"the upload of {key}")
        progress = (
            _DeadlineProgress(deadline, self._clock, stop)
            if deadline is not None or stop is not None
            else None
        )
        try:
            self.client.fput_object(
                bucket,
                key,
                str(path),
                content_type=content_type(path),
                metadata=dict(meta),
                progress=progress,
                num_parallel_uploads=1,
            )
        except _DeadlinePassed as exc:
            raise ProcessTimeoutError(
                f"the upload of {key} stopped at the wall-time limit"
            ) from exc
        except _Abandoned as exc:
            raise StorageError(f"the upload of {key} was given up: another step failed") from exc
        except S3Error as exc:
            raise StorageError(f"upload of {key} failed: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"upload of {key} failed: {type(exc).__name__}") from exc

    def upload_bytes(self, bucket: str, key: str, data: bytes, meta: Mapping[str, str]) -> None:
        """Upload a small in-memory object (the manifest)."""
        try:
            self.client.put_object(
                bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type(key),
                metadata=dict(meta),
            )
        except S3Error as exc:
            raise StorageError(f"upload of {key} failed: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"upload of {key} failed: {type(exc).__name__}") from exc

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        try:
            return [
                o.object_name
                for o in self.client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ]
        except S3Error as exc:
            raise StorageError(f"cannot list {prefix}: {exc.code}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"cannot list {prefix}: {type(exc).__name__}") from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> list[str]:
        """Delete ``keys``; returns the keys that could not be deleted."""
        keys = list(keys)
        if not keys:
            return []
        try:
            errors = self.client.remove_objects(bucket, [DeleteObject(k) for k in keys])
            failed = [e.name for e in errors if e.name]
        except _TRANSPORT_ERRORS as exc:
            log.error("cleanup failed: %s", type(exc).__name__)
            return keys
        return failed
