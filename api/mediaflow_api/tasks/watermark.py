"""Watermarks of a transcode: an image object or a line of text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel, cel, exactly_one_cel

LENGTH_PATTERN = r"^([0-9]{1,5}(px)?|[0-9]{1,3}(\.[0-9]{1,2})?%)$"
# A colour name ("white") or "#rrggbb".
COLOR_PATTERN = r"^([a-z]{3,20}|#[0-9a-fA-F]{6})$"
# An S3 bucket name (the subset MinIO and AWS both accept).
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


class WatermarkImage(SpecModel):
    """An image object (PNG with alpha recommended) in a bucket."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=BUCKET_PATTERN, description="Bucket of the image."
    )
    key: str = Field(min_length=1, max_length=1024, description="Object key of the image.")


class Watermark(SpecModel):
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
                cel(
                    exactly_one_cel(["image", "text"]),
                    "watermark: set exactly one of image and text",
                ),
                cel(
                    "!(has(self.start) && has(self.end)) || self.end > self.start",
                    "watermark.end must be greater than watermark.start",
                ),
                cel(
                    "!(has(self.text) && has(self.width))",
                    "watermark.width applies to images only; use fontSize for text",
                ),
            ]
        }
    )
