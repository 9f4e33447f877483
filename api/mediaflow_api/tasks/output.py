"""Custom output names of one task (``tasks[].output``): bucket, prefix and a
file-name template with the reference service's variables.

Without ``output`` a task's files live in the Workflow's own output directory
of the input (``metadata.output_dir_for``). With it, each file's key is
``prefix`` + the rendered ``fileName`` in ``bucket``: the manifest stays in the
Workflow's output directory and lists every final bucket and key.

Template grammar (the schema pattern says it all, so no CEL twin is needed for
it): path segments separated by ``/``, each made of ``A-Z a-z 0-9 _ - = + .``
(not starting with ``.``) and the variables ``{inputName}``, ``{inputExt}``,
``{inputDir}``, ``{taskName}``, ``{format}``, ``{number}``. ``render`` and
``numbered_index_name`` are pure and shared by ``mediaflow-worker job`` and
``run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, StringConstraints, field_validator

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel

VARIABLES = ("inputName", "inputExt", "inputDir", "taskName", "format", "number")
# HLS segment and variant playlist names also know the rendition.
STREAM_VARIABLES = (*VARIABLES, "rendition")


def _template_pattern(variables: tuple[str, ...]) -> str:
    var = r"\{(?:" + "|".join(variables) + r")\}"
    char = r"[A-Za-z0-9_=+-]"
    segment = rf"(?:{char}|{var})(?:{char}|\.|{var})*"
    return rf"^{segment}(?:/{segment})*$"


_VAR = r"\{(?:" + "|".join(STREAM_VARIABLES) + r")\}"
FILE_NAME_PATTERN = _template_pattern(VARIABLES)
STREAM_NAME_PATTERN = _template_pattern(STREAM_VARIABLES)
# Empty or ending in '/', no empty or dot-led segment (never '..').
OUTPUT_PREFIX_PATTERN = r"^(?:[A-Za-z0-9_=+-][A-Za-z0-9_.=+-]*/)*$"
# Outputs of the Workflow's own directories end in this; a custom key holding
# it could land inside such a directory and be taken for stale output there.
RESERVED = ".mediaflow/"
FILE_NAME_MAX = 255
PREFIX_MAX = 512

FileNameTemplate = Annotated[
    str, StringConstraints(pattern=FILE_NAME_PATTERN, min_length=1, max_length=FILE_NAME_MAX)
]
StreamNameTemplate = Annotated[
    str, StringConstraints(pattern=STREAM_NAME_PATTERN, min_length=1, max_length=FILE_NAME_MAX)
]
OutputPrefix = Annotated[
    str, StringConstraints(pattern=OUTPUT_PREFIX_PATTERN, max_length=PREFIX_MAX)
]

OUTPUT_CEL: list[JsonValue] = [
    {
        "rule": "self.fileName.contains('{inputName}')",
        "message": (
            "fileName must contain {inputName}: without it every input would get the same key"
        ),
        "fieldPath": ".fileName",
    },
    {
        "rule": f"!self.fileName.contains('{RESERVED}')",
        "message": f"fileName must not contain '{RESERVED}' (mediaflow's own directories)",
        "fieldPath": ".fileName",
    },
    {
        "rule": f"!has(self.prefix) || !self.prefix.contains('{RESERVED}')",
        "message": f"prefix must not contain '{RESERVED}' (mediaflow's own directories)",
        "fieldPath": ".prefix",
    },
    {
        "rule": "!has(self.segmentName) || "
        "(self.segmentName.contains('{number}') && self.segmentName.contains('{rendition}'))",
        "message": "segmentName must contain {rendition} and {number}",
        "fieldPath": ".segmentName",
    },
    {
        "rule": "!has(self.variantName) || self.variantName.contains('{rendition}')",
        "message": "variantName must contain {rendition}",
        "fieldPath": ".variantName",
    },
]

# TaskSpec-level twins (CEL on the task entry, pydantic in ``TaskSpec``):
# task types that write several files of one kind need {number}.
NUMBERED_TYPES = ("snapshot", "sprite")


class TaskOutput(SpecModel):
    """Where this task's files go instead of the Workflow's output directory."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": OUTPUT_CEL})

    bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=63,
        pattern=BUCKET_PATTERN,
        description="Bucket of this task's files. Default: the Workflow's output bucket.",
    )
    prefix: OutputPrefix = Field(
        default="",
        description=(
            "Key prefix of this task's files (empty or ending with '/'). It must lie outside "
            "the Workflow's trigger directory (another bucket, or a prefix that is neither "
            "above nor below the trigger prefix), so outputs never trigger work."
        ),
    )
    file_name: FileNameTemplate = Field(
        alias="fileName",
        description=(
            "File-name template; the key is prefix + this, rendered. Variables: {inputName} "
            "(the input's file name without extension), {inputExt} (its extension, no dot), "
            "{inputDir} (the input's directory relative to the trigger prefix, '' or ending "
            "in '/': write {inputDir}{inputName}), {taskName}, {format} (the output's "
            "extension, no dot), {number} (the file's number, see numberWidth/numberStart). "
            "Must contain {inputName}; snapshot and sprite need {number}. '/' makes "
            "directories. E.g. '{inputDir}{inputName}_{taskName}.{format}'."
        ),
    )
    number_width: int = Field(
        default=1,
        ge=1,
        le=10,
        alias="numberWidth",
        description="{number} is zero-padded to this many digits (3: 001, 002, ...).",
    )
    number_start: int = Field(
        default=1,
        ge=0,
        le=1_000_000,
        alias="numberStart",
        description="The first file's {number}; later files count up by one.",
    )

    segment_name: StreamNameTemplate | None = Field(
        default=None,
        alias="segmentName",
        description=(
            "HLS only: template of each media segment's name, relative to the master "
            "playlist's directory; {rendition} (0, 1, ... tallest first) and {number} (from "
            "numberStart, padded to numberWidth) are required, {format} is ts, m4s... The "
            "fMP4 init segment gets 'init' for {number}. Default: stream_<i>/segment_<n>. "
            "E.g. '{inputName}_{rendition}_{number}.{format}'."
        ),
    )
    variant_name: StreamNameTemplate | None = Field(
        default=None,
        alias="variantName",
        description=(
            "HLS only: template of each rendition's playlist name, relative to the master "
            "playlist's directory; {rendition} is required. Default: stream_<i>/index.m3u8. "
            "E.g. '{inputName}_{rendition}.{format}'."
        ),
    )

    @field_validator("segment_name")
    @classmethod
    def _segment_name_rules(cls, value: str | None) -> str | None:
        if value is not None and not ("{number}" in value and "{rendition}" in value):
            raise ValueError("segmentName must contain {rendition} and {number}")
        return value

    @field_validator("variant_name")
    @classmethod
    def _variant_name_rules(cls, value: str | None) -> str | None:
        if value is not None and "{rendition}" not in value:
            raise ValueError("variantName must contain {rendition}")
        return value

    @field_validator("file_name")
    @classmethod
    def _file_name_rules(cls, value: str) -> str:
        for problem in file_name_problems(value):
            raise ValueError(problem)
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_rules(cls, value: str) -> str:
        if RESERVED in value:
            raise ValueError(f"prefix must not contain {RESERVED!r} (mediaflow's own directories)")
        return value


def file_name_problems(template: str) -> list[str]:
    """What is wrong with a ``fileName`` beyond its pattern (pydantic twin of
    the CEL rules in ``OUTPUT_CEL``)."""
    problems = []
    if "{inputName}" not in template:
        problems.append(
            "fileName must contain {inputName}: without it every input would get the same key"
        )
    if RESERVED in template:
        problems.append(f"fileName must not contain {RESERVED!r} (mediaflow's own directories)")
    return problems


@dataclass(frozen=True)
class NameVars:
    """The input-side values of the template variables."""

    input_name: str
    input_ext: str
    input_dir: str
    task_name: str

    @classmethod
    def of(cls, input_key: str, trigger_prefix: str, task_name: str) -> NameVars:
        """The variables of input ``input_key`` (a key or a local path)
        relative to ``trigger_prefix``."""
        relative = input_key.removeprefix(trigger_prefix)
        directory, _, base = relative.rpartition("/")
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem:  # no extension ('clip') or a dot file ('.clip')
            stem, ext = base, ""
        return cls(stem, ext, directory + "/" if directory else "", task_name)


def render(
    template: str,
    variables: NameVars,
    fmt: str,
    number: int | None,
    width: int,
    rendition: int | None = None,
) -> str:
    """``template`` with every variable replaced (pure). ``number`` None
    renders ``{number}`` as nothing (a single file); ``rendition`` likewise."""
    values = {
        "rendition": "" if rendition is None else str(rendition),
        "inputName": variables.input_name,
        "inputExt": variables.input_ext,
        "inputDir": variables.input_dir,
        "taskName": variables.task_name,
        "format": fmt,
        "number": "" if number is None else str(number).zfill(width),
    }
    return re.sub(_VAR, lambda m: values[m.group(0)[1:-1]], template)


def index_template(template: str) -> str:
    """The template of a numbered set's one index file (the sprite's WebVTT):
    ``{number}`` dropped with one separator before it
    (``{inputName}_sprite_{number}.{format}`` -> ``{inputName}_sprite.{format}``)."""
    # A {number} that is a whole path segment goes with its '/'.
    template = re.sub(r"(^|/)\{number\}(/|$)", lambda m: m.group(1) and m.group(2), template)
    return re.sub(r"[_.=+-]?\{number\}", "", template)
