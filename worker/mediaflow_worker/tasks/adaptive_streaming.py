"""The ``adaptiveStreaming`` task: an HLS, DASH or CMAF ladder from one decode."""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaflow_api.job import secret_key_path
from mediaflow_api.presets import resolve_ladder
from mediaflow_api.tasks import AdaptiveStreamingTask, Encryption, Rendition
from mediaflow_worker.errors import AssetError, AssetNotFoundError, WorkerError
from mediaflow_worker.ffmpeg.adaptive_streaming import (
    DroppedRendition,
    PlannedAudio,
    StreamPlan,
    distinct_audios,
    hls_segment_type,
    hls_variant_count,
    plan_audio,
    plan_ladder,
    stream_args,
)
from mediaflow_worker.ffmpeg.codecs import VIDEO_ENCODERS
from mediaflow_worker.ffmpeg.subtitles import SubtitleTrack, normalise_args
from mediaflow_worker.ffmpeg.watermark import WatermarkInput
from mediaflow_worker.ffmpeg.webvtt_hls import (
    add_subtitle_group,
    add_vtt_adaptation_set,
    master_media_line,
    parse_srt,
    webvtt_document,
    webvtt_playlist,
    webvtt_segments,
)
from mediaflow_worker.probe import ProbeResult, probe
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext, TaskNotApplicable
from mediaflow_worker.tasks._watermarks import prepare_watermarks
from mediaflow_worker.tasks.subtitles import prepare_subtitles

log = logging.getLogger(__name__)

AES_128_KEY_BYTES = 16
# Anything longer is not a key (read no further).
_KEY_READ_LIMIT = 256

# Where the subtitle rendition goes: HLS playlist and segments in a folder
# of their own, DASH's one WebVTT file next to the MPD.
SUBTITLE_DIR = "subs"
SUBTITLE_PLAYLIST = f"{SUBTITLE_DIR}/index.m3u8"
DASH_SUBTITLE_FILE = "subtitles.vtt"

# The playlists each format writes (their manifest entries carry the plan).
PLAYLISTS = {
    "hls": ("master.m3u8",),
    "dash": ("manifest.mpd",),
    "cmaf": ("master.m3u8", "manifest.mpd"),
}


@dataclass(frozen=True)
class Ladder:
    """An adaptive streaming task with its ladder resolved (named ladder or
    explicit renditions, tallest first, each with its codec)."""

    spec: AdaptiveStreamingTask
    codec: str
    renditions: list[Rendition]


def resolve(spec: AdaptiveStreamingTask) -> Ladder:
    """The task with its ladder resolved (``presets.resolve_ladder``)."""
    codec, renditions = resolve_ladder(spec)
    return Ladder(spec, codec, renditions)


def required_encoders(ladder: Ladder) -> set[str]:
    """The renditions' video encoders (none for an audio ladder) and AAC."""
    if ladder.spec.audio_only:
        return {"aac"}
    return {VIDEO_ENCODERS[r.codec or ladder.codec] for r in ladder.renditions} | {"aac"}


def source_bitrates(probe: ProbeResult) -> tuple[int | None, int | None]:
    """The source's video and audio bitrates (bits/s) where the container
    says: a stream's own ``bit_rate``, else (video) the whole file's less the
    audio's. None when unknown."""
    video_rate = audio_rate = None
    streams = probe.raw.get("streams") or []
    for s in streams:
        rate = _positive_int(s.get("bit_rate"))
        disposition = s.get("disposition") or {}
        if s.get("codec_type") == "video" and video_rate is None:
            if disposition.get("attached_pic") or disposition.get("still_image"):
                continue
            video_rate = rate or -1
        elif s.get("codec_type") == "audio" and audio_rate is None:
            audio_rate = rate or -1
    if video_rate == -1:
        # MKV and WebM give no per-stream rate: the file's is an upper bound.
        total = probe.bit_rate
        video_rate = total - max(audio_rate or 0, 0) if total else None
    return (
        video_rate if video_rate and video_rate > 0 else None,
        audio_rate if audio_rate and audio_rate > 0 else None,
    )


def _positive_int(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def plan_stream(ladder: Ladder, probe: ProbeResult, display: tuple[int, int] | None) -> StreamPlan:
    """What the task produces from this input (pure): the video renditions
    that fit the source, and the audio renditions. ``display``: the source's
    display size (None: no video)."""
    spec = ladder.spec
    cap = spec.cap_at_source
    src_video, src_audio = source_bitrates(probe) if cap else (None, None)
    with_video = display is not None and not spec.audio_only
    dropped: list[DroppedRendition] = []
    videos = []
    if with_video:
        assert display is not None
        assert probe.video is not None
        videos = plan_ladder(
            ladder.renditions,
            display,
            codec=ladder.codec,
            source_fps=probe.video.fps,
            source_bitrate=src_video,
            dropped=dropped,
        )
    audios: list[PlannedAudio] = []
    group = True
    if probe.audio is not None:
        if spec.audio_renditions:
            audios = distinct_audios(
                [
                    plan_audio(a.bitrate, a.channels, a.sample_rate, src_audio)
                    for a in spec.audio_renditions
                ]
            )
        elif with_video:
            per_variant = [
                plan_audio(
                    p.rendition.audio_bitrate,
                    p.rendition.audio_channels,
                    p.rendition.audio_sample_rate,
                    src_audio,
                )
                for p in videos
            ]
            if spec.format == "hls":
                audios, group = per_variant, False
            else:
                audios = distinct_audios(per_variant)
        else:
            ladder_audios = distinct_audios(
                [
                    plan_audio(r.audio_bitrate, r.audio_channels, r.audio_sample_rate, src_audio)
                    for r in ladder.renditions
                ]
            )
            # An audio input gets the ladder's best audio (podcasts stream
            # too); audioOnly asks for the whole audio ladder.
            audios = ladder_audios if spec.audio_only else ladder_audios[:1]
    return StreamPlan(videos, audios, audio_group=group and bool(audios), dropped=dropped)


def plan_info(plan: StreamPlan, ladder: Ladder, segment_type: str | None) -> dict[str, Any]:
    """The playlist's manifest entry: what was produced and what was left out."""
    info: dict[str, Any] = {
        "format": ladder.spec.format,
        "renditions": [
            {
                "width": p.width,
                "height": p.height,
                "codec": p.codec,
                "videoBitrate": p.video_bitrate,
                **({"fps": p.fps} if p.fps else {}),
                **({"cappedAtSource": True} if p.capped else {}),
            }
            for p in plan.videos
        ],
        "audioRenditions": [
            {
                "bitrate": a.bitrate,
                "channels": a.channels,
                "sampleRate": a.sample_rate,
                **({"cappedAtSource": True} if a.capped else {}),
            }
            for a in plan.audios
        ],
    }
    if plan.videos:
        # Kept for readers of the first version of this entry.
        info["codec"] = plan.videos[0].codec
    else:
        info["codec"] = "aac"
    if segment_type:
        info["segmentFormat"] = segment_type
    if plan.dropped:
        info["dropped"] = [
            {
                **({"height": d.rendition.height} if d.rendition.height else {}),
                **({"width": d.rendition.width} if d.rendition.width else {}),
                "videoBitrate": d.rendition.video_bitrate,
                "reason": d.reason,
            }
            for d in plan.dropped
        ]
    return info


def run(ladder: Ladder, ctx: TaskContext) -> list[OutputFile]:
    """HLS: ``master.m3u8`` + ``stream_<i>/index.m3u8`` + segments;
    DASH: ``manifest.mpd`` + init/chunk segments; CMAF: the DASH files plus
    ``master.m3u8`` and ``media_<i>.m3u8`` over the same segments."""
    spec = ladder.spec
    if ctx.probe.video is None and ctx.probe.audio is None:
        raise TaskNotApplicable("the input has no audio or video stream")
    if spec.audio_only and ctx.probe.audio is None:
        raise TaskNotApplicable("audioOnly: the input has no audio stream")
    display = ctx.display_size() if ctx.probe.video is not None else None
    plan = plan_stream(ladder, ctx.probe, display)
    segment_type = None
    if spec.format == "hls":
        # ffmpeg 5.1 encrypts MPEG-TS segments only ("Encrypted fmp4 not yet
        # supported"), so an encrypted ladder is ts even without video.
        segment_type = hls_segment_type(
            plan, spec.segment_format or ("ts" if spec.encryption else None)
        )
        for i in range(hls_variant_count(plan)):
            (ctx.out_dir / f"stream_{i}").mkdir(parents=True, exist_ok=True)
    # Drawn on every rendition, each at its own size (``ffmpeg.watermark``);
    # an SVG is rendered once, for the largest one, and scaled down for the rest.
    marks: list[WatermarkInput] = []
    if spec.watermarks and plan.videos:
        largest = max(plan.videos, key=lambda p: p.width * p.height)
        marks = prepare_watermarks(
            spec.watermarks, ctx, (largest.width, largest.height), ctx.duration or None
        )
    # Vetted and normalised to SubRip before the ladder's encode (a bad
    # sidecar fails the task without the long run).
    subtitles = prepare_subtitles(spec.subtitles.as_subtitles(), ctx) if spec.subtitles else None
    key_info = write_key_info(spec.encryption, ctx) if spec.encryption else None
    args = stream_args(
        ctx.input_path,
        ctx.probe.demuxer,
        ctx.limits.max_pixels,
        plan,
        fmt=spec.format,
        preset=spec.preset,
        segment_seconds=spec.segment_seconds,
        out_dir=ctx.out_dir,
        segment_format=segment_type,
        marks=marks,
        font=ctx.font,
        key_info=key_info,
    )
    try:
        run_ffmpeg(args, label=ctx.task_name, expected_seconds=ctx.duration, deadline=ctx.deadline)
    finally:
        if key_info is not None:
            # The key's copy lives only as long as the muxer needs it.
            for path in [*key_info.read_text().splitlines()[1:2], str(key_info)]:
                Path(path).unlink(missing_ok=True)
    info = plan_info(plan, ladder, segment_type)
    if spec.encryption is not None:
        info["encryption"] = {"method": spec.encryption.method, "keyUri": spec.encryption.key_uri}
    if subtitles is not None:
        if subtitles.track is not None:
            language = spec.subtitles.language if spec.subtitles else None
            srt = _as_srt(subtitles.track, ctx)
            subtitles.info.update(
                add_subtitle_rendition(srt, language or "und", spec, segment_type, ctx)
            )
        subtitles.info.pop("burnedIn", None)
        info["subtitles"] = subtitles.info
    playlists = PLAYLISTS[spec.format]
    return [
        OutputFile(path, info if path.name in playlists and path.parent == ctx.out_dir else {})
        for path in sorted(p for p in ctx.out_dir.rglob("*") if p.is_file())
    ]


def add_subtitle_rendition(
    srt: Path,
    language: str,
    spec: AdaptiveStreamingTask,
    segment_type: str | None,
    ctx: TaskContext,
) -> dict[str, Any]:
    """Write the WebVTT rendition of the normalised SubRip ``srt`` next to
    the ladder and add it to master.m3u8 (hls, cmaf) and manifest.mpd (dash,
    cmaf). Returns what the manifest says about it."""
    cues = parse_srt(srt.read_text(encoding="utf-8", errors="replace"))
    duration = ctx.duration or max((c.end for c in cues), default=0.0) or spec.segment_seconds
    files: list[str] = []
    master = ctx.out_dir / "master.m3u8"
    if spec.format in ("hls", "cmaf") and master.is_file():
        # MPEG-TS segments carry the stream's own clock: the cues are mapped
        # onto the first segment's start (X-TIMESTAMP-MAP); fMP4 needs none.
        mpegts = _first_ts_pts(ctx) if spec.format == "hls" and segment_type == "ts" else None
        segments = webvtt_segments(cues, spec.segment_seconds, duration, mpegts)
        (ctx.out_dir / SUBTITLE_DIR).mkdir(exist_ok=True)
        names = [f"segment_{n:03d}.vtt" for n in range(len(segments))]
        for name, text in zip(names, segments, strict=True):
            (ctx.out_dir / SUBTITLE_DIR / name).write_text(text, encoding="utf-8")
        playlist = webvtt_playlist(names, spec.segment_seconds, duration)
        (ctx.out_dir / SUBTITLE_PLAYLIST).write_text(playlist, encoding="utf-8")
        line = master_media_line(SUBTITLE_PLAYLIST, language, language)
        master.write_text(
            add_subtitle_group(master.read_text(encoding="utf-8"), line), encoding="utf-8"
        )
        files.append(SUBTITLE_PLAYLIST)
    mpd = ctx.out_dir / "manifest.mpd"
    if spec.format in ("dash", "cmaf") and mpd.is_file():
        (ctx.out_dir / DASH_SUBTITLE_FILE).write_text(webvtt_document(cues), encoding="utf-8")
        mpd.write_text(
            add_vtt_adaptation_set(mpd.read_text(encoding="utf-8"), DASH_SUBTITLE_FILE, language),
            encoding="utf-8",
        )
        files.append(DASH_SUBTITLE_FILE)
    return {"renditions": files} if files else {}


def _as_srt(track: SubtitleTrack, ctx: TaskContext) -> Path:
    """The SubRip text of a normalised sidecar (an .ass one stays ASS for a
    transcode; WebVTT wants plain cues, so ffmpeg converts it once more)."""
    if track.fmt == "srt":
        return track.path
    out = ctx.scratch / f"{ctx.task_name}-subtitles-stream.srt"
    run_ffmpeg(
        normalise_args(track.path, track.fmt, out, "srt"),
        label=f"{ctx.task_name} subtitles",
        expected_seconds=None,
        deadline=ctx.deadline,
    )
    return out


def _first_ts_pts(ctx: TaskContext) -> int:
    """The 90 kHz start time of the first video variant's first MPEG-TS
    segment (0 when it cannot be read)."""
    variant = ctx.out_dir / "stream_0" / "index.m3u8"
    try:
        first = next(
            line.strip()
            for line in variant.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        )
        return round(probe(variant.parent / first, ctx.limits.max_pixels).start_time * 90000)
    except (OSError, StopIteration, WorkerError) as exc:  # a best guess either way
        log.warning("%s: no start time of the first segment (%s); MPEGTS 0", ctx.task_name, exc)
        return 0


def parse_hls_key(raw: bytes) -> bytes:
    """The 16-byte AES-128 key from a Secret key's bytes: the raw 16 bytes, or
    32 hex digits (what ``openssl rand -hex 16`` prints, newline allowed).
    ``ValueError`` saying what is wrong (never what the bytes are)."""
    if len(raw) == AES_128_KEY_BYTES:
        return raw
    text = raw.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{32}", text):
        return bytes.fromhex(text.decode())
    raise ValueError(f"is {len(raw)} bytes; an AES-128 key is 16 raw bytes or 32 hex digits")


def write_key_info(encryption: Encryption, ctx: TaskContext) -> Path:
    """Read the mounted Secret key, write it and ffmpeg's key-info file (key
    URI, key file, IV) into scratch, never into the output directory; the
    IV is random per run so one key never encrypts two videos with the same
    IV. ``AssetError`` (exit 2) when the key is missing or not a key."""
    ref = encryption.key_secret
    where = f"encryption key (Secret {ref.name!r}, key {ref.key!r})"
    path = Path(secret_key_path(str(ctx.secret_dir), ref))
    try:
        with path.open("rb") as f:
            raw = f.read(_KEY_READ_LIMIT)
    except FileNotFoundError as exc:
        raise AssetNotFoundError(f"{where}: not found at {path}") from exc
    except OSError as exc:
        raise AssetError(f"{where}: cannot read {path}: {exc.strerror}") from exc
    try:
        key = parse_hls_key(raw)
    except ValueError as exc:
        raise AssetError(f"{where} {exc}") from exc
    key_file = ctx.scratch / f"{ctx.task_name}-hls.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    key_info = ctx.scratch / f"{ctx.task_name}-hls.keyinfo"
    key_info.write_text(f"{encryption.key_uri}\n{key_file}\n{secrets.token_hex(16)}\n")
    return key_info
