"""Helpers shared by the task modules."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mediaflow_api.tasks import Watermark
from mediaflow_worker.errors import AssetError
from mediaflow_worker.ffmpeg.ffprobe import describe_args
from mediaflow_worker.ffmpeg.watermark import WatermarkInput
from mediaflow_worker.probe import image_size
from mediaflow_worker.process import run_restricted
from mediaflow_worker.tasks import TaskContext

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


# A watermark is a logo, not a poster: this bounds what its decoder allocates.
MAX_WATERMARK_PIXELS = 4096 * 4096


def watermark_inputs(marks: Sequence[Watermark], ctx: TaskContext) -> list[WatermarkInput]:
    """Fetch and measure the watermark images, write the texts to files (in
    scratch, never inlined in a filtergraph): the watermarks as
    ``ffmpeg.watermark`` places them, images numbered as inputs 1, 2, ...
    after the source. ``AssetError`` (exit 2) for an unusable image."""
    inputs: list[WatermarkInput] = []
    images = 0
    for i, mark in enumerate(marks):
        if mark.image is not None:
            where = f"watermark s3://{mark.image.bucket}/{mark.image.key}"
            image = ctx.fetch_asset(mark.image.bucket, mark.image.key)
            try:
                img_w, img_h = image_size(image)
            except AssetError as exc:
                raise AssetError(f"{where} {exc.message}") from exc
            if img_w * img_h > MAX_WATERMARK_PIXELS:
                raise AssetError(
                    f"{where} is {img_w}x{img_h}; the limit is {MAX_WATERMARK_PIXELS} pixels"
                )
            images += 1
            inputs.append(WatermarkInput(mark, images, (img_w, img_h), None, image))
        else:
            text_file = ctx.scratch / f"{ctx.task_name}-text-{i}.txt"
            text_file.write_text(mark.text or "", encoding="utf-8")
            inputs.append(WatermarkInput(mark, None, None, text_file))
    return inputs
