"""The ``snapshot`` task: still images at chosen instants."""

from __future__ import annotations

from mediaflow_spec.tasks import SnapshotTask, parse_time_point
from mediaflow_worker import ffmpeg_args as fa
from mediaflow_worker.errors import ProcessingError
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext


def run(spec: SnapshotTask, ctx: TaskContext) -> list[OutputFile]:
    """One image per instant: ``snapshot-0001.jpg`` ... in time order.

    Each image is its own short ffmpeg run with input seeking, which decodes
    from the nearest keyframe only: far cheaper than decoding the whole input
    for a handful of frames (bench/worker_bench.py measures it)."""
    display = ctx.display_size()
    video = ctx.probe.video
    assert video is not None
    times = fa.snapshot_times(
        ctx.duration,
        video.fps,
        times=[parse_time_point(t) for t in spec.times] if spec.times else None,
        interval=spec.interval_seconds,
        count=spec.count,
        max_count=spec.max_count,
    )
    size = fa.fit_size(*display, spec.width, spec.height, adaptive_orientation=False)
    ext = fa.IMAGE_EXTENSIONS[spec.format]
    outputs = []
    for i, at in enumerate(times, start=1):
        out = ctx.out_dir / f"snapshot-{i:04d}.{ext}"
        # A seek can land after the last decodable frame (short or VFR
        # inputs); step back towards the start until a frame comes out.
        for attempt in (at, max(0.0, at - 1.0), 0.0):
            args = fa.snapshot_args(
                ctx.input_path,
                ctx.probe.demuxer,
                ctx.limits.max_pixels,
                attempt,
                size,
                spec.format,
                out,
            )
            run_ffmpeg(
                args, label=f"{ctx.task_name} #{i}", expected_seconds=None, deadline=ctx.deadline
            )
            if out.exists() and out.stat().st_size > 0:
                break
        else:
            raise ProcessingError(f"{ctx.task_name}: no frame at {at:g} s")
        outputs.append(OutputFile(out, {"time": at, "width": size[0], "height": size[1]}))
    return outputs
