"""The ``adaptiveStreaming`` task: an HLS or DASH ladder from one decode."""

from __future__ import annotations

from mediaflow_spec.presets import resolve_ladder
from mediaflow_spec.tasks import AdaptiveStreamingTask
from mediaflow_worker import ffmpeg_args as fa
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext


def run(spec: AdaptiveStreamingTask, ctx: TaskContext) -> list[OutputFile]:
    """HLS: ``master.m3u8`` + ``stream_<i>/index.m3u8`` + segments;
    DASH: ``manifest.mpd`` + init/chunk segments."""
    display = ctx.display_size()
    codec, renditions = resolve_ladder(spec)
    planned = fa.plan_ladder(renditions, display)
    if spec.format == "hls":
        for i in range(len(planned)):
            (ctx.out_dir / f"stream_{i}").mkdir(parents=True, exist_ok=True)
    args = fa.ladder_args(
        ctx.input_path,
        ctx.probe.demuxer,
        ctx.limits.max_pixels,
        planned,
        fmt=spec.format,
        codec=codec,
        preset=spec.preset,
        segment_seconds=spec.segment_seconds,
        has_audio=ctx.probe.audio is not None,
        out_dir=ctx.out_dir,
    )
    run_ffmpeg(args, label=ctx.task_name, expected_seconds=ctx.duration, deadline=ctx.deadline)
    playlist = "master.m3u8" if spec.format == "hls" else "manifest.mpd"
    renditions_info = [
        {"width": p.width, "height": p.height, "videoBitrate": p.rendition.video_bitrate}
        for p in planned
    ]
    outputs = []
    for path in sorted(p for p in ctx.out_dir.rglob("*") if p.is_file()):
        info = {"renditions": renditions_info, "codec": codec} if path.name == playlist else {}
        outputs.append(OutputFile(path, info))
    return outputs
