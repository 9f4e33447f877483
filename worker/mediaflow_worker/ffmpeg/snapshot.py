"""The ``snapshot`` commands: which instants, and a still per seek or every
still from one decode (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import image_codec_args
from mediaflow_worker.ffmpeg.common import base_args, input_args, strip_metadata_args


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
    size: tuple[int, int],
    fmt: str,
    out: Path,
) -> list[str]:
    """One still at ``at`` seconds (input seeking: decodes from the previous
    keyframe only)."""
    w, h = size
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=at),
        "-map",
        "0:V:0",
        "-vf",
        f"scale={w}:{h},setsar=1",
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
    size: tuple[int, int],
    fmt: str,
    out: Path,
) -> list[str]:
    """The frame *shown* at ``at``: decode ``window`` seconds up to ``at`` and
    keep the last frame (``-update 1`` overwrites). For instants after the
    last frame starts, where a plain seek finds nothing (VFR recordings hold
    their last frame for seconds)."""
    w, h = size
    start = max(0.0, at - window)
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=max(at - start, 0.001)),
        "-map",
        "0:V:0",
        "-vf",
        f"scale={w}:{h},setsar=1",
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
    size: tuple[int, int],
    fmt: str,
    outs: Sequence[Path],
) -> list[str]:
    """Every still from one decode: ``split`` into one ``trim`` branch per
    instant, each branch's first frame written. Faster than seeking when the
    input is short (bench/worker_bench.py)."""
    w, h = size
    n = len(times)
    chains = [f"[0:V:0]split={n}" + "".join(f"[s{i}]" for i in range(n))]
    chains += [
        f"[s{i}]trim=start={t:.3f},scale={w}:{h},setsar=1[o{i}]" for i, t in enumerate(times)
    ]
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        "-filter_complex",
        ";".join(chains),
    ]
    for i, out in enumerate(outs):
        args += ["-map", f"[o{i}]", "-frames:v", "1", *image_codec_args(fmt)]
        args += [*strip_metadata_args(), "-f", "image2", "-update", "1", str(out)]
    return args
