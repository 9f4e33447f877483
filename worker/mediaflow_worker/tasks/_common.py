"""Helpers shared by the task modules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mediaflow_worker.ffmpeg.ffprobe import describe_args
from mediaflow_worker.process import run_restricted

DESCRIBE_TIMEOUT_SECONDS = 60


def describe_media(path: Path) -> dict[str, Any]:
    """Duration, size and codecs of a file *we* wrote (for the manifest)."""
    try:
        # Like every ffprobe: checked against the input rules, memory-limited.
        done = run_restricted(describe_args(path), DESCRIBE_TIMEOUT_SECONDS)
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
