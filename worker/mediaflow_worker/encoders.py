"""Which encoders a task needs, and whether this ffmpeg build has them."""

from __future__ import annotations

import functools
import subprocess

from mediaflow_api.presets import resolve_ladder, resolve_transcode
from mediaflow_api.tasks import TaskSpec
from mediaflow_worker import ffmpeg_args as fa
from mediaflow_worker.errors import EncoderUnavailableError, SpecError


@functools.cache
def available_encoders() -> frozenset[str]:
    """Encoder names of the ffmpeg on PATH (``ffmpeg -encoders``)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    names = set()
    for line in done.stdout.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the legend
        # above them has "=" in the second column.
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def required_encoders(task: TaskSpec) -> set[str]:
    """The ffmpeg encoders ``task`` will use (pure, given the spec)."""
    if task.transcode is not None:
        try:
            spec = resolve_transcode(task.transcode)
        except ValueError as exc:
            raise SpecError(f"task {task.name!r}: {exc}") from exc
        assert spec.video is not None
        assert spec.audio is not None
        needed = set()
        if spec.video.codec in fa.VIDEO_ENCODERS:
            needed.add(fa.VIDEO_ENCODERS[spec.video.codec])
        if spec.audio.codec in fa.AUDIO_ENCODERS:
            needed.add(fa.AUDIO_ENCODERS[spec.audio.codec])
        return needed
    if task.snapshot is not None:
        return {fa.IMAGE_ENCODERS[task.snapshot.format]}
    if task.sprite is not None:
        return {fa.IMAGE_ENCODERS[task.sprite.format]}
    if task.animated_image is not None:
        return {"gif" if task.animated_image.format == "gif" else "libwebp_anim"}
    if task.adaptive_streaming is not None:
        codec, _ = resolve_ladder(task.adaptive_streaming)
        return {fa.VIDEO_ENCODERS[codec], "aac"}
    return set()


def check_encoders(tasks: list[TaskSpec], available: frozenset[str] | None = None) -> None:
    """``EncoderUnavailableError`` naming the task and encoder that is missing."""
    have = available if available is not None else available_encoders()
    for task in tasks:
        missing = sorted(required_encoders(task) - have)
        if missing:
            raise EncoderUnavailableError(
                f"task {task.name!r} needs encoder {', '.join(missing)}, "
                "which this ffmpeg build does not have"
            )
