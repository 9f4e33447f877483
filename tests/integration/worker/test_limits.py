"""Output-size and wall-time limits stop the work with the right error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mediaflow_spec.job import Limits
from mediaflow_worker.errors import OutputTooLargeError, ProcessTimeoutError
from mediaflow_worker.local_mode import run_local

from .helpers import make_clip, write_workflow

pytestmark = pytest.mark.integration


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
