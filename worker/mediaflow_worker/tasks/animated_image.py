"""The ``animatedImage`` task: a GIF or animated WebP preview."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mediaflow_api.tasks import AnimatedImageTask, parse_time_point
from mediaflow_worker.errors import ProcessingError, ProcessTimeoutError
from mediaflow_worker.ffmpeg.animated_image import animated_args
from mediaflow_worker.ffmpeg.codecs import ANIMATION_ENCODERS
from mediaflow_worker.ffmpeg.sizing import plan_size
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.tasks._common import describe_media
from mediaflow_worker.tasks._watermarks import prepare_watermarks, shifted

log = logging.getLogger(__name__)


def clip_window(total: float, start: tuple[float, bool], length: float) -> tuple[float, float]:
    """(start, duration) inside the input: a window running past the end is
    moved back so the preview keeps its length when the input allows."""
    value, percent = start
    begin = total * value / 100 if percent else value
    if total > 0:
        begin = max(0.0, min(begin, total - length))
        length = min(length, total - begin)
    return round(begin, 3), round(length, 3)


def webp_animation_frames(data: bytes) -> int:
    """The number of frames (``ANMF`` chunks) of an animated WebP file; 1 for
    a still WebP (libwebp_anim writes one when every frame of a short, still
    clip comes out the same after lossy coding); 0 for anything else. ffmpeg
    5.1 cannot decode animated WebP, so ffprobe cannot count them."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return 0
    frames, still, pos = 0, False, 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        frames += fourcc == b"ANMF"
        still |= fourcc in (b"VP8 ", b"VP8L")
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    return frames or int(still)


def describe_animation(path: Path, fmt: str) -> tuple[int, dict[str, Any]]:
    """How many frames the animation ffmpeg wrote holds (0: none, or no file),
    and its manifest description (one ffprobe for both)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0, {}
    info = describe_media(path)
    if fmt == "webp":
        return webp_animation_frames(path.read_bytes()), info
    # A GIF ffprobe can read has at least one frame, hence a duration.
    return (1 if info.get("duration") else 0), info


def required_encoders(spec: AnimatedImageTask) -> set[str]:
    """The encoder of the animation's format."""
    return {ANIMATION_ENCODERS[spec.format]}


def run(spec: AnimatedImageTask, ctx: TaskContext) -> list[OutputFile]:
    """``<task>.gif`` or ``<task>.webp``."""
    display = ctx.display_size()
    begin, length = clip_window(ctx.duration, parse_time_point(spec.start), spec.duration)
    plan = plan_size(
        *display,
        spec.width,
        spec.height,
        fill=spec.fill_type,
        pad_color=spec.pad_color,
        adaptive_orientation=bool(spec.adaptive_orientation),
    )
    size = plan.frame
    marks = prepare_watermarks(spec.watermarks, ctx, size, length)
    out = ctx.out_dir / f"{ctx.task_name}.{spec.format}"

    def encode(seek_by_decoding: bool) -> None:
        args = animated_args(
            ctx.input_path,
            ctx.probe.demuxer,
            ctx.limits.max_pixels,
            start=begin,
            duration=length,
            fps=spec.fps,
            size=plan,
            fmt=spec.format,
            loop=spec.loop,
            out=out,
            seek_by_decoding=seek_by_decoding,
            # Decoding from the input's start: the filter sees input times.
            marks=shifted(marks, begin) if seek_by_decoding else marks,
            font=ctx.font,
        )
        run_ffmpeg(args, label=ctx.task_name, expected_seconds=length, deadline=ctx.deadline)

    try:
        encode(seek_by_decoding=False)
        frames, info = describe_animation(out, spec.format)
    except ProcessingError as exc:
        if begin <= 0 or isinstance(exc, ProcessTimeoutError):
            raise
        # libwebp refuses to assemble an animation of no frames: the input
        # seek found no picture to start from (see ``seek_by_decoding``).
        log.info("%s: no frames after seeking to %g s (%s)", ctx.task_name, begin, exc.message)
        frames, info = 0, {}
    if frames == 0 and begin > 0:
        log.info("%s: decoding from the start to reach %g s", ctx.task_name, begin)
        encode(seek_by_decoding=True)
        frames, info = describe_animation(out, spec.format)
    if frames == 0:
        # The GIF muxer writes an empty file, with exit code 0, from no frames.
        raise ProcessingError(
            f"{ctx.task_name}: ffmpeg wrote no frames for {begin:g}-{begin + length:g} s"
        )
    info.update({"start": begin, "width": size[0], "height": size[1]})
    return [OutputFile(out, info)]
