"""The ``animatedImage`` command: a GIF with its own palette, or animated WebP
(pure)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import ANIMATION_ENCODERS
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    image_input_args,
    input_args,
    seconds,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.sizing import SizePlan, picture_chains
from mediaflow_worker.ffmpeg.watermark import WatermarkInput


def animated_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    start: float,
    duration: float,
    fps: float,
    size: tuple[int, int] | SizePlan,
    fmt: str,
    loop: int,
    out: Path,
    seek_by_decoding: bool = False,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
) -> list[str]:
    """A GIF with a palette made from the clip itself, or an animated WebP.

    ``seek_by_decoding``: decode from the start and drop what comes before
    ``start`` (output options) instead of seeking the input — slower, but
    the only way into a stream whose demuxer seeks to no keyframe (an
    MPEG-TS with one IDR frame yields no picture at all after an input seek).
    ``size``: the frame, or how the picture fills it; ``marks``: watermarks,
    their images inputs 1, 2... (their times in the filter's timeline: from
    the animation's start after an input seek, from the input's start with
    ``seek_by_decoding``).
    """
    images: list[str] = []
    for mark in marks:
        if mark.image_path is not None:
            images += image_input_args(mark.image_path)
    if isinstance(size, SizePlan) and (size.fill != "fit" or marks):
        chains = [f"[0:V:0]fps={fps:g}[frames]"]
        chains += picture_chains(size, marks, font, "frames", "pic")
        head = ";".join(chains) + ";[pic]"
    else:
        w, h = size.frame if isinstance(size, SizePlan) else size
        head = f"[0:V:0]fps={fps:g},scale={w}:{h}:flags=lanczos,setsar=1,"
    if fmt == "gif":
        graph = (
            f"{head}split[a][b];[a]palettegen=stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[out]"
        )
        codec = ["-c:v", ANIMATION_ENCODERS["gif"], "-f", "gif"]
    else:
        graph = f"{head}null[out]"
        codec = [
            "-c:v",
            ANIMATION_ENCODERS["webp"],
            "-quality",
            "75",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "webp",
        ]
    if seek_by_decoding:
        source = input_args(path, demuxer, max_pixels)
        window = ["-ss", seconds(start), "-t", seconds(duration)]
    else:
        source = input_args(path, demuxer, max_pixels, start=start, duration=duration)
        window = []
    return [
        *base_args(),
        *source,
        *images,
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        *window,
        "-fps_mode",
        "passthrough",
        *codec,
        "-loop",
        str(loop),
        *strip_metadata_args(),
        str(out),
    ]
