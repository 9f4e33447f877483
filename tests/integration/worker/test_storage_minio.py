"""The worker's storage layer against the real MinIO: multipart uploads with
the right Content-Type, and transfers that stop at the wall-time deadline
(aborting the multipart upload) or on a silent server, instead of hanging."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from mediaflow_api.job import ObjectRef
from mediaflow_worker import storage as st
from mediaflow_worker.config import StorageSettings
from mediaflow_worker.errors import ProcessTimeoutError, StorageError

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


class StepClock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += 1.0
        return self.now


@pytest.fixture
def bucket(minio_server: Any) -> tuple[Minio, str, StorageSettings]:
    client: Minio = minio_server.client()
    name = f"st-{uuid.uuid4().hex[:8]}"
    client.make_bucket(name)
    settings = StorageSettings(
        endpoint=minio_server.endpoint,
        access_key=minio_server.access_key,
        secret_key=minio_server.secret_key,
        secure=False,
        region=None,
    )
    return client, name, settings


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_large_outputs_go_up_in_parts_with_their_content_type(
    bucket: tuple[Minio, str, StorageSettings], tmp_path: Path
) -> None:
    client, name, settings = bucket
    storage = st.Storage(st.make_client(settings))
    big = _file(tmp_path / "master.mp4", 12 * MIB)
    storage.upload(name, "out/web.mp4", big, {"mediaflow-output": "true"}, deadline=None)
    stat = client.stat_object(name, "out/web.mp4")
    assert stat.size == 12 * MIB
    # An S3 multipart ETag ends in -<number of parts>: 5 MiB parts.
    assert str(stat.etag).endswith("-3")
    assert stat.content_type == "video/mp4"
    small = {
        "index.m3u8": "application/vnd.apple.mpegurl",
        "manifest.mpd": "application/dash+xml",
        "sprite.vtt": "text/vtt",
        "a.webp": "image/webp",
        "a.gif": "image/gif",
        "analysis.json": "application/json",
        "init-0.m4s": "video/iso.segment",
        "segment_00000.ts": "video/mp2t",
    }
    for file_name, expected in small.items():
        path = _file(tmp_path / file_name, 1000)
        storage.upload(name, f"out/{file_name}", path, {}, deadline=time.monotonic() + 60)
        stat = client.stat_object(name, f"out/{file_name}")
        assert stat.content_type == expected, file_name
        assert "-" not in str(stat.etag)  # one PUT


def test_an_upload_past_the_deadline_is_aborted_between_parts(
    bucket: tuple[Minio, str, StorageSettings], tmp_path: Path
) -> None:
    client, name, settings = bucket
    clock = StepClock()
    storage = st.Storage(st.make_client(settings), clock=clock)
    big = _file(tmp_path / "big.mp4", 16 * MIB)
    # Reads: the check before the upload (1), set_meta (2), part 1 (3), part 2
    # (4) -- the deadline falls between the parts.
    with pytest.raises(ProcessTimeoutError, match=r"out/big\.mp4 stopped at the wall-time limit"):
        storage.upload(name, "out/big.mp4", big, {}, deadline=3.5)
    assert clock.reads == 4
    assert list(client.list_objects(name, recursive=True)) == []
    # The multipart upload was aborted, not left to take space.
    uploads = client._list_multipart_uploads(name, prefix="out/")
    assert list(uploads.uploads) == []


def test_a_download_past_the_deadline_stops_between_chunks(
    bucket: tuple[Minio, str, StorageSettings], tmp_path: Path
) -> None:
    client, name, settings = bucket
    source = _file(tmp_path / "src.bin", 5 * MIB)
    etag = client.fput_object(name, "in/src.bin", str(source)).etag
    clock = StepClock()
    storage = st.Storage(st.make_client(settings), clock=clock)
    ref = ObjectRef(bucket=name, key="in/src.bin", etag=str(etag))
    dest = tmp_path / "dest.bin"
    with pytest.raises(ProcessTimeoutError, match="download stopped at the wall-time limit"):
        storage.download_input(ref, dest, 100 * MIB, deadline=3.5)
    # One check before, then one per 1 MiB chunk: stopped after two chunks.
    assert dest.stat().st_size == 2 * MIB
    # Without a deadline the same download completes.
    storage = st.Storage(st.make_client(settings))
    assert storage.download_input(ref, dest, 100 * MIB, deadline=None) == 5 * MIB
    assert dest.read_bytes() == source.read_bytes()


def test_a_silent_server_fails_fast_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(st, "READ_TIMEOUT_SECONDS", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # never answers

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        settings = StorageSettings(f"127.0.0.1:{port}", "k", "s", secure=False, region="us-east-1")
        storage = st.Storage(st.make_client(settings))
        started = time.monotonic()
        with pytest.raises(StorageError):
            storage.read_json("bucket", "manifest.json")
        elapsed = time.monotonic() - started
        assert accepted  # it did connect, and then waited for an answer
        # Two attempts of one second each (read retries: 1), plus backoff.
        assert elapsed < 6, elapsed
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
