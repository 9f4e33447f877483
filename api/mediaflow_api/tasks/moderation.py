"""The ``moderation`` task: block/review/pass suggestions with time segments
from user keyword lists (matched in on-screen text and speech) and from an
image classifier the user supplies (an ONNX model with its labels and
thresholds)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel, cel
from mediaflow_api.tasks.keywords import KeywordList

# Bounds: a Workflow cannot ask for thousands of lists, labels or thresholds.
MAX_LISTS = 20
MAX_LABELS = 1000
MAX_THRESHOLDS = 100
Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# A file under the models directory: relative, no "..", no hidden first part.
MODEL_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$"


class OcrSource(SpecModel):
    """On-screen text (the ``ocr`` task's recogniser) as a text source."""

    enabled: bool = Field(default=True, description="Read on-screen text.")
    interval_seconds: float = Field(
        default=1.0,
        alias="intervalSeconds",
        ge=0.1,
        le=60,
        description="Seconds between the frames read (text shown for less may be missed).",
    )
    min_confidence: float = Field(
        default=0.6,
        alias="minConfidence",
        ge=0,
        le=1,
        description="Lines recognised with less confidence (0-1) are not matched.",
    )


class SpeechSource(SpecModel):
    """Speech (the ``speech`` task's recogniser) as a text source."""

    enabled: bool = Field(default=True, description="Transcribe the speech.")
    language: Literal["en-US"] = Field(
        default="en-US",
        description="Language of the speech; only US English has a model in the worker-ml image.",
    )


class ModerationSources(SpecModel):
    """Where the keyword lists are looked for. Both on by default."""

    ocr: OcrSource = Field(default_factory=OcrSource, description="On-screen text.")
    speech: SpeechSource = Field(default_factory=SpeechSource, description="Speech.")


class ClassifierModel(SpecModel):
    """Where the ONNX model is: an object in a bucket (``bucket`` and ``key``,
    at most 20 MiB) or a file under the models directory the administrator
    mounts into the worker (``path``, at most 256 MiB)."""

    bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=63,
        pattern=BUCKET_PATTERN,
        description="Bucket of the model object (with key).",
    )
    key: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Object key of the model."
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=MODEL_PATH_PATTERN,
        description=(
            "A file under the worker's models directory (MEDIAFLOW_MODELS_DIR, default /models; "
            "'mediaflow-worker run --models-dir'), relative, e.g. 'nsfw/classifier.onnx'."
        ),
    )

    @model_validator(mode="after")
    def _one_place(self) -> ClassifierModel:
        # ".." cannot pass the path pattern (no part starts with a dot).
        in_bucket = self.bucket is not None and self.key is not None
        partial = (self.bucket is None) != (self.key is None)
        if partial or in_bucket == (self.path is not None):
            raise ValueError("classifier.model: set either bucket and key, or path")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.bucket) && has(self.key) && !has(self.path)) || "
                    "(!has(self.bucket) && !has(self.key) && has(self.path))",
                    "classifier.model: set either bucket and key, or path",
                ),
            ]
        }
    )


class LabelThreshold(SpecModel):
    """The scores (0-1) from which a label is suggested for review or block."""

    label: Label = Field(description="One of classifier.labels.")
    review: float | None = Field(
        default=None, ge=0, le=1, description="Frames scoring at least this are 'review'."
    )
    block: float | None = Field(
        default=None, ge=0, le=1, description="Frames scoring at least this are 'block'."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LabelThreshold:
        if self.review is None and self.block is None:
            raise ValueError(f"threshold of {self.label!r}: set review, block or both")
        if self.review is not None and self.block is not None and self.review > self.block:
            raise ValueError(f"threshold of {self.label!r}: review must not be above block")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.review) || has(self.block)", "set review, block or both"),
                cel(
                    "!has(self.review) || !has(self.block) || self.review <= self.block",
                    "review must not be above block",
                ),
            ]
        }
    )


class Classifier(SpecModel):
    """An image classifier the user supplies: an ONNX model with one float
    input (1 x 3 x H x W or 1 x H x W x 3) and one output of one score per
    label, run on frames sampled every ``intervalSeconds``. Each frame is
    stretched to ``inputSize``, its pixels scaled to 0-1, then
    ``(pixel - mean) / std`` per channel."""

    model: ClassifierModel = Field(description="The ONNX model file.")
    labels: list[Label] = Field(
        min_length=1,
        max_length=MAX_LABELS,
        description="The label of each output score, in the model's order (unique).",
        # The server refuses duplicates itself: a CEL rule comparing every
        # pair of 1000 labels would pass the API server's cost budget.
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    input_size: list[int] = Field(
        alias="inputSize",
        min_length=2,
        max_length=2,
        description="Width and height the model takes, e.g. [224, 224] (8-1024 each).",
    )
    mean: list[float] = Field(
        default_factory=lambda: [0.0, 0.0, 0.0],
        min_length=3,
        max_length=3,
        description="Per-channel mean (in the model's channel order) of 0-1 pixels.",
    )
    std: list[float] = Field(
        default_factory=lambda: [1.0, 1.0, 1.0],
        min_length=3,
        max_length=3,
        description="Per-channel standard deviation of 0-1 pixels (not 0).",
    )
    layout: Literal["NCHW", "NHWC"] = Field(
        default="NCHW", description="Axis order of the input tensor."
    )
    channel_order: Literal["RGB", "BGR"] = Field(
        default="RGB", alias="channelOrder", description="Channel order the model expects."
    )
    activation: Literal["none", "softmax", "sigmoid"] = Field(
        default="none",
        description=(
            "Applied to the output: none (the model outputs probabilities), softmax (logits of "
            "exclusive classes), sigmoid (independent logits)."
        ),
    )
    thresholds: list[LabelThreshold] = Field(
        min_length=1,
        max_length=MAX_THRESHOLDS,
        description="The labels to report and their review/block scores; other labels are ignored.",
    )
    interval_seconds: float = Field(
        default=1.0,
        alias="intervalSeconds",
        ge=0.1,
        le=60,
        description="Seconds between the frames classified.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Classifier:
        if not all(8 <= side <= 1024 for side in self.input_size):
            raise ValueError("classifier.inputSize: width and height must be 8-1024")
        if any(s <= 0 for s in self.std):
            raise ValueError("classifier.std: every value must be above 0")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("classifier.labels must be unique")
        for threshold in self.thresholds:
            if threshold.label not in self.labels:
                raise ValueError(
                    f"classifier.thresholds: {threshold.label!r} is not one of classifier.labels"
                )
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.inputSize.all(s, s >= 8 && s <= 1024)",
                    "classifier.inputSize: width and height must be 8-1024",
                ),
                cel(
                    "!has(self.std) || self.std.all(s, s > 0.0)",
                    "classifier.std: every value must be above 0",
                ),
                cel(
                    "self.thresholds.all(t, t.label in self.labels)",
                    "classifier.thresholds: every label must be one of classifier.labels",
                ),
            ]
        }
    )


class ModerationTask(SpecModel):
    """Moderation suggestions (block / review / pass) with the time segments
    behind them, written as ``moderation.json``: keyword lists matched in
    on-screen text and speech, and an optional image classifier."""

    needs_ml: ClassVar[bool] = True

    block: list[KeywordList] = Field(
        default_factory=list,
        max_length=MAX_LISTS,
        description="Lists whose words make the suggestion 'block' (the list name is the label).",
    )
    review: list[KeywordList] = Field(
        default_factory=list,
        max_length=MAX_LISTS,
        description="Lists whose words make the suggestion 'review' (the list name is the label).",
    )
    sources: ModerationSources = Field(
        default_factory=ModerationSources,
        description="Where the lists are looked for: on-screen text, speech (both by default).",
    )
    classifier: Classifier | None = Field(
        default=None, description="An image classifier (ONNX) run on sampled frames."
    )
    fail_on: Literal["block", "review"] | None = Field(
        default=None,
        alias="failOn",
        description=(
            "Fail the object (exit 2, reason ModerationBlocked) when the suggestion is this or "
            "worse: 'block', or 'review' (review or block)."
        ),
    )

    @model_validator(mode="after")
    def _something_to_do(self) -> ModerationTask:
        lists = [*self.block, *self.review]
        if not lists and self.classifier is None:
            raise ValueError("moderation: set block or review lists, a classifier, or both")
        names = [k.name for k in lists]
        if len(set(names)) != len(names):
            raise ValueError("moderation: the names of block and review lists must be unique")
        if lists and not (self.sources.ocr.enabled or self.sources.speech.enabled):
            raise ValueError("moderation: keyword lists need sources.ocr or sources.speech enabled")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.block) && size(self.block) > 0) || "
                    "(has(self.review) && size(self.review) > 0) || has(self.classifier)",
                    "moderation: set block or review lists, a classifier, or both",
                ),
                cel(
                    "(!has(self.block) || self.block.all(b, "
                    "self.block.filter(c, c.name == b.name).size() == 1)) && "
                    "(!has(self.review) || self.review.all(r, "
                    "self.review.filter(c, c.name == r.name).size() == 1)) && "
                    "(!has(self.block) || !has(self.review) || "
                    "self.block.all(b, !self.review.exists(r, r.name == b.name)))",
                    "moderation: the names of block and review lists must be unique",
                ),
                cel(
                    "((!has(self.block) || size(self.block) == 0) && "
                    "(!has(self.review) || size(self.review) == 0)) || !has(self.sources) || "
                    "(!has(self.sources.ocr) || !has(self.sources.ocr.enabled) || "
                    "self.sources.ocr.enabled) || "
                    "(!has(self.sources.speech) || !has(self.sources.speech.enabled) || "
                    "self.sources.speech.enabled)",
                    "moderation: keyword lists need sources.ocr or sources.speech enabled",
                ),
            ]
        }
    )
