"""Subtitles of a transcode: find the sidecar (named, or next to the input),
vet it and normalise it with ffmpeg (side effects; the commands are built by
``ffmpeg.subtitles``).

A sidecar is hostile input like the upload: it must be small, UTF-8 text,
and must come out of ffmpeg's own parser with at least one cue; anything
else fails the task with exit 2 (``AssetUnusable``) and says why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow_api.tasks import Subtitles, sidecar_names
from mediaflow_worker.errors import AssetError, ProcessingError, ProcessTimeoutError
from mediaflow_worker.ffmpeg.subtitles import (
    SubtitleTrack,
    count_cues,
    normalise_args,
    normalised_format,
    play_res_y,
    sidecar_format,
)
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks._common import asset_error_as

log = logging.getLogger(__name__)

# A film's subtitles are ~100 KiB; this bounds what ffmpeg and libass parse.
MAX_SUBTITLE_BYTES = 2 * 1024 * 1024


@dataclass
class SubtitlePlan:
    """The sidecar a transcode uses (``track`` None: no subtitles) and what
    the manifest says about it."""

    track: SubtitleTrack | None
    info: dict[str, Any] = field(default_factory=dict)


def check_sidecar_bytes(path: Path, where: str) -> None:
    """``AssetError`` unless ``path`` is a non-empty UTF-8 text file within
    ``MAX_SUBTITLE_BYTES`` (what the preflight and the task both check)."""
    size = path.stat().st_size
    if size > MAX_SUBTITLE_BYTES:
        raise AssetError(f"{where} is {size} bytes; the limit is {MAX_SUBTITLE_BYTES}")
    data = path.read_bytes()
    if not data.strip():
        raise AssetError(f"{where} is empty")
    if b"\x00" in data:
        raise AssetError(f"{where} is not a text file (NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssetError(f"{where} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def find_sidecar(spec: Subtitles, ctx: TaskContext) -> tuple[Path, str, str] | None:
    """(local path, sidecar name, where) of the sidecar, or None when the
    naming rule finds none. A named object that is missing fails (exit 2)."""
    if spec.file is not None:
        where = f"subtitles s3://{spec.file.bucket}/{spec.file.key}"
        try:
            path = ctx.fetch_asset(spec.file.bucket, spec.file.key)
        except AssetError as exc:
            raise asset_error_as(exc, "subtitles") from exc
        return path, spec.file.key, where
    for name in sidecar_names(ctx.input_name, spec.language):
        try:
            sibling = ctx.fetch_sibling(name)
        except AssetError as exc:  # there, but unusable (too large for a download)
            raise asset_error_as(exc, "subtitles") from exc
        if sibling is not None:
            return sibling, name, f"subtitles {name} (next to the input)"
    return None


def prepare_subtitles(
    spec: Subtitles | None, ctx: TaskContext, start: float = 0.0
) -> SubtitlePlan | None:
    """Find, vet and normalise the transcode's sidecar; None without
    ``subtitles``. ``start``: the trim start (cues move to output time)."""
    if spec is None:
        return None
    found = find_sidecar(spec, ctx)
    if found is None:
        tried = sidecar_names(ctx.input_name, spec.language)
        log.info("%s: no subtitle sidecar next to the input (tried %s)", ctx.task_name, tried)
        return SubtitlePlan(
            None, {"mode": spec.mode, "found": False, "tried": tried, "burnedIn": False}
        )
    path, name, where = found
    check_sidecar_bytes(path, where)
    source_fmt = sidecar_format(name)
    fmt = normalised_format(source_fmt, spec.mode == "burnIn")
    out = ctx.scratch / f"{ctx.task_name}-subtitles.{fmt}"
    try:
        run_ffmpeg(
            normalise_args(path, source_fmt, out, fmt, start),
            label=f"{ctx.task_name} subtitles",
            expected_seconds=None,
            deadline=ctx.deadline,
        )
    except ProcessTimeoutError:
        raise
    except ProcessingError as exc:
        raise AssetError(f"{where}: ffmpeg cannot read it as {source_fmt}: {exc.message}") from exc
    text = out.read_text(encoding="utf-8", errors="replace") if out.is_file() else ""
    cues = count_cues(text, fmt)
    if cues == 0:
        raise AssetError(
            f"{where} holds no cue ffmpeg can read as {source_fmt}"
            + (f" after trim.start {start:g} s" if start else "")
        )
    track = SubtitleTrack(out, fmt, source_fmt, cues, play_res_y(text) if fmt == "ass" else 0)
    info = {
        "mode": spec.mode,
        "found": True,
        "source": name,
        "format": source_fmt,
        "cues": cues,
        "language": spec.language or "und",
    }
    return SubtitlePlan(track, info)
