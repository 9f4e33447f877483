"""Every ffprobe command the worker runs: probing the input, its last video
packet, a watermark image's size, and describing an output (pure).

Each opens its input like an ffmpeg run does: ``file:`` only, with the
protocol whitelist and a demuxer allow-list or a forced demuxer.
"""

from __future__ import annotations

from pathlib import Path

from mediaflow_worker import safety


def probe_args(path: Path, max_pixels: int) -> list[str]:
    """The ffprobe command for ``path`` (pure)."""
    return [
        "ffprobe",
        "-hide_banner",
        "-v",
        "error",
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(),
        "-max_pixels",
        str(max_pixels),
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        "-i",
        f"file:{path}",
    ]


def last_frame_args(path: Path, demuxer: str, from_seconds: float) -> list[str]:
    """ffprobe listing the video packets from ``from_seconds`` on (pure)."""
    return [
        "ffprobe",
        "-v",
        "error",
        *safety.protocol_args(),
        "-f",
        demuxer,
        "-select_streams",
        "V:0",
        "-read_intervals",
        f"{max(0.0, from_seconds):.3f}%",
        "-show_entries",
        "packet=pts_time,duration_time",
        "-of",
        "csv=p=0",
        "-i",
        f"file:{path}",
    ]


def image_size_args(path: Path) -> list[str]:
    """The ffprobe command for a watermark image (pure)."""
    return [
        "ffprobe",
        "-v",
        "error",
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(safety.ALLOWED_IMAGE_DEMUXERS),
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "json",
        "-i",
        f"file:{path}",
    ]


def describe_args(path: Path) -> list[str]:
    """The ffprobe command describing one of our outputs (pure)."""
    return [
        "ffprobe",
        "-v",
        "error",
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args((*safety.ALLOWED_DEMUXERS, *safety.ALLOWED_IMAGE_DEMUXERS)),
        "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height",
        "-of",
        "json",
        "-i",
        f"file:{path}",
    ]
