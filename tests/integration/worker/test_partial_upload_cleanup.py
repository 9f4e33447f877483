"""A failure half-way through the uploads leaves no partial output behind.

The storage boundary is swapped for an in-memory fake that fails on the
third upload (MinIO cannot be made to fail on cue); ffmpeg runs for real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api.job import ObjectRef, WorkerJob
from mediaflow_worker.errors import StorageError
from mediaflow_worker.job_mode import run_job
from mediaflow_worker.storage import OutputStamp
from mediaflow_worker.uploader import UPLOAD_THREADS

from .helpers import make_clip

pytestmark = pytest.mark.integration


class FlakyStorage:
    """Holds objects in a dict; the n-th upload raises StorageError."""

    def __init__(self, source: Path, fail_on: int) -> None:
        self.source = source
        self.fail_on = fail_on
        self.objects: dict[str, bytes] = {}
        self.stamps: dict[str, OutputStamp] = {}
        self.uploads = 0
        self.deadlines: dict[str, float | None] = {}
        self.lock = threading.Lock()

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        return None

    def download_input(
        self, ref: ObjectRef, dest: Path, max_bytes: int, deadline: float | None = None
    ) -> int:
        self.deadlines["download"] = deadline
        dest.write_bytes(self.source.read_bytes())
        return dest.stat().st_size

    def download_asset(self, bucket: str, key: str, dest: Path) -> Path:
        raise AssertionError("no assets in this test")

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        meta: Mapping[str, str],
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        # Uploads run on the worker's upload threads: count under a lock.
        with self.lock:
            self.deadlines["upload"] = deadline
            self.uploads += 1
            failing = self.uploads == self.fail_on
        if failing:
            raise StorageError(f"upload of {key} failed: InternalError")
        with self.lock:
            self.objects[key] = path.read_bytes()
            self.stamps[key] = _stamp(meta)

    def upload_bytes(self, bucket: str, key: str, data: bytes, meta: Mapping[str, str]) -> None:
        self.objects[key] = data
        self.stamps[key] = _stamp(meta)

    def current_etag(self, bucket: str, key: str) -> str:
        return "e"  # never overwritten in this test

    def output_stamp(self, bucket: str, key: str) -> OutputStamp | None:
        return self.stamps.get(key) if key in self.objects else None

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]

    def delete(self, bucket: str, keys: Iterable[str]) -> list[str]:
        for key in keys:
            self.objects.pop(key, None)
        return []


def _stamp(meta: Mapping[str, str]) -> OutputStamp:
    return OutputStamp(
        workflow=meta["mediaflow-workflow"], source_etag=meta["mediaflow-source-etag"]
    )


def test_upload_failure_deletes_what_was_already_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    clip = make_clip(tmp_path, "c", duration=1)
    job = WorkerJob.model_validate(
        {
            "workflow": {"namespace": "ns", "name": "wf"},
            "input": {"bucket": "up", "key": "in/c.mp4", "etag": "e"},
            "output": {"bucket": "media", "dir": "out/c.mp4.mediaflow/ns/wf/"},
            "tasks": [{"name": "thumbs", "snapshot": {"count": 4, "width": 64}}],
        }
    )
    storage = FlakyStorage(clip.path, fail_on=3)
    started = time.monotonic()
    with pytest.raises(StorageError):
        run_job(job, storage)  # type: ignore[arg-type]
    # Transfers are bounded too: the download by the processing deadline,
    # uploads by a later one that still leaves time for this cleanup.
    download, upload = storage.deadlines["download"], storage.deadlines["upload"]
    assert download is not None
    assert upload is not None
    timeout = job.limits.timeout_seconds
    assert started < download < upload < started + timeout
    # The failing upload is the third; with UPLOAD_THREADS uploads in flight
    # at once, at most UPLOAD_THREADS - 1 others had already started.
    assert 3 <= storage.uploads <= 3 + UPLOAD_THREADS - 1
    assert list(storage.objects) == ["out/c.mp4.mediaflow/ns/wf/manifest.json"]
    assert b'"ok": false' in storage.objects["out/c.mp4.mediaflow/ns/wf/manifest.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mediaflow-")] == []
