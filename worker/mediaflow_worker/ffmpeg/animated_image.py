"""The ``animatedImage`` command: a GIF with its own palette, or animated WebP
(pure)."""

from __future__ import annotations

from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import ANIMATION_ENCODERS
from mediaflow_worker.ffmpeg.common import base_args, input_args, strip_metadata_args


def animated_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    start: float,
    duration: float,
    fps: float,
    size: tuple[int, int],
    fmt: str,
    loop: int,
    out: Path,
) -> list[str]:
    """A GIF with a palette made from the clip itself, or an animated WebP."""
    w, h = size
    scale = f"fps={fps:g},scale={w}:{h}:flags=lanczos,setsar=1"
    if fmt == "gif":
        graph = (
            f"[0:V:0]{scale},split[a][b];[a]palettegen=stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[out]"
        )
        codec = ["-c:v", ANIMATION_ENCODERS["gif"], "-f", "gif"]
    else:
        graph = f"[0:V:0]{scale}[out]"
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
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=duration),
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-fps_mode",
        "passthrough",
        *codec,
        "-loop",
        str(loop),
        *strip_metadata_args(),
        str(out),
    ]
