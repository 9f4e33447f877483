"""Validating notifications against the published JSON Schemas (schemas/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return doc


def event_validator() -> Draft202012Validator:
    """A validator of whole structured-mode events (the data schema resolved by $id)."""
    data = _load("notification-data.v1.json")
    event = _load("notification-event.v1.json")
    registry: Registry[Any] = Registry().with_resources(
        [(doc["$id"], Resource.from_contents(doc)) for doc in (data, event)]
    )
    return Draft202012Validator(event, registry=registry)


def assert_valid_event(event: dict[str, Any]) -> None:
    """Fail with every schema error of ``event``."""
    errors = sorted(event_validator().iter_errors(event), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
