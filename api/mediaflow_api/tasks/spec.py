"""The task entry (``TaskSpec``) and the table of task types.

``TaskSpec`` has one optional field per task type, named after the type (the
camelCase alias is the type's name in the Workflow, e.g. ``animatedImage``).
Those fields *are* the table of task types: ``TASK_MODELS`` and ``TASK_TYPES``
are read from them, so adding a type to the contract is its model plus one
field here.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from mediaflow_api.tasks.adaptive_streaming import AdaptiveStreamingTask
from mediaflow_api.tasks.analysis import AnalysisTask
from mediaflow_api.tasks.animated_image import AnimatedImageTask
from mediaflow_api.tasks.common import (
    TASK_NAME_PATTERN,
    SpecModel,
    cel,
    count_set,
    exactly_one_cel,
)
from mediaflow_api.tasks.cover import CoverTask
from mediaflow_api.tasks.moderation import ModerationTask
from mediaflow_api.tasks.ocr import OcrTask
from mediaflow_api.tasks.output import NUMBERED_TYPES, TaskOutput
from mediaflow_api.tasks.quality import QualityTask
from mediaflow_api.tasks.snapshot import SnapshotTask
from mediaflow_api.tasks.speech import SpeechTask
from mediaflow_api.tasks.sprite import SpriteTask
from mediaflow_api.tasks.template_ref import TemplateReference
from mediaflow_api.tasks.transcode import TranscodeTask

# TaskSpec fields that are not a task type.
_NOT_TYPES = ("name", "template", "watermark_template", "output")


def _type_fields(model: type[BaseModel]) -> dict[str, str]:
    """Task type (camelCase) -> Python field name, in declaration order."""
    return {
        info.alias or name: name
        for name, info in model.model_fields.items()
        if name not in _NOT_TYPES
    }


def _one_type_rule(schema: dict[str, JsonValue], cls: type[Any]) -> None:
    """The CEL twin of ``TaskSpec._exactly_one_type`` (computed from the fields):
    exactly one type, or, with a template, at most one (the overrides)."""
    kinds = list(_type_fields(cls))
    exactly_one = exactly_one_cel(kinds)
    at_most_one = exactly_one.replace("size() == 1", "size() <= 1")
    schema["x-kubernetes-validations"] = [
        cel(
            f"has(self.template) ? {at_most_one} : {exactly_one}",
            "set exactly one of " + ", ".join(kinds) + " (with a template: at most one)",
        ),
        *OUTPUT_TASK_CEL,
    ]


# Twins of ``TaskSpec._output_fits_the_type``.
OUTPUT_TASK_CEL: list[JsonValue] = [
    cel(
        "!has(self.output) || !("
        + " || ".join(f"has(self.{k})" for k in NUMBERED_TYPES)
        + ") || self.output.fileName.contains('{number}')",
        "output.fileName of a " + " or ".join(NUMBERED_TYPES) + " task must contain {number} "
        "(it writes several files)",
    ),
    cel(
        "!has(self.output) || !has(self.adaptiveStreaming) || "
        "(self.output.fileName.lastIndexOf('/') > 0 && self.output.fileName.substring(0, "
        "self.output.fileName.lastIndexOf('/')).contains('{inputName}'))",
        "output.fileName of an adaptiveStreaming task names the playlist and must put "
        "{inputName} in a directory (e.g. '{inputName}/{taskName}.{format}'): the "
        "segments go next to the playlist",
    ),
    cel(
        "!has(self.output) || (!has(self.output.segmentName) && !has(self.output.variantName)) "
        "|| (has(self.adaptiveStreaming) && (!has(self.adaptiveStreaming.format) || "
        "self.adaptiveStreaming.format == 'hls'))",
        "output.segmentName and output.variantName are for HLS "
        "(adaptiveStreaming, format hls) only",
    ),
    cel(
        "!has(self.output) || !has(self.transcode) || !has(self.transcode.fileName)",
        "set output.fileName or transcode.fileName, not both",
    ),
]


class TaskSpec(SpecModel):
    """One entry of Workflow.spec.tasks: a name and exactly one task type."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=TASK_NAME_PATTERN,
        description=(
            "Task name, unique in the Workflow (DNS label: lower case, digits, '-'). "
            "Outputs go under <output dir>/<name>/ unless 'output' names them."
        ),
    )
    output: TaskOutput | None = Field(
        default=None,
        description=(
            "Custom names: this task's files go to bucket/prefix + fileName (a template) instead "
            "of <output dir>/<name>/. manifest.json stays in the Workflow's output directory "
            "and lists every final key. See docs/worker.md, 'Output layout'."
        ),
    )
    template: TemplateReference | None = Field(
        default=None,
        description=(
            "Take the settings from a MediaTemplate or ClusterMediaTemplate. The task may also "
            "set the template's task type with the fields to override (they win over the "
            "template's, nested objects merged field by field); the type must be the "
            "template's. The operator resolves the reference when it creates a Job: the Job "
            "carries a snapshot of the merged settings."
        ),
    )
    watermark_template: TemplateReference | None = Field(
        default=None,
        alias="watermarkTemplate",
        description=(
            "Take overlays from a watermarks template (a MediaTemplate or ClusterMediaTemplate "
            "holding 'watermarks'): they are drawn first, the task's own watermarks on top. "
            "Only for task types that have watermarks. Resolved into the Job's snapshot like "
            "'template'."
        ),
    )
    # One field per task type (see the module docstring).
    transcode: TranscodeTask | None = Field(
        default=None, description="Encode into one file (container, codecs, size, watermarks)."
    )
    snapshot: SnapshotTask | None = Field(default=None, description="Still images.")
    sprite: SpriteTask | None = Field(default=None, description="Sprite sheets + WebVTT.")
    animated_image: AnimatedImageTask | None = Field(
        default=None, alias="animatedImage", description="Animated GIF or WebP preview."
    )
    adaptive_streaming: AdaptiveStreamingTask | None = Field(
        default=None, alias="adaptiveStreaming", description="HLS or DASH ladder."
    )
    analysis: AnalysisTask | None = Field(
        default=None, description="Media metadata and content analysis as JSON."
    )
    quality: QualityTask | None = Field(
        default=None,
        description=(
            "Quality inspection without a model (black, frozen, blurred pictures, loudness, "
            "silence, QR codes...): findings with times as JSON; optionally fails bad input."
        ),
    )
    cover: CoverTask | None = Field(
        default=None,
        description="Smart covers: the most representative sharp, well-exposed frames, scored.",
    )
    ocr: OcrTask | None = Field(
        default=None,
        description="On-screen text on sampled frames: lines, boxes, time ranges, keyword hits.",
    )
    speech: SpeechTask | None = Field(
        default=None,
        description=(
            "Speech to text (US English only): segments, words, transcript, subtitles, "
            "voice activity and keyword hits as JSON (worker-ml image)."
        ),
    )
    moderation: ModerationTask | None = Field(
        default=None,
        description="Moderation suggestions (block/review/pass) with segments: keyword lists in "
        "on-screen text and speech, and an image classifier you supply (ONNX).",
    )

    @model_validator(mode="after")
    def _exactly_one_type(self) -> TaskSpec:
        count = count_set(self, list(_TASK_FIELDS.values()))
        if self.template is not None:
            if count > 1:
                raise ValueError(
                    f"task {self.name!r}: set at most one of {', '.join(TASK_TYPES)} "
                    "with a template (the overrides of the template's type)"
                )
        elif count != 1:
            raise ValueError(f"task {self.name!r}: set exactly one of {', '.join(TASK_TYPES)}")
        return self

    @model_validator(mode="after")
    def _output_fits_the_type(self) -> TaskSpec:
        if self.output is None:
            return self
        # A task typed by its template alone is checked once resolved.
        kind = self.override_kind
        if kind in NUMBERED_TYPES and "{number}" not in self.output.file_name:
            raise ValueError(
                f"task {self.name!r}: output.fileName of a {kind} task must contain "
                "{number} (it writes several files)"
            )
        directory = self.output.file_name.rpartition("/")[0]
        if self.adaptive_streaming is not None and "{inputName}" not in directory:
            raise ValueError(
                f"task {self.name!r}: output.fileName of an adaptiveStreaming task names the "
                "playlist and must put {inputName} in a directory (e.g. "
                "'{inputName}/{taskName}.{format}'): the segments go next to the playlist"
            )
        streaming_names = self.output.segment_name or self.output.variant_name
        hls = self.adaptive_streaming is not None and self.adaptive_streaming.format == "hls"
        if streaming_names and not hls:
            raise ValueError(
                f"task {self.name!r}: output.segmentName and output.variantName are for HLS "
                "(adaptiveStreaming, format hls) only"
            )
        if self.transcode is not None and self.transcode.file_name is not None:
            raise ValueError(
                f"task {self.name!r}: set output.fileName or transcode.fileName, not both"
            )
        return self

    @property
    def refers_to_templates(self) -> bool:
        """Whether the task names a template (settings or watermarks): it must be
        resolved (``mediaflow_api.templates.resolve_tasks``) before it runs."""
        return self.template is not None or self.watermark_template is not None

    @property
    def override_kind(self) -> str | None:
        """The task type that is set, or None (a template's task that overrides nothing)."""
        for kind, field in _TASK_FIELDS.items():
            if getattr(self, field) is not None:
                return kind
        return None

    @property
    def kind(self) -> str:
        """The camelCase name of the task type that is set (e.g. ``animatedImage``)."""
        kind = self.override_kind
        if kind is None:
            raise ValueError(
                f"task {self.name!r} takes its type from template {self.template.name!r} "
                "(not resolved: mediaflow_api.templates.resolve_tasks)"
                if self.template
                else f"task {self.name!r} has no task type"
            )
        return kind

    @property
    def type_spec(self) -> SpecModel:
        """The settings of the task type that is set (e.g. the ``TranscodeTask``)."""
        spec: SpecModel = getattr(self, _TASK_FIELDS[self.kind])
        return spec

    model_config = ConfigDict(json_schema_extra=_one_type_rule)


def _field_model(name: str) -> type[SpecModel]:
    """The model of one task-type field (``X | None`` -> ``X``)."""
    annotation = TaskSpec.model_fields[name].annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, SpecModel):
            return arg
    raise AssertionError(f"TaskSpec.{name} is not an optional task model: {annotation}")


# Task type (camelCase, as written in a Workflow) -> TaskSpec field name.
_TASK_FIELDS: dict[str, str] = _type_fields(TaskSpec)
# The task types, in the order the CRD lists them.
TASK_TYPES: list[str] = list(_TASK_FIELDS)
# Task type -> the model of its settings (the worker's handler table is keyed
# by the same names; a worker unit test keeps the two in step).
TASK_MODELS: dict[str, type[SpecModel]] = {
    kind: _field_model(field) for kind, field in _TASK_FIELDS.items()
}

# The task types that need the ``mediaflow[ml]`` extra (models, ONNX Runtime,
# OpenCV): their Jobs run the worker-ml image unless the Workflow names one.
ML_TASK_TYPES: frozenset[str] = frozenset(
    kind for kind, model in TASK_MODELS.items() if model.needs_ml
)


def needs_ml_image(tasks: list[TaskSpec]) -> bool:
    """Whether any of ``tasks`` (resolved: each has its type) needs the
    worker-ml image."""
    return any(task.kind in ML_TASK_TYPES for task in tasks)


# For the ``tasks`` list of the Workflow spec (the list itself lives there).
TASKS_MAX_ITEMS = 20


def _or_empty(var: str, field: str) -> str:
    return f"(has({var}.output.{field}) ? {var}.output.{field} : '')"


TASKS_LIST_VALIDATIONS: list[JsonValue] = [
    cel(
        "self.all(t, self.exists_one(u, u.name == t.name))",
        "task names must be unique",
    ),
    cel(
        "self.all(t, !has(t.output) || self.exists_one(u, has(u.output) && "
        f"{_or_empty('u', 'bucket')} == {_or_empty('t', 'bucket')} && "
        f"{_or_empty('u', 'prefix')} == {_or_empty('t', 'prefix')} && "
        "u.output.fileName == t.output.fileName))",
        "two tasks must not write to the same output names (bucket, prefix and fileName)",
    ),
]


def check_unique_task_names(tasks: list[TaskSpec]) -> list[TaskSpec]:
    """Raise ``ValueError`` if two tasks share a name or custom output names
    (pydantic twin of ``TASKS_LIST_VALIDATIONS``); return the list unchanged
    otherwise."""
    seen: set[str] = set()
    names: dict[tuple[str, str, str], str] = {}
    for task in tasks:
        if task.name in seen:
            raise ValueError(f"task names must be unique: {task.name!r} appears twice")
        seen.add(task.name)
        if task.output is not None:
            out = task.output
            where = (out.bucket or "", out.prefix, out.file_name)
            if where in names:
                raise ValueError(
                    "two tasks must not write to the same output names (bucket, prefix and "
                    f"fileName): {names[where]!r} and {task.name!r}"
                )
            names[where] = task.name
    return tasks


def task_json(task: TaskSpec) -> dict[str, Any]:
    """The canonical JSON form of a task (aliases, no nulls)."""
    return task.model_dump(by_alias=True, exclude_none=True, mode="json")
