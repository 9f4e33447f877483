"""Field types of the Workflow API: bucket names, key prefixes, DNS names, quantities.

Each type carries its constraints twice where a JSON schema cannot say them:
as a pydantic validator (``bucket_ok``, ``prefix_ok``, for the operator and the
tests) and as ``x-kubernetes-validations`` CEL rules (for the API server).
``ApiModel`` is the base of every Workflow model: camelCase aliases, unknown
keys rejected.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mediaflow_api.tasks import BUCKET_PATTERN

_PREFIX_MAX = 512


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    rule_dict = {"rule": rule, "message": message}
    if field_path:
        rule_dict["fieldPath"] = field_path
    return rule_dict


# S3 bucket names: the pattern says the alphabet and length; CEL adds what a
# regular expression without look-ahead says badly.
BUCKET_VALIDATIONS = [
    _cel("!self.contains('..')", "bucket names must not contain '..'"),
    _cel(
        "!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",
        "bucket names must not look like an IP address",
    ),
    _cel(
        "!self.contains('.-') && !self.contains('-.')", "bucket names must not contain '.-' or '-.'"
    ),
]
BucketName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=63, pattern=BUCKET_PATTERN),
    Field(json_schema_extra={"x-kubernetes-validations": BUCKET_VALIDATIONS}),
]
# A key prefix ("directory"): empty, or ending in '/', never starting with '/'.
PREFIX_VALIDATIONS = [
    _cel("self == '' || self.endsWith('/')", "a prefix must be empty or end with '/'"),
    _cel("!self.startsWith('/')", "a prefix must not start with '/'"),
    _cel("!self.contains('//')", "a prefix must not contain '//'"),
    _cel("!self.contains('.mediaflow/')", "a prefix must not contain '.mediaflow/' (output dirs)"),
]
KeyPrefix = Annotated[
    str,
    StringConstraints(max_length=_PREFIX_MAX),
    Field(json_schema_extra={"x-kubernetes-validations": PREFIX_VALIDATIONS}),
]
Suffix = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[^/*?]+$")]
DnsLabel = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
]
DnsSubdomain = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
# A Kubernetes resource quantity ("500m", "2", "1Gi", "1.5G").
Quantity = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$"
    ),
]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]
_QUANTITY_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
}


def quantity_value(text: str) -> Fraction:
    """The exact value of a ``Quantity`` ("500m" -> 1/2, "1Gi" -> 2**30)."""
    number = text.rstrip("mkMGTPi")
    suffix = text[len(number) :]
    return Fraction(number) * _QUANTITY_SUFFIXES[suffix]


# Node labels (nodeSelector, toleration keys): a label key is a qualified name,
# [DNS-subdomain prefix '/'] name of at most 63 characters; a label value is
# empty or at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_KEY_MAX = 253 + 1 + 63
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]


def label_key_ok(key: str) -> bool:
    """Whether ``key`` is a valid label key (the CEL twin is ``LABEL_KEY_CEL``)."""
    return len(key) <= LABEL_KEY_MAX and re.fullmatch(LABEL_KEY_PATTERN, key) is not None


def label_key_cel(expr: str) -> str:
    """A CEL expression: ``expr`` (a string) is a valid label key."""
    return f"size({expr}) <= {LABEL_KEY_MAX} && {expr}.matches('{LABEL_KEY_PATTERN}')"


def prefix_ok(value: str) -> str:
    if value and not value.endswith("/"):
        raise ValueError("a prefix must be empty or end with '/'")
    if value.startswith("/") or "//" in value:
        raise ValueError("a prefix must not start with '/' or contain '//'")
    if ".mediaflow/" in value:
        raise ValueError("a prefix must not contain '.mediaflow/' (output dirs)")
    return value


def bucket_ok(value: str | None) -> str | None:
    if value is None:
        return value
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("bucket names must not contain '..', '.-' or '-.'")
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        raise ValueError("bucket names must not look like an IP address")
    return value


class ApiModel(BaseModel):
    """camelCase aliases, unknown keys rejected (the API server prunes or rejects them too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
