"""The ``quality`` task: technical problems of the input as findings.

Three passes, each as cheap as it can be:

1. One ffmpeg decode (``ffmpeg.quality.quality_args``) runs every detector:
   blackdetect, freezedetect, idet and mpdecimate on every frame (the latter
   three on a small picture), signalstats, cropdetect, blurdetect and
   blockdetect on a sparse grid of pictures as decoded, and silencedetect,
   aphasemeter and ebur128 on the audio. Its log is parsed while it streams
   (``LogParser``): nothing of it is kept beyond the numbers the findings
   need, so a long input does not fill memory.
2. ffprobe lists the packets' timestamps (no decoding): DTS going backwards
   or jumping (``timestamp_findings``).
3. Pictures on a ``codeSampleSeconds`` grid go through OpenCV's QR code and
   barcode detectors (``scan_codes``), only when those checks are on.

Everything between the log and the findings is pure and unit tested.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING, Any

from mediaflow_api.tasks import FINDING_TYPES, QualityTask
from mediaflow_worker.errors import ProcessingError, ProcessTimeoutError, QualityRejectedError
from mediaflow_worker.ffmpeg.common import even
from mediaflow_worker.ffmpeg.quality import (
    SMALL_WIDTH,
    STATS_WIDTH,
    AudioChecks,
    VideoChecks,
    packets_args,
    quality_args,
)
from mediaflow_worker.process import run_ffmpeg, run_restricted
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.understanding.cues import runs

if TYPE_CHECKING:
    from mediaflow_worker.understanding.frames import Frame

log = logging.getLogger(__name__)

VERSION = 1
# A picture whose luma and chroma both spread over at most this many levels
# (8-bit scale, 10th to 90th percentile) is one colour: encoder noise on a
# flat picture stays within a few levels.
SOLID_SPREAD = 6.0
# Findings that say what is in the picture rather than what is wrong with it:
# they count towards the verdict only when ``failOn`` names them.
INFORMATIONAL = frozenset({"qrCode", "barcode"})
# A stream counts as constant frame rate when this share of its frame
# intervals lies within 5 % of the median: only then is a gap a dropped frame.
REGULAR_SHARE = 0.9
# Events of one kind closer than this (seconds) are one finding.
MERGE_SECONDS = 1.0
# The rejection message lists this many findings, then a count.
MESSAGE_FINDINGS = 8
# Listing the packets of an hour of video takes seconds; a limit all the same.
PACKETS_TIMEOUT_SECONDS = 600
# ``cues.runs`` rounds range bounds to milliseconds: membership allows for it.
EPS = 0.0015

_NUM = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|-?inf|-?nan)"
_CTX = r"\[[^\]]*{name}[^\]]* @ [^\]]+\] "
_BLACK = re.compile(_CTX.format(name="blackdetect") + rf"black_start:{_NUM} black_end:{_NUM}")
_FREEZE_START = re.compile(
    _CTX.format(name="freezedetect") + rf"lavfi\.freezedetect\.freeze_start: {_NUM}"
)
_FREEZE_END = re.compile(
    _CTX.format(name="freezedetect") + rf"lavfi\.freezedetect\.freeze_end: {_NUM}"
)
_SILENCE_START = re.compile(_CTX.format(name="silencedetect") + rf"silence_start: {_NUM}")
_SILENCE_END = re.compile(_CTX.format(name="silencedetect") + rf"silence_end: {_NUM}")
_PHASE_START = re.compile(_CTX.format(name="aphasemeter") + rf"out_phase_start: {_NUM}")
_PHASE_END = re.compile(_CTX.format(name="aphasemeter") + rf"out_phase_end: {_NUM}")
_EBUR_TIME = re.compile(_CTX.format(name="ebur128") + rf"t: {_NUM}")
_EBUR_SUMMARY = re.compile(_CTX.format(name="ebur128") + r"Summary:")
_INTEGRATED = re.compile(rf"^\s+I:\s+{_NUM} LUFS")
_META_FRAME = re.compile(
    r"^\[metadata@(all|kept|stats|block) @ [^\]]+\] frame:\d+\s+pts:\S+\s+pts_time:(\S+)"
)
_META_VALUE = re.compile(r"^\[metadata@(all|kept|stats|block) @ [^\]]+\] ([A-Za-z0-9_.]+)=(\S*)")
_VIDEO_INPUT = re.compile(r"^\[graph \d+ input from stream \d+:\d+ @ [^\]]+\] w:(\d+) h:(\d+)")
_AUDIO_INPUT = re.compile(
    r"^\[graph_\d+_in_\d+_\d+ @ [^\]]+\] tb:\S+ samplefmt:\S+ samplerate:(\d+) chlayout:(\S+)"
)


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class Sample:
    """The statistics of one picture of the sparse grid."""

    time: float
    values: dict[str, float] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # the decoded picture's, before rotation

    def luma(self) -> float | None:
        """Average luma on the 8-bit scale."""
        return self._scaled("lavfi.signalstats.YAVG")

    def _scaled(self, key: str) -> float | None:
        value = self.values.get(key)
        if value is None:
            return None
        depth = self.values.get("lavfi.signalstats.YBITDEPTH", 8.0)
        return value * 255.0 / (2**depth - 1)

    def spread(self) -> float | None:
        """The largest 10th-90th percentile spread of Y, U and V (8-bit scale)."""
        spreads = []
        for plane in "YUV":
            low = self._scaled(f"lavfi.signalstats.{plane}LOW")
            high = self._scaled(f"lavfi.signalstats.{plane}HIGH")
            if low is None or high is None:
                return None
            spreads.append(high - low)
        return max(spreads)

    def rgb(self) -> str:
        """The average colour as ``#rrggbb`` (BT.601, limited range)."""
        y = (self._scaled("lavfi.signalstats.YAVG") or 16.0) - 16.0
        u = (self._scaled("lavfi.signalstats.UAVG") or 128.0) - 128.0
        v = (self._scaled("lavfi.signalstats.VAVG") or 128.0) - 128.0
        r = 1.164 * y + 1.596 * v
        g = 1.164 * y - 0.392 * u - 0.813 * v
        b = 1.164 * y + 2.017 * u
        return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in (r, g, b))


@dataclass
class LogParser:
    """Reads the detectors' log line by line (``feed``, as ffmpeg writes it)
    and keeps only what the findings need."""

    black: list[tuple[float, float]] = field(default_factory=list)
    freeze: list[tuple[float, float | None]] = field(default_factory=list)
    silence: list[tuple[float, float | None]] = field(default_factory=list)
    phase: list[tuple[float, float | None]] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    interlaced_times: list[float] = field(default_factory=list)
    kept_times: set[float] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    # blockdetect runs on its own branch: its values by picture time.
    blocks: dict[float, float] = field(default_factory=dict)
    integrated: float | None = None
    sizes: list[tuple[float | None, int, int]] = field(default_factory=list)
    audio_formats: list[tuple[float | None, int, str]] = field(default_factory=list)
    _in_summary: bool = False
    _audio_time: float = 0.0
    _last_video_time: float = 0.0
    _skip_sample: bool = False
    _block_time: float | None = None

    def feed(self, line: str) -> bool:
        """Take one log line; always False (``run_ffmpeg`` keeps nothing)."""
        try:
            self._feed(line)
        except (ValueError, IndexError):  # a line cut short: skip it, never fail
            log.debug("unparsed detector line: %s", line)
        return False

    def _feed(self, line: str) -> None:
        if line.startswith("[metadata@"):
            self._metadata(line)
            return
        if m := _EBUR_TIME.search(line):
            self._audio_time = float(m.group(1))
            self._date_audio_change()
        elif _EBUR_SUMMARY.search(line):
            self._in_summary = True
        elif self._in_summary and (m := _INTEGRATED.search(line)):
            self.integrated = _num(m.group(1))
            self._in_summary = False
        elif m := _BLACK.search(line):
            self.black.append((float(m.group(1)), float(m.group(2))))
        elif m := _FREEZE_START.search(line):
            self.freeze.append((float(m.group(1)), None))
        elif (m := _FREEZE_END.search(line)) and self.freeze:
            self.freeze[-1] = (self.freeze[-1][0], float(m.group(1)))
        elif m := _SILENCE_START.search(line):
            self.silence.append((max(0.0, float(m.group(1))), None))
        elif (m := _SILENCE_END.search(line)) and self.silence:
            self.silence[-1] = (self.silence[-1][0], float(m.group(1)))
        elif m := _PHASE_START.search(line):
            self.phase.append((float(m.group(1)), None))
        elif (m := _PHASE_END.search(line)) and self.phase:
            self.phase[-1] = (self.phase[-1][0], float(m.group(1)))
        elif m := _VIDEO_INPUT.search(line):
            size = (int(m.group(1)), int(m.group(2)))
            if not self.sizes or self.sizes[-1][1:] != size:
                # Dated by the next frame (the graph is re-created before it).
                self.sizes.append((None if self.sizes else 0.0, *size))
        elif m := _AUDIO_INPUT.search(line):
            fmt = (int(m.group(1)), m.group(2))
            if not self.audio_formats or self.audio_formats[-1][1:] != fmt:
                self.audio_formats.append((None if self.audio_formats else 0.0, *fmt))

    def _metadata(self, line: str) -> None:
        if m := _META_FRAME.match(line):
            branch, time = m.group(1), _num(m.group(2))
            if time is None:
                return
            if self.sizes and self.sizes[-1][0] is None:
                self.sizes[-1] = (time, *self.sizes[-1][1:])
            self._last_video_time = time
            if branch == "all":
                self.frame_times.append(time)
            elif branch == "kept":
                self.kept_times.add(time)
            elif branch == "block":
                self._block_time = time
            elif not self.samples or time > self.samples[-1].time:
                # (A graph re-created after a size change starts its select over.)
                size = self.sizes[-1][1:] if self.sizes else (0, 0)
                self.samples.append(Sample(time, size=size))
            else:
                self._skip_sample = True
                return
            self._skip_sample = False
        elif m := _META_VALUE.match(line):
            branch, key, text = m.groups()
            if branch == "all" and key.endswith("current_frame") and self.frame_times:
                if text in ("tff", "bff"):
                    self.interlaced_times.append(self.frame_times[-1])
            elif branch == "block" and key == "lavfi.block" and self._block_time is not None:
                value = _num(text)
                if value is not None:
                    self.blocks[self._block_time] = value
            elif branch == "stats" and self.samples and not self._skip_sample:
                value = _num(text)
                if value is not None:
                    self.samples[-1].values[key] = value

    def _date_audio_change(self) -> None:
        if self.audio_formats and self.audio_formats[-1][0] is None:
            # ebur128 dates the end of its 100 ms block.
            start = max(0.0, round(self._audio_time - 0.1, 3))
            self.audio_formats[-1] = (start, *self.audio_formats[-1][1:])


@dataclass(frozen=True)
class Finding:
    """One problem (or, for codes, one thing) found in the input."""

    type: str
    start: float
    end: float
    confidence: float
    area: tuple[float, float, float, float] | None = None  # x, y, w, h as fractions
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The finding as ``quality.json`` lists it."""
        area = None
        if self.area is not None:
            x, y, w, h = self.area
            area = {"x": round(x, 4), "y": round(y, 4), "w": round(w, 4), "h": round(h, 4)}
        return {
            "type": self.type,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(min(1.0, max(0.0, self.confidence)), 3),
            "area": area,
            "detail": self.detail,
        }

    def label(self) -> str:
        """``type@start-end`` (the rejection message)."""
        return f"{self.type}@{self.start:.1f}-{self.end:.1f}"


def wanted_types(spec: QualityTask) -> set[str]:
    """The finding types ``spec`` asks for: ``checks`` (all when unset) and
    whatever ``failOn`` names (a rejection rule is never silently off)."""
    return set(spec.checks or FINDING_TYPES) | set(spec.fail_on or ())


def _excess_confidence(value: float, threshold: float, *, above: bool) -> float:
    """0.5 at the threshold, rising to 1 at twice as far past it."""
    if threshold <= 0:
        return 1.0
    excess = (value - threshold) / threshold if above else (threshold - value) / threshold
    return 0.5 + 0.5 * min(1.0, max(0.0, excess))


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _covered(span: tuple[float, float], others: Iterable[tuple[float, float]]) -> bool:
    """Whether at least half of ``span`` lies inside ``others``."""
    length = span[1] - span[0]
    inside = sum(_overlap(span, other) for other in others)
    return length <= 0 or inside >= 0.5 * length


def _close(
    open_ranges: Sequence[tuple[float, float | None]], end: float
) -> list[tuple[float, float]]:
    """Ranges whose end is missing (they ran to the end of the input) ended at ``end``."""
    return [(start, stop if stop is not None else max(start, end)) for start, stop in open_ranges]


def _sample_runs(
    samples: Sequence[Sample], step: float, minimum: float, keep: list[bool]
) -> list[tuple[float, float, list[Sample]]]:
    """Runs of the samples ``keep`` marks, at least ``minimum`` long."""
    chosen = [s for s, k in zip(samples, keep, strict=True) if k]
    found = []
    for start, end in runs([s.time for s in chosen], step):
        if end - start + 1e-6 >= minimum:
            members = [s for s in chosen if start - EPS <= s.time < end - EPS]
            found.append((start, end, members))
    return found


def video_findings(
    parser: LogParser, spec: QualityTask, duration: float, frame_size: tuple[int, int]
) -> list[Finding]:
    """Findings of the video detectors (pure)."""
    wanted = wanted_types(spec)
    found: list[Finding] = []
    black = [(s, e) for s, e in parser.black if e - s + 1e-6 >= spec.black_min_seconds]
    if "black" in wanted:
        found += [Finding("black", s, e, 0.95) for s, e in black]
    samples = parser.samples
    for sample in samples:
        if (block := parser.blocks.get(sample.time)) is not None:
            sample.values["lavfi.block"] = block
    step = spec.sample_seconds
    spread = [s.spread() for s in samples]
    solid = [
        v is not None and v <= SOLID_SPREAD and not _covered((s.time, s.time + step), black)
        for s, v in zip(samples, spread, strict=True)
    ]
    solid_runs = _sample_runs(samples, step, spec.black_min_seconds, solid)
    if "solidColor" in wanted:
        for start, end, members in solid_runs:
            colour = members[len(members) // 2].rgb()
            found.append(Finding("solidColor", start, end, 0.9, detail={"color": colour}))
    flat = black + [(s, e) for s, e, _ in solid_runs]
    if "freeze" in wanted:
        for start, end in _close(parser.freeze, duration):
            # A black or one-colour screen is trivially frozen: said once, as that.
            if end - start > 0 and not _covered((start, end), flat):
                found.append(Finding("freeze", start, end, 0.9))
    usable = [
        not flag and v is not None and v > SOLID_SPREAD
        for flag, v in zip(solid, spread, strict=True)
    ]
    usable = [
        u and not _covered((s.time, s.time + step), flat)
        for u, s in zip(usable, samples, strict=True)
    ]

    def metric_runs(kind: str, key: str, threshold: float, *, above: bool) -> None:
        if kind not in wanted:
            return
        values = [s.values.get(key) for s in samples]
        hits = [
            u and v is not None and (v > threshold if above else v < threshold)
            for u, v in zip(usable, values, strict=True)
        ]
        for start, end, members in _sample_runs(samples, step, spec.min_seconds, hits):
            worst = [m.values[key] for m in members]
            value = max(worst) if above else min(worst)
            mean = statistics.fmean(worst)
            found.append(
                Finding(
                    kind,
                    start,
                    end,
                    _excess_confidence(mean, threshold, above=above),
                    detail={"mean": round(mean, 2), "worst": round(value, 2)},
                )
            )

    metric_runs("blur", "lavfi.blur", spec.blur_threshold, above=True)
    metric_runs("blockiness", "lavfi.block", spec.block_threshold, above=True)
    for sample in samples:  # luma on the 8-bit scale, whatever the bit depth
        luma = sample.luma()
        if luma is not None:
            sample.values["luma8"] = luma
    metric_runs("dark", "luma8", spec.dark_luma, above=False)
    metric_runs("bright", "luma8", spec.bright_luma, above=True)
    if "blackEdges" in wanted:
        # In a dark scene the dark surroundings look like bars to cropdetect.
        lit = [
            u and (s.luma() or 0.0) >= spec.dark_luma for u, s in zip(usable, samples, strict=True)
        ]
        found += _edge_findings(samples, lit, spec, frame_size)
    if "interlaced" in wanted and parser.frame_times:
        found += _interlace_findings(parser, spec)
    if "duplicateFrames" in wanted and parser.frame_times and parser.kept_times:
        frozen = flat + [(f.start, f.end) for f in found if f.type == "freeze"]
        found += _duplicate_findings(parser, frozen)
    if "droppedFrames" in wanted:
        found += dropped_frame_findings(parser.frame_times, spec.timestamp_gap_seconds)
    if "resolutionChange" in wanted:
        for (_, w0, h0), (time, w1, h1) in zip(parser.sizes, parser.sizes[1:], strict=False):
            at = time if time is not None else duration
            found.append(
                Finding(
                    "resolutionChange",
                    at,
                    at,
                    1.0,
                    detail={"from": f"{w0}x{h0}", "to": f"{w1}x{h1}"},
                )
            )
    return found


def _picture_size(sample: Sample, frame_size: tuple[int, int]) -> tuple[int, int]:
    """The size of the picture cropdetect saw: the decoded size the log gave
    (after a mid-stream change, the new one), turned like ``frame_size``
    (the probed size as the filters see it, rotation applied), scaled to at
    most ``STATS_WIDTH`` wide."""
    width, height = sample.size if sample.size != (0, 0) else frame_size
    # The log gives the size before rotation; ``frame_size`` is after it.
    turned = frame_size[0] != frame_size[1] and (frame_size[0] > frame_size[1]) != (width > height)
    if turned:
        width, height = height, width
    if width > STATS_WIDTH:  # cropdetect sees the picture scaled down
        width, height = STATS_WIDTH, round(height * STATS_WIDTH / width)
    return width, height


def _edge_findings(
    samples: Sequence[Sample], usable: list[bool], spec: QualityTask, frame_size: tuple[int, int]
) -> list[Finding]:
    """Black edges (cropdetect): runs of samples whose picture area leaves
    bars of at least ``edgeMinPercent`` on some side, grouped by that area."""
    edge = spec.edge_min_percent / 100.0
    boxes: list[tuple[float, float, float, float] | None] = []
    for sample, ok in zip(samples, usable, strict=True):
        v = sample.values
        width, height = _picture_size(sample, frame_size)
        if width <= 0 or height <= 0:
            boxes.append(None)
            continue
        keys = (
            "lavfi.cropdetect.x1",
            "lavfi.cropdetect.x2",
            "lavfi.cropdetect.y1",
            "lavfi.cropdetect.y2",
        )
        if not ok or any(k not in v for k in keys):
            boxes.append(None)
            continue
        x1, x2, y1, y2 = (v[k] for k in keys)
        left, right = x1 / width, (width - 1 - x2) / width
        top, bottom = y1 / height, (height - 1 - y2) / height
        if max(left, right, top, bottom) < edge or x2 <= x1 or y2 <= y1:
            boxes.append(None)
            continue
        # Rounded to half a percent: a bar that flickers by a pixel is one bar.
        lf, tp, rt, bt = (round(side * 200) / 200 for side in (left, top, right, bottom))
        boxes.append((lf, tp, rt, bt))
    found = []
    for box in sorted({b for b in boxes if b is not None}):
        keep = [b == box for b in boxes]
        for start, end, _ in _sample_runs(samples, spec.sample_seconds, spec.min_seconds, keep):
            left, top, right, bottom = box
            area = (left, top, max(0.0, 1 - left - right), max(0.0, 1 - top - bottom))
            found.append(
                Finding(
                    "blackEdges",
                    start,
                    end,
                    0.9,
                    area=area,
                    detail={
                        "left": round(left, 4),
                        "top": round(top, 4),
                        "right": round(right, 4),
                        "bottom": round(bottom, 4),
                    },
                )
            )
    return found


def _median_interval(times: Sequence[float]) -> float | None:
    ordered = sorted(times)
    steps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    return statistics.median(steps) if steps else None


def _interlace_findings(parser: LogParser, spec: QualityTask) -> list[Finding]:
    """Stretches where idet calls most single frames interlaced."""
    interval = _median_interval(parser.frame_times)
    if interval is None or not parser.interlaced_times:
        return []
    found = []
    for start, end in runs(parser.interlaced_times, interval, tolerance=3):
        if end - start + 1e-6 < spec.min_seconds:
            continue
        total = sum(1 for t in parser.frame_times if start - EPS <= t < end - EPS)
        hits = sum(1 for t in parser.interlaced_times if start - EPS <= t < end - EPS)
        share = hits / max(1, total)
        if share >= 0.5:
            found.append(Finding("interlaced", start, end, share, detail={"frames": hits}))
    return found


def _duplicate_findings(parser: LogParser, frozen: list[tuple[float, float]]) -> list[Finding]:
    """Frames mpdecimate dropped as repeats of the one before, outside the
    black, one-colour and frozen stretches (said already)."""
    interval = _median_interval(parser.frame_times)
    if interval is None:
        return []
    repeated = [t for t in parser.frame_times if t not in parser.kept_times]
    found = []
    for start, end in runs(repeated, interval, tolerance=2):
        if _covered((start, end), frozen):
            continue
        count = sum(1 for t in repeated if start - EPS <= t < end - EPS)
        found.append(Finding("duplicateFrames", start, end, 0.8, detail={"frames": count}))
    return found


def dropped_frame_findings(frame_times: Sequence[float], longest: float) -> list[Finding]:
    """Gaps of two or more frame intervals in a constant-frame-rate stream,
    up to ``longest`` seconds (longer ones are timestamp jumps) (pure)."""
    interval = _median_interval(frame_times)
    if interval is None or interval <= 0:
        return []
    steps = [b - a for a, b in itertools.pairwise(frame_times)]
    regular = sum(1 for s in steps if abs(s - interval) <= 0.05 * interval)
    if regular < REGULAR_SHARE * len(steps):
        return []  # variable frame rate: a long frame is not a lost one
    found: list[Finding] = []
    for before, after in itertools.pairwise(frame_times):
        gap = after - before
        if 1.9 * interval <= gap <= longest:
            missing = round(gap / interval) - 1
            start, end = before + interval, after
            if found and start - found[-1].end <= MERGE_SECONDS:
                last = found[-1]
                total = last.detail["frames"] + missing
                found[-1] = Finding("droppedFrames", last.start, end, 0.9, detail={"frames": total})
            else:
                found.append(Finding("droppedFrames", start, end, 0.9, detail={"frames": missing}))
    return found


def audio_findings(parser: LogParser, spec: QualityTask, duration: float) -> list[Finding]:
    """Findings of the audio detectors (pure)."""
    wanted = wanted_types(spec)
    found: list[Finding] = []
    if "silence" in wanted:
        for start, end in _close(parser.silence, duration):
            if end - start + 1e-6 >= spec.silence_min_seconds:
                found.append(Finding("silence", start, end, 0.95))
    loudness = parser.integrated
    if loudness is not None:
        detail = {"integratedLufs": round(loudness, 1)}
        if "quiet" in wanted and loudness < spec.loudness_min_lufs:
            confidence = 0.5 + 0.5 * min(1.0, (spec.loudness_min_lufs - loudness) / 10)
            found.append(Finding("quiet", 0.0, duration, confidence, detail=detail))
        if "loud" in wanted and loudness > spec.loudness_max_lufs:
            confidence = 0.5 + 0.5 * min(1.0, (loudness - spec.loudness_max_lufs) / 10)
            found.append(Finding("loud", 0.0, duration, confidence, detail=detail))
    if "outOfPhase" in wanted:
        for start, end in _close(parser.phase, duration):
            if end - start + 1e-6 >= spec.phase_min_seconds:
                found.append(Finding("outOfPhase", start, end, 0.9))
    pairs = zip(parser.audio_formats, parser.audio_formats[1:], strict=False)
    for (_, rate0, layout0), (time, rate1, layout1) in pairs:
        at = time if time is not None else duration
        if rate0 != rate1 and "sampleRateChange" in wanted:
            found.append(
                Finding("sampleRateChange", at, at, 1.0, detail={"from": rate0, "to": rate1})
            )
        if layout0 != layout1 and "channelLayoutChange" in wanted:
            found.append(
                Finding("channelLayoutChange", at, at, 1.0, detail={"from": layout0, "to": layout1})
            )
    return found


def timestamp_findings(
    csv: str, stream_kinds: dict[int, str], start_time: float, gap_seconds: float
) -> list[Finding]:
    """Decoding timestamps that go backwards or jump, per audio/video stream,
    from ffprobe's ``stream_index,dts_time,duration_time`` lines (pure)."""
    previous: dict[int, float] = {}
    events: list[tuple[float, float, str, int]] = []
    for line in csv.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 2:
            continue
        try:
            index = int(parts[0])
        except ValueError:
            continue
        dts = _num(parts[1])
        if dts is None or stream_kinds.get(index) not in ("video", "audio"):
            continue
        dts -= start_time
        last = previous.get(index)
        previous[index] = dts
        if last is None:
            continue
        if dts < last - 1e-6:
            events.append((dts, last, "backwards", index))
        elif dts - last > gap_seconds:
            events.append((last, dts, "jump", index))
    found: list[Finding] = []
    for start, end, kind, index in sorted(events):
        lo, hi = min(start, end), max(start, end)
        if found and lo - found[-1].end <= MERGE_SECONDS:
            prior = found[-1]
            kinds = sorted({*prior.detail["problems"], kind})
            streams = sorted({*prior.detail["streams"], index})
            detail = {"problems": kinds, "streams": streams, "count": prior.detail["count"] + 1}
            found[-1] = Finding("timestamps", prior.start, max(prior.end, hi), 0.9, detail=detail)
        else:
            detail = {"problems": [kind], "streams": [index], "count": 1}
            found.append(Finding("timestamps", max(0.0, lo), max(0.0, hi), 0.9, detail=detail))
    return found


@dataclass(frozen=True)
class CodeHit:
    """One code seen on one sampled picture."""

    kind: str  # qrCode or barcode
    text: str
    time: float
    box: tuple[float, float, float, float]  # x, y, w, h as fractions
    format: str | None = None


def code_findings(hits: Sequence[CodeHit], step: float) -> list[Finding]:
    """Hits of one code (same kind and text) on neighbouring samples merged
    into one finding with the box they share (pure)."""
    groups: dict[tuple[str, str, str | None], list[CodeHit]] = {}
    for hit in hits:
        groups.setdefault((hit.kind, hit.text, hit.format), []).append(hit)
    found = []
    for (kind, text, fmt), group in groups.items():
        for start, end in runs([h.time for h in group], step):
            members = [h for h in group if start - EPS <= h.time < end - EPS]
            x0 = min(h.box[0] for h in members)
            y0 = min(h.box[1] for h in members)
            x1 = max(h.box[0] + h.box[2] for h in members)
            y1 = max(h.box[1] + h.box[3] for h in members)
            detail: dict[str, Any] = {"text": text}
            if fmt:
                detail["format"] = fmt
            confidence = 0.95 if text else 0.6  # found but not decoded
            found.append(Finding(kind, start, end, confidence, (x0, y0, x1 - x0, y1 - y0), detail))
    return found


def _box(points: Any, width: int, height: int) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x0, x1 = max(0.0, min(xs)), min(float(width), max(xs))
    y0, y1 = max(0.0, min(ys)), min(float(height), max(ys))
    return x0 / width, y0 / height, max(0.0, x1 - x0) / width, max(0.0, y1 - y0) / height


def codes_on_frame(frame: Frame, *, qr: bool, barcode: bool, detectors: Any) -> list[CodeHit]:
    """QR codes and barcodes OpenCV finds on one picture."""
    import cv2

    gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    hits: list[CodeHit] = []
    qr_detector, bar_detector = detectors
    if qr:
        ok, texts, points, _ = qr_detector.detectAndDecodeMulti(gray)
        if ok and points is not None:
            for text, quad in zip(texts, points, strict=False):
                hits.append(CodeHit("qrCode", str(text), frame.time, _box(quad, width, height)))
    if barcode:
        result = bar_detector.detectAndDecodeWithType(gray)
        ok, texts, kinds, points = result
        if ok and points is not None:
            for text, kind, quad in zip(texts, kinds, points, strict=False):
                box = _box(quad, width, height)
                hits.append(CodeHit("barcode", str(text), frame.time, box, str(kind) or None))
    return hits


def scan_codes(ctx: TaskContext, spec: QualityTask, *, qr: bool, barcode: bool) -> list[Finding]:
    """QR codes and barcodes on pictures every ``codeSampleSeconds``."""
    import cv2

    from mediaflow_worker.understanding.frames import sample_frames

    threads = os.environ.get("MEDIAFLOW_ML_THREADS")
    if threads:
        cv2.setNumThreads(int(threads))
    detectors = (cv2.QRCodeDetector(), cv2.barcode.BarcodeDetector())
    hits: list[CodeHit] = []
    step = spec.code_sample_seconds
    for frame in sample_frames(ctx, fps=1 / step, max_side=960):
        hits += codes_on_frame(frame, qr=qr, barcode=barcode, detectors=detectors)
    return code_findings(hits, step)


def verdict(findings: Sequence[Finding], fail_on: Iterable[str]) -> str:
    """``fail`` when a finding's type is in ``fail_on``; ``warn`` when any
    finding other than informational ones; ``pass`` otherwise (pure)."""
    failing = set(fail_on)
    types = {f.type for f in findings}
    if types & failing:
        return "fail"
    if types - INFORMATIONAL:
        return "warn"
    return "pass"


def rejection_message(findings: Sequence[Finding], fail_on: Iterable[str]) -> str:
    """One line naming the findings that fail the input (pure)."""
    failing = set(fail_on)
    chosen = [f for f in findings if f.type in failing]
    labels = [f.label() for f in chosen[:MESSAGE_FINDINGS]]
    if len(chosen) > MESSAGE_FINDINGS:
        labels.append(f"and {len(chosen) - MESSAGE_FINDINGS} more")
    return "quality check failed (failOn): " + ", ".join(labels)


def order(findings: Iterable[Finding]) -> list[Finding]:
    """Findings by time, then in the order of ``FINDING_TYPES``."""
    rank = {kind: i for i, kind in enumerate(FINDING_TYPES)}
    return sorted(findings, key=lambda f: (f.start, rank.get(f.type, len(rank)), f.end))


def report(
    spec: QualityTask, findings: Sequence[Finding], checked: Sequence[str]
) -> dict[str, Any]:
    """The ``quality.json`` document (pure)."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.type] = counts.get(finding.type, 0) + 1
    return {
        "version": VERSION,
        "settings": spec.model_dump(by_alias=True, mode="json"),
        "checked": list(checked),
        "verdict": verdict(findings, spec.fail_on or ()),
        "findings": [f.as_json() for f in findings],
        "summary": {kind: counts[kind] for kind in FINDING_TYPES if kind in counts},
    }


def _frame_size(ctx: TaskContext) -> tuple[int, int]:
    """The size of the pictures the filters see (rotation applied, pixels)."""
    video = ctx.probe.video
    if video is None:
        return 0, 0
    if video.rotation in (90, 270):
        return video.height, video.width
    return video.width, video.height


def _small_size(ctx: TaskContext) -> tuple[int, int]:
    width, height = ctx.display_size()
    scale = min(1.0, SMALL_WIDTH / max(width, 1))
    return max(2, even(width * scale)), max(2, even(height * scale))


def checks_to_run(spec: QualityTask, *, has_video: bool, has_audio: bool) -> list[str]:
    """The finding types this input can have under ``spec`` (pure)."""
    wanted = wanted_types(spec)
    audio = {"silence", "quiet", "loud", "outOfPhase", "sampleRateChange", "channelLayoutChange"}
    video = set(FINDING_TYPES) - audio - {"noAudio", "timestamps"}
    out = []
    for kind in FINDING_TYPES:
        if kind not in wanted:
            continue
        if (kind in video and not has_video) or (kind in audio and not has_audio):
            continue
        if kind == "noAudio" and (has_audio or not has_video):
            continue
        out.append(kind)
    return out


def required_encoders(spec: QualityTask) -> set[str]:
    """None: the detectors decode only."""
    return set()


def run(spec: QualityTask, ctx: TaskContext) -> list[OutputFile]:
    """``quality.json``; ``QualityRejectedError`` (exit 2) when a finding's
    type is in ``failOn``."""
    probe = ctx.probe
    has_video, has_audio = probe.video is not None, probe.audio is not None
    checked = checks_to_run(spec, has_video=has_video, has_audio=has_audio)
    wanted = set(checked)
    duration = ctx.duration
    findings: list[Finding] = []
    video_kinds = {
        "black", "solidColor", "freeze", "blur", "blockiness", "dark", "bright", "blackEdges",
        "interlaced", "duplicateFrames", "droppedFrames", "resolutionChange",
    }  # fmt: skip
    video = None
    if wanted & video_kinds:
        stats_kinds = {"solidColor", "blur", "blockiness", "dark", "bright", "blackEdges"}
        video = VideoChecks(
            small_size=_small_size(ctx),
            black=(spec.black_min_seconds, spec.black_pixel_threshold)
            if wanted & {"black", "solidColor", "freeze", "duplicateFrames"}
            else None,
            freeze=(spec.freeze_min_seconds, spec.freeze_noise_db)
            if wanted & {"freeze", "duplicateFrames"}
            else None,
            frames=bool(
                wanted & {"interlaced", "duplicateFrames", "droppedFrames", "resolutionChange"}
            ),
            duplicates="duplicateFrames" in wanted,
            stats_step=spec.sample_seconds
            if wanted & (stats_kinds | {"freeze", "duplicateFrames"})
            else None,
        )
    audio_kinds = {
        "silence",
        "quiet",
        "loud",
        "outOfPhase",
        "sampleRateChange",
        "channelLayoutChange",
    }
    audio = None
    if wanted & audio_kinds:
        assert probe.audio is not None
        audio = AudioChecks(
            silence=(spec.silence_threshold_db, spec.silence_min_seconds)
            if "silence" in wanted
            else None,
            loudness=bool(wanted & {"quiet", "loud"}),
            phase_min_seconds=spec.phase_min_seconds
            if "outOfPhase" in wanted and probe.audio.channels >= 2
            else None,
        )
    args = quality_args(
        ctx.input_path, probe.demuxer, ctx.limits.max_pixels, video=video, audio=audio
    )
    if args is not None:
        parser = LogParser()
        run_ffmpeg(
            args,
            label=ctx.task_name,
            expected_seconds=duration,
            deadline=ctx.deadline,
            keep=parser.feed,
        )
        if video is not None:
            findings += video_findings(parser, spec, duration, _frame_size(ctx))
        if audio is not None:
            findings += audio_findings(parser, spec, duration)
    if "noAudio" in wanted:
        findings.append(Finding("noAudio", 0.0, duration, 1.0))
    if "timestamps" in wanted:
        findings += _timestamps(ctx, spec)
    if wanted & {"qrCode", "barcode"}:
        findings += scan_codes(ctx, spec, qr="qrCode" in wanted, barcode="barcode" in wanted)
    findings = order(findings)
    document = report(spec, findings, checked)
    out = ctx.out_dir / "quality.json"
    out.write_text(json.dumps(document, indent=2), encoding="utf-8")
    if document["verdict"] == "fail":
        raise QualityRejectedError(rejection_message(findings, spec.fail_on or ()))
    return [OutputFile(out, {"verdict": document["verdict"], "counts": document["summary"]})]


def _timestamps(ctx: TaskContext, spec: QualityTask) -> list[Finding]:
    kinds = {
        int(s.get("index", -1)): str(s.get("codec_type"))
        for s in ctx.probe.raw.get("streams", [])
        if not (s.get("disposition") or {}).get("attached_pic")
    }
    # Demuxing only: fast, but never past the run's wall-time limit.
    timeout = min(PACKETS_TIMEOUT_SECONDS, ctx.deadline - monotonic())
    if timeout <= 0:
        raise ProcessTimeoutError(f"{ctx.task_name}: no time left before the wall-time limit")
    try:
        done = run_restricted(packets_args(ctx.input_path, ctx.probe.demuxer), timeout)
    except subprocess.TimeoutExpired as exc:
        raise ProcessTimeoutError(f"{ctx.task_name}: listing the packets took too long") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise ProcessingError(f"{ctx.task_name}: ffprobe could not list the packets: {detail}")
    return timestamp_findings(done.stdout, kinds, ctx.probe.start_time, spec.timestamp_gap_seconds)
