"""The ``snapshot`` task: still images at chosen instants."""

from __future__ import annotations

from pathlib import Path

from mediaflow_api.tasks import SnapshotTask, parse_time_point
from mediaflow_worker.errors import ProcessingError
from mediaflow_worker.ffmpeg.codecs import IMAGE_ENCODERS, IMAGE_EXTENSIONS
from mediaflow_worker.ffmpeg.sizing import SizePlan, plan_size
from mediaflow_worker.ffmpeg.snapshot import (
    snapshot_args,
    snapshot_times,
    snapshot_window_args,
    snapshots_single_pass_args,
)
from mediaflow_worker.ffmpeg.watermark import WatermarkInput, shown_at
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.tasks._watermarks import prepare_watermarks, renumbered

# Up to this input length (and image count) one decode feeding every image
# beats one seeking run per image: seeks decode from the previous keyframe,
# which in short clips is the start anyway (bench/worker_bench.py measured
# 0.3 s vs 0.9 s for five stills of a 4 s 720p clip).
SINGLE_PASS_MAX_SECONDS = 60.0
SINGLE_PASS_MAX_IMAGES = 20


def required_encoders(spec: SnapshotTask) -> set[str]:
    """The image encoder of the snapshot's format."""
    return {IMAGE_ENCODERS[spec.format]}


def run(spec: SnapshotTask, ctx: TaskContext) -> list[OutputFile]:
    """One image per instant: ``snapshot-0001.jpg`` ... in time order."""
    display = ctx.display_size()
    video = ctx.probe.video
    assert video is not None
    times = snapshot_times(
        ctx.duration,
        video.fps,
        times=[parse_time_point(t) for t in spec.times] if spec.times else None,
        interval=spec.interval_seconds,
        count=spec.count,
        max_count=spec.max_count,
    )
    plan = plan_size(
        *display,
        spec.width,
        spec.height,
        fill=spec.fill_type,
        pad_color=spec.pad_color,
        adaptive_orientation=bool(spec.adaptive_orientation),
    )
    size = plan.frame
    marks = prepare_watermarks(spec.watermarks, ctx, size, ctx.duration or None)
    ext = IMAGE_EXTENSIONS[spec.format]
    outs = [ctx.out_dir / f"snapshot-{i:04d}.{ext}" for i in range(1, len(times) + 1)]
    if ctx.duration <= SINGLE_PASS_MAX_SECONDS and len(times) <= SINGLE_PASS_MAX_IMAGES:
        args = snapshots_single_pass_args(
            ctx.input_path,
            ctx.probe.demuxer,
            ctx.limits.max_pixels,
            times,
            plan,
            spec.format,
            outs,
            marks=marks,
            font=ctx.font,
        )
        run_ffmpeg(
            args,
            label=ctx.task_name,
            expected_seconds=max(times, default=0) or None,
            deadline=ctx.deadline,
        )
    for i, (at, out) in enumerate(zip(times, outs, strict=True), start=1):
        if not _written(out):
            _seek_one(spec, ctx, i, at, plan, _shown_at(marks, at, ctx.duration), out)
    return [
        OutputFile(out, {"time": at, "width": size[0], "height": size[1]})
        for at, out in zip(times, outs, strict=True)
    ]


def _written(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _shown_at(marks: list[WatermarkInput], at: float, duration: float) -> list[WatermarkInput]:
    """The watermarks a still taken at ``at`` shows, their times dropped: a
    seeking command's frames are stamped from 0, not from ``at``."""
    shown = [
        WatermarkInput(
            m.spec.model_copy(update={"start": None, "end": None}),
            m.input_index,
            m.image_size,
            m.text_file,
            m.image_path,
            m.font_file,
        )
        for m in marks
        if shown_at(m.spec, at, duration)
    ]
    return renumbered(shown)


def _seek_one(
    spec: SnapshotTask,
    ctx: TaskContext,
    i: int,
    at: float,
    size: SizePlan,
    marks: list[WatermarkInput],
    out: Path,
) -> None:
    """One image by input seeking (decodes from the nearest keyframe only)."""
    args = snapshot_args(
        ctx.input_path,
        ctx.probe.demuxer,
        ctx.limits.max_pixels,
        at,
        size,
        spec.format,
        out,
        marks=marks,
        font=ctx.font,
    )
    run_ffmpeg(args, label=f"{ctx.task_name} #{i}", expected_seconds=None, deadline=ctx.deadline)
    # No frame starts at or after ``at`` (the end of a VFR recording, whose
    # last frame stays on screen for seconds): take the last frame before it,
    # looking further back each time.
    for window in (2.0, 10.0, at):
        if _written(out):
            return
        args = snapshot_window_args(
            ctx.input_path,
            ctx.probe.demuxer,
            ctx.limits.max_pixels,
            at,
            window,
            size,
            spec.format,
            out,
            marks=marks,
            font=ctx.font,
        )
        run_ffmpeg(
            args, label=f"{ctx.task_name} #{i}", expected_seconds=None, deadline=ctx.deadline
        )
    if not _written(out):
        raise ProcessingError(f"{ctx.task_name}: no frame at {at:g} s")
