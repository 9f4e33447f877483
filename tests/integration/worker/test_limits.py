"""Output-size and wall-time limits stop the work with the right error."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaflow_api.job import Limits
from mediaflow_worker.errors import OutputTooLargeError, ProcessTimeoutError
from mediaflow_worker.local_mode import run_local

from .helpers import WORKER, make_clip, write_workflow

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_output_beyond_the_limit_fails_instead_of_uploading_a_truncated_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    clip = make_clip(tmp_path, "c", size=(320, 240), duration=2)
    workflow = write_workflow(
        tmp_path, [{"name": "big", "transcode": {"video": {"crf": 0, "preset": "ultrafast"}}}]
    )
    out = tmp_path / "out"
    with pytest.raises(OutputTooLargeError, match="the limit is 20000"):
        run_local(workflow, clip.path, out, limits=Limits(maxOutputBytes=20_000))
    assert not out.exists()


def test_wall_time_limit_kills_ffmpeg_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    clip = make_clip(tmp_path, "c", size=(640, 360), duration=6)
    workflow = write_workflow(
        tmp_path,
        [{"name": "slow", "transcode": {"video": {"codec": "h265", "preset": "veryslow"}}}],
    )
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError, match="wall-time limit"):
        run_local(workflow, clip.path, tmp_path / "out", limits=Limits(timeoutSeconds=2))
    assert time.monotonic() - started < 10
    # Scratch space is gone too.
    assert [p for p in tmp_path.iterdir() if p.name.startswith("mediaflow-")] == []


def _run_with_memory_cap(
    workflow: Path, source: Path, out: Path, cap: int
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WORKER, "run", "-f", str(workflow), str(source), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "MEDIAFLOW_SCRATCH_DIR": str(out.parent),
            "MEDIAFLOW_FFMPEG_MAX_MEMORY_BYTES": str(cap),
        },
        check=False,
    )


def test_an_ffmpeg_memory_cap_stops_an_encoder_that_needs_more(tmp_path: Path) -> None:
    # ffprobe fits in 400 MiB of address space; x264 at 1280x720 does not.
    clip = make_clip(tmp_path, "c", size=(1280, 720), duration=1)
    workflow = write_workflow(
        tmp_path, [{"name": "web", "transcode": {"video": {"preset": "ultrafast"}}}]
    )
    done = _run_with_memory_cap(workflow, clip.path, tmp_path / "out", 400 * MIB)
    assert done.returncode == 1, done.stderr
    assert "ProcessingFailed" in done.stderr
    # x264 reports its failed malloc, then ffmpeg that the encoder did not
    # open; the one-line reason keeps the last of those lines.
    assert any(words in done.stderr.lower() for words in ("malloc", "memory", "opening encoder")), (
        done.stderr
    )
    # The same run without the cap works (the cap, not the clip, failed it).
    ok = _run_with_memory_cap(workflow, clip.path, tmp_path / "out2", 0)
    assert ok.returncode == 0, ok.stderr


def test_a_probe_refused_memory_is_retried_not_blamed_on_the_input(tmp_path: Path) -> None:
    # 100 MiB: not even ffprobe's shared libraries load. The input is fine,
    # so this must not be exit code 2 ("never retry").
    clip = make_clip(tmp_path, "c", duration=1)
    workflow = write_workflow(tmp_path, [{"name": "facts", "analysis": {}}])
    done = _run_with_memory_cap(workflow, clip.path, tmp_path / "out", 100 * MIB)
    assert done.returncode == 1, done.stderr
    assert "ProcessingFailed" in done.stderr


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and "ffmpeg" in cmdline:
            found.append(int(entry.name))
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_stops_ffmpeg_and_removes_scratch_files(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", size=(640, 360), duration=6)
    workflow = write_workflow(
        tmp_path,
        [{"name": "slow", "transcode": {"video": {"codec": "h265", "preset": "veryslow"}}}],
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.Popen(
        [*WORKER, "run", "-f", str(workflow), str(clip.path), "-o", str(tmp_path / "out")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MEDIAFLOW_SCRATCH_DIR": str(scratch)},
    )
    try:
        _wait_for(lambda: bool(_processes_mentioning(str(scratch))), 30, "ffmpeg to start")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    assert "Interrupted" in stderr
    # ffmpeg runs in its own session (the signal never reached it): the
    # worker killed it on the way out, and removed its scratch directory.
    assert _processes_mentioning(str(scratch)) == []
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "out").exists()
