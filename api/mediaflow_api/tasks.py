"""Task spec models: one entry of ``Workflow.spec.tasks``.

These models are the single source of the ``spec.tasks`` schema of the
Workflow CRD and of what the worker accepts. Two rules keep them expressible as
a Kubernetes *structural* schema:

- no free-form dicts and no unions of different types: a value that may be
  "seconds or percent" is a string with a pattern (``"12.5"`` or ``"50%"``);
- every rule the schema alone cannot express (exactly-one-of, ``a < b``) exists
  twice: as a pydantic validator (for the worker and ``mediaflow-worker run``)
  and as an ``x-kubernetes-validations`` CEL rule (for ``kubectl apply``).

Serialise with ``task.model_dump(by_alias=True, exclude_none=True,
mode="json")``; the result validates back into an equal model.

Named presets (``transcode.preset``, ``adaptiveStreaming.ladder``) live in
``mediaflow_api.presets``; explicit fields override the preset.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

# --- shared string types ---------------------------------------------------

TASK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# "12.5" (seconds) or "50%" (of the input duration).
TIME_POINT_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?%?$"
# "2500k", "2.5M", "128k", "800000" (bits per second).
BITRATE_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?[kKmM]?$"
# "10" / "10px" (pixels) or "5%" / "2.5%" (of the video width or height).
LENGTH_PATTERN = r"^([0-9]{1,5}(px)?|[0-9]{1,3}(\.[0-9]{1,2})?%)$"
# A colour name ("white") or "#rrggbb".
COLOR_PATTERN = r"^([a-z]{3,20}|#[0-9a-fA-F]{6})$"
# An S3 bucket name (the subset MinIO and AWS both accept).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

TimePoint = Annotated[str, StringConstraints(pattern=TIME_POINT_PATTERN, max_length=12)]
Bitrate = Annotated[str, StringConstraints(pattern=BITRATE_PATTERN, max_length=12)]
Length = Annotated[str, StringConstraints(pattern=LENGTH_PATTERN, max_length=10)]

Position = Literal[
    "top-left",
    "top",
    "top-right",
    "left",
    "center",
    "right",
    "bottom-left",
    "bottom",
    "bottom-right",
]
EncoderPreset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
Container = Literal["mp4", "mov", "mkv", "webm", "ts", "mp3", "m4a", "wav", "flac", "ogg"]
VideoCodec = Literal["h264", "h265", "vp9", "av1", "copy", "none"]
AudioCodec = Literal["aac", "opus", "mp3", "flac", "pcm", "copy", "none"]
ImageFormat = Literal["jpeg", "png", "webp"]
TranscodePresetName = Literal[
    "h264-360p",
    "h264-480p",
    "h264-720p",
    "h264-1080p",
    "h265-720p",
    "h265-1080p",
    "vp9-720p",
    "av1-720p",
    "audio-aac-128k",
    "audio-mp3-192k",
    "audio-opus-96k",
    "audio-flac",
]
LadderName = Literal["standard-ladder", "mobile-ladder", "hevc-ladder"]

# Which codecs each container can hold (video, audio), as ffmpeg 5.1 muxes
# them without "-strict experimental" (so no FLAC in MP4). "copy" is accepted
# everywhere: whether the source codec fits is only known after probing (the
# worker then fails with exit code 2, IncompatibleCopy).
CONTAINER_VIDEO_CODECS: dict[str, tuple[str, ...]] = {
    "mp4": ("h264", "h265", "av1", "copy", "none"),
    "mov": ("h264", "h265", "copy", "none"),
    "mkv": ("h264", "h265", "vp9", "av1", "copy", "none"),
    "webm": ("vp9", "av1", "copy", "none"),
    "ts": ("h264", "h265", "copy", "none"),
    "mp3": ("none",),
    "m4a": ("none",),
    "wav": ("none",),
    "flac": ("none",),
    "ogg": ("none",),
}
CONTAINER_AUDIO_CODECS: dict[str, tuple[str, ...]] = {
    "mp4": ("aac", "opus", "mp3", "copy", "none"),
    "mov": ("aac", "mp3", "pcm", "copy", "none"),
    "mkv": ("aac", "opus", "mp3", "flac", "pcm", "copy", "none"),
    "webm": ("opus", "copy", "none"),
    "ts": ("aac", "mp3", "opus", "copy", "none"),
    "mp3": ("mp3", "copy"),
    "m4a": ("aac", "copy"),
    "wav": ("pcm", "copy"),
    "flac": ("flac", "copy"),
    "ogg": ("opus", "flac", "copy"),
}
AUDIO_ONLY_CONTAINERS = ("mp3", "m4a", "wav", "flac", "ogg")
# The (video, audio) codecs each named preset implies (the full presets live in
# mediaflow_api.presets, which a unit test keeps in agreement with this): an
# explicit container must be able to hold them unless the task overrides them.
PRESET_CODECS: dict[str, tuple[str, str]] = {
    "h264-360p": ("h264", "aac"),
    "h264-480p": ("h264", "aac"),
    "h264-720p": ("h264", "aac"),
    "h264-1080p": ("h264", "aac"),
    "h265-720p": ("h265", "aac"),
    "h265-1080p": ("h265", "aac"),
    "vp9-720p": ("vp9", "opus"),
    "av1-720p": ("av1", "aac"),
    "audio-aac-128k": ("none", "aac"),
    "audio-mp3-192k": ("none", "mp3"),
    "audio-opus-96k": ("none", "opus"),
    "audio-flac": ("none", "flac"),
}


def parse_time_point(value: str) -> tuple[float, bool]:
    """Split a ``TimePoint`` into ``(number, is_percent)``."""
    if value.endswith("%"):
        return float(value[:-1]), True
    return float(value), False


def parse_bitrate(value: str) -> int:
    """A ``Bitrate`` string in bits per second (``"2.5M"`` -> 2500000)."""
    match = re.fullmatch(r"([0-9.]+)([kKmM]?)", value)
    if match is None:
        raise ValueError(f"not a bitrate: {value!r}")
    factor = {"": 1, "k": 1000, "m": 1000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def parse_length(value: str) -> tuple[float, bool]:
    """Split a ``Length`` into ``(number, is_percent)``; pixels otherwise."""
    if value.endswith("%"):
        return float(value[:-1]), True
    return float(value.removesuffix("px")), False


def _cel(rule: str, message: str) -> dict[str, JsonValue]:
    return {"rule": rule, "message": message}


def _exactly_one_cel(fields: list[str]) -> str:
    has = ", ".join(f"has(self.{f})" for f in fields)
    return f"[{has}].filter(x, x).size() == 1"


def _cel_map(table: dict[str, tuple[str, ...]]) -> str:
    """A Python dict of tuples written as a CEL map literal of lists."""
    entries = ", ".join(
        f"'{key}': [{', '.join(repr(v) for v in values)}]" for key, values in table.items()
    )
    return "{" + entries + "}"


def _cel_pairs(table: dict[str, tuple[str, str]], index: int) -> str:
    """One column of a table of pairs as a CEL map literal of strings."""
    entries = ", ".join(f"'{key}': {pair[index]!r}" for key, pair in table.items())
    return "{" + entries + "}"


def _count_set(model: BaseModel, fields: list[str]) -> int:
    return sum(getattr(model, f) is not None for f in fields)


# Settings that only mean something when a stream is encoded (not copy/none).
_VIDEO_ENCODING_FIELDS = [
    "width",
    "height",
    "fps",
    "crf",
    "bitrate",
    "maxrate",
    "bufsize",
    "preset",
    "gop",
    "upscale",
]
_AUDIO_ENCODING_FIELDS = ["bitrate", "sample_rate", "channels"]
_ALIASES = {"sample_rate": "sampleRate"}


def _check_no_encoding_settings(
    stream: str, codec: str | None, settings: BaseModel, fields: list[str]
) -> None:
    """copy/none keeps or drops the stream: reject any encoding setting."""
    if codec in ("copy", "none"):
        encoding = [f for f in fields if getattr(settings, f) is not None]
        if encoding:
            raise ValueError(
                f"{stream}.codec {codec} takes no encoding settings: remove "
                + ", ".join(_ALIASES.get(f, f) for f in encoding)
            )


def _no_encoding_settings_cel(stream: str, fields: list[str]) -> dict[str, JsonValue]:
    """The CEL twin of ``_check_no_encoding_settings``."""
    names = [_ALIASES.get(f, f) for f in fields]
    return _cel(
        "!has(self.codec) || !(self.codec in ['copy', 'none']) || !("
        + " || ".join(f"has(self.{name})" for name in names)
        + ")",
        f"{stream}.codec copy/none takes no encoding settings ({', '.join(names)})",
    )


class _Spec(BaseModel):
    """Base of every spec model: camelCase aliases, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- transcode -------------------------------------------------------------


class VideoSettings(_Spec):
    """Video stream settings of a transcode."""

    codec: VideoCodec | None = Field(
        default=None,
        description=(
            "Video codec: h264 (libx264), h265 (libx265), vp9 (libvpx-vp9), av1 (libsvtav1), "
            "copy (keep the source stream, no re-encode) or none (drop video). "
            "Default: from the preset, else h264 (or none for audio-only containers)."
        ),
    )
    width: int | None = Field(
        default=None,
        ge=16,
        le=8192,
        description=(
            "Output width in pixels. With only width or only height set, the other follows "
            "the display aspect ratio (rotation applied). Rounded down to an even number."
        ),
    )
    height: int | None = Field(
        default=None,
        ge=16,
        le=8192,
        description="Output height in pixels (see width). Rounded down to an even number.",
    )
    upscale: bool | None = Field(
        default=None,
        description="Allow output larger than the source. Default false: never upscale.",
    )
    adaptive_orientation: bool | None = Field(
        default=None,
        alias="adaptiveOrientation",
        description=(
            "When the source displays in portrait, swap width and height, so 'height: 720' "
            "means 'short side 720' for phone videos too. Default true."
        ),
    )
    fps: float | None = Field(
        default=None,
        ge=0.001,
        le=240,
        description="Constant output frame rate. Default: keep the source rate (VFR stays VFR).",
    )
    crf: int | None = Field(
        default=None,
        ge=0,
        le=63,
        description=(
            "Constant rate factor (quality; lower is better). h264/h265: 0-51, vp9/av1: 0-63. "
            "Mutually exclusive with bitrate."
        ),
    )
    bitrate: Bitrate | None = Field(
        default=None,
        description="Target average bitrate, e.g. '2500k' or '2.5M'. Mutually exclusive with crf.",
    )
    maxrate: Bitrate | None = Field(
        default=None,
        description="Peak bitrate cap (VBV) for crf or bitrate mode, e.g. '4M'.",
    )
    bufsize: Bitrate | None = Field(
        default=None,
        description="VBV buffer size, e.g. '8M'. Default: twice maxrate.",
    )
    preset: EncoderPreset | None = Field(
        default=None,
        description=(
            "Encoder speed/quality trade-off in x264 terms; mapped to -cpu-used for vp9 and "
            "-preset for SVT-AV1. Default: medium."
        ),
    )
    gop: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Maximum keyframe interval in frames (GOP length).",
    )

    @model_validator(mode="after")
    def _crf_xor_bitrate(self) -> VideoSettings:
        if self.crf is not None and self.bitrate is not None:
            raise ValueError("video.crf and video.bitrate are mutually exclusive: set one")
        _check_no_encoding_settings("video", self.codec, self, _VIDEO_ENCODING_FIELDS)
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.crf) && has(self.bitrate))",
                    "video.crf and video.bitrate are mutually exclusive: set one",
                ),
                _no_encoding_settings_cel("video", _VIDEO_ENCODING_FIELDS),
            ]
        }
    )


class AudioSettings(_Spec):
    """Audio stream settings of a transcode."""

    @model_validator(mode="after")
    def _copy_takes_no_settings(self) -> AudioSettings:
        _check_no_encoding_settings("audio", self.codec, self, _AUDIO_ENCODING_FIELDS)
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [_no_encoding_settings_cel("audio", _AUDIO_ENCODING_FIELDS)]
        }
    )

    codec: AudioCodec | None = Field(
        default=None,
        description=(
            "Audio codec: aac, opus (libopus), mp3 (libmp3lame), flac, pcm (16-bit), copy "
            "(keep the source stream) or none (drop audio). Default: from the preset or the "
            "container."
        ),
    )
    bitrate: Bitrate | None = Field(
        default=None, description="Audio bitrate, e.g. '128k'. Ignored by flac and pcm."
    )
    sample_rate: int | None = Field(
        default=None,
        alias="sampleRate",
        ge=8000,
        le=192000,
        description="Sample rate in Hz. Default: the source rate (opus: 48000).",
    )
    channels: int | None = Field(
        default=None, ge=1, le=8, description="Number of channels. Default: the source's."
    )


class Trim(_Spec):
    """The part of the input to keep."""

    start: float = Field(default=0, ge=0, le=86400, description="Start in seconds.")
    duration: float | None = Field(
        default=None, ge=0.001, le=86400, description="Length in seconds. Default: to the end."
    )


class WatermarkImage(_Spec):
    """An image object (PNG with alpha recommended) in a bucket."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=BUCKET_PATTERN, description="Bucket of the image."
    )
    key: str = Field(min_length=1, max_length=1024, description="Object key of the image.")


class Watermark(_Spec):
    """An image or text overlay. Exactly one of image and text."""

    image: WatermarkImage | None = Field(
        default=None, description="Overlay an image object (PNG alpha is kept)."
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Overlay this text (rendered literally, DejaVu Sans).",
    )
    position: Position = Field(
        default="top-right", description="Anchor of the overlay in the video frame."
    )
    offset_x: Length = Field(
        default="16",
        alias="offsetX",
        description="Horizontal distance from the anchor edge: pixels ('16') or % of width.",
    )
    offset_y: Length = Field(
        default="16",
        alias="offsetY",
        description="Vertical distance from the anchor edge: pixels ('16') or % of height.",
    )
    width: Length | None = Field(
        default=None,
        description=(
            "Image width in pixels or % of the video width (height keeps aspect). "
            "Default: the image's own size. Images only."
        ),
    )
    font_size: Length = Field(
        default="5%",
        alias="fontSize",
        description="Text height in pixels or % of the video height. Text only.",
    )
    font_color: str = Field(
        default="white",
        alias="fontColor",
        pattern=COLOR_PATTERN,
        max_length=20,
        description="Text colour: a name ('white') or '#rrggbb'. Text only.",
    )
    opacity: float = Field(default=1.0, ge=0, le=1, description="0 = invisible, 1 = opaque.")
    start: float | None = Field(
        default=None, ge=0, le=86400, description="Show from this second of the output."
    )
    end: float | None = Field(
        default=None, ge=0.001, le=86400, description="Hide from this second of the output."
    )

    @model_validator(mode="after")
    def _check(self) -> Watermark:
        if (self.image is None) == (self.text is None):
            raise ValueError("watermark: set exactly one of image and text")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("watermark.end must be greater than watermark.start")
        if self.text is not None and self.width is not None:
            raise ValueError("watermark.width applies to images only; use fontSize for text")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _exactly_one_cel(["image", "text"]),
                    "watermark: set exactly one of image and text",
                ),
                _cel(
                    "!(has(self.start) && has(self.end)) || self.end > self.start",
                    "watermark.end must be greater than watermark.start",
                ),
                _cel(
                    "!(has(self.text) && has(self.width))",
                    "watermark.width applies to images only; use fontSize for text",
                ),
            ]
        }
    )


class TranscodeTask(_Spec):
    """Encode the input into one output file."""

    preset: TranscodePresetName | None = Field(
        default=None,
        description=(
            "Named preset (see docs/presets.md) filling container, video and audio settings; "
            "fields set here override it."
        ),
    )
    container: Container | None = Field(
        default=None, description="Output container. Default: from the preset, else mp4."
    )
    video: VideoSettings | None = Field(default=None, description="Video stream settings.")
    audio: AudioSettings | None = Field(default=None, description="Audio stream settings.")
    trim: Trim | None = Field(default=None, description="Keep only this part of the input.")
    faststart: bool | None = Field(
        default=None,
        description="mp4/mov/m4a: put the index first so playback starts before download ends. "
        "Default true.",
    )
    watermarks: list[Watermark] | None = Field(
        default=None, max_length=4, description="Image or text overlays, drawn in order."
    )
    file_name: str | None = Field(
        default=None,
        alias="fileName",
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Output file base name without extension. Default: the task name.",
    )

    @model_validator(mode="after")
    def _check(self) -> TranscodeTask:
        # Only explicit fields are checked here (the CEL rule sees the same);
        # combinations coming from a preset are checked when it is resolved.
        if self.container is not None:
            vcodec = self.video.codec if self.video else None
            acodec = self.audio.codec if self.audio else None
            if vcodec is not None and vcodec not in CONTAINER_VIDEO_CODECS[self.container]:
                raise ValueError(
                    f"transcode.video.codec {vcodec!r} cannot go in container "
                    f"{self.container!r} (allowed: {CONTAINER_VIDEO_CODECS[self.container]})"
                )
            if acodec is not None and acodec not in CONTAINER_AUDIO_CODECS[self.container]:
                raise ValueError(
                    f"transcode.audio.codec {acodec!r} cannot go in container "
                    f"{self.container!r} (allowed: {CONTAINER_AUDIO_CODECS[self.container]})"
                )
        if self.container is not None and self.preset is not None:
            p_video, p_audio = PRESET_CODECS[self.preset]
            if (self.video is None or self.video.codec is None) and (
                p_video not in CONTAINER_VIDEO_CODECS[self.container]
            ):
                raise ValueError(
                    f"transcode.container {self.container!r} cannot hold the video codec "
                    f"{p_video!r} of preset {self.preset!r}: set video.codec or another container"
                )
            if (self.audio is None or self.audio.codec is None) and (
                p_audio not in CONTAINER_AUDIO_CODECS[self.container]
            ):
                raise ValueError(
                    f"transcode.container {self.container!r} cannot hold the audio codec "
                    f"{p_audio!r} of preset {self.preset!r}: set audio.codec or another container"
                )
        if self.video and self.video.codec in ("copy", "none") and self.watermarks:
            raise ValueError("transcode.watermarks need the video to be encoded (not copy/none)")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"!has(self.container) || !has(self.video) || !has(self.video.codec) || "
                    f"self.video.codec in {_cel_map(CONTAINER_VIDEO_CODECS)}[self.container]",
                    "transcode.video.codec cannot go in this container",
                ),
                _cel(
                    f"!has(self.container) || !has(self.audio) || !has(self.audio.codec) || "
                    f"self.audio.codec in {_cel_map(CONTAINER_AUDIO_CODECS)}[self.container]",
                    "transcode.audio.codec cannot go in this container",
                ),
                _cel(
                    "!has(self.container) || !has(self.preset) || "
                    "(has(self.video) && has(self.video.codec)) || "
                    f"{_cel_pairs(PRESET_CODECS, 0)}[self.preset] in "
                    f"{_cel_map(CONTAINER_VIDEO_CODECS)}[self.container]",
                    "transcode.container cannot hold the video codec of the preset: "
                    "set video.codec or another container",
                ),
                _cel(
                    "!has(self.container) || !has(self.preset) || "
                    "(has(self.audio) && has(self.audio.codec)) || "
                    f"{_cel_pairs(PRESET_CODECS, 1)}[self.preset] in "
                    f"{_cel_map(CONTAINER_AUDIO_CODECS)}[self.container]",
                    "transcode.container cannot hold the audio codec of the preset: "
                    "set audio.codec or another container",
                ),
                _cel(
                    "!has(self.watermarks) || size(self.watermarks) == 0 || !has(self.video) || "
                    "!has(self.video.codec) || !(self.video.codec in ['copy', 'none'])",
                    "transcode.watermarks need the video to be encoded (not copy/none)",
                ),
            ]
        }
    )


# --- adaptive streaming ----------------------------------------------------


class Rendition(_Spec):
    """One rung of an adaptive streaming ladder."""

    height: int = Field(ge=64, le=4320, description="Video height in pixels (width follows).")
    video_bitrate: Bitrate = Field(alias="videoBitrate", description="e.g. '3000k'.")
    maxrate: Bitrate | None = Field(
        default=None, description="Peak bitrate. Default: 1.5x videoBitrate."
    )
    audio_bitrate: Bitrate = Field(
        default="128k", alias="audioBitrate", description="AAC bitrate, e.g. '128k'."
    )


class AdaptiveStreamingTask(_Spec):
    """HLS or DASH renditions with one master playlist / MPD."""

    format: Literal["hls", "dash"] = Field(
        default="hls",
        description="hls: master.m3u8 + MPEG-TS segments; dash: manifest.mpd + fMP4 segments.",
    )
    ladder: LadderName | None = Field(
        default=None,
        description=(
            "Named ladder (see docs/presets.md). Default: standard-ladder unless renditions "
            "are given."
        ),
    )
    renditions: list[Rendition] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Explicit ladder; replaces the named ladder's renditions.",
    )
    codec: Literal["h264", "h265"] | None = Field(
        default=None, description="Video codec of every rendition. Default: from the ladder."
    )
    segment_seconds: float = Field(
        default=6, alias="segmentSeconds", ge=1, le=30, description="Target segment duration."
    )
    preset: EncoderPreset = Field(default="veryfast", description="Encoder speed preset.")

    @model_validator(mode="after")
    def _check(self) -> AdaptiveStreamingTask:
        if self.renditions:
            heights = [r.height for r in self.renditions]
            if len(set(heights)) != len(heights):
                raise ValueError("adaptiveStreaming.renditions: heights must be distinct")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.renditions) || "
                    "self.renditions.all(r, self.renditions.exists_one(q, q.height == r.height))",
                    "adaptiveStreaming.renditions: heights must be distinct",
                )
            ]
        }
    )


# --- snapshot / sprite / animated image -------------------------------------


class SnapshotTask(_Spec):
    """Still images: at given times, every N seconds, or N evenly spaced.
    Exactly one of times, intervalSeconds and count."""

    times: list[TimePoint] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Instants: seconds ('12.5') or percent of the duration ('50%').",
    )
    interval_seconds: float | None = Field(
        default=None,
        alias="intervalSeconds",
        ge=0.001,
        le=86400,
        description="One image every N seconds.",
    )
    count: int | None = Field(
        default=None, ge=1, le=100, description="N images evenly spaced over the duration."
    )
    max_count: int = Field(
        default=100, alias="maxCount", ge=1, le=1000, description="Cap for intervalSeconds."
    )
    format: ImageFormat = Field(default="jpeg", description="Image format.")
    width: int | None = Field(
        default=None, ge=16, le=8192, description="Width in pixels (height keeps aspect)."
    )
    height: int | None = Field(
        default=None, ge=16, le=8192, description="Height in pixels (width keeps aspect)."
    )

    @model_validator(mode="after")
    def _check(self) -> SnapshotTask:
        if _count_set(self, ["times", "interval_seconds", "count"]) != 1:
            raise ValueError("snapshot: set exactly one of times, intervalSeconds and count")
        for point in self.times or []:
            number, percent = parse_time_point(point)
            if percent and number > 100:
                raise ValueError(f"snapshot.times: {point!r} is more than 100%")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _exactly_one_cel(["times", "intervalSeconds", "count"]),
                    "snapshot: set exactly one of times, intervalSeconds and count",
                ),
                _cel(
                    "!has(self.times) || self.times.all(t, !t.endsWith('%') || "
                    "double(t.substring(0, size(t) - 1)) <= 100.0)",
                    "snapshot.times: a percentage cannot exceed 100%",
                ),
            ]
        }
    )


class SpriteTask(_Spec):
    """Sprite sheets (columns x rows thumbnails) plus a WebVTT index."""

    interval_seconds: float | None = Field(
        default=None,
        alias="intervalSeconds",
        ge=0.001,
        le=3600,
        description="One thumbnail every N seconds. Default: duration / (columns*rows), "
        "so one sheet covers the whole input.",
    )
    columns: int = Field(default=10, ge=1, le=20, description="Thumbnails per row.")
    rows: int = Field(default=10, ge=1, le=20, description="Rows per sheet.")
    width: int = Field(default=160, ge=16, le=1280, description="Thumbnail width in pixels.")
    max_sheets: int = Field(
        default=20, alias="maxSheets", ge=1, le=100, description="Cap on the number of sheets."
    )
    format: ImageFormat = Field(default="jpeg", description="Sheet image format.")


class AnimatedImageTask(_Spec):
    """A short animated GIF (with a generated palette) or animated WebP."""

    format: Literal["gif", "webp"] = Field(default="gif", description="Animation format.")
    start: TimePoint = Field(
        default="0", description="Start: seconds ('3') or percent of duration ('10%')."
    )
    duration: float = Field(default=3, ge=0.001, le=60, description="Length in seconds.")
    fps: float = Field(default=10, ge=0.001, le=30, description="Frames per second.")
    width: int = Field(default=320, ge=16, le=1920, description="Width in pixels.")
    loop: int = Field(default=0, ge=0, le=65535, description="Repetitions; 0 loops forever.")

    @model_validator(mode="after")
    def _check(self) -> AnimatedImageTask:
        number, percent = parse_time_point(self.start)
        if percent and number > 100:
            raise ValueError(f"animatedImage.start: {self.start!r} is more than 100%")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!self.start.endsWith('%') || "
                    "double(self.start.substring(0, size(self.start) - 1)) <= 100.0",
                    "animatedImage.start: a percentage cannot exceed 100%",
                )
            ]
        }
    )


# --- analysis --------------------------------------------------------------


class AnalysisTask(_Spec):
    """ffprobe metadata (always) plus optional detectors, written as JSON."""

    scene_changes: bool = Field(
        default=False, alias="sceneChanges", description="Detect scene changes (scdet)."
    )
    scene_threshold: float = Field(
        default=10.0,
        alias="sceneThreshold",
        ge=0,
        le=100,
        description="scdet threshold (0-100); higher finds fewer changes.",
    )
    black: bool = Field(default=False, description="Detect black segments (blackdetect).")
    black_min_seconds: float = Field(
        default=0.5,
        alias="blackMinSeconds",
        ge=0.001,
        le=3600,
        description="Shortest black segment (s).",
    )
    silence: bool = Field(default=False, description="Detect silent segments (silencedetect).")
    silence_threshold_db: float = Field(
        default=-50, alias="silenceThresholdDb", ge=-120, le=0, description="Silence level in dB."
    )
    silence_min_seconds: float = Field(
        default=1.0,
        alias="silenceMinSeconds",
        ge=0.001,
        le=3600,
        description="Shortest silence segment.",
    )
    loudness: bool = Field(
        default=False, description="Measure EBU R128 integrated loudness, range and true peak."
    )


# --- the task entry --------------------------------------------------------

TASK_TYPES = ["transcode", "snapshot", "sprite", "animatedImage", "adaptiveStreaming", "analysis"]
_TASK_FIELDS = [
    "transcode",
    "snapshot",
    "sprite",
    "animated_image",
    "adaptive_streaming",
    "analysis",
]


class TaskSpec(_Spec):
    """One entry of Workflow.spec.tasks: a name and exactly one task type."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=TASK_NAME_PATTERN,
        description=(
            "Task name, unique in the Workflow (DNS label: lower case, digits, '-'). "
            "Outputs go under <output dir>/<name>/."
        ),
    )
    transcode: TranscodeTask | None = Field(
        default=None, description="Encode into one file (container, codecs, size, watermarks)."
    )
    snapshot: SnapshotTask | None = Field(default=None, description="Still images.")
    sprite: SpriteTask | None = Field(default=None, description="Sprite sheets + WebVTT.")
    animated_image: AnimatedImageTask | None = Field(
        default=None, alias="animatedImage", description="Animated GIF or WebP preview."
    )
    adaptive_streaming: AdaptiveStreamingTask | None = Field(
        default=None, alias="adaptiveStreaming", description="HLS or DASH ladder."
    )
    analysis: AnalysisTask | None = Field(
        default=None, description="Media metadata and content analysis as JSON."
    )

    @model_validator(mode="after")
    def _exactly_one_type(self) -> TaskSpec:
        if _count_set(self, _TASK_FIELDS) != 1:
            raise ValueError(f"task {self.name!r}: set exactly one of {', '.join(TASK_TYPES)}")
        return self

    @property
    def kind(self) -> str:
        """The camelCase name of the task type that is set (e.g. ``animatedImage``)."""
        for field, kind in zip(_TASK_FIELDS, TASK_TYPES, strict=True):
            if getattr(self, field) is not None:
                return kind
        raise AssertionError("validated TaskSpec has no task type")  # pragma: no cover

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    _exactly_one_cel(TASK_TYPES),
                    "set exactly one of " + ", ".join(TASK_TYPES),
                )
            ]
        }
    )


# For the ``tasks`` list of the Workflow spec (the list itself lives there).
TASKS_MAX_ITEMS = 20
TASKS_LIST_VALIDATIONS: list[JsonValue] = [
    _cel(
        "self.all(t, self.exists_one(u, u.name == t.name))",
        "task names must be unique",
    )
]


def check_unique_task_names(tasks: list[TaskSpec]) -> list[TaskSpec]:
    """Raise ``ValueError`` if two tasks share a name (pydantic twin of
    ``TASKS_LIST_VALIDATIONS``); return the list unchanged otherwise."""
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise ValueError(f"task names must be unique: {task.name!r} appears twice")
        seen.add(task.name)
    return tasks


def task_json(task: TaskSpec) -> dict[str, Any]:
    """The canonical JSON form of a task (aliases, no nulls)."""
    return task.model_dump(by_alias=True, exclude_none=True, mode="json")
