"""The ``animatedImage`` task: a GIF or animated WebP preview."""

from __future__ import annotations

from mediaflow_api.tasks import AnimatedImageTask, parse_time_point
from mediaflow_worker.ffmpeg.animated_image import animated_args
from mediaflow_worker.ffmpeg.codecs import ANIMATION_ENCODERS
from mediaflow_worker.ffmpeg.sizing import plan_size
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.tasks._common import describe_media
from mediaflow_worker.tasks._watermarks import prepare_watermarks


def clip_window(total: float, start: tuple[float, bool], length: float) -> tuple[float, float]:
    """(start, duration) inside the input: a window running past the end is
    moved back so the preview keeps its length when the input allows."""
    value, percent = start
    begin = total * value / 100 if percent else value
    if total > 0:
        begin = max(0.0, min(begin, total - length))
        length = min(length, total - begin)
    return round(begin, 3), round(length, 3)


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
        marks=marks,
        font=ctx.font,
    )
    run_ffmpeg(args, label=ctx.task_name, expected_seconds=length, deadline=ctx.deadline)
    info = describe_media(out)
    info.update({"start": begin, "width": size[0], "height": size[1]})
    return [OutputFile(out, info)]
