"""The ``animatedImage`` task: a GIF or animated WebP preview."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import SpecModel, TimePoint, cel, parse_time_point


class AnimatedImageTask(SpecModel):
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
                cel(
                    "!self.start.endsWith('%') || "
                    "double(self.start.substring(0, size(self.start) - 1)) <= 100.0",
                    "animatedImage.start: a percentage cannot exceed 100%",
                )
            ]
        }
    )
