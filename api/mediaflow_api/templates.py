"""Reusable task settings: the ``MediaTemplate`` and ``ClusterMediaTemplate``
custom resources (``mediaflow.dev/v1alpha1``) and how a task's reference to one
is resolved.

A template's ``spec`` holds exactly one task type's settings (the very models of
``mediaflow_api.tasks``, so the API server validates a template exactly like
inline settings: same schema, same CEL rules) or ``watermarks`` (a list of
overlays; kept for reuse by tools, a task cannot take its settings from it).
A task names one with ``template: {name, kind}`` and may set the template's
task type with the fields it overrides.

``resolve_tasks`` is the one implementation of the resolution, PURE (templates
are looked up through a callable): the operator calls it with its in-memory
index of templates when it renders a Job (the Job carries the merged snapshot,
so a later edit of the template changes new Jobs only), ``mediaflow-worker run``
with the templates read from files.

Merge rule: template settings < the task's fields; nested objects merge field by
field, lists and scalars are replaced. The API server writes every field's
default into a stored Workflow, so a task's field whose value is its default
never replaces a value the template sets: a task cannot set a field back to its
default over a template (use another template). Locally written files behave
the same.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo

from mediaflow_api.tasks import (
    CLUSTER_TEMPLATE_KIND as CLUSTER_TEMPLATE_KIND,
)
from mediaflow_api.tasks import (
    TASK_MODELS,
    TASK_TYPES,
    SpecModel,
    TaskSpec,
    TranscodeTask,
)
from mediaflow_api.tasks import (
    TEMPLATE_KIND as TEMPLATE_KIND,
)
from mediaflow_api.tasks.common import cel, count_set, exactly_one_cel
from mediaflow_api.tasks.template_ref import TemplateReference
from mediaflow_api.workflow_fields import ApiModel

GROUP = "mediaflow.dev"
VERSION = "v1alpha1"
PLURAL = "mediatemplates"
SINGULAR = "mediatemplate"
CLUSTER_PLURAL = "clustermediatemplates"
CLUSTER_SINGULAR = "clustermediatemplate"
SHORT_NAMES = ["mft"]
CLUSTER_SHORT_NAMES = ["cmft"]
WATERMARKS = "watermarks"
# What a template may hold: one task type, or watermarks.
TEMPLATE_TYPES: list[str] = [*TASK_TYPES, WATERMARKS]
USED_BY_MAX = 50


def _template_fields() -> dict[str, Any]:
    """The task-type fields of TaskSpec (same models, aliases and descriptions)
    plus ``watermarks`` (the transcode's list of overlays)."""
    fields: dict[str, Any] = {}
    for name, info in TaskSpec.model_fields.items():
        if name in ("name", "template"):
            continue
        if name == "watermark_template":
            continue
        fields[name] = (info.annotation, copy.copy(info))
    watermarks = copy.copy(TranscodeTask.model_fields["watermarks"])
    watermarks.description = (
        "Watermark template: image or text overlays that tasks add with watermarkTemplate "
        "(drawn before the task's own)."
    )
    fields[WATERMARKS] = (TranscodeTask.model_fields["watermarks"].annotation, watermarks)
    return fields


def _one_kind_rule(schema: dict[str, JsonValue]) -> None:
    schema["x-kubernetes-validations"] = [
        cel(exactly_one_cel(TEMPLATE_TYPES), "set exactly one of " + ", ".join(TEMPLATE_TYPES))
    ]


class _TemplateSpecBase(SpecModel):
    """What a template holds: exactly one task type's settings, or watermarks."""

    model_config = ConfigDict(json_schema_extra=_one_kind_rule)

    @model_validator(mode="after")
    def _exactly_one(self) -> _TemplateSpecBase:
        # The pydantic twin of _one_kind_rule (fields added by create_model below).
        if count_set(self, list(type(self).model_fields)) != 1:
            raise ValueError("set exactly one of " + ", ".join(TEMPLATE_TYPES))
        return self

    @property
    def kind(self) -> str:
        """The task type (camelCase) or ``watermarks``."""
        for name, info in type(self).model_fields.items():
            if getattr(self, name) is not None:
                return info.alias or name
        raise AssertionError("validated template spec is empty")  # pragma: no cover


# One field per task type, read from TaskSpec: a new task type is a template kind too.
MediaTemplateSpec: type[_TemplateSpecBase] = create_model(
    "MediaTemplateSpec",
    __base__=_TemplateSpecBase,
    __doc__=_TemplateSpecBase.__doc__,
    **_template_fields(),
)


class MediaTemplateStatus(ApiModel):
    """Observed state of a template, written by the operator."""

    used_by: list[str] = Field(
        default_factory=list,
        alias="usedBy",
        max_length=USED_BY_MAX,
        description=(
            f"Workflows that refer to the template, as <namespace>/<name> (the first "
            f"{USED_BY_MAX} in order)."
        ),
    )
    workflow_count: int = Field(
        default=0, ge=0, alias="workflowCount", description="How many Workflows refer to it."
    )


# --- resolution ---------------------------------------------------------------------


class TemplateError(ValueError):
    """A task's template is missing, of another type, or merges into invalid settings.

    ``reason`` is CamelCase (TemplateNotFound, TemplateKindMismatch, TemplateInvalid)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, order=True)
class TemplateKey:
    """A template's identity: kind, namespace ('' for cluster templates) and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


# How a resolution finds a template's spec (as stored: a JSON dict), None when absent.
TemplateLookup = Callable[[TemplateKey], Mapping[str, Any] | None]


def template_key(task: TaskSpec, namespace: str) -> TemplateKey | None:
    """The key of the template ``task`` takes its settings from (None without one)."""
    return _key(task.template, namespace)


def template_keys(task: TaskSpec, namespace: str) -> list[TemplateKey]:
    """The keys of every template ``task`` refers to (settings, watermarks)."""
    found = [_key(task.template, namespace), _key(task.watermark_template, namespace)]
    return [k for k in found if k is not None]


def _key(ref: TemplateReference | None, namespace: str) -> TemplateKey | None:
    if ref is None:
        return None
    ns = "" if ref.kind == CLUSTER_TEMPLATE_KIND else namespace
    return TemplateKey(ref.kind, ns, ref.name)


def template_keys_of_raw(spec: Mapping[str, Any], namespace: str) -> list[TemplateKey]:
    """The templates a Workflow's raw ``spec`` refers to (sorted, unique); tolerant of a
    spec that does not parse (the operator's index reads every stored object)."""
    keys: set[TemplateKey] = set()
    for task in spec.get("tasks") or []:
        for field in ("template", "watermarkTemplate"):
            ref = task.get(field) if isinstance(task, Mapping) else None
            if not isinstance(ref, Mapping) or not ref.get("name"):
                continue
            kind = str(ref.get("kind") or TEMPLATE_KIND)
            ns = "" if kind == CLUSTER_TEMPLATE_KIND else namespace
            keys.add(TemplateKey(kind, ns, str(ref["name"])))
    return sorted(keys)


def _submodel(info: FieldInfo) -> type[BaseModel] | None:
    """The model of an object-valued field (``X | None`` -> ``X``), else None."""
    candidates = [info.annotation, *typing.get_args(info.annotation)]
    for arg in candidates:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _default_json(info: FieldInfo) -> Any:
    """The field's default as JSON (PydanticUndefined when it has none)."""
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def _fields_by_alias(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def merge_settings(
    model: type[BaseModel], base: Mapping[str, Any], override: Mapping[str, Any]
) -> dict[str, Any]:
    """``base`` (a template's settings, JSON) with ``override`` (a task's) on top:
    objects merged field by field, everything else replaced, except that an
    override equal to the field's default keeps the base's value (module docstring)."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    fields = _fields_by_alias(model)
    for key, value in override.items():
        info = fields.get(key)
        sub = _submodel(info) if info is not None else None
        if sub is not None and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_settings(sub, out[key], value)
        elif key in out and info is not None and value == _default_json(info):
            continue
        else:
            out[key] = copy.deepcopy(value)
    return out


def _template_kind(spec: Mapping[str, Any]) -> str | None:
    kinds = [k for k in TEMPLATE_TYPES if spec.get(k) is not None]
    return kinds[0] if len(kinds) == 1 else None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc}: {first['msg']}" if loc else str(first["msg"])


def resolve_task(task: TaskSpec, key: TemplateKey, template: Mapping[str, Any]) -> TaskSpec:
    """``task`` with the settings of ``template`` (its stored ``spec``) merged under
    its own; the result has no reference. Raises ``TemplateError``."""
    kind = _template_kind(template)
    if kind is None or kind == WATERMARKS:
        what = "a watermarks template" if kind == WATERMARKS else "not one task type's settings"
        raise TemplateError(
            "TemplateKindMismatch",
            f"task {task.name!r}: {key} is {what}; a task needs one with " + ", ".join(TASK_TYPES),
        )
    own = task.override_kind
    if own is not None and own != kind:
        raise TemplateError(
            "TemplateKindMismatch",
            f"task {task.name!r}: {key} holds {kind} settings, the task sets {own}",
        )
    model = TASK_MODELS[kind]
    override: dict[str, Any] = {}
    if own is not None:
        override = task.type_spec.model_dump(
            by_alias=True, exclude_unset=True, exclude_none=True, mode="json"
        )
    merged = merge_settings(model, template[kind], override)
    try:
        return TaskSpec.model_validate({"name": task.name, kind: merged})
    except ValidationError as exc:
        raise TemplateError(
            "TemplateInvalid",
            f"task {task.name!r} with {key}: {_first_error(exc)}",
        ) from None


def add_watermarks(task: TaskSpec, key: TemplateKey, template: Mapping[str, Any]) -> TaskSpec:
    """``task`` (settings resolved) with the overlays of the watermarks template
    ``template`` drawn before its own; the result has no watermark reference."""
    if _template_kind(template) != WATERMARKS:
        raise TemplateError(
            "TemplateKindMismatch",
            f"task {task.name!r}: {key} is not a watermarks template (watermarkTemplate)",
        )
    kind = task.kind
    if WATERMARKS not in _fields_by_alias(TASK_MODELS[kind]):
        raise TemplateError(
            "TemplateKindMismatch",
            f"task {task.name!r}: {kind} takes no watermarks (watermarkTemplate {key})",
        )
    settings = task.type_spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    settings[WATERMARKS] = [*template[WATERMARKS], *settings.get(WATERMARKS, [])]
    try:
        return TaskSpec.model_validate({"name": task.name, kind: settings})
    except ValidationError as exc:
        raise TemplateError(
            "TemplateInvalid", f"task {task.name!r} with {key}: {_first_error(exc)}"
        ) from None


def resolve_tasks(
    tasks: Iterable[TaskSpec], namespace: str, lookup: TemplateLookup
) -> list[TaskSpec]:
    """Every task with its template resolved (tasks without one unchanged).
    Raises ``TemplateError`` for the first task whose template is missing or does
    not fit; its message names the task and the template."""
    resolved: list[TaskSpec] = []
    for task in tasks:
        key = template_key(task, namespace)
        marks_key = _key(task.watermark_template, namespace)
        if key is not None:
            task = resolve_task(task, key, _find(task, key, lookup)).model_copy(
                update={"watermark_template": task.watermark_template}
            )
        if marks_key is not None:
            task = add_watermarks(task, marks_key, _find(task, marks_key, lookup))
        resolved.append(task)
    return resolved


def _find(task: TaskSpec, key: TemplateKey, lookup: TemplateLookup) -> Mapping[str, Any]:
    template = lookup(key)
    if template is None:
        raise TemplateError("TemplateNotFound", f"task {task.name!r}: {key} not found")
    return template


def template_kind_of(obj: Mapping[str, Any]) -> Literal["MediaTemplate", "ClusterMediaTemplate"]:
    """The kind of a template object (``kind`` as stored)."""
    kind = obj.get("kind")
    return "ClusterMediaTemplate" if kind == CLUSTER_TEMPLATE_KIND else "MediaTemplate"


def key_of(obj: Mapping[str, Any]) -> TemplateKey:
    """The key of a template object as stored (its kind decides the namespace)."""
    meta = obj.get("metadata") or {}
    kind = template_kind_of(obj)
    ns = "" if kind == CLUSTER_TEMPLATE_KIND else str(meta.get("namespace") or "")
    return TemplateKey(kind, ns, str(meta.get("name") or ""))


PRINTER_COLUMNS = [
    {"name": "Workflows", "type": "integer", "jsonPath": ".status.workflowCount"},
    {"name": "Used-By", "type": "string", "jsonPath": ".status.usedBy", "priority": 0},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
