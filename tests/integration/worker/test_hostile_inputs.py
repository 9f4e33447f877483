"""Hostile files: each ends with exit code 2, one clear line on stderr, no
output, no leaked content, no network request, in bounded time."""

from __future__ import annotations

import http.server
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediaflow_worker.errors import UnreadableInputError
from mediaflow_worker.probe import probe

from .helpers import make_clip, run_local_measured, write_workflow

pytestmark = pytest.mark.integration

SECRET = "TOP-SECRET-7f3a9c"


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(SECRET.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets."""
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def _hls(secret: Path, url: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        f"#EXTINF:10.0,\nfile://{secret}\n#EXTINF:10.0,\n{url}/segment.ts\n#EXT-X-ENDLIST\n"
    ).encode()


def _concat(secret: Path, url: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{secret}'\nfile '{url}/clip.mp4'\n".encode()


def _huge_gif() -> bytes:
    # A valid GIF header declaring 12000x12000 pixels (144 Mpx > the 67 Mpx
    # default limit) around a 1x1 image.
    header = b"GIF89a" + struct.pack("<HH", 12000, 12000) + bytes([0x80, 0, 0])
    palette = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00\x02\x02\x44\x01\x00\x3b"
    return header + palette + image


def _truncated_mp4(tmp_path: Path) -> bytes:
    clip = make_clip(tmp_path, "whole", duration=2)
    data = clip.path.read_bytes()
    # Without faststart the moov box is at the end: cut it off, like an
    # interrupted upload.
    moov = data.rfind(b"moov")
    assert moov > len(data) // 2
    return data[: moov - 4]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tasks = [
        {"name": "web", "transcode": {"preset": "h264-360p", "video": {"preset": "ultrafast"}}},
        {"name": "thumbs", "snapshot": {"count": 1}},
        {"name": "facts", "analysis": {}},
    ]
    return write_workflow(tmp_path_factory.mktemp("hostile"), tasks)


CASES = ["zero-bytes", "truncated-mp4", "text-as-mp4", "hls-playlist", "concat-list", "huge-gif"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_refused_with_exit_2_and_nothing_leaks(
    case: str,
    workflow: Path,
    tmp_path: Path,
    secret_file: Path,
    http_server: tuple[str, list[str]],
) -> None:
    url, requests = http_server
    content = {
        "zero-bytes": lambda: b"",
        "truncated-mp4": lambda: _truncated_mp4(tmp_path),
        "text-as-mp4": lambda: b"<html><head><title>404 Not Found</title></head></html>\n",
        "hls-playlist": lambda: _hls(secret_file, url),
        "concat-list": lambda: _concat(secret_file, url),
        "huge-gif": _huge_gif,
    }[case]()
    source = tmp_path / ("upload.gif" if case == "huge-gif" else "upload.mp4")
    source.write_bytes(content)
    out = tmp_path / "out"
    started = time.monotonic()
    done, max_rss_kib = run_local_measured(workflow, source, out, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mediaflow-worker: ")
    reason = {
        "zero-bytes": "EmptyInput",
        "truncated-mp4": "UnreadableInput",
        "text-as-mp4": "InputRejected",
        "hls-playlist": "InputRejected",
        "concat-list": "InputRejected",
        "huge-gif": "InputRejected",
    }[case]
    assert reason in lines[0]
    assert SECRET not in done.stdout + done.stderr
    assert not out.exists() or not any(out.iterdir())
    assert requests == []
    assert elapsed < 30
    # Bounded memory: no process (worker, ffprobe) grew past 200 MiB; the
    # huge GIF's 144-megapixel frame (576 MB as RGBA) was never allocated.
    assert max_rss_kib < 200 * 1024, max_rss_kib
    if case == "huge-gif":
        assert "pixels" in lines[0]


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_probe_alone_refuses_playlists_even_without_the_sniffer(
    kind: str, tmp_path: Path, secret_file: Path, http_server: tuple[str, list[str]]
) -> None:
    # Defence in depth: the demuxer allow-list and protocol whitelist hold
    # even when a playlist gets past the content sniffer.
    url, requests = http_server
    source = tmp_path / "upload.mp4"
    source.write_bytes(_hls(secret_file, url) if kind == "hls" else _concat(secret_file, url))
    with pytest.raises(UnreadableInputError) as caught:
        probe(source, max_pixels=8192 * 8192)
    assert SECRET not in caught.value.message
    assert requests == []
