"""The ``transcode`` task: container, video and audio settings, trim and
watermarks of one output file.

Named presets (``transcode.preset``) live in ``mediaflow_api.presets``;
explicit fields override the preset.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

from mediaflow_api.tasks.common import (
    Bitrate,
    EncoderPreset,
    SpecModel,
    cel,
    cel_map,
    cel_pairs,
    count_set,
)
from mediaflow_api.tasks.intro_outro import (
    TRANSCODE_INTRO_OUTRO_CEL,
    ClipRef,
    check_transcode_intro_outro,
)
from mediaflow_api.tasks.privacy import TRANSCODE_PRIVACY_CEL, Privacy, check_transcode_privacy
from mediaflow_api.tasks.sizing import (
    FillType,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)
from mediaflow_api.tasks.subtitles import (
    TRANSCODE_SUBTITLES_CEL,
    Subtitles,
    check_transcode_subtitles,
)
from mediaflow_api.tasks.watermark import Watermark

Container = Literal["mp4", "mov", "mkv", "webm", "ts", "mp3", "m4a", "wav", "flac", "ogg"]
VideoCodec = Literal["h264", "h265", "vp9", "av1", "copy", "none"]
AudioCodec = Literal["aac", "opus", "mp3", "flac", "pcm", "ac3", "eac3", "copy", "none"]
AudioTracks = Literal["first", "all"]
# An ISO 639-2 language code as containers tag audio tracks ("eng", "fra").
LANGUAGE_PATTERN = r"^[a-z]{3}$"
RateControl = Literal["crf", "vbr", "cbr"]
# Codecs whose encoders (as ffmpeg 5.1 wraps them) do constant bitrate and
# two-pass: libsvtav1 takes neither -pass nor a strict CBR there.
RATE_CONTROL_CODECS = ("h264", "h265", "vp9")
BitDepth = Literal[8, 10]
HdrMode = Literal["passthrough", "tonemap"]
# Codecs that carry 10-bit HDR as ffmpeg 5.1 encodes it (HEVC Main 10, AV1, VP9 profile 2).
HDR_CODECS = ("h265", "av1", "vp9")
TEN_BIT_PROFILES = ("high10", "main10")
VideoProfile = Literal["baseline", "main", "high", "high10", "main10"]
# The profiles each encoder takes (x264 / x265 names); 10-bit ones imply 10-bit output.
CODEC_PROFILES: dict[str, tuple[str, ...]] = {
    "h264": ("baseline", "main", "high", "high10"),
    "h265": ("main", "main10"),
}
# Codecs whose profile, level and B-frames can be set (x264/x265 options).
PROFILE_CODECS = tuple(CODEC_PROFILES)
# "4.1", "5", "6.2": an H.264/H.265 level as Annex A writes it.
LEVEL_PATTERN = r"^[1-6](\.[0-3])?$"
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
    "mp4": ("aac", "opus", "mp3", "ac3", "eac3", "copy", "none"),
    "mov": ("aac", "mp3", "pcm", "ac3", "eac3", "copy", "none"),
    "mkv": ("aac", "opus", "mp3", "flac", "pcm", "ac3", "eac3", "copy", "none"),
    "webm": ("opus", "copy", "none"),
    "ts": ("aac", "mp3", "opus", "ac3", "eac3", "copy", "none"),
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
    "profile",
    "level",
    "bframes",
    "gop_seconds",
    "rate_control",
    "two_pass",
    "bit_depth",
    "hdr",
    "fill_type",
    "pad_color",
]
_AUDIO_ENCODING_FIELDS = ["bitrate", "sample_rate", "channels", "loudness"]
_ALIASES = {
    "sample_rate": "sampleRate",
    "gop_seconds": "gopSeconds",
    "rate_control": "rateControl",
    "two_pass": "twoPass",
    "bit_depth": "bitDepth",
    "fill_type": "fillType",
    "pad_color": "padColor",
}


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


def check_profile_fits(codec: str | None, video: VideoSettings) -> None:
    """Profile, level and B-frames must suit the codec (``None``: not known
    yet, the preset or default decides; ``resolve_transcode`` checks again)."""
    if codec is not None and codec not in ("copy", "none"):
        if video.profile is not None and video.profile not in CODEC_PROFILES.get(codec, ()):
            raise ValueError(
                f"video.profile does not fit video.codec: {video.profile!r} is no {codec} "
                "profile (h264: baseline, main, high, high10; h265: main, main10)"
            )
        if codec not in PROFILE_CODECS and (video.level is not None or video.bframes is not None):
            raise ValueError(
                f"video.level and video.bframes apply to h264 and h265 only, not {codec!r}"
            )
    if video.profile == "baseline" and video.bframes:
        raise ValueError("video.profile baseline has no B-frames: set bframes 0 or leave it out")


def check_rate_control(codec: str | None, video: VideoSettings) -> None:
    """rateControl and twoPass must suit the bitrate fields and the codec
    (``None``: not known yet; ``resolve_transcode`` checks again)."""
    mode = video.rate_control
    if mode == "crf" and video.bitrate is not None:
        raise ValueError("video.rateControl crf takes crf, not bitrate")
    if mode in ("vbr", "cbr") and (video.bitrate is None or video.crf is not None):
        raise ValueError(
            f"video.rateControl vbr/cbr needs video.bitrate (and no crf); {mode} was set"
        )
    if video.two_pass and video.bitrate is None:
        raise ValueError("video.twoPass needs video.bitrate")
    if (
        codec is not None
        and codec not in ("copy", "none")
        and codec not in RATE_CONTROL_CODECS
        and (video.two_pass or mode == "cbr")
    ):
        raise ValueError(
            f"video.rateControl cbr and video.twoPass take h264, h265 or vp9, not {codec!r}"
        )
    if mode == "cbr" and video.maxrate is not None:
        raise ValueError("video.rateControl cbr sets maxrate to bitrate: remove maxrate")


def check_bit_depth(codec: str | None, video: VideoSettings) -> None:
    """bitDepth, a 10-bit profile and hdr passthrough must agree (``codec``
    ``None``: not known yet; ``resolve_transcode`` checks again)."""
    if (
        video.profile is not None
        and video.bit_depth is not None
        and (video.profile in TEN_BIT_PROFILES) != (video.bit_depth == 10)
    ):
        raise ValueError(
            f"video.profile and video.bitDepth disagree (high10/main10 are the 10-bit "
            f"profiles): profile {video.profile}, bitDepth {video.bit_depth}"
        )
    if video.hdr == "passthrough":
        if video.bit_depth == 8:
            raise ValueError("video.hdr passthrough needs 10-bit output (bitDepth 10 or unset)")
        if codec is not None and codec not in ("copy", "none") and codec not in HDR_CODECS:
            raise ValueError(f"video.hdr passthrough takes h265, av1 or vp9, not {codec!r}")


def output_bit_depth(video: VideoSettings) -> int:
    """The bit depth a resolved encode writes: explicit, else implied by a
    10-bit profile or HDR pass-through, else 8."""
    if video.bit_depth is not None:
        return video.bit_depth
    if video.profile in TEN_BIT_PROFILES or video.hdr == "passthrough":
        return 10
    return 8


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
        description=(
            "Maximum keyframe interval in frames (GOP length). Mutually exclusive with gopSeconds."
        ),
    )
    gop_seconds: float | None = Field(
        default=None,
        alias="gopSeconds",
        ge=0.1,
        le=60,
        description=(
            "Keyframe interval in seconds of output time (e.g. 2 for 2 s segments): a keyframe "
            "(IDR) at every multiple, the frame count computed from fps or the source's rate. "
            "Closed GOPs and no extra keyframes on scene cuts, so segments of several encodes "
            "line up. Mutually exclusive with gop."
        ),
    )
    profile: VideoProfile | None = Field(
        default=None,
        description=(
            "Encoder profile: h264 baseline, main, high or high10; h265 main or main10. "
            "high10/main10 encode 10-bit video. Default: the encoder's choice (h264 high)."
        ),
    )
    level: str | None = Field(
        default=None,
        pattern=LEVEL_PATTERN,
        max_length=3,
        description=(
            "h264/h265 level as Annex A writes it, e.g. '3.1', '4.1', '5'; the encoder keeps "
            "the stream within it (and signals it). Default: derived by the encoder."
        ),
    )
    bframes: int | None = Field(
        default=None,
        ge=0,
        le=16,
        description=(
            "h264/h265: maximum consecutive B-frames (0 disables them, as old decoders may "
            "need). Default: the encoder's (3 for x264 medium, 4 for x265)."
        ),
    )

    rate_control: RateControl | None = Field(
        default=None,
        alias="rateControl",
        description=(
            "crf: constant quality (crf, optionally capped by maxrate); vbr: average bitrate "
            "(bitrate, optionally capped by maxrate); cbr: constant bitrate for broadcast and "
            "live ingest (bitrate required; minrate = maxrate = bitrate, a buffer of bufsize, "
            "default one second; x264 signals CBR HRD). vbr and cbr need bitrate; cbr takes "
            "h264, h265 and vp9. Default: crf, or vbr when bitrate is set."
        ),
    )
    two_pass: bool | None = Field(
        default=None,
        alias="twoPass",
        description=(
            "Encode twice: a first pass measures the whole input, the second spends the "
            "bitrate where it is needed and lands closer to it. Needs bitrate (vbr or cbr); "
            "h264, h265 and vp9. About twice the encoding time. Default false."
        ),
    )

    bit_depth: BitDepth | None = Field(
        default=None,
        alias="bitDepth",
        description=(
            "Bits per sample of the output: 8 (yuv420p, plays everywhere) or 10 (yuv420p10le: "
            "h265 Main 10, av1, vp9 profile 2, h264 High 10 — less banding, needed for HDR). "
            "Default: 10 with a 10-bit profile or hdr passthrough, else 8."
        ),
    )
    hdr: HdrMode | None = Field(
        default=None,
        description=(
            "What happens to an HDR source (PQ or HLG transfer): tonemap converts it to SDR "
            "BT.709 (hable curve), so it looks right on every screen; passthrough keeps it "
            "HDR: 10-bit output with the source's colour primaries, transfer (PQ/HLG) and "
            "matrix signalled (h265, av1, vp9). SDR sources are unaffected either way, except "
            "that passthrough keeps their colour tags. Default: tonemap."
        ),
    )

    @model_validator(mode="after")
    def _crf_xor_bitrate(self) -> VideoSettings:
        if self.crf is not None and self.bitrate is not None:
            raise ValueError("video.crf and video.bitrate are mutually exclusive: set one")
        if self.gop is not None and self.gop_seconds is not None:
            raise ValueError("video.gop and video.gopSeconds are mutually exclusive: set one")
        _check_no_encoding_settings("video", self.codec, self, _VIDEO_ENCODING_FIELDS)
        check_profile_fits(self.codec, self)
        check_rate_control(self.codec, self)
        check_bit_depth(self.codec, self)
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
                cel(
                    "!(has(self.gop) && has(self.gopSeconds))",
                    "video.gop and video.gopSeconds are mutually exclusive: set one",
                ),
                cel(
                    "!has(self.profile) || !has(self.codec) || "
                    f"(self.codec in {list(PROFILE_CODECS)} && "
                    f"self.profile in {cel_map(CODEC_PROFILES)}[self.codec])",
                    "video.profile does not fit video.codec (h264: baseline, main, high, "
                    "high10; h265: main, main10)",
                ),
                cel(
                    "!has(self.codec) || self.codec in "
                    f"{list(PROFILE_CODECS)} || !(has(self.level) || has(self.bframes))",
                    "video.level and video.bframes apply to h264 and h265 only",
                ),
                cel(
                    "!has(self.rateControl) || self.rateControl != 'crf' || !has(self.bitrate)",
                    "video.rateControl crf takes crf, not bitrate",
                ),
                cel(
                    "!has(self.rateControl) || self.rateControl == 'crf' || "
                    "(has(self.bitrate) && !has(self.crf))",
                    "video.rateControl vbr/cbr needs video.bitrate (and no crf)",
                ),
                cel(
                    "!has(self.twoPass) || !self.twoPass || has(self.bitrate)",
                    "video.twoPass needs video.bitrate",
                ),
                cel(
                    "!has(self.codec) || self.codec in "
                    f"{list(RATE_CONTROL_CODECS)} || !((has(self.twoPass) && self.twoPass) || "
                    "(has(self.rateControl) && self.rateControl == 'cbr'))",
                    "video.rateControl cbr and video.twoPass take h264, h265 or vp9",
                ),
                cel(
                    "!has(self.rateControl) || self.rateControl != 'cbr' || !has(self.maxrate)",
                    "video.rateControl cbr sets maxrate to bitrate: remove maxrate",
                ),
                cel(
                    "!has(self.profile) || !has(self.bitDepth) || "
                    f"((self.profile in {list(TEN_BIT_PROFILES)}) == (self.bitDepth == 10))",
                    "video.profile and video.bitDepth disagree (high10/main10 are the 10-bit "
                    "profiles)",
                ),
                cel(
                    "!has(self.hdr) || self.hdr != 'passthrough' || "
                    "!has(self.bitDepth) || self.bitDepth == 10",
                    "video.hdr passthrough needs 10-bit output (bitDepth 10 or unset)",
                ),
                cel(
                    "!has(self.hdr) || self.hdr != 'passthrough' || !has(self.codec) || "
                    f"self.codec in {list(HDR_CODECS)}",
                    "video.hdr passthrough takes h265, av1 or vp9",
                ),
                cel(
                    "!has(self.profile) || self.profile != 'baseline' || "
                    "!has(self.bframes) || self.bframes == 0",
                    "video.profile baseline has no B-frames: set bframes 0 or leave it out",
                ),
                *fill_cels("video", ["width", "height"]),
            ]
        }
    )


class Loudness(SpecModel):
    """EBU R128 loudness normalisation targets (ffmpeg loudnorm, two passes)."""

    integrated: float = Field(
        default=-23,
        ge=-70,
        le=-5,
        description=(
            "Integrated loudness target in LUFS: -23 for EBU R128 broadcast, -24 for ATSC "
            "A/85, -16 for podcasts and most streaming. Default -23."
        ),
    )
    true_peak: float = Field(
        default=-1,
        alias="truePeak",
        ge=-9,
        le=0,
        description="Maximum true peak in dBTP. Default -1 (EBU R128).",
    )
    loudness_range: float = Field(
        default=7,
        alias="range",
        ge=1,
        le=50,
        description=(
            "Target loudness range (LRA) in LU; a source with a wider range is compressed "
            "to it (dynamic mode) instead of gained linearly. Default 7."
        ),
    )


class AudioSettings(SpecModel):
    """Audio stream settings of a transcode."""

    @model_validator(mode="after")
    def _copy_takes_no_settings(self) -> AudioSettings:
        _check_no_encoding_settings("audio", self.codec, self, _AUDIO_ENCODING_FIELDS)
        if self.tracks is not None and self.languages is not None:
            raise ValueError("audio.tracks and audio.languages are mutually exclusive: set one")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _no_encoding_settings_cel("audio", _AUDIO_ENCODING_FIELDS),
                cel(
                    "!(has(self.tracks) && has(self.languages))",
                    "audio.tracks and audio.languages are mutually exclusive: set one",
                ),
            ]
        }
    )

    codec: AudioCodec | None = Field(
        default=None,
        description=(
            "Audio codec: aac, opus (libopus), mp3 (libmp3lame), flac, pcm (16-bit), ac3 "
            "(Dolby Digital), eac3 (Dolby Digital Plus), copy (keep the source stream) or none "
            "(drop audio). Default: from the preset or the container."
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
    tracks: AudioTracks | None = Field(
        default=None,
        description=(
            "Which audio tracks of a multi-track source go into the output: first or all "
            "(each encoded with these settings, languages kept). mp3, wav and flac files "
            "hold one track: the first. Default: first. Mutually exclusive with languages."
        ),
    )
    languages: list[Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description=(
            "Keep the audio tracks tagged with these ISO 639-2 languages (e.g. ['eng', 'fra']), "
            "in this order; a language the source lacks is skipped. When no track matches "
            "(untagged sources say 'und'), the first track is kept so the output is not silent."
        ),
    )
    loudness: Loudness | None = Field(
        default=None,
        description=(
            "Normalise loudness (EBU R128, two passes: a first ffmpeg run measures each kept "
            "track, the second applies the linear gain that reaches the target, limiting true "
            "peaks). Not with codec copy/none."
        ),
    )


_TRIM_LENGTH_FIELDS = ["duration", "end", "end_offset"]


class Trim(SpecModel):
    """The part of the input to keep: from ``start`` for ``duration``
    seconds, up to ``end``, or up to ``endOffset`` seconds before the end."""

    start: float = Field(default=0, ge=0, le=86400, description="Start in seconds.")
    duration: float | None = Field(
        default=None,
        ge=0.001,
        le=86400,
        description="Length in seconds. Default: to the end. Exclusive with end and endOffset.",
    )
    end: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description=(
            "Where to stop, in seconds from the input's beginning (after start). Exclusive "
            "with duration and endOffset."
        ),
    )
    end_offset: float | None = Field(
        default=None,
        alias="endOffset",
        gt=0,
        le=86400,
        description=(
            "Stop this many seconds before the input ends, e.g. 5 drops the last 5 s (an "
            "outro, credits). When nothing is left after start, the task is skipped like "
            "one whose start is past the end. Exclusive with duration and end."
        ),
    )

    @model_validator(mode="after")
    def _one_end(self) -> Trim:
        if count_set(self, _TRIM_LENGTH_FIELDS) > 1:
            raise ValueError("trim: set at most one of duration, end and endOffset")
        if self.end is not None and self.end <= self.start:
            raise ValueError(
                f"trim.end must be after trim.start (end {self.end:g}, start {self.start:g})"
            )
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.duration), has(self.end), has(self.endOffset)]"
                    ".filter(x, x).size() <= 1",
                    "trim: set at most one of duration, end and endOffset",
                ),
                cel(
                    "!has(self.end) || self.end > (has(self.start) ? self.start : 0.0)",
                    "trim.end must be after trim.start",
                ),
            ]
        }
    )

    def length(self, input_duration: float) -> float | None:
        """Seconds kept from ``start`` (None: to the end), given the input's
        duration (needed by ``endOffset``; 0 when unknown: then nothing is
        cut from the end). May be 0 or less: nothing left."""
        if self.duration is not None:
            return self.duration
        if self.end is not None:
            return self.end - self.start
        if self.end_offset is not None and input_duration > 0:
            return input_duration - self.end_offset - self.start
        return None


def _selects_audio(audio: AudioSettings | None) -> bool:
    """Whether ``audio`` sets loudness or chooses tracks (not joinable yet)."""
    return audio is not None and (
        audio.loudness is not None or audio.tracks == "all" or audio.languages is not None
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
    subtitles: Subtitles | None = Field(
        default=None,
        description="Subtitles from a sidecar file (.srt, .vtt, .ass), burned in or soft.",
    )
    privacy: Privacy | None = Field(
        default=None,
        description="Blur or pixelate regions of the picture for a time range.",
    )
    intro: ClipRef | None = Field(
        default=None,
        description=(
            "A video object joined before the output (scaled and padded to its size and "
            "frame rate; silence where it has no audio). Needs video and audio encoded."
        ),
    )
    outro: ClipRef | None = Field(
        default=None, description="A video object joined after the output (see intro)."
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
        check_transcode_subtitles(
            self.subtitles, self.container, self.video.codec if self.video else None
        )
        check_transcode_privacy(self.privacy, self.video.codec if self.video else None)
        check_transcode_intro_outro(
            self.intro,
            self.outro,
            self.video.codec if self.video else None,
            self.audio.codec if self.audio else None,
            audio_selection=_selects_audio(self.audio),
        )
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
                *TRANSCODE_SUBTITLES_CEL,
                *TRANSCODE_PRIVACY_CEL,
                *TRANSCODE_INTRO_OUTRO_CEL,
            ]
        }
    )
