"""The ``sprite`` task: thumbnail sheets plus a WebVTT index."""

from __future__ import annotations

from pydantic import Field

from mediaflow_api.tasks.common import ImageFormat, SpecModel


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
    max_sheets: int = Field(
        default=20, alias="maxSheets", ge=1, le=100, description="Cap on the number of sheets."
    )
    format: ImageFormat = Field(default="jpeg", description="Sheet image format.")
