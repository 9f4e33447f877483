"""The ``transcode`` task: container, video and audio settings, trim and
watermarks of one output file.

Named presets (``transcode.preset``) live in ``mediaflow_api.presets``;
explicit fields override the preset.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from mediaflow_api.tasks.common import (
    Bitrate,
    EncoderPreset,
    SpecModel,
    cel,
    cel_map,
    cel_pairs,
)
from mediaflow_api.tasks.sizing import (
    FillType,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)
from mediaflow_api.tasks.watermark import Watermark

Container = Literal["mp4", "mov", "mkv", "webm", "ts", "mp3", "m4a", "wav", "flac", "ogg"]
VideoCodec = Literal["h264", "h265", "vp9", "av1", "copy", "none"]
AudioCodec = Literal["aac", "opus", "mp3", "flac", "pcm", "copy", "none"]
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
    "fill_type",
    "pad_color",
]
_AUDIO_ENCODING_FIELDS = ["bitrate", "sample_rate", "channels"]
_ALIASES = {"sample_rate": "sampleRate", "fill_type": "fillType", "pad_color": "padColor"}


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
    return cel(
        "!has(self.codec) || !(self.codec in ['copy', 'none']) || !("
        + " || ".join(f"has(self.{name})" for name in names)
        + ")",
        f"{stream}.codec copy/none takes no encoding settings ({', '.join(names)})",
    )


# --- transcode -------------------------------------------------------------


class VideoSettings(SpecModel):
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
    fill_type: FillType | None = fill_type_field()
    pad_color: str | None = pad_color_field()
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
        check_fill(
            "video", self.fill_type, self.pad_color, {"width": self.width, "height": self.height}
        )
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.crf) && has(self.bitrate))",
                    "video.crf and video.bitrate are mutually exclusive: set one",
                ),
                _no_encoding_settings_cel("video", _VIDEO_ENCODING_FIELDS),
                *fill_cels("video", ["width", "height"]),
            ]
        }
    )


class AudioSettings(SpecModel):
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


class Trim(SpecModel):
    """The part of the input to keep."""

    start: float = Field(default=0, ge=0, le=86400, description="Start in seconds.")
    duration: float | None = Field(
        default=None, ge=0.001, le=86400, description="Length in seconds. Default: to the end."
    )


class TranscodeTask(SpecModel):
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
        default=None, max_length=10, description="Image or text overlays, drawn in order."
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
                cel(
                    f"!has(self.container) || !has(self.video) || !has(self.video.codec) || "
                    f"self.video.codec in {cel_map(CONTAINER_VIDEO_CODECS)}[self.container]",
                    "transcode.video.codec cannot go in this container",
                ),
                cel(
                    f"!has(self.container) || !has(self.audio) || !has(self.audio.codec) || "
                    f"self.audio.codec in {cel_map(CONTAINER_AUDIO_CODECS)}[self.container]",
                    "transcode.audio.codec cannot go in this container",
                ),
                cel(
                    "!has(self.container) || !has(self.preset) || "
                    "(has(self.video) && has(self.video.codec)) || "
                    f"{cel_pairs(PRESET_CODECS, 0)}[self.preset] in "
                    f"{cel_map(CONTAINER_VIDEO_CODECS)}[self.container]",
                    "transcode.container cannot hold the video codec of the preset: "
                    "set video.codec or another container",
                ),
                cel(
                    "!has(self.container) || !has(self.preset) || "
                    "(has(self.audio) && has(self.audio.codec)) || "
                    f"{cel_pairs(PRESET_CODECS, 1)}[self.preset] in "
                    f"{cel_map(CONTAINER_AUDIO_CODECS)}[self.container]",
                    "transcode.container cannot hold the audio codec of the preset: "
                    "set audio.codec or another container",
                ),
                cel(
                    "!has(self.watermarks) || size(self.watermarks) == 0 || !has(self.video) || "
                    "!has(self.video.codec) || !(self.video.codec in ['copy', 'none'])",
                    "transcode.watermarks need the video to be encoded (not copy/none)",
                ),
            ]
        }
    )
