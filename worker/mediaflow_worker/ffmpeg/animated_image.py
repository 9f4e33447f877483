"""The ``animatedImage`` command: a GIF with its own palette, or animated WebP
(pure)."""

from __future__ import annotations

from pathlib import Path

from mediaflow_worker.ffmpeg.codecs import ANIMATION_ENCODERS
from mediaflow_worker.ffmpeg.common import base_args, input_args, seconds, strip_metadata_args


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
    seek_by_decoding: bool = False,
) -> list[str]:
    """A GIF with a palette made from the clip itself, or an animated WebP.

    ``seek_by_decoding``: decode from the start and drop what comes before
    ``start`` (output options) instead of seeking the input — slower, but
    the only way into a stream whose demuxer seeks to no keyframe (an
    MPEG-TS with one IDR frame yields no picture at all after an input seek).
    """
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
    if seek_by_decoding:
        source = input_args(path, demuxer, max_pixels)
        window = ["-ss", seconds(start), "-t", seconds(duration)]
    else:
        source = input_args(path, demuxer, max_pixels, start=start, duration=duration)
        window = []
    return [
        *base_args(),
        *source,
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
