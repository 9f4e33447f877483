"""Sprites of clips shorter than (or about) one thumbnail interval.

``examples/sprite.yaml`` (one thumbnail per second) used to fail with "ffmpeg
wrote no sprite sheet" on every corpus clip shorter than its interval: ffmpeg's
``fps`` filter emits nothing when the end of the input rounds to its first
output slot. A sprite of a short clip holds the frames it has, and its WebVTT
index points only at cells that hold a thumbnail."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .helpers import REPO, ffprobe, make_clip, run_local

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "sprite.yaml"
# Shorter than the example's 1 s interval, or barely longer.
SHORT_CORPUS_CLIPS = [
    "iphone_hevc_10bit_rotated.mov",  # 0.107 s
    "portrait_rotated_phone_4k_h264_aac.mp4",  # 0.313 s
    "mkv_h264_ac3.mkv",  # 1.072 s
]
_CUE = re.compile(r"(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)")


def _gray(path: Path) -> tuple[bytes, int, int]:
    """The image's pixels as 8-bit gray, with its width and height."""
    stream = ffprobe(path)["streams"][0]
    width, height = int(stream["width"]), int(stream["height"])
    pixels = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(pixels) == width * height
    return pixels, width, height


def _cell_mean(pixels: bytes, width: int, box: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    total = sum(sum(pixels[row * width + x : row * width + x + w]) for row in range(y, y + h))
    return total / (w * h)


def _check_sprite(out: Path) -> int:
    """The index's cells hold pictures and the cells after them are the tile
    filter's black padding; returns the number of cues."""
    task_dir = out / "seek-previews"
    vtt = (task_dir / "sprite.vtt").read_text()
    cues = _CUE.findall(vtt)
    assert cues, vtt
    sheet_name = cues[0][0]
    pixels, width, height = _gray(task_dir / sheet_name)
    # The example's sheet is 10 x 10 cells of the thumbnail size.
    cell_w, cell_h = int(cues[0][3]), int(cues[0][4])
    assert (width, height) == (10 * cell_w, 10 * cell_h)
    for name, x, y, w, h in cues:
        box = (int(x), int(y), int(w), int(h))
        assert name == sheet_name
        assert box[0] + box[2] <= width, box
        assert box[1] + box[3] <= height, box
        # A thumbnail of real video, not an empty (black) cell.
        assert _cell_mean(pixels, width, box) > 12, f"cue {box} points at an empty cell"
    unused = (len(cues) * cell_w, 0, cell_w, cell_h) if len(cues) < 10 else None
    if unused is not None:
        assert _cell_mean(pixels, width, unused) < 6, "the cell after the last cue is not empty"
    return len(cues)


@pytest.mark.corpus
@pytest.mark.parametrize("name", SHORT_CORPUS_CLIPS)
def test_the_sprite_example_indexes_the_frames_a_short_corpus_clip_has(
    corpus_dir: Path, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out"
    done = run_local(EXAMPLE, corpus_dir / name, out)
    assert done.returncode == 0, done.stderr
    assert _check_sprite(out) == 1


@pytest.mark.parametrize(("duration", "cues"), [(0.3, 1), (2.5, 3), (4.0, 4)])
def test_a_sprite_holds_one_thumbnail_per_started_interval(
    tmp_path: Path, duration: float, cues: int
) -> None:
    clip = make_clip(tmp_path, "clip", size=(320, 180), duration=duration, audio=False)
    out = tmp_path / "out"
    done = run_local(EXAMPLE, clip.path, out)
    assert done.returncode == 0, done.stderr
    assert _check_sprite(out) == cues
