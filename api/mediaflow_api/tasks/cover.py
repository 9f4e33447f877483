"""The ``cover`` task: the most representative frames of a video as covers,
with scores; black, flat, blurred, dark, over-exposed and transitional frames
rejected."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import ImageFormat, SpecModel
from mediaflow_api.tasks.sizing import (
    FillType,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)


class CoverImages(SpecModel):
    """Write each chosen cover as an image (``cover-01.jpg`` ...), taken from
    the input at full quality at the cover's instant."""

    format: ImageFormat = Field(default="jpeg", description="Image format.")
    width: int | None = Field(
        default=None, ge=16, le=8192, description="Width in pixels (height keeps aspect)."
    )
    height: int | None = Field(
        default=None, ge=16, le=8192, description="Height in pixels (width keeps aspect)."
    )
    fill_type: FillType | None = fill_type_field()
    pad_color: str | None = pad_color_field()

    @model_validator(mode="after")
    def _check(self) -> CoverImages:
        check_fill(
            "cover.images",
            self.fill_type,
            self.pad_color,
            {"width": self.width, "height": self.height},
        )
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [*fill_cels("cover.images", ["width", "height"])]
        }
    )


class CoverTask(SpecModel):
    """Smart covers: candidate frames sampled over the video are scored
    (sharpness, exposure, contrast, colourfulness, how much of the video
    looks like them) and the best ``count`` distinct ones are chosen. Writes
    cover.json; with ``images``, the covers as images too."""

    needs_ml: ClassVar[bool] = True

    count: int = Field(default=3, ge=1, le=20, description="How many covers to choose.")
    candidate_interval_seconds: float | None = Field(
        default=None,
        alias="candidateIntervalSeconds",
        ge=0.1,
        le=3600,
        description=(
            "Seconds between candidate frames. Default: the duration divided by "
            "maxCandidates, at least 0.25 s."
        ),
    )
    max_candidates: int = Field(
        default=120,
        alias="maxCandidates",
        ge=1,
        le=1000,
        description="At most this many candidate frames (the interval grows to fit).",
    )
    min_spacing_seconds: float | None = Field(
        default=None,
        alias="minSpacingSeconds",
        ge=0,
        le=86400,
        description=(
            "Least time between two covers. Default: the duration divided by 4 x count "
            "(0 disables the rule; similar-looking frames are avoided anyway)."
        ),
    )
    images: CoverImages | None = Field(
        default=None,
        description="Also write the covers as images (format and size as in snapshot).",
    )
