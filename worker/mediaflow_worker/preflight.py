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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import StreamSubtitles, Subtitles, TaskSpec, Watermark
from mediaflow_worker.errors import AssetError, AssetNotFoundError, WorkerError
from mediaflow_worker.fonts import font_file
from mediaflow_worker.probe import image_size
from mediaflow_worker.tasks import AssetFetcher
from mediaflow_worker.tasks._common import asset_error_as
from mediaflow_worker.tasks._watermarks import MAX_WATERMARK_PIXELS, is_svg, rasterise_svg
from mediaflow_worker.tasks.subtitles import check_sidecar_bytes
from mediaflow_worker.understanding.moderation import (
    classifier_models,
    dir_model_file,
    fetch_bucket_model,
    model_where,
)

log = logging.getLogger(__name__)

# The first bytes of a TrueType/OpenType font or collection.
_FONT_MAGIC = (b"\x00\x01\x00\x00", b"true", b"OTTO", b"ttcf", b"typ1")


@dataclass(frozen=True)
class ImageRef:
    """A watermark image one task needs."""

    task: str
    bucket: str
    key: str


def task_watermarks(task: TaskSpec) -> list[Watermark]:
    """The watermarks of a task, whatever its type (those with a
    ``watermarks`` field: transcode, snapshot, sprite, animatedImage...)."""
    marks = getattr(task.type_spec, "watermarks", None)
    return list(marks or [])


def watermark_images(tasks: list[TaskSpec]) -> list[ImageRef]:
    """Every watermark image the tasks name, in task order."""
    refs = []
    for task in tasks:
        for mark in task_watermarks(task):
            if mark.image is not None:
                refs.append(ImageRef(task.name, mark.image.bucket, mark.image.key))
    return refs


def subtitle_files(tasks: list[TaskSpec]) -> list[ImageRef]:
    """Every subtitle sidecar the tasks name explicitly, in task order (the
    ones found by the naming rule are optional: the task looks for them)."""
    refs = []
    for task in tasks:
        subtitles: Subtitles | StreamSubtitles | None = None
        if task.transcode is not None:
            subtitles = task.transcode.subtitles
        elif task.adaptive_streaming is not None:
            subtitles = task.adaptive_streaming.subtitles
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


def text_watermark_fonts(tasks: list[TaskSpec], default: str) -> dict[str, str]:
    """Each font file text watermarks need, with the first task needing it."""
    fonts: dict[str, str] = {}
    for task in tasks:
        for mark in task_watermarks(task):
            if mark.text is not None:
                fonts.setdefault(font_file(mark.font, default), task.name)
    return fonts


def text_watermark_tasks(tasks: list[TaskSpec]) -> list[str]:
    """The names of the tasks that draw text (and so need a font)."""
    return [task.name for task in tasks if any(m.text is not None for m in task_watermarks(task))]


# The width a preflight renders an SVG watermark at: enough to prove it
# renders, cheap whatever size it declares.
SVG_CHECK_WIDTH = 64


def check_image(path: Path, ref: ImageRef) -> tuple[int, int]:
    """Probe a fetched watermark image; ``AssetError`` unless it decodes as
    a PNG, JPEG or WebP within the pixel bound, or renders as an SVG."""
    where = f"task {ref.task!r}: watermark image {ref.bucket}/{ref.key}"
    if is_svg(ref.key):
        # Its size on the output is only known per task; prove it renders
        # (into a scratch file: a local run's assets directory is the user's).
        with tempfile.TemporaryDirectory(prefix="mediaflow-svg-") as tmp:
            trial = rasterise_svg(
                path,
                SVG_CHECK_WIDTH,
                Path(tmp) / "trial.png",
                where=where,
                label="preflight",
                deadline=_no_deadline(),
            )
            return _probe_image(trial, where)
    return _probe_image(path, where)


def _probe_image(path: Path, where: str) -> tuple[int, int]:
    """Width and height of a PNG/JPEG/WebP within the pixel bound."""
    try:
        width, height = image_size(path)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"{where}: ffprobe did not finish reading it") from exc
    except WorkerError as exc:
        raise AssetError(f"{where} {exc.message}") from exc
    if width * height > MAX_WATERMARK_PIXELS:
        raise AssetError(f"{where} is {width}x{height}; the limit is {MAX_WATERMARK_PIXELS} pixels")
    return width, height


def _no_deadline() -> float:
    """A deadline for preflight commands: a minute from now."""
    return time.monotonic() + 60


def check_font(font: str, task: str, *, default: bool = True) -> None:
    """``AssetNotFoundError``/``AssetError`` unless ``font`` is a readable
    TrueType/OpenType file (ffmpeg would silently draw with another font).
    ``default``: the font is MEDIAFLOW_FONT_FILE (else a watermark's font)."""
    origin = "MEDIAFLOW_FONT_FILE" if default else "a watermark's font"
    where = f"task {task!r}: the font for text watermarks {font} ({origin})"
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
    for task_name, model in classifier_models(tasks):
        # A moderation classifier: fetched (a bucket object) or found (the
        # models directory) and bounded here; ONNX Runtime checks its shapes
        # against the spec in the task (the lean worker has no ONNX Runtime).
        if model.path is not None:
            dir_model_file(model.path, f"task {task_name!r}: {model_where(model)}")
        elif (
            model.bucket is not None
            and model.key is not None
            and (model.bucket, model.key) not in fetched
        ):
            fetched[(model.bucket, model.key)] = fetch_bucket_model(
                model.bucket, model.key, fetch_asset, task_name
            )
    for needed, task in text_watermark_fonts(tasks, font).items():
        check_font(needed, task, default=needed == font)

    def fetch_checked(bucket: str, key: str) -> Path:
        path = fetched.get((bucket, key))
        return path if path is not None else fetch_asset(bucket, key)

    return fetch_checked
