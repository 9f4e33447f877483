"""The input's audio as 16 kHz mono 16-bit samples (what the speech and
voice-activity models take), streamed from one ffmpeg decode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mediaflow_worker.ffmpeg.common import input_args
from mediaflow_worker.process import stream_ffmpeg

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mediaflow_worker.tasks import TaskContext

SAMPLE_RATE = 16_000


def pcm_args(path: Path, demuxer: str, max_pixels: int, *, rate: int = SAMPLE_RATE) -> list[str]:
    """The ffmpeg command writing the first audio track as mono s16le at
    ``rate`` to ``pipe:1`` (pure)."""
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        *input_args(path, demuxer, max_pixels),
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-f",
        "s16le",
        "pipe:1",
    ]


def pcm_blocks(
    ctx: TaskContext, *, block_seconds: float = 1.0, rate: int = SAMPLE_RATE
) -> Iterator[npt.NDArray[np.int16]]:
    """The audio in blocks of ``block_seconds`` samples; a last block shorter
    than that is dropped (``decode_pcm`` keeps all but 10 ms).
    ``TaskNotApplicable`` without audio."""
    import numpy as np

    from mediaflow_worker.tasks import TaskNotApplicable

    if ctx.probe.audio is None:
        raise TaskNotApplicable("the input has no audio stream")
    samples = max(1, int(block_seconds * rate))
    args = pcm_args(ctx.input_path, ctx.probe.demuxer, ctx.limits.max_pixels, rate=rate)
    for chunk in stream_ffmpeg(
        args, label=f"{ctx.task_name}: audio", deadline=ctx.deadline, chunk_bytes=samples * 2
    ):
        yield np.frombuffer(chunk, dtype="<i2").astype(np.int16)


def decode_pcm(ctx: TaskContext, *, rate: int = SAMPLE_RATE) -> npt.NDArray[np.int16]:
    """Every sample of the first audio track (mono, ``rate``): 10 ms blocks
    joined, so at most the last 10 ms are lost. ``TaskNotApplicable``
    without audio."""
    import numpy as np

    blocks = list(pcm_blocks(ctx, block_seconds=0.01, rate=rate))
    if not blocks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(blocks)
