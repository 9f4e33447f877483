"""The ``transcode`` task: one output file."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import AUDIO_ONLY_CONTAINERS, TranscodeTask
from mediaflow_worker.errors import (
    BadInputError,
    IncompatibleCopyError,
    OutputTooLargeError,
    ProcessingError,
    ProcessTimeoutError,
)
from mediaflow_worker.ffmpeg.codecs import AUDIO_ENCODERS, CONTAINERS, VIDEO_ENCODERS, copy_fits
from mediaflow_worker.ffmpeg.sizing import plan_size
from mediaflow_worker.ffmpeg.transcode import plan_tail_frame, transcode_args
from mediaflow_worker.ffmpeg.watermark import WatermarkInput
from mediaflow_worker.probe import last_video_frame
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext, TaskNotApplicable
from mediaflow_worker.tasks._common import describe_media
from mediaflow_worker.tasks._watermarks import prepare_watermarks

log = logging.getLogger(__name__)

# ffmpeg's words when a muxer refuses a stream's codec.
_MUXER_REFUSED = re.compile(
    r"Could not write header|not currently supported in container|"
    r"codec not currently supported|Could not find tag for codec",
    re.IGNORECASE,
)
# SVT-AV1 1.4 encodes nothing smaller than this on either side.
SVTAV1_MIN_SIDE = 64


# The presets are resolved once, before any task runs (``registry.prepare``).
resolve = resolve_transcode


def required_encoders(spec: TranscodeTask) -> set[str]:
    """The ffmpeg encoders a resolved transcode uses (none for copy/none)."""
    assert spec.video is not None
    assert spec.audio is not None
    needed = set()
    if spec.video.codec in VIDEO_ENCODERS:
        needed.add(VIDEO_ENCODERS[spec.video.codec])
    if spec.audio.codec in AUDIO_ENCODERS:
        needed.add(AUDIO_ENCODERS[spec.audio.codec])
    return needed


def prepare_command(
    spec: TranscodeTask,
    ctx: TaskContext,
    out: Path,
    tail: tuple[float, float] | None = None,
) -> list[str]:
    """Decide whether and how a resolved transcode applies to this input,
    gather what its command needs (fetching the watermark assets) and build
    it with ``ffmpeg.transcode``. ``tail``: (start, end) of the source's last
    video frame (``probe.last_video_frame``), when known."""
    probe = ctx.probe
    video = spec.video
    audio = spec.audio
    assert spec.container is not None
    assert video is not None
    assert audio is not None
    use_video = probe.video is not None and video.codec != "none"
    use_audio = probe.audio is not None and audio.codec != "none"
    if not use_video and not use_audio:
        wanted = "audio" if spec.container in AUDIO_ONLY_CONTAINERS else "audio or video"
        raise TaskNotApplicable(f"the input has no {wanted} stream for a {spec.container} file")
    start = spec.trim.start if spec.trim else None
    if start and ctx.duration and start >= ctx.duration:
        raise TaskNotApplicable(f"trim.start {start:g} s is past the end ({ctx.duration:g} s)")
    copied: list[tuple[str, str]] = []
    if probe.video is not None and video.codec == "copy":
        copied.append(("video", probe.video.codec))
    if probe.audio is not None and audio.codec == "copy":
        copied.append(("audio", probe.audio.codec))
    for kind, source_codec in copied:
        if not copy_fits(kind, source_codec, spec.container):
            raise IncompatibleCopyError(
                f"{kind}.codec copy: the source's {source_codec} {kind} cannot go into "
                f"a {spec.container} file unchanged; pick a codec to re-encode, or "
                "another container"
            )
    size = None
    sizing = None
    marks: list[WatermarkInput] = []
    held = None
    if use_video and video.codec != "copy":
        assert probe.video is not None
        sizing = plan_size(
            probe.video.display_width,
            probe.video.display_height,
            video.width,
            video.height,
            fill=video.fill_type,
            pad_color=video.pad_color,
            upscale=bool(video.upscale),
            adaptive_orientation=video.adaptive_orientation is not False,
        )
        size = sizing.frame
        if video.codec == "av1" and min(size) < SVTAV1_MIN_SIDE:
            # SVT-AV1 refuses such frames ("bad parameter") every time.
            raise BadInputError(
                f"video.codec av1 needs at least {SVTAV1_MIN_SIDE}x{SVTAV1_MIN_SIDE} pixels; "
                f"this input comes out at {size[0]}x{size[1]} (allow upscale or pick "
                "another codec)",
                reason="OutputTooSmall",
            )
        out_duration = max(ctx.duration - (start or 0.0), 0.0)
        if spec.trim and spec.trim.duration:
            out_duration = min(out_duration, spec.trim.duration)
        marks = prepare_watermarks(spec.watermarks, ctx, size, out_duration or None)
        if tail is not None:
            held = plan_tail_frame(
                last_pts=tail[0],
                end=tail[1],
                start_time=probe.start_time,
                trim_start=start or 0.0,
                frame_rate=probe.video.fps,
                out_rate=video.fps,
                time_base=probe.video.time_base,
                # The extra input comes after the watermark images.
                input_index=len(marks_inputs(marks)) + 1,
            )
    return transcode_args(
        spec,
        ctx.input_path,
        probe.demuxer,
        ctx.limits.max_pixels,
        video=probe.video if use_video else None,
        audio=probe.audio if use_audio else None,
        size=size,
        marks=marks,
        tail=held,
        font=ctx.font,
        max_output_bytes=ctx.limits.max_output_bytes,
        out=out,
        sizing=sizing,
    )


def marks_inputs(marks: list[WatermarkInput]) -> list[WatermarkInput]:
    """The watermarks that take an extra ffmpeg input (images)."""
    return [m for m in marks if m.input_index is not None]


def run(spec: TranscodeTask, ctx: TaskContext) -> list[OutputFile]:
    """Encode the input into ``<task>/<fileName or task>.<ext>`` (``spec``
    resolved: presets applied)."""
    assert spec.container is not None
    _, ext = CONTAINERS[spec.container]
    out = ctx.out_dir / f"{spec.file_name or ctx.task_name}.{ext}"
    assert spec.video is not None
    tail = None
    trim = spec.trim
    if (
        ctx.probe.video is not None
        and spec.video.codec not in ("copy", "none")
        and (trim is None or trim.duration is None or trim.start + trim.duration >= ctx.duration)
    ):
        # A screen recording's last frame can stay on screen for seconds.
        # Probed once per run, however many transcodes need it.
        tail = ctx.facts.last_frame(lambda: last_video_frame(ctx.probe, ctx.input_path))
    args = prepare_command(spec, ctx, out, tail)
    expected = ctx.duration - (trim.start if trim else 0)
    if trim and trim.duration:
        expected = min(expected, trim.duration)
    copying = "copy" in (
        spec.video.codec if spec.video else None,
        spec.audio.codec if spec.audio else None,
    )
    try:
        try:
            run_ffmpeg(
                args, label=f"{ctx.task_name}", expected_seconds=expected, deadline=ctx.deadline
            )
        except ProcessingError as exc:
            if tail is None or isinstance(exc, ProcessTimeoutError | OutputTooLargeError):
                raise
            # The repeated last frame is a refinement: should its second
            # input trip ffmpeg up on some odd file, do without it.
            log.warning("%s: retrying without the held last frame: %s", ctx.task_name, exc)
            args = prepare_command(spec, ctx, out)
            run_ffmpeg(
                args, label=f"{ctx.task_name}", expected_seconds=expected, deadline=ctx.deadline
            )
    except ProcessingError as exc:
        # The table above is what ffmpeg 5.1 was measured to accept; a muxer
        # refusing a copied stream anyway is just as permanent.
        if copying and _MUXER_REFUSED.search(exc.message):
            raise IncompatibleCopyError(
                f"codec copy: the {spec.container} muxer refused the source stream ({exc.message})"
            ) from exc
        raise
    return [OutputFile(out, describe_media(out))]
