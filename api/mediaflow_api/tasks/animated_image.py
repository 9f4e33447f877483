"""The ``animatedImage`` task: a GIF or animated WebP preview."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import SpecModel, TimePoint, cel, parse_time_point
from mediaflow_api.tasks.sizing import (
    FillType,
    adaptive_orientation_field,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)
from mediaflow_api.tasks.watermark import Watermark


class AnimatedImageTask(SpecModel):
    """A short animated GIF (with a generated palette) or animated WebP."""

    format: Literal["gif", "webp"] = Field(default="gif", description="Animation format.")
    start: TimePoint = Field(
        default="0", description="Start: seconds ('3') or percent of duration ('10%')."
    )
    duration: float = Field(default=3, ge=0.001, le=60, description="Length in seconds.")
    fps: float = Field(default=10, ge=0.001, le=30, description="Frames per second.")
    width: int = Field(default=320, ge=16, le=1920, description="Width in pixels.")
    height: int | None = Field(
        default=None,
        ge=16,
        le=1920,
        description="Height in pixels. Default: from width, aspect kept.",
    )
    fill_type: FillType | None = fill_type_field()
    pad_color: str | None = pad_color_field()
    adaptive_orientation: bool | None = adaptive_orientation_field(default_on=False)
    watermarks: list[Watermark] | None = Field(
        default=None,
        max_length=10,
        description=(
            "Image or text overlays, drawn in order. start/end are times in the animation (0 "
            "= its first frame)."
        ),
    )
    loop: int = Field(default=0, ge=0, le=65535, description="Repetitions; 0 loops forever.")

    @model_validator(mode="after")
    def _check(self) -> AnimatedImageTask:
        number, percent = parse_time_point(self.start)
        if percent and number > 100:
            raise ValueError(f"animatedImage.start: {self.start!r} is more than 100%")
        check_fill("animatedImage", self.fill_type, self.pad_color, {"height": self.height})
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.start.endsWith('%') || "
                    "double(self.start.substring(0, size(self.start) - 1)) <= 100.0",
                    "animatedImage.start: a percentage cannot exceed 100%",
                ),
                *fill_cels("animatedImage", ["height"]),
            ]
        }
    )
