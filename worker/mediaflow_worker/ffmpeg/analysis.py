"""The ``analysis`` command: one decode running every requested detector
(pure)."""

from __future__ import annotations

from pathlib import Path

from mediaflow_worker.ffmpeg.common import base_args, input_args


def analysis_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    has_video: bool,
    has_audio: bool,
    scenes: float | None,
    black: float | None,
    silence: tuple[float, float] | None,
    loudness: bool,
) -> list[str] | None:
    """One decode running every requested detector; None when none applies.

    Detectors report through the log at info level; ``runner`` parses it.
    """
    chains: list[str] = []
    maps: list[str] = []
    if has_video and (scenes is not None or black is not None):
        # Detection works as well on a small frame and costs far less.
        filters = ["scale=320:-2"]
        if scenes is not None:
            filters.append(f"scdet=threshold={scenes:g}")
        if black is not None:
            filters.append(f"blackdetect=d={black:g}:pix_th=0.10")
        chains.append("[0:V:0]" + ",".join(filters) + "[vout]")
        maps += ["-map", "[vout]"]
    if has_audio and (silence is not None or loudness):
        filters = []
        if silence is not None:
            filters.append(f"silencedetect=n={silence[0]:g}dB:d={silence[1]:g}")
        if loudness:
            filters.append("ebur128=peak=true:framelog=verbose")
        chains.append("[0:a:0]" + ",".join(filters) + "[aout]")
        maps += ["-map", "[aout]"]
    if not chains:
        return None
    args = base_args()
    args[args.index("error")] = "info"
    return [
        *args,
        *input_args(path, demuxer, max_pixels),
        "-filter_complex",
        ";".join(chains),
        *maps,
        "-f",
        "null",
        "-",
    ]
