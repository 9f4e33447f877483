"""Output sizing of every task that takes a size: the box, how the picture
fills it (``fillType``), and the filter chain that does it (pure).

``plan_size`` turns the source's display size and the requested box into a
``SizePlan``; ``size_chains`` writes its filter graph. Every number in the
graph is computed here, so the graph holds no expression fed from user input
(the pad colour is one of the pattern-checked forms)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mediaflow_worker.ffmpeg.common import even, fit_size
from mediaflow_worker.ffmpeg.watermark import WatermarkInput, watermark_filters

# The blurred background is drawn at 1/BLUR_DOWNSCALE of the frame, blurred,
# and scaled back up: the same look as a large blur on the full frame at a
# fraction of the cost (it runs on every frame of a transcode).
BLUR_DOWNSCALE = 8
BLUR_SIGMA = 2.5


@dataclass(frozen=True)
class SizePlan:
    """What ``size_chains`` draws: the output ``frame`` and the ``content``
    size the picture is scaled to before it is padded, cropped or laid over
    its blurred copy."""

    frame: tuple[int, int]
    content: tuple[int, int]
    fill: str = "fit"
    pad_color: str = "black"


def _cover(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The even size, aspect kept, that covers ``box_w`` x ``box_h``."""
    scale = max(box_w / src_w, box_h / src_h)
    return (
        max(box_w, 2 * math.ceil(src_w * scale / 2)),
        max(box_h, 2 * math.ceil(src_h * scale / 2)),
    )


def plan_size(
    src_w: int,
    src_h: int,
    width: int | None,
    height: int | None,
    *,
    fill: str | None = None,
    pad_color: str | None = None,
    upscale: bool = False,
    adaptive_orientation: bool = False,
) -> SizePlan:
    """The output of a source displayed at ``src_w`` x ``src_h`` in the box.

    ``fit`` (or a box with one side only) is ``fit_size``. The exact fill
    types give exactly the box (rounded down to even sizes; turned for
    portrait sources with ``adaptive_orientation``). ``pad`` and ``blur``
    fit the picture inside and, without ``upscale``, never enlarge it (the
    bars grow instead); ``stretch`` and ``crop`` scale it as the box needs."""
    if fill in (None, "fit") or not (width and height):
        size = fit_size(
            src_w,
            src_h,
            width,
            height,
            upscale=upscale,
            adaptive_orientation=adaptive_orientation,
        )
        return SizePlan(size, size)
    if adaptive_orientation and src_h > src_w:
        width, height = height, width
    box = (even(width), even(height))
    if fill == "stretch":
        content = box
    elif fill == "crop":
        content = _cover(src_w, src_h, *box)
    else:  # pad, blur
        content = fit_size(src_w, src_h, *box, upscale=upscale, adaptive_orientation=False)
    return SizePlan(box, content, fill, pad_color or "black")


def ffmpeg_color(color: str) -> str:
    """``black``/``white``/``#rrggbb`` as ffmpeg writes colours."""
    return color.replace("#", "0x")


def size_chains(plan: SizePlan, src: str, out: str) -> list[str]:
    """Filter chains from label ``src`` to label ``out`` (names without
    brackets; ``src`` may be an input stream such as ``0:V:0``) drawing the
    picture as ``plan`` says; square pixels out."""
    frame_w, frame_h = plan.frame
    content_w, content_h = plan.content
    x, y = (frame_w - content_w) // 2, (frame_h - content_h) // 2
    scale = f"scale={content_w}:{content_h},setsar=1"
    if plan.fill == "pad":
        color = ffmpeg_color(plan.pad_color)
        return [f"[{src}]{scale},pad={frame_w}:{frame_h}:{x}:{y}:color={color}[{out}]"]
    if plan.fill == "crop":
        return [f"[{src}]{scale},crop={frame_w}:{frame_h}:{-x}:{-y}[{out}]"]
    if plan.fill == "blur":
        small_w = max(2, even(frame_w / BLUR_DOWNSCALE))
        small_h = max(2, even(frame_h / BLUR_DOWNSCALE))
        cover_w, cover_h = _cover(content_w, content_h, small_w, small_h)
        crop_x, crop_y = (cover_w - small_w) // 2, (cover_h - small_h) // 2
        return [
            f"[{src}]split[{out}_bgin][{out}_fgin]",
            f"[{out}_bgin]scale={cover_w}:{cover_h},crop={small_w}:{small_h}:{crop_x}:{crop_y},"
            f"gblur=sigma={BLUR_SIGMA:g},scale={frame_w}:{frame_h},setsar=1[{out}_bg]",
            f"[{out}_fgin]{scale}[{out}_fg]",
            f"[{out}_bg][{out}_fg]overlay={x}:{y}[{out}]",
        ]
    return [f"[{src}]{scale}[{out}]"]  # fit, stretch


def picture_chains(
    plan: SizePlan,
    marks: Sequence[WatermarkInput],
    font: str,
    src: str,
    out: str,
    *,
    duration: float | None = None,
) -> list[str]:
    """Size the picture from label ``src`` as ``plan`` says, then draw the
    watermarks on the sized frame; the result is label ``out``."""
    chains = size_chains(plan, src, f"{out}_sized")
    wm_chains, label = watermark_filters(marks, plan.frame, f"{out}_sized", font, duration=duration)
    chains += wm_chains
    chains.append(f"[{label}]null[{out}]")
    return chains
