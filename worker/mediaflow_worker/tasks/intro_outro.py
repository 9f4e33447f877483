"""Intro and outro clips of a transcode: fetched like watermark images,
vetted and probed like the upload itself (side effects; the joining filters
are built by ``ffmpeg.concat``).

A clip is hostile input too: it is sniffed, probed with the demuxer
allow-list and held to the Job's limits; a clip that fails any of this, or
has no video, fails the task with exit 2 (``AssetUnusable``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaflow_api.tasks import ClipRef, TranscodeTask
from mediaflow_worker import safety
from mediaflow_worker.errors import AssetError, BadInputError
from mediaflow_worker.ffmpeg.concat import ClipPart, JoinedAudio
from mediaflow_worker.probe import probe
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks._common import asset_error_as

# The output frame rate of a join when the source's is unknown or absurd.
DEFAULT_JOIN_FPS = 25.0
MAX_JOIN_FPS = 60.0


@dataclass(frozen=True)
class JoinPlan:
    """The clips a transcode joins (either may be None)."""

    intro: ClipPart | None
    outro: ClipPart | None

    def seconds(self) -> float:
        """How long the clips last together."""
        return sum(c.duration for c in (self.intro, self.outro) if c is not None)

    def info(self) -> dict[str, Any]:
        """What the manifest says about the joined clips."""
        found: dict[str, Any] = {}
        for name, clip in (("intro", self.intro), ("outro", self.outro)):
            if clip is not None:
                found[name] = {"seconds": round(clip.duration, 3), "audio": clip.has_audio}
        return found


def prepare_clip(ref: ClipRef, ctx: TaskContext, what: str) -> ClipPart:
    """Fetch, vet and probe one clip (``what``: intro or outro)."""
    where = f"{what} s3://{ref.bucket}/{ref.key}"
    try:
        path = ctx.fetch_asset(ref.bucket, ref.key)
    except AssetError as exc:
        raise asset_error_as(exc, what) from exc
    limits = ctx.limits
    try:
        safety.sniff(path)
        result = probe(path, limits.max_pixels)
        demuxer = safety.check_demuxer(result.format_name)
        safety.check_limits(
            duration=result.duration,
            pixels=result.pixels,
            size=result.size,
            max_duration=limits.max_duration_seconds,
            max_pixels=limits.max_pixels,
            max_size=limits.max_input_bytes,
        )
    except BadInputError as exc:
        raise AssetError(f"{where}: {exc.message}") from exc
    if result.video is None:
        raise AssetError(f"{where} has no video stream")
    if not result.duration or result.duration <= 0:
        raise AssetError(f"{where}: its duration is unknown")
    return ClipPart(path, demuxer, 0, result.duration, result.audio is not None)


def prepare_join(spec: TranscodeTask, ctx: TaskContext) -> JoinPlan | None:
    """The intro and outro of a transcode whose video is encoded from an
    input with video; None when there is nothing to join."""
    video = spec.video
    if spec.intro is None and spec.outro is None:
        return None
    if ctx.probe.video is None or video is None or video.codec in ("copy", "none"):
        return None
    intro = prepare_clip(spec.intro, ctx, "intro") if spec.intro else None
    outro = prepare_clip(spec.outro, ctx, "outro") if spec.outro else None
    return JoinPlan(intro, outro)


def join_fps(spec: TranscodeTask, ctx: TaskContext) -> float:
    """The one constant frame rate of every joined part: ``video.fps``, else
    the source's (at most 60), else 25."""
    if spec.video is not None and spec.video.fps:
        return spec.video.fps
    source = ctx.probe.video.fps if ctx.probe.video is not None else None
    if source and source > 0:
        return min(source, MAX_JOIN_FPS)
    return DEFAULT_JOIN_FPS


def joined_audio(spec: TranscodeTask, ctx: TaskContext) -> JoinedAudio:
    """The rate and layout every part's audio is converted to: the output's
    (``audio.sampleRate``/``channels``), else the source's; mono stays mono,
    anything else joins as stereo."""
    settings = spec.audio
    source = ctx.probe.audio
    rate = (settings.sample_rate if settings else None) or (source.sample_rate if source else None)
    channels = (settings.channels if settings else None) or (source.channels if source else None)
    return JoinedAudio(rate or 48000, "mono" if channels == 1 else "stereo")
