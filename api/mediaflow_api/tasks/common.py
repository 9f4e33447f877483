"""What every task model shares: string patterns and types, parsers of those
strings, helpers that write CEL rules, and the base model."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, StringConstraints

TASK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# "12.5" (seconds) or "50%" (of the input duration).
TIME_POINT_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?%?$"
# "2500k", "2.5M", "128k", "800000" (bits per second).
BITRATE_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?[kKmM]?$"
# An S3 bucket name (the subset MinIO and AWS both accept).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

TimePoint = Annotated[str, StringConstraints(pattern=TIME_POINT_PATTERN, max_length=12)]
Bitrate = Annotated[str, StringConstraints(pattern=BITRATE_PATTERN, max_length=12)]

EncoderPreset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
ImageFormat = Literal["jpeg", "png", "webp"]


def parse_time_point(value: str) -> tuple[float, bool]:
    """Split a ``TimePoint`` into ``(number, is_percent)``."""
    if value.endswith("%"):
        return float(value[:-1]), True
    return float(value), False


def parse_bitrate(value: str) -> int:
    """A ``Bitrate`` string in bits per second (``"2.5M"`` -> 2500000)."""
    match = re.fullmatch(r"([0-9.]+)([kKmM]?)", value)
    if match is None:
        raise ValueError(f"not a bitrate: {value!r}")
    factor = {"": 1, "k": 1000, "m": 1000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def parse_length(value: str) -> tuple[float, bool]:
    """Split a ``Length`` into ``(number, is_percent)``; pixels otherwise."""
    if value.endswith("%"):
        return float(value[:-1]), True
    return float(value.removesuffix("px")), False


def cel(rule: str, message: str) -> dict[str, JsonValue]:
    """One ``x-kubernetes-validations`` entry."""
    return {"rule": rule, "message": message}


def exactly_one_cel(fields: list[str]) -> str:
    """A CEL rule: exactly one of ``fields`` (JSON names) is set."""
    has = ", ".join(f"has(self.{f})" for f in fields)
    return f"[{has}].filter(x, x).size() == 1"


def cel_map(table: dict[str, tuple[str, ...]]) -> str:
    """A Python dict of tuples written as a CEL map literal of lists."""
    entries = ", ".join(
        f"'{key}': [{', '.join(repr(v) for v in values)}]" for key, values in table.items()
    )
    return "{" + entries + "}"


def cel_pairs(table: dict[str, tuple[str, str]], index: int) -> str:
    """One column of a table of pairs as a CEL map literal of strings."""
    entries = ", ".join(f"'{key}': {pair[index]!r}" for key, pair in table.items())
    return "{" + entries + "}"


def count_set(model: BaseModel, fields: list[str]) -> int:
    """How many of ``fields`` (Python names) are set on ``model``."""
    return sum(getattr(model, f) is not None for f in fields)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # Content-understanding task types set this: they need the models and
    # libraries of the ``mediaflow[ml]`` extra, which only the worker-ml image
    # carries (the operator picks that image for a Workflow that has one).
    needs_ml: ClassVar[bool] = False
