"""The ``transcode`` task: one output file."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import AUDIO_ONLY_CONTAINERS, TranscodeTask
from mediaflow_worker.errors import (
    BadInputError,
    IncompatibleCopyError,
    OutputTooLargeError,
    ProcessingError,
    ProcessTimeoutError,
)
from mediaflow_worker.ffmpeg.audio import (
    AudioOutput,
    loudness_measure_args,
    loudnorm_filter,
    parse_loudness_report,
    select_tracks,
)
from mediaflow_worker.ffmpeg.blur import privacy_step
from mediaflow_worker.ffmpeg.codecs import AUDIO_ENCODERS, CONTAINERS, VIDEO_ENCODERS, copy_fits
from mediaflow_worker.ffmpeg.graph import GraphStep
from mediaflow_worker.ffmpeg.sizing import plan_size
from mediaflow_worker.ffmpeg.subtitles import burn_in_step
from mediaflow_worker.ffmpeg.transcode import EncodePass, plan_tail_frame, transcode_args
from mediaflow_worker.ffmpeg.watermark import WatermarkInput
from mediaflow_worker.probe import audio_tracks, last_video_frame
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext, TaskNotApplicable
from mediaflow_worker.tasks._common import describe_media
from mediaflow_worker.tasks._watermarks import prepare_watermarks
from mediaflow_worker.tasks.intro_outro import JoinPlan, join_fps, joined_audio, prepare_join
from mediaflow_worker.tasks.subtitles import SubtitlePlan, prepare_subtitles

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
    subtitles: SubtitlePlan | None = None,
    join: JoinPlan | None = None,
    encode_pass: EncodePass | None = None,
    audio_outputs: list[AudioOutput] | None = None,
    seek_by_decoding: bool = False,
) -> list[str]:
    """Decide whether and how a resolved transcode applies to this input,
    gather what its command needs (fetching the watermark assets) and build
    it with ``ffmpeg.transcode``. ``tail``: (start, end) of the source's last
    video frame (``probe.last_video_frame``), when known; ``subtitles``: the
    prepared sidecar (``tasks.subtitles``); ``join``: the intro and outro
    clips (``tasks.intro_outro``; the video then gets one constant rate);
    ``encode_pass``: which pass of a two-pass encode; ``audio_outputs``: the
    selected audio tracks with their loudness filters (``plan_audio``; None:
    the first track as it is); ``seek_by_decoding``: see
    ``ffmpeg.transcode.transcode_args``."""
    probe = ctx.probe
    if join is not None and spec.video is not None:
        # Joined parts must share one constant frame rate.
        fps = join_fps(spec, ctx)
        spec = spec.model_copy(update={"video": spec.video.model_copy(update={"fps": fps})})
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
        if audio_outputs is None:
            copied.append(("audio", probe.audio.codec))
        else:
            copied += [("audio", output.track.codec) for output in audio_outputs]
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
    pre_steps: list[GraphStep] = []
    post_steps: list[GraphStep] = []
    track = subtitles.track if subtitles is not None else None
    burn = track is not None and spec.subtitles is not None and spec.subtitles.mode == "burnIn"
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
        if spec.privacy is not None:
            source = (probe.video.display_width, probe.video.display_height)
            pre_steps.append(privacy_step(spec.privacy.regions, source, size, sizing.content))
        if burn and track is not None and spec.subtitles is not None:
            fonts_dir = str(Path(ctx.font).parent)
            post_steps.append(burn_in_step(track, spec.subtitles.style, size, fonts_dir))
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
        pre_steps=pre_steps,
        post_steps=post_steps,
        soft_subtitles=None if burn else track,
        subtitle_language=spec.subtitles.language if spec.subtitles else None,
        intro=join.intro if join else None,
        outro=join.outro if join else None,
        joined_audio=joined_audio(spec, ctx) if join else None,
        encode_pass=encode_pass if use_video and video.codec != "copy" else None,
        audio_outputs=audio_outputs if use_audio and join is None else None,
        seek_by_decoding=seek_by_decoding,
        sizing=sizing,
    )


def plan_audio(spec: TranscodeTask, ctx: TaskContext, expected: float) -> list[AudioOutput] | None:
    """The audio tracks the output keeps (``audio.tracks``/``languages``)
    and, for ``audio.loudness``, each one's correcting filter from a first
    ffmpeg pass that measures it (over the trimmed part, under the task's
    deadline). None when there is no audio to keep."""
    audio = spec.audio
    assert audio is not None
    if ctx.probe.audio is None or audio.codec == "none":
        return None
    if spec.trim and ctx.duration and spec.trim.start >= ctx.duration:
        return None  # nothing to measure: prepare_command says why it does not apply
    selected = select_tracks(audio_tracks(ctx.probe), audio, spec.container or "mp4")
    if not selected:
        return None
    if audio.languages is not None:
        found = [t.language for t in selected]
        log.info("%s: audio languages %s -> tracks %s", ctx.task_name, audio.languages, found)
    if audio.loudness is None or audio.codec == "copy":
        return [AudioOutput(track) for track in selected]
    trim = spec.trim
    outputs = []
    for track in selected:
        args = loudness_measure_args(
            ctx.input_path,
            ctx.probe.demuxer,
            ctx.limits.max_pixels,
            track.index,
            audio.loudness,
            start=trim.start if trim else None,
            duration=trim.duration if trim else None,
        )
        report = run_ffmpeg(
            args,
            label=f"{ctx.task_name} (loudness of audio track {track.index})",
            expected_seconds=expected,
            deadline=ctx.deadline,
        )
        measured = parse_loudness_report(report)
        if measured is None:
            raise ProcessingError(
                f"{ctx.task_name}: ffmpeg's loudnorm printed no measurement for audio "
                f"track {track.index}"
            )
        chain = loudnorm_filter(audio.loudness, measured)
        if chain is None:
            log.info(
                "%s: audio track %d is silent (%.1f LUFS): left as it is",
                ctx.task_name,
                track.index,
                measured.integrated,
            )
        outputs.append(AudioOutput(track, chain))
    return outputs


def _commands(
    spec: TranscodeTask,
    ctx: TaskContext,
    out: Path,
    tail: tuple[float, float] | None,
    audio_outputs: list[AudioOutput] | None,
    subtitles: SubtitlePlan | None = None,
    join: JoinPlan | None = None,
    seek_by_decoding: bool = False,
) -> list[tuple[str, list[str]]]:
    """(label, command) of each ffmpeg run of the transcode: one, or two for
    ``video.twoPass`` (the first writes only its stats file, to the scratch
    directory). Built before any runs, so a spec the input cannot take
    fails before encoding starts."""
    assert spec.video is not None
    if not (spec.video.two_pass and ctx.probe.video is not None and spec.video.codec != "none"):
        command = prepare_command(
            spec,
            ctx,
            out,
            tail,
            subtitles,
            join,
            audio_outputs=audio_outputs,
            seek_by_decoding=seek_by_decoding,
        )
        return [(ctx.task_name, command)]
    log_prefix = ctx.scratch / f"{ctx.task_name}-2pass"
    return [
        (
            f"{ctx.task_name} (pass {n} of 2)",
            prepare_command(
                spec,
                ctx,
                out,
                tail,
                subtitles,
                join,
                EncodePass(n, log_prefix),
                audio_outputs,
                seek_by_decoding,
            ),
        )
        for n in (1, 2)
    ]


def _run_commands(commands: list[tuple[str, list[str]]], ctx: TaskContext, expected: float) -> None:
    """Run ``_commands`` one after the other, all under the task's deadline."""
    for label, args in commands:
        run_ffmpeg(args, label=label, expected_seconds=expected, deadline=ctx.deadline)


def marks_inputs(marks: list[WatermarkInput]) -> list[WatermarkInput]:
    """The watermarks that take an extra ffmpeg input (images)."""
    return [m for m in marks if m.input_index is not None]


def resolve_trim(spec: TranscodeTask, input_duration: float) -> TranscodeTask:
    """``spec`` with ``trim.end``/``endOffset`` turned into a ``duration``
    (the one form the commands take). Raises ``TaskNotApplicable`` when
    nothing is left of the input."""
    trim = spec.trim
    if trim is None or (trim.end is None and trim.end_offset is None):
        return spec
    length = trim.length(input_duration)
    if length is not None and length <= 0:
        raise TaskNotApplicable(
            f"trim leaves nothing of the input ({input_duration:g} s): start {trim.start:g} s, "
            f"endOffset {trim.end_offset or 0:g} s"
        )
    kept = trim.model_copy(update={"duration": length, "end": None, "end_offset": None})
    return spec.model_copy(update={"trim": kept})


def run(spec: TranscodeTask, ctx: TaskContext) -> list[OutputFile]:
    """Encode the input into ``<task>/<fileName or task>.<ext>`` (``spec``
    resolved: presets applied)."""
    spec = resolve_trim(spec, ctx.duration)
    assert spec.container is not None
    _, ext = CONTAINERS[spec.container]
    out = ctx.out_dir / f"{spec.file_name or ctx.task_name}.{ext}"
    assert spec.video is not None
    tail = None
    trim = spec.trim
    join = prepare_join(spec, ctx)
    if (
        join is None  # joined parts have a constant rate: no held frame to keep
        and ctx.probe.video is not None
        and spec.video.codec not in ("copy", "none")
        and (trim is None or trim.duration is None or trim.start + trim.duration >= ctx.duration)
    ):
        # A screen recording's last frame can stay on screen for seconds.
        # Probed once per run, however many transcodes need it.
        tail = ctx.facts.last_frame(lambda: last_video_frame(ctx.probe, ctx.input_path))
    subtitles = prepare_subtitles(spec.subtitles, ctx, trim.start if trim else 0.0)
    expected = ctx.duration - (trim.start if trim else 0)
    if trim and trim.duration:
        expected = min(expected, trim.duration)
    if join is not None:
        expected += join.seconds()
    copying = "copy" in (
        spec.video.codec if spec.video else None,
        spec.audio.codec if spec.audio else None,
    )
    audio_outputs = plan_audio(spec, ctx, expected)
    commands = _commands(spec, ctx, out, tail, audio_outputs, subtitles, join)
    try:
        try:
            _run_commands(commands, ctx, expected)
        except ProcessingError as exc:
            if tail is None or isinstance(exc, ProcessTimeoutError | OutputTooLargeError):
                raise
            # The repeated last frame is a refinement: should its second
            # input trip ffmpeg up on some odd file, do without it.
            log.warning("%s: retrying without the held last frame: %s", ctx.task_name, exc)
            _run_commands(
                _commands(spec, ctx, out, None, audio_outputs, subtitles, join), ctx, expected
            )
    except ProcessingError as exc:
        # The table above is what ffmpeg 5.1 was measured to accept; a muxer
        # refusing a copied stream anyway is just as permanent.
        if copying and _MUXER_REFUSED.search(exc.message):
            raise IncompatibleCopyError(
                f"codec copy: the {spec.container} muxer refused the source stream ({exc.message})"
            ) from exc
        raise
    info = describe_media(out)
    if _video_lost(spec, ctx, info):
        trim = spec.trim
        copied_audio = spec.audio is not None and spec.audio.codec == "copy"
        if trim is None or not trim.start or join is not None or copied_audio:
            raise ProcessingError(f"{ctx.task_name}: ffmpeg wrote no video stream")
        # An input seek into a stream without a keyframe near trim.start
        # (an MPEG-TS with one IDR frame) decodes no picture, and ffmpeg
        # writes the sound alone with exit code 0.
        log.info("%s: decoding from the start to reach %g s", ctx.task_name, trim.start)
        retry = _commands(spec, ctx, out, None, audio_outputs, subtitles, None, True)
        _run_commands(retry, ctx, expected)
        info = describe_media(out)
        if _video_lost(spec, ctx, info):
            raise ProcessingError(f"{ctx.task_name}: ffmpeg wrote no video stream")
    if subtitles is not None:
        info["subtitles"] = _subtitles_info(spec, ctx, subtitles)
    if join is not None:
        info.update(join.info())
    return [OutputFile(out, info)]


def _video_lost(spec: TranscodeTask, ctx: TaskContext, info: dict[str, Any]) -> bool:
    """Whether the output lacks the video stream the transcode encodes."""
    assert spec.video is not None
    encoded = ctx.probe.video is not None and spec.video.codec not in ("copy", "none")
    return encoded and not info.get("videoCodec")


def _subtitles_info(spec: TranscodeTask, ctx: TaskContext, plan: SubtitlePlan) -> dict[str, Any]:
    """What the manifest says about the subtitles: found or not, and
    whether they were burned in (not without an encoded video)."""
    info = dict(plan.info)
    burn = spec.subtitles is not None and spec.subtitles.mode == "burnIn"
    vcodec = spec.video.codec if spec.video is not None else None
    encoded = ctx.probe.video is not None and vcodec not in ("copy", "none")
    info["burnedIn"] = bool(plan.track is not None and burn and encoded)
    if plan.track is not None and burn and not encoded:
        info["reason"] = "the input has no video to burn the subtitles into"
    return info
