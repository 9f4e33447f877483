"""Pieces every ffmpeg command shares: the start of the command, restricted
inputs, output limits, metadata stripping, and size/time formatting (pure).

Everything here returns lists of strings that go straight to ``subprocess``
(never a shell). Sizes, positions and times are computed in Python from the
probe result, so the filter graphs contain plain numbers, not expressions fed
from user input."""

from __future__ import annotations

from pathlib import Path

from mediaflow_worker import safety

DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def even(value: float) -> int:
    """Round down to an even number >= 2 (yuv420p encoders need even sizes)."""
    n = int(value)
    return max(2, n - n % 2)


def fit_size(
    src_w: int,
    src_h: int,
    width: int | None,
    height: int | None,
    *,
    upscale: bool = False,
    adaptive_orientation: bool = True,
) -> tuple[int, int]:
    """The even output size for a source displayed at ``src_w`` x ``src_h``.

    Only width or only height: the other follows the aspect ratio. Both: the
    largest size that fits the box, aspect kept. ``adaptive_orientation`` swaps
    the request for portrait sources ("720p" means the short side is 720).
    Without ``upscale`` the result is never larger than the source.
    """
    if adaptive_orientation and src_h > src_w:
        width, height = height, width
    scale = 1.0
    if width and height:
        scale = min(width / src_w, height / src_h)
    elif width:
        scale = width / src_w
    elif height:
        scale = height / src_h
    if not upscale:
        scale = min(scale, 1.0)
    return _nearest_even(src_w * scale, src_w, upscale), _nearest_even(
        src_h * scale, src_h, upscale
    )


def _nearest_even(value: float, source: int, upscale: bool) -> int:
    """The even number nearest ``value`` (853.3 -> 854), but never above an
    odd source size unless upscaling is allowed (161 -> 160, not 162)."""
    n = max(2, 2 * round(value / 2))
    if not upscale and n > source:
        n -= 2
    return max(2, n)


def seconds(value: float) -> str:
    """A time for ffmpeg options, in seconds with millisecond precision."""
    return f"{max(value, 0.0):.3f}"


def quote_filter_value(value: str) -> str:
    """Quote a filter option value (paths) for a filtergraph string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "'\\''") + "'"


def base_args() -> list[str]:
    """Start of every ffmpeg command: quiet, no stdin, progress on stdout."""
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
    ]


def input_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    start: float | None = None,
    duration: float | None = None,
) -> list[str]:
    """A restricted input: local files only, demuxer forced from the probe."""
    args = [
        *safety.protocol_args(),
        "-f",
        demuxer,
        "-max_pixels",
        str(max_pixels),
    ]
    if start:
        args += ["-ss", seconds(start)]
    if duration:
        args += ["-t", seconds(duration)]
    return [*args, "-i", f"file:{path}"]


def image_input_args(path: Path) -> list[str]:
    """A watermark image input (PNG/JPEG/WebP only), looped for overlays."""
    return [
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(safety.ALLOWED_IMAGE_DEMUXERS),
        "-i",
        f"file:{path}",
    ]


def output_limit_args(max_bytes: int) -> list[str]:
    """Stop writing an output file just past ``max_bytes``.

    ffmpeg ends *successfully* at the ``-fs`` limit, leaving a truncated file;
    one byte more than the limit makes the total-size check that follows
    (``runner.check_output_size``) catch it instead of uploading it."""
    return ["-fs", str(max_bytes + 1)]


def strip_metadata_args() -> list[str]:
    """Drop source metadata (phone GPS, device names) from outputs."""
    return ["-map_metadata", "-1", "-map_chapters", "-1"]
