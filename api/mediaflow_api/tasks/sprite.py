"""The ``sprite`` task: thumbnail sheets plus a WebVTT index."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import ImageFormat, SpecModel
from mediaflow_api.tasks.sizing import (
    FillType,
    adaptive_orientation_field,
    check_fill,
    fill_cels,
    fill_type_field,
    pad_color_field,
)
from mediaflow_api.tasks.watermark import Watermark


class SpriteTask(SpecModel):
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
    height: int | None = Field(
        default=None,
        ge=16,
        le=1280,
        description="Thumbnail height in pixels. Default: from width, aspect kept.",
    )
    fill_type: FillType | None = fill_type_field()
    pad_color: str | None = pad_color_field()
    adaptive_orientation: bool | None = adaptive_orientation_field(default_on=False)
    watermarks: list[Watermark] | None = Field(
        default=None,
        max_length=10,
        description=(
            "Image or text overlays on every thumbnail (sized against the thumbnail), drawn "
            "in order. start/end are times in the input: a thumbnail shows the watermarks "
            "whose window holds its instant."
        ),
    )
    max_sheets: int = Field(
        default=20, alias="maxSheets", ge=1, le=100, description="Cap on the number of sheets."
    )
    format: ImageFormat = Field(default="jpeg", description="Sheet image format.")

    @model_validator(mode="after")
    def _check(self) -> SpriteTask:
        check_fill("sprite", self.fill_type, self.pad_color, {"height": self.height})
        return self

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [*fill_cels("sprite", ["height"])]}
    )
