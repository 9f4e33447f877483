"""The ``adaptiveStreaming`` task: an HLS or DASH ladder from one decode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaflow_api.presets import resolve_ladder
from mediaflow_api.tasks import AdaptiveStreamingTask, Rendition, parse_bitrate
from mediaflow_worker.ffmpeg.adaptive_streaming import audio_stream_args, ladder_args, plan_ladder
from mediaflow_worker.ffmpeg.codecs import VIDEO_ENCODERS
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext, TaskNotApplicable


@dataclass(frozen=True)
class Ladder:
    """An adaptive streaming task with its ladder resolved (named ladder or
    explicit renditions, tallest first)."""

    spec: AdaptiveStreamingTask
    codec: str
    renditions: list[Rendition]


def resolve(spec: AdaptiveStreamingTask) -> Ladder:
    """The task with its ladder resolved (``presets.resolve_ladder``)."""
    codec, renditions = resolve_ladder(spec)
    return Ladder(spec, codec, renditions)


def required_encoders(ladder: Ladder) -> set[str]:
    """The ladder's video encoder and AAC."""
    return {VIDEO_ENCODERS[ladder.codec], "aac"}


def run(ladder: Ladder, ctx: TaskContext) -> list[OutputFile]:
    """HLS: ``master.m3u8`` + ``stream_<i>/index.m3u8`` + segments;
    DASH: ``manifest.mpd`` + init/chunk segments. Audio-only inputs get one
    audio rendition (podcasts stream too)."""
    spec, codec, renditions = ladder.spec, ladder.codec, ladder.renditions
    if ctx.probe.video is None:
        if ctx.probe.audio is None:
            raise TaskNotApplicable("the input has no audio or video stream")
        # The best audio bitrate of the ladder is the one rendition.
        bitrate = max((r.audio_bitrate for r in renditions), key=parse_bitrate)
        if spec.format == "hls":
            (ctx.out_dir / "stream_0").mkdir(parents=True, exist_ok=True)
        args = audio_stream_args(
            ctx.input_path,
            ctx.probe.demuxer,
            ctx.limits.max_pixels,
            fmt=spec.format,
            bitrate=bitrate,
            segment_seconds=spec.segment_seconds,
            out_dir=ctx.out_dir,
        )
        info: dict[str, Any] = {"renditions": [{"audioBitrate": bitrate}], "codec": "aac"}
    else:
        display = ctx.display_size()
        planned = plan_ladder(renditions, display)
        if spec.format == "hls":
            for i in range(len(planned)):
                (ctx.out_dir / f"stream_{i}").mkdir(parents=True, exist_ok=True)
        args = ladder_args(
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
        info = {
            "renditions": [
                {"width": p.width, "height": p.height, "videoBitrate": p.rendition.video_bitrate}
                for p in planned
            ],
            "codec": codec,
        }
    run_ffmpeg(args, label=ctx.task_name, expected_seconds=ctx.duration, deadline=ctx.deadline)
    playlist = "master.m3u8" if spec.format == "hls" else "manifest.mpd"
    return [
        OutputFile(path, info if path.name == playlist else {})
        for path in sorted(p for p in ctx.out_dir.rglob("*") if p.is_file())
    ]
