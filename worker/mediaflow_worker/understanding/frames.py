"""Sampled video frames as NumPy arrays, streamed from one ffmpeg decode.

Frames are taken on a fixed grid (``fps`` frames a second counted from the
start of the input): the sample at ``t`` is the picture shown at ``t`` (the
last frame starting at or before it: ``round=up``; ffmpeg's default would take
the frame nearest to ``t + 0.5 / fps``), and an input shorter than one step
still gives its first frame (``eof_action=pass``). Frames are shown upright (ffmpeg
applies the rotation flag) and scaled so that the longer side is at most
``max_side``: the models here work on small pictures, and a 4K frame would
cost memory for nothing. Nothing is written to disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediaflow_worker.ffmpeg.common import even, input_args
from mediaflow_worker.process import stream_ffmpeg

if TYPE_CHECKING:  # NumPy is in the ml extra only: imported where frames are made
    import numpy as np
    import numpy.typing as npt

    from mediaflow_worker.tasks import TaskContext


@dataclass(frozen=True)
class Frame:
    """One sampled frame."""

    time: float  # seconds from the start of the input
    image: npt.NDArray[np.uint8]  # height x width x 3, RGB


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down (never up) so the longer side is at
    most ``max_side``, both even (pure)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"no picture size: {width}x{height}")
    scale = min(1.0, max_side / max(width, height))
    # Rounded first: 161 * (100 / 161) is 99.999..., which would lose 2 pixels.
    return max(2, even(round(width * scale, 6))), max(2, even(round(height * scale, 6)))


def sample_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    fps: float,
    size: tuple[int, int],
    start: float | None = None,
    duration: float | None = None,
) -> list[str]:
    """The ffmpeg command writing RGB frames of ``size`` on the ``fps`` grid
    to ``pipe:1`` (pure)."""
    width, height = size
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        *input_args(path, demuxer, max_pixels, start=start, duration=duration),
        "-map",
        "0:V:0",
        "-vf",
        f"fps=fps={fps:g}:start_time=0:round=up:eof_action=pass,"
        f"scale={width}:{height}:flags=area,format=rgb24",
        "-f",
        "rawvideo",
        "pipe:1",
    ]


def sample_frames(
    ctx: TaskContext,
    *,
    fps: float,
    max_side: int = 640,
    start: float | None = None,
    duration: float | None = None,
) -> Iterator[Frame]:
    """The input's frames on the ``fps`` grid, scaled to ``max_side``;
    ``TaskNotApplicable`` (from ``ctx.display_size``) without video. Stop
    iterating early and ffmpeg is killed."""
    import numpy as np

    width, height = scaled_size(*ctx.display_size(), max_side)
    frame_bytes = width * height * 3
    args = sample_args(
        ctx.input_path,
        ctx.probe.demuxer,
        ctx.limits.max_pixels,
        fps=fps,
        size=(width, height),
        start=start,
        duration=duration,
    )
    offset = start or 0.0
    chunks = stream_ffmpeg(
        args, label=f"{ctx.task_name}: frames", deadline=ctx.deadline, chunk_bytes=frame_bytes
    )
    for index, chunk in enumerate(chunks):
        image = np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3)
        yield Frame(round(offset + index / fps, 3), image)
