"""The ``adaptiveStreaming`` task: an HLS, DASH or CMAF (both) ladder.

Named ladders (``adaptiveStreaming.ladder``) live in ``mediaflow_api.presets``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mediaflow_api.tasks.common import (
    Bitrate,
    EncoderPreset,
    SpecModel,
    cel,
    parse_bitrate,
)
from mediaflow_api.tasks.subtitles import StreamSubtitles
from mediaflow_api.tasks.watermark import Watermark

LadderName = Literal["standard-ladder", "mobile-ladder", "hevc-ladder"]
StreamCodec = Literal["h264", "h265"]
# The named ladders whose codec is h265 (``presets.LADDERS``; a unit test keeps
# the two in agreement). The CEL rules need the name, not the preset table.
HEVC_LADDERS: tuple[str, ...] = ("hevc-ladder",)
SampleRate = Literal[22050, 32000, 44100, 48000]
# A Kubernetes Secret name (DNS subdomain) and a key of its data.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"  # noqa: S105 - a name pattern
SECRET_KEY_PATTERN = r"^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"  # noqa: S105 - a name pattern
# The key URI goes into the playlist's EXT-X-KEY and into ffmpeg's line-based
# key-info file: no whitespace (no second line) and no quotes.
KEY_URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s\"']+$"
KeyUri = Annotated[str, StringConstraints(pattern=KEY_URI_PATTERN, max_length=2048)]

# ``AdaptiveStreamingTask.any_h265`` in CEL.
_TASK_H265_CEL = (
    "(has(self.codec) ? self.codec == 'h265' : "
    f"(has(self.ladder) && self.ladder in {list(HEVC_LADDERS)!r}))"
)
_ANY_H265_CEL = (
    f"has(self.renditions) ? self.renditions.exists(r, has(r.codec) ? r.codec == 'h265' : "
    f"{_TASK_H265_CEL}) : {_TASK_H265_CEL}"
)


class Rendition(SpecModel):
    """One video rung of an adaptive streaming ladder. Sizes follow the
    source's orientation: ``height`` is the short side of a portrait source."""

    height: int | None = Field(
        default=None,
        ge=64,
        le=4320,
        description="Video height in pixels (the short side); width follows unless set.",
    )
    width: int | None = Field(
        default=None,
        ge=64,
        le=7680,
        description="Video width in pixels (the long side); with height: the largest "
        "frame that fits the box, aspect kept.",
    )
    video_bitrate: Bitrate = Field(alias="videoBitrate", description="e.g. '3000k'.")
    maxrate: Bitrate | None = Field(
        default=None, description="Peak bitrate. Default: 1.5x videoBitrate."
    )
    codec: StreamCodec | None = Field(
        default=None, description="Video codec of this rendition. Default: the task's codec."
    )
    fps: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="Highest frame rate; a source with a lower rate keeps its own.",
    )
    audio_bitrate: Bitrate = Field(
        default="128k", alias="audioBitrate", description="AAC bitrate, e.g. '128k'."
    )
    audio_channels: int | None = Field(
        default=None, ge=1, le=2, alias="audioChannels", description="1 or 2. Default: 2."
    )
    audio_sample_rate: SampleRate | None = Field(
        default=None, alias="audioSampleRate", description="AAC sample rate. Default: 48000."
    )

    @model_validator(mode="after")
    def _check(self) -> Rendition:
        if self.height is None and self.width is None:
            raise ValueError("adaptiveStreaming rendition: set height, width or both")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.height) || has(self.width)",
                    "adaptiveStreaming rendition: set height, width or both",
                )
            ]
        }
    )


class AudioRendition(SpecModel):
    """One audio-only rendition (AAC)."""

    bitrate: Bitrate = Field(description="AAC bitrate, e.g. '96k'.")
    channels: int | None = Field(default=None, ge=1, le=2, description="1 or 2. Default: 2.")
    sample_rate: SampleRate | None = Field(
        default=None, alias="sampleRate", description="Sample rate. Default: 48000."
    )


class SecretKeyRef(SpecModel):
    """A key of a Kubernetes Secret in the Workflow's namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN, description="Secret name."
    )
    key: str = Field(
        min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN, description="Key in its data."
    )


class Encryption(SpecModel):
    """HLS AES-128 segment encryption (EXT-X-KEY)."""

    method: Literal["aes-128"] = Field(
        default="aes-128", description="aes-128: whole segments, AES-128-CBC."
    )
    key_secret: SecretKeyRef = Field(
        alias="keySecret",
        description=(
            "The 16-byte key (raw, or 32 hex digits): a key of a Secret in the Workflow's "
            "namespace. Only that key is mounted, read-only, into the Job's pod; the "
            "operator never reads it and the key is never uploaded."
        ),
    )
    key_uri: KeyUri = Field(
        alias="keyUri",
        description="Where players fetch the key (the EXT-X-KEY URI), e.g. "
        "'https://keys.example.com/v1/abc'. Written into the playlists as given.",
    )


class AdaptiveStreamingTask(SpecModel):
    """HLS or DASH renditions with one master playlist / MPD (CMAF: both,
    sharing one set of fMP4 segments)."""

    format: Literal["hls", "dash", "cmaf"] = Field(
        default="hls",
        description=(
            "hls: master.m3u8 + segments (see segmentFormat); dash: manifest.mpd + fMP4 "
            "segments; cmaf: one set of fMP4 segments that both master.m3u8 and "
            "manifest.mpd refer to."
        ),
    )
    segment_format: Literal["ts", "fmp4"] | None = Field(
        default=None,
        alias="segmentFormat",
        description=(
            "hls only: ts (MPEG-TS) or fmp4 (fragmented MP4). Default: ts, but fmp4 when a "
            "rendition is h265 or the output has no video."
        ),
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
    codec: StreamCodec | None = Field(
        default=None,
        description="Video codec of the renditions that name none. Default: from the ladder.",
    )
    cap_at_source: bool = Field(
        default=True,
        alias="capAtSource",
        description=(
            "Never above the source's bitrate: a rendition's video (and audio) bitrate is "
            "lowered to the source stream's where that is known. Renditions larger than the "
            "source are always dropped (the one nearest the source stays)."
        ),
    )
    audio_renditions: list[AudioRendition] | None = Field(
        default=None,
        alias="audioRenditions",
        min_length=1,
        max_length=4,
        description=(
            "Audio-only renditions. With video: hls puts them in one audio group "
            "(EXT-X-MEDIA) that every video variant refers to; dash/cmaf make them the audio "
            "representations. Default: hls muxes each rendition's audio into its variant."
        ),
    )
    audio_only: bool = Field(
        default=False,
        alias="audioOnly",
        description=(
            "Only audio renditions (an audio ladder), even from a video input: "
            "audioRenditions, else one per distinct audio setting of the ladder."
        ),
    )
    encryption: Encryption | None = Field(
        default=None,
        description="hls with ts segments only: AES-128 encryption of every segment.",
    )
    watermarks: list[Watermark] | None = Field(
        default=None,
        max_length=10,
        description="Image or text overlays drawn on every rendition (sized per rendition).",
    )
    subtitles: StreamSubtitles | None = Field(
        default=None,
        description=(
            "A WebVTT subtitle rendition from a sidecar: hls/cmaf: segmented .vtt files, a "
            "subtitle playlist and an EXT-X-MEDIA TYPE=SUBTITLES group every variant refers "
            "to; dash/cmaf: a text/vtt AdaptationSet in manifest.mpd."
        ),
    )
    segment_seconds: float = Field(
        default=6, alias="segmentSeconds", ge=1, le=30, description="Target segment duration."
    )
    preset: EncoderPreset = Field(default="veryfast", description="Encoder speed preset.")

    def any_h265(self) -> bool:
        """Whether a rendition's explicit or implied codec is h265."""
        task_h265 = self.codec == "h265" if self.codec else (self.ladder or "") in HEVC_LADDERS
        if self.renditions:
            return any((r.codec == "h265") if r.codec else task_h265 for r in self.renditions)
        return task_h265

    @model_validator(mode="after")
    def _check(self) -> AdaptiveStreamingTask:
        if self.renditions:
            sizes = [(r.width, r.height) for r in self.renditions]
            if len(set(sizes)) != len(sizes):
                raise ValueError("adaptiveStreaming.renditions: sizes must be distinct")
        if self.audio_renditions:
            rates = [parse_bitrate(a.bitrate) for a in self.audio_renditions]
            if len(set(rates)) != len(rates):
                raise ValueError("adaptiveStreaming.audioRenditions: bitrates must be distinct")
        if self.segment_format is not None and self.format != "hls":
            raise ValueError("adaptiveStreaming.segmentFormat applies to format hls only")
        if self.segment_format == "ts" and self.any_h265() and not self.audio_only:
            raise ValueError("adaptiveStreaming: h265 in HLS needs segmentFormat fmp4")
        if self.encryption is not None:
            if self.format != "hls" or self.segment_format == "fmp4":
                raise ValueError("adaptiveStreaming.encryption needs format hls with ts segments")
            if self.any_h265() and not self.audio_only:
                raise ValueError(
                    "adaptiveStreaming.encryption needs ts segments, which cannot hold h265"
                )
        if self.audio_only and self.watermarks:
            raise ValueError("adaptiveStreaming.watermarks need video (not audioOnly)")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.renditions) || self.renditions.all(r, "
                    "self.renditions.exists_one(q, "
                    "(has(q.height) ? q.height : 0) == (has(r.height) ? r.height : 0) && "
                    "(has(q.width) ? q.width : 0) == (has(r.width) ? r.width : 0)))",
                    "adaptiveStreaming.renditions: sizes must be distinct",
                ),
                cel(
                    "!has(self.audioRenditions) || self.audioRenditions.all(a, "
                    "self.audioRenditions.exists_one(b, b.bitrate == a.bitrate))",
                    "adaptiveStreaming.audioRenditions: bitrates must be distinct",
                ),
                cel(
                    "!has(self.segmentFormat) || !has(self.format) || self.format == 'hls'",
                    "adaptiveStreaming.segmentFormat applies to format hls only",
                ),
                cel(
                    "!has(self.segmentFormat) || self.segmentFormat != 'ts' || "
                    f"(has(self.audioOnly) && self.audioOnly) || !({_ANY_H265_CEL})",
                    "adaptiveStreaming: h265 in HLS needs segmentFormat fmp4",
                ),
                cel(
                    "!has(self.encryption) || ((!has(self.format) || self.format == 'hls') && "
                    "(!has(self.segmentFormat) || self.segmentFormat == 'ts'))",
                    "adaptiveStreaming.encryption needs format hls with ts segments",
                ),
                cel(
                    "!has(self.encryption) || (has(self.audioOnly) && self.audioOnly) || "
                    f"!({_ANY_H265_CEL})",
                    "adaptiveStreaming.encryption needs ts segments, which cannot hold h265",
                ),
                cel(
                    "!(has(self.audioOnly) && self.audioOnly) || !has(self.watermarks) || "
                    "size(self.watermarks) == 0",
                    "adaptiveStreaming.watermarks need video (not audioOnly)",
                ),
            ]
        }
    )
