"""Privacy regions of a transcode: rectangles blurred or pixelated (mosaic)
for a time range (faces, number plates, screens)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import SpecModel, cel
from mediaflow_api.tasks.watermark import Length

RegionStyle = Literal["blur", "mosaic"]
MAX_REGIONS = 10


class PrivacyRegion(SpecModel):
    """A rectangle of the source picture hidden for a time range."""

    # Not x/y: Kubernetes tools read YAML 1.1, where a bare `y` key is the
    # boolean true (kubectl and helm would turn `y: 10%` into `"true": 10%`).
    left: Length = Field(
        description="Left edge: pixels of the source's displayed frame ('120') or % of its width."
    )
    top: Length = Field(description="Top edge: pixels of the source's displayed frame or % of it.")
    width: Length = Field(description="Width: pixels of the source's displayed frame or %.")
    height: Length = Field(description="Height: pixels of the source's displayed frame or %.")
    style: RegionStyle = Field(
        default="blur",
        description="blur (Gaussian) or mosaic (large square pixels).",
    )
    strength: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "blur: the Gaussian sigma, mosaic: the block size, in pixels of the output. "
            "Default: from the region's size (about 1/6 resp. 1/8 of its shorter side)."
        ),
    )
    start: float | None = Field(
        default=None, ge=0, le=86400, description="Hide from this second of the output."
    )
    end: float | None = Field(
        default=None, ge=0.001, le=86400, description="Show again from this second of the output."
    )

    @model_validator(mode="after")
    def _check(self) -> PrivacyRegion:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("privacy region end must be greater than start")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.start) && has(self.end)) || self.end > self.start",
                    "privacy region end must be greater than start",
                ),
            ]
        }
    )


class Privacy(SpecModel):
    """Regions of the picture to hide."""

    regions: list[PrivacyRegion] = Field(
        min_length=1,
        max_length=MAX_REGIONS,
        description=(
            "Rectangles to blur or pixelate, applied in order before the watermarks; the parts "
            "outside the frame are ignored."
        ),
    )


def check_transcode_privacy(privacy: Privacy | None, video_codec: str | None) -> None:
    """The transcode-level rule of ``privacy``."""
    if privacy is not None and video_codec in ("copy", "none"):
        raise ValueError("transcode.privacy needs the video to be encoded (not copy/none)")


# The CEL twin of ``check_transcode_privacy`` (on the transcode object).
TRANSCODE_PRIVACY_CEL = [
    cel(
        "!has(self.privacy) || !has(self.video) || !has(self.video.codec) || "
        "!(self.video.codec in ['copy', 'none'])",
        "transcode.privacy needs the video to be encoded (not copy/none)",
    ),
]
