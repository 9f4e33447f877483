"""The ``ocr`` task: on-screen text read on sampled frames with RapidOCR.

RapidOCR runs PP-OCR's text detection, orientation and recognition models on
ONNX Runtime. The three model files are the ones inside the installed
``rapidocr`` wheel (``packages.TEXT_*``) and are passed by path, so RapidOCR
never looks for, creates or downloads anything (it works on a read-only
filesystem). Lines read on consecutive samples that say the same thing at
the same place are merged into one ``TextSpan``.

NumPy, OpenCV and RapidOCR are imported inside functions: the lean worker
imports this module through the task table without having them.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mediaflow_api.tasks import OcrTask
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.understanding import packages
from mediaflow_worker.understanding.cues import Cue, runs, webvtt
from mediaflow_worker.understanding.keywords import KeywordMatcher, normalise
from mediaflow_worker.understanding.onnx import THREADS_ENV, providers

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

OCR_JSON_VERSION = 1
# Two readings of one line on neighbouring samples are the same line when
# their texts are this similar (difflib ratio of the normalised texts: OCR
# misreads a character or two between frames) ...
SIMILAR_TEXT = 0.8
# ... and their boxes overlap this much (intersection over the smaller box:
# a line that grows or shrinks a little still matches).
OVERLAPPING_BOX = 0.5
# Samples a line may be missed on and still be one span.
MISSED_SAMPLES = 1

ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
RAPIDOCR_LOGGER = "RapidOCR"
# The rate a too-short input is sampled at for its first frame.
STILL_FPS = 25.0

Box = tuple[float, float, float, float]  # x, y, w, h, normalised 0..1


@dataclass(frozen=True)
class TextSpan:
    """A line of on-screen text and when and where it was shown."""

    start: float
    end: float
    text: str
    confidence: float
    box: tuple[float, float, float, float]  # x, y, w, h normalised 0..1


@dataclass(frozen=True)
class Reading:
    """One line read on one sample."""

    time: float
    text: str
    confidence: float
    box: Box


def similarity(a: str, b: str) -> float:
    """How alike two readings are (0..1) after Unicode normalisation and
    case folding; spaces are ignored (OCR often drops or adds one)."""
    left, right = normalise(a).replace(" ", ""), normalise(b).replace(" ", "")
    if left == right:
        return 1.0
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


def overlap(a: Box, b: Box) -> float:
    """Intersection of two boxes over the smaller one's area (0..1)."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min(a[2] * a[3], b[2] * b[3])
    return (width * height) / smaller if smaller > 0 else 0.0


def _spaceless_edge(text: str) -> bool:
    # CJK and kana: the detector's pieces of one line join without a space.
    return bool(text) and ("\u3040" <= text <= "\u9fff" or "\uac00" <= text <= "\ud7af")


def join_pieces(readings: Sequence[Reading]) -> list[Reading]:
    """One sample's readings with the pieces of one line joined (pure).

    The detector sometimes cuts a line at a wide space ("BREAKING" "NEWS"):
    pieces of about the same height, level with each other and less than a
    line height apart are one line, so a phrase keyword still matches.
    """
    pieces = sorted(readings, key=lambda r: (r.box[0], r.box[1]))
    lines: list[list[Reading]] = []
    for piece in pieces:
        for line in lines:
            last = line[-1]
            top = max(last.box[1], piece.box[1])
            bottom = min(last.box[1] + last.box[3], piece.box[1] + piece.box[3])
            height = max(last.box[3], piece.box[3])
            level = bottom - top >= 0.6 * min(last.box[3], piece.box[3])
            alike = min(last.box[3], piece.box[3]) >= 0.6 * height
            gap = piece.box[0] - (last.box[0] + last.box[2])
            # Heights are fractions of the frame's height and gaps of its
            # width: compared on the 16:9 scale the frames mostly have.
            if level and alike and -0.5 * height <= gap * 16 / 9 <= 1.0 * height:
                line.append(piece)
                break
        else:
            lines.append([piece])
    joined = []
    for line in lines:
        if len(line) == 1:
            joined.append(line[0])
            continue
        text = line[0].text
        for piece in line[1:]:
            spaceless = _spaceless_edge(text[-1]) and _spaceless_edge(piece.text[0])
            text += ("" if spaceless else " ") + piece.text
        chars = sum(len(p.text) for p in line)
        confidence = sum(p.confidence * len(p.text) for p in line) / chars
        left = min(p.box[0] for p in line)
        top = min(p.box[1] for p in line)
        right = max(p.box[0] + p.box[2] for p in line)
        bottom = max(p.box[1] + p.box[3] for p in line)
        box = (left, top, round(right - left, 4), round(bottom - top, 4))
        joined.append(Reading(line[0].time, text, round(confidence, 3), box))
    return joined


@dataclass
class _Track:
    readings: list[Reading] = field(default_factory=list)

    @property
    def last(self) -> Reading:
        return self.readings[-1]


def _best_text(readings: Sequence[Reading]) -> Reading:
    # The text read most often wins (summed confidence breaks ties): one
    # misread frame does not decide the span's text.
    weight: dict[str, float] = {}
    for reading in readings:
        weight[reading.text] = weight.get(reading.text, 0.0) + 1.0 + reading.confidence
    text = max(weight, key=lambda t: weight[t])
    return max((r for r in readings if r.text == text), key=lambda r: r.confidence)


def merge_readings(
    readings: Iterable[Reading], step: float, *, duration: float = 0.0, still: bool = False
) -> list[TextSpan]:
    """Readings on a grid of ``step`` seconds -> spans (pure).

    A reading continues a line read on one of the previous
    ``MISSED_SAMPLES + 1`` samples when its text is similar
    (``SIMILAR_TEXT``) and its box overlaps (``OVERLAPPING_BOX``); each line
    continues at most once per sample. A span ends one step after its last
    sample (clamped to ``duration`` when that is known; at once for a
    ``still`` image, read at one instant). Spans are sorted by start, then
    top to bottom.
    """
    by_time: dict[float, list[Reading]] = {}
    for reading in readings:
        by_time.setdefault(reading.time, []).append(reading)
    reach = step * (MISSED_SAMPLES + 1) + step / 2
    open_tracks: list[_Track] = []
    done: list[_Track] = []
    for time in sorted(by_time):
        still_open: list[_Track] = []
        for track in open_tracks:
            (still_open if time - track.last.time <= reach else done).append(track)
        open_tracks = still_open
        taken: set[int] = set()
        # Confident readings choose their line first.
        for reading in sorted(by_time[time], key=lambda r: -r.confidence):
            candidates = [
                (similarity(reading.text, track.last.text), index)
                for index, track in enumerate(open_tracks)
                if index not in taken
                and track.last.time < time
                and overlap(reading.box, track.last.box) >= OVERLAPPING_BOX
            ]
            best = max(candidates, default=(0.0, -1))
            if best[0] >= SIMILAR_TEXT:
                open_tracks[best[1]].readings.append(reading)
                taken.add(best[1])
            else:
                open_tracks.append(_Track([reading]))
                taken.add(len(open_tracks) - 1)
    done += open_tracks
    spans = []
    for track in done:
        chosen = _best_text(track.readings)
        confidence = sum(r.confidence for r in track.readings) / len(track.readings)
        for start, end in runs((r.time for r in track.readings), step, tolerance=MISSED_SAMPLES):
            if still:
                end = start
            elif duration > 0:
                end = min(end, round(duration, 3))
            spans.append(
                TextSpan(start, max(start, end), chosen.text, round(confidence, 3), chosen.box)
            )
    spans.sort(key=lambda s: (s.start, s.box[1], s.box[0]))
    return spans


@dataclass(frozen=True)
class KeywordHit:
    """A keyword of a user list found in a span."""

    list: str
    word: str
    start: float
    end: float
    text: str


def keyword_hits(
    spans: Sequence[TextSpan], lists: Sequence[tuple[str, Sequence[str]]]
) -> list[KeywordHit]:
    """Every (list, word) found in each span's text, in span order (pure)."""
    matchers = [(name, KeywordMatcher.of(words)) for name, words in lists]
    hits = []
    for span in spans:
        for name, matcher in matchers:
            hits += [
                KeywordHit(name, w, span.start, span.end, span.text)
                for w in matcher.find(span.text)
            ]
    return hits


def engine_params(
    *, max_side: int, threads: str | None, provider_names: Sequence[str]
) -> dict[str, Any]:
    """RapidOCR's settings (pure but for locating the models): the packaged
    models by path, ONNX Runtime, detection at the frame's own size, quiet."""
    return {
        # Its logger says "Using <model>" at INFO for every model and "The
        # text detection result is empty" as a WARNING for every frame
        # without text: errors only.
        "Global.log_level": "error",
        # Our frames are already scaled to max_side: no second resize.
        "Global.max_side_len": max(max_side, 2000),
        "Det.model_path": str(packages.TEXT_DETECTION.path()),
        "Cls.model_path": str(packages.TEXT_ORIENTATION.path()),
        "Rec.model_path": str(packages.TEXT_RECOGNITION.path()),
        # The default ("min", 736) scales a 640x360 frame UP to 1308x736 for
        # detection: 2-3x the time for text that max_side already made
        # legible. "max" at max_side detects on the frame as sampled.
        "Det.limit_type": "max",
        "Det.limit_side_len": max_side,
        "EngineConfig.onnxruntime.intra_op_num_threads": int(threads) if threads else -1,
        # RapidOCR chooses its providers itself: CUDA when asked and present.
        "EngineConfig.onnxruntime.use_cuda": "CUDAExecutionProvider" in provider_names,
    }


def _engine(max_side: int) -> Any:
    # ONNX Runtime 1.2x+ writes a telemetry device id under
    # $HOME/.cache/Microsoft when it is imported (a warning on a read-only
    # home): nothing of ours to keep, and the worker writes only to scratch.
    os.environ.setdefault(ORT_TELEMETRY_ENV, "1")
    from rapidocr import RapidOCR

    # RapidOCR's logger writes coloured lines to stderr with a handler of its
    # own: its records go through the worker's logging instead.
    rapid_log = logging.getLogger(RAPIDOCR_LOGGER)
    for handler in list(rapid_log.handlers):
        rapid_log.removeHandler(handler)
    rapid_log.propagate = True
    params = engine_params(
        max_side=max_side, threads=os.environ.get(THREADS_ENV), provider_names=providers()
    )
    return RapidOCR(params=params)


def crop_region(width: int, height: int, region: Box | None) -> tuple[int, int, int, int]:
    """The pixel rectangle (x, y, w, h) of ``region`` (normalised, clipped
    to the picture) in a ``width`` x ``height`` frame (pure)."""
    if region is None:
        return 0, 0, width, height
    x0 = min(width - 1, max(0, round(region[0] * width)))
    y0 = min(height - 1, max(0, round(region[1] * height)))
    x1 = min(width, max(x0 + 1, round((region[0] + region[2]) * width)))
    y1 = min(height, max(y0 + 1, round((region[1] + region[3]) * height)))
    return x0, y0, x1 - x0, y1 - y0


def _readings(
    engine: Any,
    time: float,
    image: npt.NDArray[np.uint8],
    *,
    min_confidence: float,
    region: Box | None,
) -> list[Reading]:
    height, width = image.shape[:2]
    x0, y0, w, h = crop_region(width, height, region)
    result = engine(image[y0 : y0 + h, x0 : x0 + w])
    if getattr(result, "txts", None) is None or result.boxes is None:
        return []
    readings = []
    for points, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        text = " ".join(str(text).split())
        if not text or float(score) < min_confidence:
            continue
        xs = [float(p[0]) + x0 for p in points]
        ys = [float(p[1]) + y0 for p in points]
        left, top = max(0.0, min(xs)), max(0.0, min(ys))
        right, bottom = min(float(width), max(xs)), min(float(height), max(ys))
        box = (
            round(left / width, 4),
            round(top / height, 4),
            round((right - left) / width, 4),
            round((bottom - top) / height, 4),
        )
        readings.append(Reading(time, text, round(float(score), 3), box))
    return join_pieces(readings)


def read_text(
    ctx: TaskContext,
    *,
    interval_seconds: float = 1.0,
    max_side: int = 960,
    min_confidence: float = 0.6,
    region: Box | None = None,
) -> list[TextSpan]:
    """The lines of text shown in ``ctx``'s input: frames every
    ``interval_seconds`` (a still image: one at 0), scaled to ``max_side``,
    read with the packaged PP-OCR models, merged into spans. ``region``
    (x, y, w, h normalised) reads only that part of the picture.
    ``TaskNotApplicable`` without video; ``ModelUnavailableError`` when the
    models are not installed."""
    from mediaflow_worker.understanding.frames import sample_frames

    ctx.display_size()  # TaskNotApplicable before the models load
    engine = _engine(max_side)  # once per run: loading costs a second or two
    readings: list[Reading] = []
    samples = 0
    for frame in sample_frames(ctx, fps=1.0 / interval_seconds, max_side=max_side):
        samples += 1
        readings += _readings(
            engine, frame.time, frame.image, min_confidence=min_confidence, region=region
        )
    still = ctx.duration == 0 and samples == 1
    if samples == 0:
        # ffmpeg's fps filter drops an input shorter than half a step (a
        # one-frame GIF, a single picture): read its first frame instead.
        for frame in sample_frames(ctx, fps=STILL_FPS, max_side=max_side):
            still = True
            readings += _readings(
                engine, 0.0, frame.image, min_confidence=min_confidence, region=region
            )
            break
    return merge_readings(readings, interval_seconds, duration=ctx.duration, still=still)


def document(
    spec: OcrTask, spans: Sequence[TextSpan], hits: Sequence[KeywordHit]
) -> dict[str, Any]:
    """``ocr.json`` (pure): the settings used, the spans, the keyword hits."""
    region = spec.region
    return {
        "version": OCR_JSON_VERSION,
        "settings": {
            "intervalSeconds": spec.interval_seconds,
            "minConfidence": spec.min_confidence,
            "maxSide": spec.max_side,
            "region": None
            if region is None
            else {"x": region.x, "y": region.y, "width": region.width, "height": region.height},
            "keywordLists": [k.name for k in spec.keywords],
            "models": {
                "detection": packages.TEXT_DETECTION.name,
                "recognition": packages.TEXT_RECOGNITION.name,
                "orientation": packages.TEXT_ORIENTATION.name,
                "package": f"rapidocr {packages.TEXT_DETECTION.version()}",
            },
        },
        "spans": [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "confidence": s.confidence,
                "box": {"x": s.box[0], "y": s.box[1], "width": s.box[2], "height": s.box[3]},
            }
            for s in spans
        ],
        "keywordHits": [
            {"list": h.list, "word": h.word, "start": h.start, "end": h.end, "text": h.text}
            for h in hits
        ],
    }


def summary(
    spans: Sequence[TextSpan], hits: Sequence[KeywordHit], lists: Sequence[str]
) -> dict[str, Any]:
    """The manifest's small ``info``: span count, hits per list, the first
    few words hit."""
    per_list = {name: sum(1 for h in hits if h.list == name) for name in lists}
    words = list(dict.fromkeys(h.word for h in hits))
    return {"spans": len(spans), "keywordHits": per_list, "words": words[:10]}


def required_encoders(spec: OcrTask) -> set[str]:
    """None: frames are decoded only."""
    return set()


def run(spec: OcrTask, ctx: TaskContext) -> list[OutputFile]:
    """``ocr.json`` and ``ocr.vtt`` of the input's on-screen text."""
    region = spec.region
    spans = read_text(
        ctx,
        interval_seconds=spec.interval_seconds,
        max_side=spec.max_side,
        min_confidence=spec.min_confidence,
        region=None if region is None else (region.x, region.y, region.width, region.height),
    )
    hits = keyword_hits(spans, [(k.name, k.words) for k in spec.keywords])
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = ctx.out_dir / "ocr.json"
    json_path.write_text(
        json.dumps(document(spec, spans, hits), ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    vtt_path = ctx.out_dir / "ocr.vtt"
    vtt_path.write_text(webvtt([Cue(s.start, s.end, s.text) for s in spans]), encoding="utf-8")
    info = summary(spans, hits, [k.name for k in spec.keywords])
    log.info("%s: %d spans of text, %d keyword hits", ctx.task_name, len(spans), len(hits))
    return [OutputFile(json_path, info), OutputFile(vtt_path, {"cues": len(spans)})]
