"""The watermarks of any task, ready for ``ffmpeg.watermark``: images
fetched, SVGs rasterised, measured and bounded; texts written to files with
their font; end-relative times resolved against the output's length."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mediaflow_api.tasks import Watermark
from mediaflow_worker.errors import AssetError, ProcessingError
from mediaflow_worker.ffmpeg.common import image_input_args
from mediaflow_worker.ffmpeg.watermark import (
    WatermarkInput,
    resolve_times,
    svg_raster_args,
    watermark_width,
)
from mediaflow_worker.fonts import font_file
from mediaflow_worker.probe import image_size
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import TaskContext

log = logging.getLogger(__name__)

# A watermark is a logo, not a poster: this bounds what its decoder allocates.
MAX_WATERMARK_PIXELS = 4096 * 4096
# An SVG logo is a few kilobytes; this bounds what librsvg parses.
MAX_SVG_BYTES = 1024 * 1024


def is_svg(key: str) -> bool:
    """Whether a watermark image object is an SVG (by its key's extension)."""
    return key.lower().endswith(".svg")


def rasterise_svg(
    svg: Path, width: int | None, out: Path, *, where: str, label: str, deadline: float
) -> Path:
    """Render an SVG watermark to ``out`` (PNG); ``AssetError`` when it is
    too large or does not render."""
    size = svg.stat().st_size
    if size > MAX_SVG_BYTES:
        raise AssetError(f"{where} is {size} bytes; an SVG watermark may have {MAX_SVG_BYTES}")
    if width is not None and width * width > MAX_WATERMARK_PIXELS:
        raise AssetError(f"{where}: {width} pixels wide is more than a watermark may be")
    try:
        run_ffmpeg(
            svg_raster_args(svg, width, out), label=label, expected_seconds=None, deadline=deadline
        )
    except ProcessingError as exc:  # a file we checked is fine: the SVG is the cause
        raise AssetError(f"{where} does not render as an SVG image ({exc.message})") from exc
    if not out.exists() or out.stat().st_size == 0:
        raise AssetError(f"{where} does not render as an SVG image")
    return out


def prepare_watermarks(
    specs: Sequence[Watermark] | None,
    ctx: TaskContext,
    frame: tuple[int, int],
    duration: float | None,
) -> list[WatermarkInput]:
    """The watermarks of one output ``frame`` (width, height) whose timeline
    is ``duration`` seconds long: images fetched (SVGs rendered at their
    width on this frame) and measured, texts in files; image inputs numbered
    from 1 in order. Watermarks whose end-relative window is empty on this
    output are left out."""
    marks: list[WatermarkInput] = []
    for i, original in enumerate(specs or []):
        mark = resolve_times(original, duration)
        if mark is None:
            log.info("%s: watermark %d never shows on a %.3f s output", ctx.task_name, i, duration)
            continue
        if mark.image is not None:
            where = f"watermark s3://{mark.image.bucket}/{mark.image.key}"
            image = ctx.fetch_asset(mark.image.bucket, mark.image.key)
            if is_svg(mark.image.key):
                image = rasterise_svg(
                    image,
                    watermark_width(mark, frame[0]),
                    ctx.scratch / f"{ctx.task_name}-wm-{i}.png",
                    where=where,
                    label=f"{ctx.task_name} watermark {i}",
                    deadline=ctx.deadline,
                )
            try:
                img_w, img_h = image_size(image)
            except AssetError as exc:
                raise AssetError(f"{where} {exc.message}") from exc
            if img_w * img_h > MAX_WATERMARK_PIXELS:
                raise AssetError(
                    f"{where} is {img_w}x{img_h}; the limit is {MAX_WATERMARK_PIXELS} pixels"
                )
            index = sum(m.input_index is not None for m in marks) + 1
            marks.append(WatermarkInput(mark, index, (img_w, img_h), None, image))
        else:
            text_file = ctx.scratch / f"{ctx.task_name}-text-{i}.txt"
            text_file.write_text(mark.text or "", encoding="utf-8")
            font = font_file(mark.font, ctx.font)
            marks.append(WatermarkInput(mark, None, None, text_file, font_file=font))
    return marks


def renumbered(marks: Sequence[WatermarkInput]) -> list[WatermarkInput]:
    """``marks`` with image inputs numbered from 1 again (after some were
    left out, e.g. those not shown at a still's instant)."""
    out: list[WatermarkInput] = []
    for mark in marks:
        if mark.input_index is None:
            out.append(mark)
            continue
        index = sum(m.input_index is not None for m in out) + 1
        out.append(
            WatermarkInput(mark.spec, index, mark.image_size, None, mark.image_path, mark.font_file)
        )
    return out


def shifted(marks: Sequence[WatermarkInput], offset: float) -> list[WatermarkInput]:
    """``marks`` with their start/end moved ``offset`` seconds later: for a
    filter that sees the input's timeline while the times count from
    ``offset`` (end-relative times already resolved)."""
    out: list[WatermarkInput] = []
    for mark in marks:
        spec = mark.spec
        if spec.start is None and spec.end is None:
            out.append(mark)
            continue
        moved = spec.model_copy(
            update={
                "start": (spec.start or 0.0) + offset,
                "end": None if spec.end is None else spec.end + offset,
            }
        )
        out.append(
            WatermarkInput(
                moved,
                mark.input_index,
                mark.image_size,
                mark.text_file,
                mark.image_path,
                mark.font_file,
            )
        )
    return out


def image_inputs(marks: Sequence[WatermarkInput]) -> list[str]:
    """The ffmpeg input options of the watermark images, in input order."""
    args: list[str] = []
    for mark in marks:
        if mark.image_path is not None and mark.input_index is not None:
            args += image_input_args(mark.image_path)
    return args
