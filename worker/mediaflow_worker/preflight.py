"""Preflight: every input a Workflow's tasks name besides the upload itself,
checked before the first task starts (``job`` and ``run`` alike).

A transcode's watermark images, named subtitle sidecars and intro/outro
clips are fetched (from the bucket in a Job, from the assets directory
locally); images are probed with the image allow-list, sidecars checked for
size and UTF-8 (clips are vetted by the task, like an input); the font
of text watermarks must be a readable font file. The first problem
fails the run with exit 2 (``AssetNotFound`` / ``AssetUnusable``), naming
the task and the input, instead of after minutes of work on earlier tasks.
The images fetched here are the ones the tasks then use (fetched once).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import TaskSpec, Watermark
from mediaflow_worker.errors import AssetError, AssetNotFoundError, WorkerError
from mediaflow_worker.probe import image_size
from mediaflow_worker.tasks import AssetFetcher
from mediaflow_worker.tasks._common import asset_error_as
from mediaflow_worker.tasks.subtitles import check_sidecar_bytes
from mediaflow_worker.tasks.transcode import MAX_WATERMARK_PIXELS

log = logging.getLogger(__name__)

# The first bytes of a TrueType/OpenType font or collection.
_FONT_MAGIC = (b"\x00\x01\x00\x00", b"true", b"OTTO", b"ttcf", b"typ1")


@dataclass(frozen=True)
class ImageRef:
    """A watermark image one task needs."""

    task: str
    bucket: str
    key: str


def _watermarks(task: TaskSpec) -> list[Watermark]:
    """The watermarks a task draws (a transcode's, every streaming rendition's)."""
    marks = list(task.transcode.watermarks or []) if task.transcode else []
    if task.adaptive_streaming:
        marks += task.adaptive_streaming.watermarks or []
    return marks


def watermark_images(tasks: list[TaskSpec]) -> list[ImageRef]:
    """Every watermark image the tasks name, in task order."""
    refs = []
    for task in tasks:
        for mark in _watermarks(task):
            if mark.image is not None:
                refs.append(ImageRef(task.name, mark.image.bucket, mark.image.key))
    return refs


def subtitle_files(tasks: list[TaskSpec]) -> list[ImageRef]:
    """Every subtitle sidecar the tasks name explicitly, in task order (the
    ones found by the naming rule are optional: the task looks for them)."""
    refs = []
    for task in tasks:
        subtitles = task.transcode.subtitles if task.transcode else None
        if subtitles is not None and subtitles.file is not None:
            refs.append(ImageRef(task.name, subtitles.file.bucket, subtitles.file.key))
    return refs


def joined_clips(tasks: list[TaskSpec]) -> list[ImageRef]:
    """Every intro and outro clip the tasks name, in task order."""
    refs = []
    for task in tasks:
        spec = task.transcode
        for clip in (spec.intro, spec.outro) if spec else ():
            if clip is not None:
                refs.append(ImageRef(task.name, clip.bucket, clip.key))
    return refs


def text_watermark_tasks(tasks: list[TaskSpec]) -> list[str]:
    """The names of the tasks that draw text (and so need the font)."""
    return [task.name for task in tasks if any(m.text is not None for m in _watermarks(task))]


def check_image(path: Path, ref: ImageRef) -> tuple[int, int]:
    """Probe a fetched watermark image; ``AssetError`` unless it decodes as
    a PNG, JPEG or WebP within the pixel bound."""
    where = f"task {ref.task!r}: watermark image {ref.bucket}/{ref.key}"
    try:
        width, height = image_size(path)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"{where}: ffprobe did not finish reading it") from exc
    except WorkerError as exc:
        raise AssetError(f"{where} {exc.message}") from exc
    if width * height > MAX_WATERMARK_PIXELS:
        raise AssetError(f"{where} is {width}x{height}; the limit is {MAX_WATERMARK_PIXELS} pixels")
    return width, height


def check_font(font: str, task: str) -> None:
    """``AssetNotFoundError``/``AssetError`` unless ``font`` is a readable
    TrueType/OpenType file (ffmpeg would silently draw with another font)."""
    where = f"task {task!r}: the font for text watermarks {font} (MEDIAFLOW_FONT_FILE)"
    path = Path(font)
    if not path.is_file():
        raise AssetNotFoundError(f"{where} does not exist")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise AssetError(f"{where} cannot be read: {exc.strerror}") from exc
    if head not in _FONT_MAGIC:
        raise AssetError(f"{where} is not a TrueType or OpenType font")


def check(tasks: list[TaskSpec], fetch_asset: AssetFetcher, font: str) -> AssetFetcher:
    """Fetch and check every input the tasks need; return a fetcher that
    serves the checked copies. Raises ``AssetError`` (exit 2) on the first
    problem, naming the task and the input."""
    fetched: dict[tuple[str, str], Path] = {}
    for ref in watermark_images(tasks):
        if (ref.bucket, ref.key) in fetched:
            continue
        try:
            path = fetch_asset(ref.bucket, ref.key)
        except AssetError as exc:
            raise type(exc)(f"task {ref.task!r}: {exc.message}", reason=exc.reason) from exc
        width, height = check_image(path, ref)
        log.info("preflight: watermark image %s/%s: %dx%d", ref.bucket, ref.key, width, height)
        fetched[(ref.bucket, ref.key)] = path
    for ref in subtitle_files(tasks):
        if (ref.bucket, ref.key) in fetched:
            continue
        where = f"task {ref.task!r}: subtitles {ref.bucket}/{ref.key}"
        try:
            path = fetch_asset(ref.bucket, ref.key)
        except AssetError as exc:
            raise asset_error_as(exc, "subtitles", f"task {ref.task!r}: ") from exc
        check_sidecar_bytes(path, where)
        log.info("preflight: subtitles %s/%s: %d bytes", ref.bucket, ref.key, path.stat().st_size)
        fetched[(ref.bucket, ref.key)] = path
    for ref in joined_clips(tasks):
        # Fetched here (a missing clip fails before any work); vetted and
        # probed like an input by the task (``tasks.intro_outro``).
        if (ref.bucket, ref.key) not in fetched:
            try:
                fetched[(ref.bucket, ref.key)] = fetch_asset(ref.bucket, ref.key)
            except AssetError as exc:
                raise asset_error_as(exc, "intro/outro", f"task {ref.task!r}: ") from exc
    text_tasks = text_watermark_tasks(tasks)
    if text_tasks:
        check_font(font, text_tasks[0])

    def fetch_checked(bucket: str, key: str) -> Path:
        path = fetched.get((bucket, key))
        return path if path is not None else fetch_asset(bucket, key)

    return fetch_checked
