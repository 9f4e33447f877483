"""Timed text and time ranges: detections on sampled frames merged into
ranges, and cues written as WebVTT or SRT (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    """A piece of text shown from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    text: str


def runs(times: Iterable[float], step: float, *, tolerance: int = 1) -> list[tuple[float, float]]:
    """Sample times where something was seen -> the time ranges it covers.

    ``times`` come from a grid of ``step`` seconds; a sample stands for
    ``[t, t + step)``. Samples at most ``tolerance`` missed samples apart join
    one range (a caption the OCR missed once is still one caption).
    """
    ranges: list[tuple[float, float]] = []
    gap = step * (tolerance + 1) + step / 2
    for time in sorted(times):
        if ranges and time - ranges[-1][1] + step <= gap:
            ranges[-1] = (ranges[-1][0], round(time + step, 3))
        else:
            ranges.append((round(time, 3), round(time + step, 3)))
    return ranges


def timestamp(seconds: float, *, decimal: str = ".") -> str:
    """``HH:MM:SS.mmm`` (WebVTT) or with ``decimal=","`` (SRT)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" starts a timing line.
    lines = [line.strip() for line in text.replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line)


def webvtt(cues: Sequence[Cue]) -> str:
    """A WebVTT document of ``cues`` (empty cues left out)."""
    parts = ["WEBVTT", ""]
    for cue in cues:
        text = _clean(cue.text)
        if not text or cue.end <= cue.start:
            continue
        parts += [f"{timestamp(cue.start)} --> {timestamp(cue.end)}", text, ""]
    return "\n".join(parts)


def srt(cues: Sequence[Cue]) -> str:
    """An SRT document of ``cues`` (numbered from 1, empty cues left out)."""
    parts: list[str] = []
    number = 0
    for cue in cues:
        text = _clean(cue.text)
        if not text or cue.end <= cue.start:
            continue
        number += 1
        start, end = timestamp(cue.start, decimal=","), timestamp(cue.end, decimal=",")
        parts += [str(number), f"{start} --> {end}", text, ""]
    return "\n".join(parts)
