"""Helpers shared by the task modules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mediaflow_worker.errors import AssetError
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


# How the asset fetchers (storage, local mode) word their errors: they were
# written for watermark images, their first user.
_FETCHER_WORDS = "watermark image"


def asset_error_as(exc: AssetError, kind: str, prefix: str = "") -> AssetError:
    """``exc`` from an asset fetcher, reworded for another kind of asset
    (``subtitles``, ``intro``...), with ``prefix`` (e.g. the task) first:
    same class and reason, so the same exit code."""
    message = exc.message
    if _FETCHER_WORDS in message:
        message = message.replace(_FETCHER_WORDS, kind, 1)
    else:
        message = f"{kind}: {message}"
    return type(exc)(prefix + message, reason=exc.reason)
