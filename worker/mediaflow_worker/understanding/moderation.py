"""The ``moderation`` task: block / review / pass suggestions with the time
segments behind them, written as ``moderation.json``.

Two kinds of evidence, both optional:

- keyword lists (``block`` and ``review``) matched in timed text: on-screen
  text (``understanding.ocr.read_text``) and speech
  (``understanding.speech.transcribe``); the list's name is the label;
- an image classifier the user supplies (an ONNX model from a bucket or
  from the models directory an administrator mounts, ``MEDIAFLOW_MODELS_DIR``)
  run on sampled frames; a label whose score reaches its review or block
  threshold makes segments (``cues.runs`` over the frames that reach it).

A label's suggestion is the worst of its segments, the task's the worst of
its labels ("pass" when none). The shape follows the reference services'
moderation results (a suggestion, labels with scores, segments with start/end
times and the text that matched), written as an open, documented JSON
(docs/understanding.md, "moderation").

NumPy, OpenCV and ONNX Runtime are imported inside functions: the lean
worker imports this module through the task registry.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mediaflow_api.tasks import Classifier, ClassifierModel, ModerationTask, TaskSpec
from mediaflow_worker.errors import AssetError, AssetNotFoundError, ModerationBlockedError
from mediaflow_worker.tasks import AssetFetcher, OutputFile, TaskContext, TaskNotApplicable
from mediaflow_worker.tasks._common import asset_error_as
from mediaflow_worker.understanding.cues import runs
from mediaflow_worker.understanding.keywords import KeywordMatcher, normalise

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

VERSION = 1
OUTPUT_NAME = "moderation.json"
MODELS_DIR_ENV = "MEDIAFLOW_MODELS_DIR"
DEFAULT_MODELS_DIR = "/models"
# A model object is fetched like a watermark image: the bucket download
# refuses more than storage.MAX_ASSET_BYTES; a local run keeps the same bound
# so that it behaves like a Job. Larger models belong on the models volume.
MAX_BUCKET_MODEL_BYTES = 20 * 1024 * 1024
# What a classifier on the models volume may be: ONNX Runtime holds it in
# memory next to the frames (a ResNet-50 is 100 MB).
MAX_DIR_MODEL_BYTES = 256 * 1024 * 1024
# The manifest entry stays small: at most this many labels are counted there.
INFO_MAX_LABELS = 20
INFO_MAX_BYTES = 700

Suggestion = Literal["pass", "review", "block"]
Source = Literal["ocr", "speech", "image"]
_RANK: dict[str, int] = {"pass": 0, "review": 1, "block": 2}


def worst(suggestions: Iterable[str]) -> Suggestion:
    """The strongest of ``suggestions`` ("pass" for none) (pure)."""
    best: Suggestion = "pass"
    for s in suggestions:
        if _RANK[s] > _RANK[best]:
            best = "block" if s == "block" else "review"
    return best


@dataclass(frozen=True)
class TimedText:
    """A piece of recognised text (an OCR span, a speech segment)."""

    start: float
    end: float
    text: str
    confidence: float
    # (start, end, word) of each recognised word, when the recogniser gives
    # them (speech): a keyword's segment is then its words' time.
    words: tuple[tuple[float, float, str], ...] = ()


def word_times(
    words: Sequence[tuple[float, float, str]], keyword: str
) -> list[tuple[float, float]]:
    """Where the (normalised) ``keyword`` is said among ``words``: the time
    of each run of consecutive words that reads as it (pure). Empty when
    the words do not spell it (e.g. a keyword of a script without spaces)."""
    size = len(keyword.split(" "))
    spoken = [normalise(w) for _, _, w in words]
    found = []
    for i in range(len(words) - size + 1):
        if " ".join(spoken[i : i + size]) == keyword:
            found.append((words[i][0], words[i + size - 1][1]))
    return found


@dataclass(frozen=True)
class Segment:
    """One piece of evidence for a label."""

    start: float
    end: float
    source: Source
    score: float
    suggestion: Suggestion
    text: str | None = None
    keyword: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The segment as written in ``moderation.json`` (ms-rounded times)."""
        doc: dict[str, Any] = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "source": self.source,
            "score": round(self.score, 4),
            "suggestion": self.suggestion,
        }
        if self.text is not None:
            doc["text"] = self.text
        if self.keyword is not None:
            doc["keyword"] = self.keyword
        return doc


@dataclass(frozen=True)
class KeywordRule:
    """A user list: its label, its words and what a hit suggests."""

    label: str
    matcher: KeywordMatcher
    suggestion: Suggestion


def keyword_rules(spec: ModerationTask) -> list[KeywordRule]:
    """The task's lists, block lists first (pure)."""
    rules = [KeywordRule(k.name, KeywordMatcher.of(k.words), "block") for k in spec.block]
    rules += [KeywordRule(k.name, KeywordMatcher.of(k.words), "review") for k in spec.review]
    return rules


def keyword_segments(
    texts: Sequence[TimedText], source: Source, rules: Sequence[KeywordRule]
) -> dict[str, list[Segment]]:
    """Label -> a segment per (text, keyword) hit of its list (pure). The
    segment spans the text's time range, or the keyword's words where the
    text has word times (one segment for each time it is said); its score
    is the recognition confidence of the text."""
    found: dict[str, list[Segment]] = {}
    for text in texts:
        for rule in rules:
            for keyword in rule.matcher.find(text.text):
                times = word_times(text.words, keyword) or [(text.start, text.end)]
                found.setdefault(rule.label, []).extend(
                    Segment(
                        start,
                        end,
                        source,
                        max(0.0, min(1.0, text.confidence)),
                        rule.suggestion,
                        text=text.text,
                        keyword=keyword,
                    )
                    for start, end in times
                )
    return found


def classifier_segments(
    scores: Sequence[tuple[float, Sequence[float]]],
    spec: Classifier,
    *,
    duration: float = 0.0,
) -> dict[str, list[Segment]]:
    """Label -> segments where the label's score reaches its lowest
    threshold (pure). ``scores``: (frame time, a score per label) on the grid
    of ``spec.interval_seconds``. A segment's score is the highest in it; it
    is "block" when that reaches the block threshold, else "review". Ends are
    clipped to ``duration`` when it is known."""
    step = spec.interval_seconds
    found: dict[str, list[Segment]] = {}
    for threshold in spec.thresholds:
        index = spec.labels.index(threshold.label)
        lowest = min(t for t in (threshold.review, threshold.block) if t is not None)
        hits = [time for time, values in scores if values[index] >= lowest]
        for start, end in runs(hits, step):
            inside = [values[index] for time, values in scores if start <= time < end]
            top = max(inside)
            blocked = threshold.block is not None and top >= threshold.block
            if duration > 0:
                end = min(end, duration)
            found.setdefault(threshold.label, []).append(
                Segment(start, end, "image", top, "block" if blocked else "review")
            )
    return found


def merge_labels(*parts: Mapping[str, list[Segment]]) -> dict[str, list[Segment]]:
    """Label -> segments of every source (a list and a classifier label of
    the same name are one label) (pure)."""
    merged: dict[str, list[Segment]] = {}
    for part in parts:
        for label, segments in part.items():
            merged.setdefault(label, []).extend(segments)
    return merged


def label_results(labels: Mapping[str, list[Segment]]) -> list[dict[str, Any]]:
    """The ``labels`` of ``moderation.json``: each label's suggestion (its
    worst segment), score (its best segment's) and segments by time; worst
    label first, then by score and name (pure)."""
    ranked: list[tuple[int, float, str, dict[str, Any]]] = []
    for label, segments in labels.items():
        if not segments:
            continue
        ordered = sorted(segments, key=lambda s: (s.start, s.end, s.source, s.keyword or ""))
        suggestion = worst(s.suggestion for s in segments)
        score = round(max(s.score for s in segments), 4)
        doc = {
            "label": label,
            "suggestion": suggestion,
            "score": score,
            "segments": [s.as_json() for s in ordered],
        }
        ranked.append((-_RANK[suggestion], -score, label, doc))
    return [doc for *_, doc in sorted(ranked, key=lambda r: r[:3])]


def summary(suggestion: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's small entry: the suggestion and segments per label,
    worst labels first, as many as fit ``INFO_MAX_LABELS`` and about
    ``INFO_MAX_BYTES`` (a label name may have 100 characters)."""
    counts: dict[str, int] = {}
    for result in labels[:INFO_MAX_LABELS]:
        entry = json.dumps({result["label"]: len(result["segments"])})
        if len(json.dumps(counts)) + len(entry) > INFO_MAX_BYTES:
            break
        counts[result["label"]] = len(result["segments"])
    info: dict[str, Any] = {"suggestion": suggestion, "labels": counts}
    if len(labels) > len(counts):
        info["moreLabels"] = len(labels) - len(counts)
    return info


def blocked_message(task: str, suggestion: str, labels: list[dict[str, Any]]) -> str:
    """The one-line reason of a ``failOn`` failure: the labels and their
    first segment (pure)."""
    parts = []
    for result in labels[:3]:
        first = result["segments"][0]
        what = f" {first['keyword']!r}" if "keyword" in first else ""
        parts.append(
            f"{result['label']} ({result['suggestion']}: {first['source']}{what} at "
            f"{first['start']:g}-{first['end']:g} s)"
        )
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    return f"task {task!r}: moderation suggests {suggestion}: {', '.join(parts)}{more}"


# ---------------------------------------------------------------- classifier


def models_dir() -> Path:
    """The models directory (``MEDIAFLOW_MODELS_DIR``, default ``/models``)."""
    return Path(os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODELS_DIR)


def model_where(model: ClassifierModel) -> str:
    """How a message names the model."""
    if model.path is not None:
        return f"classifier model {model.path} (in the models directory {models_dir()})"
    return f"classifier model s3://{model.bucket}/{model.key}"


def _check_size(path: Path, limit: int, where: str, hint: str) -> Path:
    size = path.stat().st_size
    if size > limit:
        raise AssetError(f"{where} is {size} bytes; the limit is {limit}{hint}")
    if size == 0:
        raise AssetError(f"{where} is empty")
    return path


def dir_model_file(relative: str, where: str) -> Path:
    """The file of a ``path`` model: inside the models directory, present,
    within ``MAX_DIR_MODEL_BYTES``; ``AssetNotFoundError``/``AssetError``."""
    root = models_dir().resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise AssetError(f"{where} leads outside the models directory")
    if not candidate.is_file():
        raise AssetNotFoundError(
            f"{where} does not exist (the models directory is {MODELS_DIR_ENV}; "
            "'mediaflow-worker run --models-dir DIR' locally)"
        )
    return _check_size(candidate, MAX_DIR_MODEL_BYTES, where, "")


def fetch_bucket_model(bucket: str, key: str, fetch: AssetFetcher, task: str) -> Path:
    """A bucket model through the asset fetcher (the preflight's or the
    task's), within ``MAX_BUCKET_MODEL_BYTES``; errors name ``task``."""
    where = f"task {task!r}: classifier model s3://{bucket}/{key}"
    try:
        path = fetch(bucket, key)
    except AssetError as exc:
        raise asset_error_as(exc, "classifier model", f"task {task!r}: ") from exc
    hint = "; put larger models on the models volume (classifier.model.path)"
    return _check_size(path, MAX_BUCKET_MODEL_BYTES, where, hint)


def classifier_models(tasks: Sequence[TaskSpec]) -> list[tuple[str, ClassifierModel]]:
    """(task name, model) of every moderation classifier, for the preflight."""
    return [
        (task.name, task.moderation.classifier.model)
        for task in tasks
        if task.moderation is not None and task.moderation.classifier is not None
    ]


def model_file(model: ClassifierModel, ctx: TaskContext) -> Path:
    """The local file of the classifier model (fetched, bounded)."""
    where = f"task {ctx.task_name!r}: {model_where(model)}"
    if model.path is not None:
        return dir_model_file(model.path, where)
    # Either path or bucket and key (the spec's rule).
    assert model.bucket is not None
    assert model.key is not None
    return fetch_bucket_model(model.bucket, model.key, ctx.fetch_asset, ctx.task_name)


Dim = int | str | None


def check_io(
    inputs: Sequence[tuple[str, Sequence[Dim], str]],
    outputs: Sequence[tuple[str, Sequence[Dim], str]],
    spec: Classifier,
    where: str,
) -> None:
    """``AssetError`` unless the model's inputs and outputs ((name, shape,
    type) as ONNX Runtime reports them; a dimension that is not an int is
    dynamic) fit the spec: one float image input of the spec's layout and
    size with a batch of 1 (or dynamic), a first output of one score per
    label (pure)."""
    if len(inputs) != 1:
        raise AssetError(f"{where} has {len(inputs)} inputs; the classifier hook needs 1 image")
    name, shape, kind = inputs[0]
    if kind != "tensor(float)":
        raise AssetError(f"{where}: input {name!r} is {kind}; it must be tensor(float)")
    width, height = spec.input_size
    expected: list[int] = [1, 3, height, width] if spec.layout == "NCHW" else [1, height, width, 3]
    axes = "NCHW" if spec.layout == "NCHW" else "NHWC"
    if len(shape) != 4 or any(
        isinstance(got, int) and got != want for got, want in zip(shape, expected, strict=True)
    ):
        shown = "x".join(str(d) if isinstance(d, int) else "?" for d in shape)
        raise AssetError(
            f"{where}: input {name!r} is {shown}; the spec ({axes}, inputSize {width}x{height}) "
            f"needs {'x'.join(map(str, expected))}"
        )
    if not outputs:
        raise AssetError(f"{where} has no outputs")
    name, shape, kind = outputs[0]
    if kind not in ("tensor(float)", "tensor(double)", "tensor(float16)"):
        raise AssetError(f"{where}: output {name!r} is {kind}; it must hold float scores")
    # [N, labels], [labels] or [N, labels, 1, 1]: fixed dimensions (besides the
    # batch) must hold one score per label; dynamic ones are checked per frame.
    dims = list(shape[1:]) if len(shape) > 1 else list(shape)
    if dims and all(isinstance(d, int) for d in dims):
        count = math.prod(d for d in dims if isinstance(d, int))
        if count != len(spec.labels):
            raise AssetError(
                f"{where}: output {name!r} holds {count} scores per image; "
                f"classifier.labels has {len(spec.labels)}"
            )


def preprocess(image: npt.NDArray[np.uint8], spec: Classifier) -> npt.NDArray[np.float32]:
    """An RGB frame as the model's input tensor: stretched to ``inputSize``,
    channels in the model's order, 0-1, ``(x - mean) / std``, batch of 1."""
    import cv2
    import numpy as np

    width, height = spec.input_size
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if spec.channel_order == "BGR":
        resized = resized[:, :, ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    tensor = (resized.astype(np.float32) / 255.0 - mean) / std
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[np.newaxis], dtype=np.float32)


def activate(raw: Sequence[float], activation: str) -> list[float]:
    """The model's output as scores 0-1 per label (pure)."""
    values = [float(v) for v in raw]
    if activation == "softmax":
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        total = sum(exps)
        return [e / total for e in exps]
    if activation == "sigmoid":
        return [1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, v)))) for v in values]
    return values


@dataclass
class ClassifierRun:
    """What running the classifier produced."""

    scores: list[tuple[float, list[float]]] = field(default_factory=list)
    seconds: float = 0.0


def load_classifier(path: Path, spec: Classifier, where: str) -> Any:
    """An ONNX Runtime session of the model whose inputs and outputs fit the
    spec; ``AssetError`` when ONNX Runtime cannot load it or they do not fit."""
    from mediaflow_worker.understanding import onnx

    try:
        session = onnx.session(path)
    except Exception as exc:  # onnxruntime raises its own classes for a bad file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise AssetError(f"{where} is not an ONNX model ONNX Runtime can load: {first}") from exc
    check_io(
        [(i.name, list(i.shape), i.type) for i in session.get_inputs()],
        [(o.name, list(o.shape), o.type) for o in session.get_outputs()],
        spec,
        where,
    )
    return session


def classify_frames(spec: Classifier, ctx: TaskContext) -> ClassifierRun:
    """The classifier's scores on frames sampled every ``intervalSeconds``."""
    import time

    import numpy as np

    from mediaflow_worker.understanding.frames import sample_frames

    ctx.display_size()  # TaskNotApplicable without video, before the model loads
    where = f"task {ctx.task_name!r}: {model_where(spec.model)}"
    session = load_classifier(model_file(spec.model, ctx), spec, where)
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name
    result = ClassifierRun()
    started = time.monotonic()
    max_side = min(1280, max(64, 2 * max(spec.input_size)))
    for frame in sample_frames(ctx, fps=1.0 / spec.interval_seconds, max_side=max_side):
        try:
            (raw,) = session.run([output_name], {input_name: preprocess(frame.image, spec)})
        except Exception as exc:  # the user's graph failing on a well-formed input
            message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise AssetError(f"{where} failed on a frame: {message or type(exc).__name__}") from exc
        flat = np.asarray(raw, dtype=np.float64).reshape(-1)
        if flat.size != len(spec.labels):
            raise AssetError(
                f"{where} gave {flat.size} scores for a frame; classifier.labels has "
                f"{len(spec.labels)}"
            )
        result.scores.append((frame.time, activate(flat.tolist(), spec.activation)))
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------- text sources


def ocr_texts(spec: ModerationTask, ctx: TaskContext) -> list[TimedText]:
    """On-screen text as timed text (``understanding.ocr``)."""
    from mediaflow_worker.understanding.ocr import read_text

    settings = spec.sources.ocr
    spans = read_text(
        ctx, interval_seconds=settings.interval_seconds, min_confidence=settings.min_confidence
    )
    return [TimedText(s.start, s.end, s.text, s.confidence) for s in spans]


def speech_texts(spec: ModerationTask, ctx: TaskContext) -> list[TimedText]:
    """Speech as timed text (``understanding.speech``)."""
    from mediaflow_worker.understanding.speech import transcribe

    segments = transcribe(ctx, language=spec.sources.speech.language)
    return [
        TimedText(
            s.start, s.end, s.text, s.confidence, tuple((w.start, w.end, w.word) for w in s.words)
        )
        for s in segments
    ]


def settings_json(spec: ModerationTask) -> dict[str, Any]:
    """The settings used, as the Workflow writes them."""
    doc: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return doc


def run(spec: ModerationTask, ctx: TaskContext) -> list[OutputFile]:
    """Run the moderation task: ``moderation.json`` (and exit 2 with
    ``ModerationBlocked`` when ``failOn`` is reached)."""
    rules = keyword_rules(spec)
    sources: dict[str, dict[str, Any]] = {}
    parts: list[dict[str, list[Segment]]] = []
    ran = False
    if rules:
        texts = (
            ("ocr", spec.sources.ocr.enabled, ocr_texts),
            ("speech", spec.sources.speech.enabled, speech_texts),
        )
        for name, enabled, read in texts:
            if not enabled:
                sources[name] = {"status": "off"}
                continue
            try:
                found = read(spec, ctx)
            except TaskNotApplicable as exc:
                sources[name] = {"status": "skipped", "reason": str(exc)}
                continue
            ran = True
            source: Source = "ocr" if name == "ocr" else "speech"
            parts.append(keyword_segments(found, source, rules))
            sources[name] = {"status": "done", "texts": len(found)}
    if spec.classifier is not None:
        try:
            classified = classify_frames(spec.classifier, ctx)
        except TaskNotApplicable as exc:
            sources["image"] = {"status": "skipped", "reason": str(exc)}
        else:
            ran = True
            parts.append(
                classifier_segments(classified.scores, spec.classifier, duration=ctx.duration)
            )
            sources["image"] = {"status": "done", "frames": len(classified.scores)}
    if not ran:
        reasons = "; ".join(f"{k}: {v.get('reason', v['status'])}" for k, v in sources.items())
        raise TaskNotApplicable(f"nothing to moderate ({reasons})")
    labels = label_results(merge_labels(*parts))
    suggestion = worst(r["suggestion"] for r in labels)
    doc = {
        "version": VERSION,
        "settings": settings_json(spec),
        "suggestion": suggestion,
        "sources": sources,
        "labels": labels,
    }
    out = ctx.out_dir / OUTPUT_NAME
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    log.info("%s: suggestion %s (%d labels)", ctx.task_name, suggestion, len(labels))
    if spec.fail_on is not None and _RANK[suggestion] >= _RANK[spec.fail_on]:
        raise ModerationBlockedError(blocked_message(ctx.task_name, suggestion, labels))
    return [OutputFile(out, summary(suggestion, labels))]


def required_encoders(spec: ModerationTask) -> set[str]:
    """No encoder: the task writes JSON only."""
    return set()
