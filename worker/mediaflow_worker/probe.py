"""Probe a local media file with ffprobe, under the same restrictions as
every FFmpeg run, and reduce the result to what the tasks need."""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow_worker import safety
from mediaflow_worker.errors import (
    AssetError,
    InputRejectedError,
    ProcessingError,
    ProcessTimeoutError,
    UnreadableInputError,
)
from mediaflow_worker.ffmpeg.ffprobe import image_size_args, last_frame_args, probe_args
from mediaflow_worker.process import run_restricted

PROBE_TIMEOUT_SECONDS = 60
MAX_PLAUSIBLE_FPS = 240.0
_MAX_PIXELS_MESSAGE = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")
# What ffprobe says when it is refused memory (RLIMIT_AS) before or while reading.
_OUT_OF_MEMORY = re.compile(
    r"Cannot allocate memory|failed to map segment|error while loading shared libraries|"
    r"malloc of size \d+ failed|out of memory",
    re.IGNORECASE,
)
# Transfer characteristics of HDR video: PQ (HDR10, Dolby Vision) and HLG.
HDR_TRANSFERS = ("smpte2084", "arib-std-b67")
# Stream dispositions that are not real video (cover art, thumbnails).
_STILL_DISPOSITIONS = ("attached_pic", "timed_thumbnails")


@dataclass(frozen=True)
class VideoInfo:
    """The first real video stream (cover art excluded)."""

    codec: str
    width: int
    height: int
    rotation: int  # degrees clockwise the player rotates, normalised to 0/90/180/270
    sar: float
    fps: float | None
    pix_fmt: str
    frames: int | None
    time_base: str | None = None
    # Colour signalling as ffprobe names it ("bt2020", "arib-std-b67", ...), or
    # None when the stream does not say.
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None
    color_range: str | None = None

    @property
    def is_hdr(self) -> bool:
        """Whether the stream is signalled as HDR (PQ or HLG transfer)."""
        return self.color_transfer in HDR_TRANSFERS

    @property
    def display_width(self) -> int:
        """Width as a player shows it (sample aspect and rotation applied)."""
        w, h = round(self.width * self.sar), self.height
        return h if self.rotation in (90, 270) else w

    @property
    def display_height(self) -> int:
        """Height as a player shows it (sample aspect and rotation applied)."""
        w, h = round(self.width * self.sar), self.height
        return w if self.rotation in (90, 270) else h


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream."""

    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of the input, for track selection."""

    index: int  # among the input's audio streams: ffmpeg's "0:a:<index>"
    codec: str
    sample_rate: int
    channels: int
    language: str | None  # ISO 639-2 as tagged ("eng"), None if untagged or "und"


def audio_tracks(result: ProbeResult) -> list[AudioTrack]:
    """Every audio stream of a probed input, in ffmpeg's order (pure)."""
    tracks = []
    streams = [s for s in result.raw.get("streams", []) if s.get("codec_type") == "audio"]
    for index, s in enumerate(streams):
        tags = {str(k).lower(): v for k, v in (s.get("tags") or {}).items()}
        language = tags.get("language")
        valid = isinstance(language, str) and re.fullmatch(r"[a-z]{3}", language)
        tracks.append(
            AudioTrack(
                index=index,
                codec=s.get("codec_name", "unknown"),
                sample_rate=_int(s.get("sample_rate")) or 0,
                channels=_int(s.get("channels")) or 0,
                language=language if valid and language != "und" else None,
            )
        )
    return tracks


@dataclass(frozen=True)
class ProbeResult:
    """What the worker knows about the input after probing."""

    format_name: str
    demuxer: str
    duration: float | None
    size: int
    bit_rate: int | None
    video: VideoInfo | None
    audio: AudioInfo | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def start_time(self) -> float:
        """Where the input's timeline starts (ffmpeg shifts it to 0)."""
        return _float((self.raw.get("format") or {}).get("start_time")) or 0.0

    @property
    def pixels(self) -> int | None:
        """Pixels per frame of the largest video or image stream."""
        sizes = [
            int(s.get("width") or 0) * int(s.get("height") or 0)
            for s in self.raw.get("streams", [])
            if s.get("codec_type") == "video"
        ]
        return max(sizes) if sizes else None

    def summary(self) -> dict[str, Any]:
        """A compact JSON-ready view for the manifest."""
        out: dict[str, Any] = {
            "format": self.format_name,
            "duration": self.duration,
            "size": self.size,
            "bitRate": self.bit_rate,
        }
        if self.video:
            out["video"] = {
                "codec": self.video.codec,
                "width": self.video.width,
                "height": self.video.height,
                "displayWidth": self.video.display_width,
                "displayHeight": self.video.display_height,
                "rotation": self.video.rotation,
                "fps": self.video.fps,
                "pixFmt": self.video.pix_fmt,
            }
        if self.audio:
            out["audio"] = {
                "codec": self.audio.codec,
                "sampleRate": self.audio.sample_rate,
                "channels": self.audio.channels,
            }
        return out


def _rate(text: str | None) -> float | None:
    if not text or "/" not in text:
        return None
    num, den = text.split("/", 1)
    try:
        value = float(num) / float(den)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation from the display matrix or the old tag.

    ffprobe reports the display matrix rotation counter-clockwise (-90 for a
    portrait phone video), the legacy ``rotate`` tag clockwise (90)."""
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(-float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag:
        try:
            return int(float(tag)) % 360
        except ValueError:
            return 0
    return 0


def _sar(stream: dict[str, Any]) -> float:
    ratio = stream.get("sample_aspect_ratio") or "1:1"
    try:
        num, den = (int(x) for x in ratio.split(":"))
    except ValueError:
        return 1.0
    return num / den if num > 0 and den > 0 else 1.0


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _color(value: Any) -> str | None:
    """A colour property as ffprobe names it; None for unknown or odd values
    (they end up as encoder options, so only plain names pass)."""
    if not isinstance(value, str) or value in ("unknown", "unspecified", "reserved"):
        return None
    return value if re.fullmatch(r"[a-z0-9-]{1,24}", value) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_probe(raw: dict[str, Any], size: int) -> ProbeResult:
    """Turn ffprobe's JSON into a ``ProbeResult`` (pure; unit tested)."""
    fmt = raw.get("format") or {}
    streams = raw.get("streams") or []
    video = None
    audio = None
    for s in streams:
        kind = s.get("codec_type")
        disposition = s.get("disposition") or {}
        if kind == "video" and video is None:
            if any(disposition.get(d) for d in _STILL_DISPOSITIONS):
                continue
            if not s.get("width") or not s.get("height"):
                continue
            # avg_frame_rate is right for VFR, but some muxers (FLV, MKV) report
            # a bogus 1000/1; r_frame_rate is then the better guess.
            rates = [_rate(s.get("avg_frame_rate")), _rate(s.get("r_frame_rate"))]
            fps = next((r for r in rates if r is not None and r <= MAX_PLAUSIBLE_FPS), None)
            video = VideoInfo(
                codec=s.get("codec_name", "unknown"),
                width=int(s["width"]),
                height=int(s["height"]),
                rotation=_rotation(s),
                sar=_sar(s),
                fps=fps,
                pix_fmt=s.get("pix_fmt", ""),
                frames=_int(s.get("nb_frames")),
                time_base=s.get("time_base")
                if re.fullmatch(r"1/\d+", s.get("time_base") or "")
                else None,
                color_primaries=_color(s.get("color_primaries")),
                color_transfer=_color(s.get("color_transfer")),
                color_space=_color(s.get("color_space")),
                color_range=_color(s.get("color_range")),
            )
        elif kind == "audio" and audio is None:
            audio = AudioInfo(
                codec=s.get("codec_name", "unknown"),
                sample_rate=_int(s.get("sample_rate")) or 0,
                channels=_int(s.get("channels")) or 0,
            )
    duration = _float(fmt.get("duration"))
    if duration is None:
        durations = [_float(s.get("duration")) for s in streams]
        known = [d for d in durations if d is not None]
        duration = max(known) if known else None
    format_name = fmt.get("format_name", "")
    return ProbeResult(
        format_name=format_name,
        demuxer=safety.demuxer_name(format_name),
        duration=duration,
        size=size,
        bit_rate=_int(fmt.get("bit_rate")),
        video=video,
        audio=audio,
        raw={"format": fmt, "streams": streams},
    )


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # The last line is the one that says why probing gave up.
    return lines[-1][:300] if lines else "ffprobe could not read the input"


def probe(path: Path, max_pixels: int, timeout: float = PROBE_TIMEOUT_SECONDS) -> ProbeResult:
    """Probe ``path``; ``UnreadableInputError`` when it is not usable media."""
    args = probe_args(path, max_pixels)
    try:
        done = run_restricted(args, timeout)
    except subprocess.TimeoutExpired as exc:
        raise ProcessTimeoutError(f"ffprobe took longer than {timeout:.0f} s") from exc
    too_big = _MAX_PIXELS_MESSAGE.search(done.stderr)
    if too_big:
        # The decoder refused to allocate the frame (-max_pixels): say so,
        # rather than "no video stream".
        raise InputRejectedError(
            f"the input declares {too_big.group(1)}x{too_big.group(2)} pixels per frame; "
            f"the limit is {max_pixels}"
        )
    if done.returncode != 0 and (done.returncode < 0 or _OUT_OF_MEMORY.search(done.stderr)):
        # Killed, or refused memory (MEDIAFLOW_FFMPEG_MAX_MEMORY_BYTES): that
        # says nothing about the input, so it must not be a permanent failure.
        raise ProcessingError(
            f"ffprobe failed without judging the input: {_first_error_line(done.stderr)}"
            if done.returncode > 0
            else f"ffprobe was killed by signal {-done.returncode}"
        )
    if done.returncode != 0:
        reason = _first_error_line(done.stderr).replace(str(path), "<input>")
        raise UnreadableInputError(f"not readable as media: {reason}")
    try:
        raw = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise UnreadableInputError("ffprobe returned no usable description") from exc
    result = parse_probe(raw, path.stat().st_size)
    if result.video is None and result.audio is None:
        raise UnreadableInputError("the input has no audio or video stream")
    return result


# How far before the end to look for the last video packet (one seek, demux
# only; a stream without a keyframe there is read from the previous one).
LAST_FRAME_WINDOW_SECONDS = 30.0


def parse_last_frame(text: str) -> tuple[float, float | None] | None:
    """(pts, duration) of the latest packet in an ffprobe packet listing."""
    best: tuple[float, float | None] | None = None
    for line in text.splitlines():
        pts_text, _, dur_text = line.strip().partition(",")
        pts = _float(pts_text)
        if pts is None:
            continue
        if best is None or pts > best[0]:
            duration = _float(dur_text)
            best = (pts, duration if duration and duration > 0 else None)
    return best


def last_video_frame(result: ProbeResult, path: Path) -> tuple[float, float] | None:
    """(start, end) of the input's last video frame in its own timeline, or
    None when that cannot be told. Best effort: a failure only means the
    output may end a held last frame early, as plain ffmpeg would."""
    if result.video is None or not result.duration:
        return None
    args = last_frame_args(
        path, result.demuxer, result.start_time + result.duration - LAST_FRAME_WINDOW_SECONDS
    )
    try:
        done = run_restricted(args, PROBE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return None
    found = parse_last_frame(done.stdout) if done.returncode == 0 else None
    if found is None:
        return None
    pts, duration = found
    end = pts + duration if duration else result.start_time + result.duration
    return (pts, end) if end > pts else None


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of a watermark image, probed with the image allow-list;
    ``AssetError`` when it does not decode as one."""
    args = image_size_args(path)
    done = run_restricted(args, PROBE_TIMEOUT_SECONDS)
    try:
        stream = json.loads(done.stdout)["streams"][0]
        return int(stream["width"]), int(stream["height"])
    except (json.JSONDecodeError, KeyError, IndexError, ValueError) as exc:
        said = " ".join(done.stderr.split())[:200]
        raise AssetError(
            "is not a PNG, JPEG or WebP image" + (f" (ffprobe: {said})" if said else "")
        ) from exc
