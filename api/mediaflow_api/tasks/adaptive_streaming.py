"""The ``adaptiveStreaming`` task: an HLS or DASH ladder.

Named ladders (``adaptiveStreaming.ladder``) live in ``mediaflow_api.presets``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import Bitrate, EncoderPreset, SpecModel, cel

LadderName = Literal["standard-ladder", "mobile-ladder", "hevc-ladder"]


class Rendition(SpecModel):
    """One rung of an adaptive streaming ladder."""

    height: int = Field(ge=64, le=4320, description="Video height in pixels (width follows).")
    video_bitrate: Bitrate = Field(alias="videoBitrate", description="e.g. '3000k'.")
    maxrate: Bitrate | None = Field(
        default=None, description="Peak bitrate. Default: 1.5x videoBitrate."
    )
    audio_bitrate: Bitrate = Field(
        default="128k", alias="audioBitrate", description="AAC bitrate, e.g. '128k'."
    )


class AdaptiveStreamingTask(SpecModel):
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
                cel(
                    "!has(self.renditions) || "
                    "self.renditions.all(r, self.renditions.exists_one(q, q.height == r.height))",
                    "adaptiveStreaming.renditions: heights must be distinct",
                )
            ]
        }
    )
