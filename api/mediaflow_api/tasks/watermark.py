"""Watermarks (transcode, snapshot, sprite, animated image, streaming
renditions): an image object or a line of text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel, cel, exactly_one_cel

LENGTH_PATTERN = r"^([0-9]{1,5}(px)?|[0-9]{1,3}(\.[0-9]{1,2})?%)$"
# A colour name ("white") or "#rrggbb".
COLOR_PATTERN = r"^([a-z]{3,20}|#[0-9a-fA-F]{6})$"
# An S3 bucket name (the subset MinIO and AWS both accept).
Length = Annotated[str, StringConstraints(pattern=LENGTH_PATTERN, max_length=10)]

# The fonts shipped in the worker image, by name (the worker maps each to a
# font file: mediaflow_worker.fonts). "cjk-*" cover Chinese, Japanese and
# Korean as well as Latin text.
FontName = Literal["sans", "serif", "mono", "cjk-sans", "cjk-serif"]
FONT_NAMES: tuple[str, ...] = ("sans", "serif", "mono", "cjk-sans", "cjk-serif")

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
    """An image object in a bucket: PNG (alpha recommended), JPEG, WebP, or
    SVG (a key ending in .svg; rendered at the watermark's width, nothing it
    references is loaded)."""

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
        description="Overlay this text (rendered literally, in font).",
    )
    font: FontName | None = Field(
        default=None,
        description=(
            "Font of the text: sans, serif, mono (DejaVu), cjk-sans or cjk-serif (Noto CJK: "
            "Chinese, Japanese, Korean and Latin). Default: the worker's MEDIAFLOW_FONT_FILE "
            "(DejaVu Sans). Text only."
        ),
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
    start_from_end: float | None = Field(
        default=None,
        alias="startFromEnd",
        ge=0.001,
        le=86400,
        description=(
            "Show from this many seconds before the end of the output (instead of start): "
            "5 shows the watermark in the last 5 seconds."
        ),
    )
    end_from_end: float | None = Field(
        default=None,
        alias="endFromEnd",
        ge=0,
        le=86400,
        description="Hide from this many seconds before the end of the output (instead of end).",
    )

    @model_validator(mode="after")
    def _check(self) -> Watermark:
        if (self.image is None) == (self.text is None):
            raise ValueError("watermark: set exactly one of image and text")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("watermark.end must be greater than watermark.start")
        if self.text is not None and self.width is not None:
            raise ValueError("watermark.width applies to images only; use fontSize for text")
        if self.start is not None and self.start_from_end is not None:
            raise ValueError("watermark: set start or startFromEnd, not both")
        if self.end is not None and self.end_from_end is not None:
            raise ValueError("watermark: set end or endFromEnd, not both")
        if (
            self.start_from_end is not None
            and self.end_from_end is not None
            and self.end_from_end >= self.start_from_end
        ):
            raise ValueError(
                "watermark.endFromEnd must be less than startFromEnd (it counts back from the end)"
            )
        if self.image is not None and self.font is not None:
            raise ValueError("watermark.font applies to text only")
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
                cel(
                    "!(has(self.start) && has(self.startFromEnd))",
                    "watermark: set start or startFromEnd, not both",
                ),
                cel(
                    "!(has(self.end) && has(self.endFromEnd))",
                    "watermark: set end or endFromEnd, not both",
                ),
                cel(
                    "!(has(self.startFromEnd) && has(self.endFromEnd)) || "
                    "self.endFromEnd < self.startFromEnd",
                    "watermark.endFromEnd must be less than startFromEnd "
                    "(it counts back from the end)",
                ),
                cel(
                    "!(has(self.image) && has(self.font))",
                    "watermark.font applies to text only",
                ),
            ]
        }
    )
