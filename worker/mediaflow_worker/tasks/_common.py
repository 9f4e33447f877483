"""Helpers shared by the task modules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mediaflow_worker import safety


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


def describe_media(path: Path) -> dict[str, Any]:
    """Duration, size and codecs of a file *we* wrote (for the manifest)."""
    args = describe_args(path)
    safety.check_restricted(args)
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {}  # the manifest entry just has less detail
    try:
        raw = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {}
    info: dict[str, Any] = {}
    duration = (raw.get("format") or {}).get("duration")
    if duration not in (None, "N/A"):
        info["duration"] = round(float(duration), 3)
    for stream in raw.get("streams", []):
        if stream.get("codec_type") == "video" and "videoCodec" not in info:
            info["videoCodec"] = stream.get("codec_name")
            info["width"] = stream.get("width")
            info["height"] = stream.get("height")
        elif stream.get("codec_type") == "audio" and "audioCodec" not in info:
            info["audioCodec"] = stream.get("codec_name")
    return info
