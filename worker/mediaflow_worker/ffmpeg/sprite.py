"""The ``sprite`` command: sheet geometry, one pass for every sheet, and the
WebVTT index (pure).

How many thumbnails ffmpeg's ``fps`` filter emits near the end of an input
depends on rounding and on how long the last frame lasts, so the plan's count
is an upper bound; the same pass therefore also writes one checksum line per
thumbnail (``framecrc``) and the index is built from that exact count."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import image_codec_args
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    even,
    image_input_args,
    input_args,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.sizing import SizePlan, picture_chains
from mediaflow_worker.ffmpeg.watermark import WatermarkInput


@dataclass(frozen=True)
class SpritePlan:
    """Geometry of a sprite job (pure result of ``plan_sprite``)."""

    interval: float
    thumbs: int
    columns: int
    rows: int
    sheets: int
    thumb_w: int
    thumb_h: int
    # The input is shorter than one interval: its first frame is the one
    # thumbnail (``fps`` would emit none when the end rounds down to 0).
    first_frame_only: bool = False


def plan_sprite(
    duration: float,
    display: tuple[int, int],
    *,
    interval: float | None,
    columns: int,
    rows: int,
    width: int,
    max_sheets: int,
) -> SpritePlan:
    """How many thumbnails at which interval, on how many sheets."""
    per_sheet = columns * rows
    if interval is None:
        interval = max(duration / per_sheet, 0.04)
    thumbs = max(1, min(math.ceil(duration / interval - 1e-6), per_sheet * max_sheets))
    src_w, src_h = display
    thumb_w = even(min(width, src_w)) if src_w >= 2 else 2
    thumb_h = even(round(src_h * thumb_w / src_w))
    return SpritePlan(
        interval=interval,
        thumbs=thumbs,
        columns=columns,
        rows=rows,
        sheets=math.ceil(thumbs / per_sheet),
        thumb_w=thumb_w,
        thumb_h=thumb_h,
        first_frame_only=duration <= interval,
    )


def sprite_graph(
    plan: SpritePlan,
    sizing: SizePlan | None = None,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> str:
    """``fps`` picks one frame per interval counted from 0 (ffmpeg shifts the
    input's clock to start there; without ``start_time`` the grid starts at
    the first frame's rounded timestamp and a clip shorter than about one
    interval yields nothing); each is sized (``sizing``: its fill type;
    default: scaled to the plan's thumbnail) and watermarked (on every
    thumbnail, times in the input's timeline); ``tile`` packs them (a last,
    partly filled sheet included), ``[count]`` carries one frame per
    thumbnail."""
    if plan.first_frame_only:
        pick = "select=eq(n\\,0)"
    else:
        pick = f"fps=1/{plan.interval:.6f}:start_time=0"
    if (sizing is None or sizing.fill == "fit") and not marks:
        return (
            f"[0:V:0]{pick},scale={plan.thumb_w}:{plan.thumb_h},setsar=1,split[thumbs][count];"
            f"[thumbs]tile={plan.columns}x{plan.rows}[sheets]"
        )
    thumb = sizing or SizePlan((plan.thumb_w, plan.thumb_h), (plan.thumb_w, plan.thumb_h))
    chains = [f"[0:V:0]{pick}[frames]"]
    chains += picture_chains(thumb, marks, font, "frames", "pic")
    chains.append("[pic]split[thumbs][count]")
    chains.append(f"[thumbs]tile={plan.columns}x{plan.rows}[sheets]")
    return ";".join(chains)


def sprite_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    plan: SpritePlan,
    fmt: str,
    pattern: Path,
    count_file: Path,
    *,
    sizing: SizePlan | None = None,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> list[str]:
    """All sheets in one pass (``sprite_graph``); ``count_file`` gets one
    line per thumbnail; ``marks``' images are inputs 1, 2..."""
    images: list[str] = []
    for mark in marks:
        if mark.image_path is not None:
            images += image_input_args(mark.image_path)
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        *images,
        "-filter_complex",
        sprite_graph(plan, sizing, marks, font),
        "-map",
        "[sheets]",
        "-frames:v",
        str(plan.sheets),
        "-fps_mode",
        "passthrough",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-start_number",
        "1",
        str(pattern),
        "-map",
        "[count]",
        "-frames:v",
        str(plan.thumbs),
        "-fps_mode",
        "passthrough",
        "-c:v",
        "rawvideo",
        "-f",
        "framecrc",
        str(count_file),
    ]


def count_thumbnails(framecrc: str) -> int:
    """How many frames a ``framecrc`` listing holds (comment lines excluded)."""
    return sum(1 for line in framecrc.splitlines() if line.strip() and not line.startswith("#"))


def vtt_timestamp(t: float) -> str:
    """``HH:MM:SS.mmm`` for WebVTT."""
    ms = round(t * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def sprite_vtt(plan: SpritePlan, duration: float, sheet_names: Sequence[str]) -> str:
    """The WebVTT index: one cue per thumbnail, pointing at its sheet region."""
    lines = ["WEBVTT", ""]
    per_sheet = plan.columns * plan.rows
    for i in range(plan.thumbs):
        start = i * plan.interval
        end = min((i + 1) * plan.interval, duration)
        if end <= start:
            break
        sheet, cell = divmod(i, per_sheet)
        row, col = divmod(cell, plan.columns)
        x, y = col * plan.thumb_w, row * plan.thumb_h
        lines += [
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}",
            f"{sheet_names[sheet]}#xywh={x},{y},{plan.thumb_w},{plan.thumb_h}",
            "",
        ]
    return "\n".join(lines)
