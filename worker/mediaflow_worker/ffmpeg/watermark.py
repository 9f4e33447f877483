"""Watermark overlays of a transcode: image and text filter chains (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import Watermark, parse_length
from mediaflow_worker.ffmpeg.common import quote_filter_value, seconds


@dataclass(frozen=True)
class WatermarkInput:
    """A watermark as placed on a known output frame size."""

    spec: Watermark
    input_index: int | None  # ffmpeg input index of the image, None for text
    image_size: tuple[int, int] | None  # the image's own size
    text_file: Path | None  # file holding the text (never inlined in the graph)
    image_path: Path | None = None  # the image file, opened as input ``input_index``


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


def _enable(spec: Watermark) -> str:
    if spec.start is None and spec.end is None:
        return ""
    start = spec.start or 0
    end = spec.end if spec.end is not None else 10**7
    return f":enable='between(t,{seconds(start)},{seconds(end)})'"


def watermark_filters(
    marks: Sequence[WatermarkInput], frame: tuple[int, int], src_label: str, font: str
) -> tuple[list[str], str]:
    """Filter chains drawing ``marks`` on ``src_label``; returns (chains, label)."""
    out_w, out_h = frame
    chains: list[str] = []
    label = src_label
    for i, mark in enumerate(marks):
        spec = mark.spec
        pos = spec.position
        new_label = f"wm{i}out"
        if mark.input_index is not None and mark.image_size is not None:
            img_w, img_h = mark.image_size
            w = max(2, _px(spec.width, out_w)) if spec.width else img_w
            h = max(2, round(img_h * w / img_w))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, w, ox, "x")
            y = _anchor(pos, out_h, h, oy, "y")
            chains.append(
                f"[{mark.input_index}:v]scale={w}:{h},format=rgba,"
                f"colorchannelmixer=aa={spec.opacity:.3f}[wm{i}]"
            )
            chains.append(
                f"[{label}][wm{i}]overlay=x={x}:y={y}:eof_action=repeat{_enable(spec)}[{new_label}]"
            )
        elif mark.text_file is not None:
            size = max(4, _px(spec.font_size, out_h))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, "tw", ox, "x").replace(str(out_w), "w", 1)
            y = _anchor(pos, out_h, "th", oy, "y").replace(str(out_h), "h", 1)
            color = spec.font_color.replace("#", "0x")
            chains.append(
                f"[{label}]drawtext=fontfile={quote_filter_value(font)}"
                f":textfile={quote_filter_value(str(mark.text_file))}:expansion=none"
                f":fontsize={size}:fontcolor={color}@{spec.opacity:.3f}"
                f":x={x}:y={y}{_enable(spec)}[{new_label}]"
            )
        label = new_label
    return chains, label
