"""The ``snapshot`` task: still images at chosen instants."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import (
    ImageFormat,
    SpecModel,
    TimePoint,
    cel,
    count_set,
    exactly_one_cel,
    parse_time_point,
)
from mediaflow_api.tasks.sizing import (
    FillType,
    adaptive_orientation_field,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)
from mediaflow_api.tasks.watermark import Watermark


class SnapshotTask(SpecModel):
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
    fill_type: FillType | None = fill_type_field()
    pad_color: str | None = pad_color_field()
    adaptive_orientation: bool | None = adaptive_orientation_field(default_on=False)
    watermarks: list[Watermark] | None = Field(
        default=None,
        max_length=10,
        description=(
            "Image or text overlays on every still, drawn in order. start/end are times in "
            "the input: a still shows the watermarks whose window holds its instant."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> SnapshotTask:
        if count_set(self, ["times", "interval_seconds", "count"]) != 1:
            raise ValueError("snapshot: set exactly one of times, intervalSeconds and count")
        for point in self.times or []:
            number, percent = parse_time_point(point)
            if percent and number > 100:
                raise ValueError(f"snapshot.times: {point!r} is more than 100%")
        check_fill(
            "snapshot",
            self.fill_type,
            self.pad_color,
            {"width": self.width, "height": self.height},
        )
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    exactly_one_cel(["times", "intervalSeconds", "count"]),
                    "snapshot: set exactly one of times, intervalSeconds and count",
                ),
                cel(
                    "!has(self.times) || self.times.all(t, !t.endsWith('%') || "
                    "double(t.substring(0, size(t) - 1)) <= 100.0)",
                    "snapshot.times: a percentage cannot exceed 100%",
                ),
                *fill_cels("snapshot", ["width", "height"]),
            ]
        }
    )
