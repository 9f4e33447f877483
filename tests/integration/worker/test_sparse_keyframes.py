"""Windows into a stream with one keyframe at its start.

An input seek into such an MPEG-TS (cameras and encoders with long or
infinite GOPs write them) lands on no keyframe and ffmpeg decodes no picture
at all: the animated WebP failed with "WebPAnimEncoderAssemble() failed" and
the animated GIF was uploaded as an empty file, reported as a success. The
worker decodes from the start when a seek yields nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mediaflow_worker.tasks.animated_image import webp_animation_frames

from .helpers import ffprobe, run_local, write_workflow

pytestmark = pytest.mark.integration

TASKS = [
    {"name": "gif", "animatedImage": {"format": "gif", "start": "1.5", "duration": 2, "fps": 10}},
    {"name": "webp", "animatedImage": {"format": "webp", "start": "25%", "duration": 2}},
]


def _frames(path: Path) -> int:
    if path.suffix == ".webp":  # ffmpeg 5.1 decodes no animated WebP
        return webp_animation_frames(path.read_bytes())
    stream = ffprobe(path, "-count_frames")["streams"][0]
    return int(stream["nb_read_frames"])


def _one_keyframe_ts(directory: Path) -> Path:
    path = directory / "one-keyframe.ts"
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=5"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", "1000", "-f", "mpegts", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path


def _check(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_local(write_workflow(tmp_path, TASKS), source, out)
    assert done.returncode == 0, done.stderr
    # 2 s at 10 fps; at the default 10 fps for the WebP too.
    assert _frames(out / "gif" / "gif.gif") == 20
    assert _frames(out / "webp" / "webp.webp") >= 19


def test_animated_images_of_a_generated_stream_with_one_keyframe(tmp_path: Path) -> None:
    _check(_one_keyframe_ts(tmp_path), tmp_path)


@pytest.mark.corpus
def test_animated_images_of_the_corpus_mpegts(corpus_dir: Path, tmp_path: Path) -> None:
    _check(corpus_dir / "mpegts_h264_aac_720x720.ts", tmp_path)
