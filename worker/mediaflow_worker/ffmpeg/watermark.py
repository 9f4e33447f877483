"""Watermark overlays: image and text filter chains (pure), and when each
watermark shows (``start``/``end``, or counted back from the end)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import Watermark, parse_length
from mediaflow_worker import safety
from mediaflow_worker.ffmpeg.common import base_args, quote_filter_value, seconds


@dataclass(frozen=True)
class WatermarkInput:
    """A watermark as placed on a known output frame size."""

    spec: Watermark
    input_index: int | None  # ffmpeg input index of the image, None for text
    image_size: tuple[int, int] | None  # the image's own size
    text_file: Path | None  # file holding the text (never inlined in the graph)
    image_path: Path | None = None  # the image file, opened as input ``input_index``
    font_file: str | None = None  # the text's font (None: ``watermark_filters``' font)


def _px(length: str, reference: int) -> int:
    number, percent = parse_length(length)
    return round(reference * number / 100) if percent else round(number)


def _anchor(position: str, frame: int, item: str | int, offset: int, axis: str) -> str:
    """Coordinate of the overlay's top/left edge along one axis."""
    start_words = ("left",) if axis == "x" else ("top",)
    end_words = ("right",) if axis == "x" else ("bottom",)
    parts = position.split("-")
    if any(p in start_words for p in parts):
        return str(offset)
    if any(p in end_words for p in parts):
        return f"{frame}-{item}-{offset}"
    return f"({frame}-{item})/2"


# "Until the end" of a watermark without an end (seconds; a day is the most
# any time field takes).
_FOREVER = 10**7


def shown_between(spec: Watermark, duration: float | None) -> tuple[float, float] | None:
    """(start, end) in seconds of the output timeline while ``spec`` shows;
    None when always. ``startFromEnd``/``endFromEnd`` count back from
    ``duration`` (the output's length; unknown: from the start, clamped at 0).
    A window that ends up empty (a clip shorter than the counted-back time)
    is (0, 0): never shown."""
    if (
        spec.start is None
        and spec.end is None
        and spec.start_from_end is None
        and spec.end_from_end is None
    ):
        return None
    total = duration or 0.0
    start = spec.start or 0.0
    if spec.start_from_end is not None:
        start = max(0.0, total - spec.start_from_end)
    end: float = spec.end if spec.end is not None else _FOREVER
    if spec.end_from_end is not None:
        end = max(0.0, total - spec.end_from_end)
    if end <= start:
        return (0.0, 0.0)
    return (start, end)


def shown_at(spec: Watermark, t: float, duration: float | None) -> bool:
    """Whether ``spec`` shows at ``t`` seconds (a still taken at ``t``)."""
    window = shown_between(spec, duration)
    return window is None or window[0] <= t <= window[1]


def _enable(spec: Watermark, duration: float | None = None) -> str:
    window = shown_between(spec, duration)
    if window is None:
        return ""
    start, end = window
    return f":enable='between(t,{seconds(start)},{seconds(end)})'"


def watermark_filters(
    marks: Sequence[WatermarkInput],
    frame: tuple[int, int],
    src_label: str,
    font: str,
    *,
    duration: float | None = None,
) -> tuple[list[str], str]:
    """Filter chains drawing ``marks`` on ``src_label``; returns (chains, label).
    ``duration``: the output's length, which end-relative times count back
    from; ``font``: the font of text marks without their own."""
    out_w, out_h = frame
    chains: list[str] = []
    label = src_label
    for i, mark in enumerate(marks):
        spec = mark.spec
        pos = spec.position
        new_label = f"wm{i}out"
        if mark.input_index is not None and mark.image_size is not None:
            img_w, img_h = mark.image_size
            w = watermark_width(spec, out_w) or img_w
            h = max(2, round(img_h * w / img_w))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, w, ox, "x")
            y = _anchor(pos, out_h, h, oy, "y")
            chains.append(
                f"[{mark.input_index}:v]scale={w}:{h},format=rgba,"
                f"colorchannelmixer=aa={spec.opacity:.3f}[wm{i}]"
            )
            enable = _enable(spec, duration)
            chains.append(
                f"[{label}][wm{i}]overlay=x={x}:y={y}:eof_action=repeat{enable}[{new_label}]"
            )
        elif mark.text_file is not None:
            size = max(4, _px(spec.font_size, out_h))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, "tw", ox, "x").replace(str(out_w), "w", 1)
            y = _anchor(pos, out_h, "th", oy, "y").replace(str(out_h), "h", 1)
            color = spec.font_color.replace("#", "0x")
            chains.append(
                f"[{label}]drawtext=fontfile={quote_filter_value(mark.font_file or font)}"
                f":textfile={quote_filter_value(str(mark.text_file))}:expansion=none"
                f":fontsize={size}:fontcolor={color}@{spec.opacity:.3f}"
                f":x={x}:y={y}{_enable(spec, duration)}[{new_label}]"
            )
        label = new_label
    return chains, label


def svg_raster_args(path: Path, width: int | None, out: Path) -> list[str]:
    """Rasterise an SVG watermark to a PNG (alpha kept), ``width`` pixels
    wide (aspect kept) or at its own size: the overlay then takes the PNG
    like any other image. Local file only, the SVG demuxer forced."""
    size = ["-width", str(width), "-keep_ar", "1"] if width else []
    return [
        *base_args(),
        *safety.protocol_args(),
        "-f",
        safety.SVG_DEMUXER,
        *size,
        "-i",
        f"file:{path}",
        "-frames:v",
        "1",
        "-c:v",
        "png",
        "-pix_fmt",
        "rgba",
        "-f",
        "image2",
        "-update",
        "1",
        str(out),
    ]


def watermark_width(spec: Watermark, frame_width: int) -> int | None:
    """The pixel width ``spec.width`` asks for on a frame ``frame_width``
    wide (None: the image's own width)."""
    return max(2, _px(spec.width, frame_width)) if spec.width else None


def resolve_times(spec: Watermark, duration: float | None) -> Watermark | None:
    """``spec`` with end-relative times turned into ``start``/``end`` for an
    output ``duration`` seconds long; None when it would never show."""
    if spec.start_from_end is None and spec.end_from_end is None:
        return spec
    window = shown_between(spec, duration)
    if window is not None and window[1] <= window[0]:
        return None
    start, end = window if window is not None else (None, None)
    return spec.model_copy(
        update={
            "start": start,
            "end": None if end is None or end >= _FOREVER else end,
            "start_from_end": None,
            "end_from_end": None,
        }
    )
