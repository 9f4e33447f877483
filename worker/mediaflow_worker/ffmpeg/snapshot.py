"""The ``snapshot`` commands: which instants, and a still per seek or every
still from one decode (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import image_codec_args
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    image_input_args,
    input_args,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.sizing import SizePlan, picture_chains
from mediaflow_worker.ffmpeg.watermark import WatermarkInput


def _plan(size: tuple[int, int] | SizePlan) -> SizePlan:
    """A plain (width, height) is a picture scaled to exactly that size."""
    return size if isinstance(size, SizePlan) else SizePlan(size, size)


def _images(marks: Sequence[WatermarkInput]) -> list[str]:
    """Input options of the watermark images (inputs 1, 2...)."""
    args: list[str] = []
    for mark in marks:
        if mark.image_path is not None:
            args += image_input_args(mark.image_path)
    return args


def _still_graph(
    size: tuple[int, int] | SizePlan, marks: Sequence[WatermarkInput], font: str
) -> str:
    """Size and watermark the seeked input's frames into ``[still]``."""
    return ";".join(picture_chains(_plan(size), marks, font, "0:V:0", "still"))


def snapshot_times(
    duration: float,
    fps: float | None,
    *,
    times: Sequence[tuple[float, bool]] | None = None,
    interval: float | None = None,
    count: int | None = None,
    max_count: int = 100,
) -> list[float]:
    """Instants (seconds) to grab, clamped to the last frame of the input.

    ``times`` are ``(value, is_percent)`` pairs; ``interval`` gives 0, N, 2N...;
    ``count`` gives N instants evenly spaced inside the duration (never the
    first or last frame, which are often black).
    """
    # The last instant that still has a frame: one or two frame durations
    # before the end (a seek past the last frame yields nothing).
    last = max(0.0, duration - max(2.0 / (fps or 25.0), 0.05))
    if times is not None:
        raw = [duration * v / 100 if pct else v for v, pct in times]
    elif interval is not None:
        n = min(max_count, max(1, math.ceil(duration / interval - 1e-9)))
        raw = [i * interval for i in range(n)]
    elif count is not None:
        raw = [duration * (i + 1) / (count + 1) for i in range(count)]
    else:
        raise ValueError("one of times, interval and count is required")
    return [round(min(max(t, 0.0), last), 3) for t in raw]


def snapshot_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    at: float,
    size: tuple[int, int] | SizePlan,
    fmt: str,
    out: Path,
    *,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> list[str]:
    """One still at ``at`` seconds (input seeking: decodes from the previous
    keyframe only). ``marks``: the watermarks shown at ``at``, without times
    (the seeked frames' timestamps start at 0)."""
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=at),
        *_images(marks),
        "-filter_complex",
        _still_graph(size, marks, font),
        "-map",
        "[still]",
        "-frames:v",
        "1",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-update",
        "1",
        str(out),
    ]


def snapshot_window_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    at: float,
    window: float,
    size: tuple[int, int] | SizePlan,
    fmt: str,
    out: Path,
    *,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> list[str]:
    """The frame *shown* at ``at``: decode ``window`` seconds up to ``at`` and
    keep the last frame (``-update 1`` overwrites). For instants after the
    last frame starts, where a plain seek finds nothing (VFR recordings hold
    their last frame for seconds). ``marks`` as in ``snapshot_args``."""
    start = max(0.0, at - window)
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=max(at - start, 0.001)),
        *_images(marks),
        "-filter_complex",
        _still_graph(size, marks, font),
        "-map",
        "[still]",
        "-fps_mode",
        "passthrough",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-update",
        "1",
        str(out),
    ]


def snapshots_single_pass_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    times: Sequence[float],
    size: tuple[int, int] | SizePlan,
    fmt: str,
    outs: Sequence[Path],
    *,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> list[str]:
    """Every still from one decode: ``split`` into one ``trim`` branch per
    instant, each branch's first frame written. Faster than seeking when the
    input is short (bench/worker_bench.py). With watermarks (their times in
    the input's timeline) the frames are sized and marked before the split."""
    n = len(times)
    plan = _plan(size)
    if marks or plan.fill != "fit":
        chains = picture_chains(plan, marks, font, "0:V:0", "pic")
        chains.append("[pic]split=" + str(n) + "".join(f"[s{i}]" for i in range(n)))
        chains += [f"[s{i}]trim=start={t:.3f}[o{i}]" for i, t in enumerate(times)]
    else:
        w, h = plan.frame
        chains = [f"[0:V:0]split={n}" + "".join(f"[s{i}]" for i in range(n))]
        chains += [
            f"[s{i}]trim=start={t:.3f},scale={w}:{h},setsar=1[o{i}]" for i, t in enumerate(times)
        ]
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        *_images(marks),
        "-filter_complex",
        ";".join(chains),
    ]
    for i, out in enumerate(outs):
        args += ["-map", f"[o{i}]", "-frames:v", "1", *image_codec_args(fmt)]
        args += [*strip_metadata_args(), "-f", "image2", "-update", "1", str(out)]
    return args
