"""Audio of a transcode beyond one encoded stream: which tracks of a
multi-track source go into the output, and EBU R128 loudness normalisation
in two passes (the measuring command, its report, the correcting filter).
Pure functions; ``tasks/transcode.py`` runs the commands."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import AudioSettings
from mediaflow_api.tasks.transcode import Loudness
from mediaflow_worker.ffmpeg.codecs import SINGLE_AUDIO_CONTAINERS
from mediaflow_worker.ffmpeg.common import base_args, input_args
from mediaflow_worker.probe import AudioTrack

# Below this a track is silence (or nearly): loudnorm would add up to 99 dB
# of gain to noise, so such a track is left as it is.
SILENT_LUFS = -70.0


def select_tracks(
    tracks: Sequence[AudioTrack], settings: AudioSettings, container: str
) -> list[AudioTrack]:
    """The source tracks the output keeps: the first (default), all, or
    those tagged with ``languages`` in that order (the first track when none
    matches, so the output is not silent). Empty when there is no audio."""
    if not tracks:
        return []
    if settings.languages is not None:
        chosen: list[AudioTrack] = []
        for language in settings.languages:
            chosen += [t for t in tracks if t.language == language and t not in chosen]
        selected = chosen or [tracks[0]]
    elif settings.tracks == "all":
        selected = list(tracks)
    else:
        selected = [tracks[0]]
    if container in SINGLE_AUDIO_CONTAINERS:
        selected = selected[:1]
    return selected


@dataclass(frozen=True)
class LoudnessMeasurement:
    """What loudnorm's first pass measured on one track."""

    integrated: float  # input_i, LUFS
    true_peak: float  # input_tp, dBTP
    loudness_range: float  # input_lra, LU
    threshold: float  # input_thresh, LUFS
    offset: float  # target_offset, LU


def _loudnorm_targets(loudness: Loudness) -> str:
    return (
        f"loudnorm=I={loudness.integrated:.1f}:TP={loudness.true_peak:.1f}"
        f":LRA={loudness.loudness_range:.1f}"
    )


def loudness_measure_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    track: int,
    loudness: Loudness,
    *,
    start: float | None,
    duration: float | None,
) -> list[str]:
    """The first pass: loudnorm measures audio track ``track`` of the part
    the output keeps and prints its JSON report (at log level info)."""
    args = base_args()
    args[args.index("-v") + 1] = "info"  # the report is printed at info level
    args += input_args(path, demuxer, max_pixels, start=start, duration=duration)
    args += ["-map", f"0:a:{track}", "-vn", "-sn", "-dn"]
    args += ["-af", f"{_loudnorm_targets(loudness)}:print_format=json"]
    return [*args, "-f", "null", "-"]


def parse_loudness_report(lines: Sequence[str]) -> LoudnessMeasurement | None:
    """loudnorm's JSON report from the first pass's stderr; None when it is
    missing or unreadable. The report is the last ``{ … }`` block."""
    text = "\n".join(lines)
    end = text.rfind("}")
    begin = text.rfind("{", 0, end)
    if begin < 0 or end < 0:
        return None
    try:
        report = json.loads(text[begin : end + 1])
        values = [
            float(report[key])
            for key in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
        ]
    except (ValueError, KeyError, TypeError):
        return None
    return LoudnessMeasurement(*values)


def loudnorm_filter(loudness: Loudness, measured: LoudnessMeasurement) -> str | None:
    """The second pass's filter: the measured values make loudnorm apply one
    linear gain (dynamic compression only when the target range or peak
    cannot be met linearly). None for a silent or unmeasurable track. Every
    number is formatted here, none comes from the file as text."""
    values = (
        measured.integrated,
        measured.true_peak,
        measured.loudness_range,
        measured.threshold,
        measured.offset,
    )
    if not all(math.isfinite(v) for v in values) or measured.integrated < SILENT_LUFS:
        return None
    return (
        f"{_loudnorm_targets(loudness)}"
        f":measured_I={max(measured.integrated, -99.0):.2f}"
        f":measured_TP={min(max(measured.true_peak, -99.0), 99.0):.2f}"
        f":measured_LRA={min(max(measured.loudness_range, 0.0), 99.0):.2f}"
        f":measured_thresh={max(measured.threshold, -99.0):.2f}"
        f":offset={min(max(measured.offset, -99.0), 99.0):.2f}"
        ":linear=true:print_format=none"
    )


@dataclass(frozen=True)
class AudioOutput:
    """One audio stream of the output: the source track and, for loudness
    normalisation, the filter applied to it."""

    track: AudioTrack
    filter: str | None = None
