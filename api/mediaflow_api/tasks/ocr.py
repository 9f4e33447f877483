"""The ``ocr`` task: on-screen text read on sampled frames."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mediaflow_api.tasks.common import SpecModel
from mediaflow_api.tasks.keywords import KeywordList

# Keyword lists one task may carry (each up to KEYWORDS_MAX_ITEMS words).
OCR_MAX_KEYWORD_LISTS = 20


class OcrRegion(SpecModel):
    """A rectangle of the picture, in fractions of its width and height
    (0,0 is the top left corner). The part beyond the picture is ignored."""

    x: float = Field(default=0.0, ge=0, lt=1, description="Left edge (0-1 of the width).")
    y: float = Field(default=0.0, ge=0, lt=1, description="Top edge (0-1 of the height).")
    width: float = Field(default=1.0, gt=0, le=1, description="Width (0-1 of the picture's width).")
    height: float = Field(
        default=1.0, gt=0, le=1, description="Height (0-1 of the picture's height)."
    )


class OcrTask(SpecModel):
    """On-screen text: lines of text read on frames sampled every
    intervalSeconds (PP-OCR detection and recognition models shipped in the
    rapidocr package; they read Chinese and English), merged across frames
    into time ranges, written as ocr.json and ocr.vtt. Needs the worker-ml
    image."""

    needs_ml: ClassVar[bool] = True

    interval_seconds: float = Field(
        default=1.0,
        alias="intervalSeconds",
        ge=0.1,
        le=60,
        description=(
            "Seconds between the frames read. Text shown for less than this may be missed; "
            "the time ranges found are exact to this step. A still image is read once."
        ),
    )
    min_confidence: float = Field(
        default=0.6,
        alias="minConfidence",
        ge=0,
        le=1,
        description="Lines recognised with a lower confidence (0-1) are left out.",
    )
    max_side: int = Field(
        default=960,
        alias="maxSide",
        ge=320,
        le=1920,
        description=(
            "Frames are scaled down (never up) so that their longer side is at most this many "
            "pixels before reading: larger reads smaller text, and costs time."
        ),
    )
    region: OcrRegion | None = Field(
        default=None,
        description=(
            "Read only this part of the picture (e.g. the lower third for captions: "
            "y 0.67, height 0.33). Boxes in the results stay relative to the whole picture."
        ),
    )
    keywords: list[KeywordList] = Field(
        default_factory=list,
        max_length=OCR_MAX_KEYWORD_LISTS,
        description="Keyword lists looked for in the text read; each hit comes with its time.",
    )
