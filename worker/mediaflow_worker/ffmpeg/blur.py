"""Privacy regions of a transcode (pure): blurred or pixelated rectangles,
placed on the output frame with numbers computed here.

Each region is cut out of the frame (``crop``), hidden (``gblur``, or
``scale`` down and back up without interpolation for a mosaic) and laid
back over the same place (``overlay``), only between its start and end."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mediaflow_api.tasks import PrivacyRegion, parse_length
from mediaflow_worker.ffmpeg.common import seconds
from mediaflow_worker.ffmpeg.graph import GraphStep

# ``enable`` needs an end: "until the end" is this many seconds.
FOREVER = 10**7


@dataclass(frozen=True)
class Box:
    """A region on the output frame: even position and size (4:2:0 planes)."""

    x: int
    y: int
    w: int
    h: int


def _down_even(value: float) -> int:
    n = math.floor(value)
    return n - n % 2


def _up_even(value: float) -> int:
    n = math.ceil(value)
    return n + n % 2


def region_box(
    region: PrivacyRegion,
    source: tuple[int, int],
    frame: tuple[int, int],
    content: tuple[int, int] | None = None,
) -> Box | None:
    """Where ``region`` (in the source's displayed frame ``source``) lies on
    the output ``frame``, clipped to it; None when nothing of it is inside.
    ``content``: the size the picture is scaled to, centred on the frame
    (``ffmpeg.sizing``: smaller with pad/blur fills, larger with crop);
    default: the frame itself."""
    src_w, src_h = source
    out_w, out_h = frame
    content_w, content_h = content or frame
    # The same centring as ffmpeg.sizing.size_chains (negative: cropped).
    off_x, off_y = (out_w - content_w) // 2, (out_h - content_h) // 2

    def px(length: str, reference: int) -> float:
        number, percent = parse_length(length)
        return reference * number / 100 if percent else number

    sx, sy = content_w / src_w, content_h / src_h
    left = off_x + px(region.left, src_w) * sx
    top = off_y + px(region.top, src_h) * sy
    right = min(left + px(region.width, src_w) * sx, out_w)
    bottom = min(top + px(region.height, src_h) * sy, out_h)
    left, top = max(left, 0.0), max(top, 0.0)
    # Near edges down, far edges up to even: the box covers the whole region.
    x, y = _down_even(left), _down_even(top)
    w = min(_up_even(right), _down_even(out_w)) - x
    h = min(_up_even(bottom), _down_even(out_h)) - y
    if w < 2 or h < 2:
        return None
    return Box(x, y, w, h)


def hide_filter(region: PrivacyRegion, box: Box) -> str:
    """The filters that make the cropped ``box`` unrecognisable."""
    if region.style == "mosaic":
        block = region.strength or max(4, round(min(box.w, box.h) / 8))
        cols, rows = max(1, round(box.w / block)), max(1, round(box.h / block))
        # Average each block (area), then blow it up without smoothing.
        return f"scale={cols}:{rows}:flags=area,scale={box.w}:{box.h}:flags=neighbor"
    sigma = region.strength or max(4, round(min(box.w, box.h) / 6))
    return f"gblur=sigma={sigma}:steps=3"


def _enable(region: PrivacyRegion) -> str:
    if region.start is None and region.end is None:
        return ""
    end = region.end if region.end is not None else FOREVER
    return f":enable='between(t,{seconds(region.start or 0)},{seconds(end)})'"


def privacy_filters(
    regions: Sequence[PrivacyRegion],
    source: tuple[int, int],
    frame: tuple[int, int],
    src_label: str,
    content: tuple[int, int] | None = None,
) -> tuple[list[str], str]:
    """Filter chains hiding ``regions`` on ``src_label``; returns (chains, label).
    Regions wholly outside the frame are left out (``content``: see
    ``region_box``)."""
    chains: list[str] = []
    label = src_label
    for i, region in enumerate(regions):
        box = region_box(region, source, frame, content)
        if box is None:
            continue
        chains.append(f"[{label}]split=2[pv{i}base][pv{i}src]")
        chains.append(
            f"[pv{i}src]crop={box.w}:{box.h}:{box.x}:{box.y},{hide_filter(region, box)}[pv{i}]"
        )
        chains.append(f"[pv{i}base][pv{i}]overlay=x={box.x}:y={box.y}{_enable(region)}[pv{i}out]")
        label = f"pv{i}out"
    return chains, label


def privacy_step(
    regions: Sequence[PrivacyRegion],
    source: tuple[int, int],
    frame: tuple[int, int],
    content: tuple[int, int] | None = None,
) -> GraphStep:
    """The regions as a step of the transcode's video graph (``content``: see
    ``region_box``)."""

    def step(label: str) -> tuple[list[str], str]:
        return privacy_filters(regions, source, frame, label, content)

    return step
