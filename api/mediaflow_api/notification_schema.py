"""Generate the published JSON Schemas of mediaflow's notifications.

``python -m mediaflow_api.notification_schema`` writes ``schemas/``:

- ``notification-data.v1.json``: the CloudEvent ``data``, generated from
  ``mediaflow_api.notification.NotificationData`` (the one source of truth);
- ``notification-event.v1.json``: the whole structured-mode CloudEvent
  (attributes + ``data`` by reference), with the rules that tie a ``type`` to
  the data it carries.

``--check`` exits 1 when a committed file is stale (a unit test does the same).

Pydantic's schema is adjusted for consumers: ``Optional`` fields become their
plain type (mediaflow omits unknown fields, it never sends ``null``), ``title``
keywords go, and ``additionalProperties: false`` is dropped so that fields
added later within v1 do not break validators of older copies.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from mediaflow_api import notification as n

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _for_consumers(node: Any) -> Any:
    """Recursively: ``anyOf [X, null]`` -> X, no ``title``, no ``default: null``,
    no ``additionalProperties: false``."""
    if isinstance(node, list):
        return [_for_consumers(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = copy.deepcopy(node)
    options = out.get("anyOf")
    if isinstance(options, list) and any(_is_null(o) for o in options):
        rest = [o for o in options if not _is_null(o)]
        del out["anyOf"]
        if len(rest) == 1:
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
    if out.get("default", 0) is None:
        del out["default"]
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    out.pop("title", None)
    return {
        key: (_for_consumers(value) if key not in ("default", "examples", "const") else value)
        for key, value in out.items()
    }


def data_schema() -> dict[str, Any]:
    """The JSON Schema of the CloudEvent ``data``."""
    raw = n.NotificationData.model_json_schema(by_alias=True, mode="serialization")
    body = _for_consumers(raw)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": n.DATA_SCHEMA_URL,
        "title": "mediaflow notification data (v1)",
        **body,
    }


def _when_type(event_type: str, then: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
        "then": then,
    }


def _data_requires(*names: str, outcome: list[str]) -> dict[str, Any]:
    return {
        "properties": {
            "data": {
                "required": list(names),
                "properties": {"outcome": {"enum": outcome}},
            }
        }
    }


def event_schema() -> dict[str, Any]:
    """The JSON Schema of a whole structured-mode mediaflow CloudEvent."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": n.EVENT_SCHEMA_URL,
        "title": "mediaflow notification event (CloudEvents 1.0, structured mode, v1)",
        "description": (
            "A CloudEvents 1.0 event as mediaflow sends it in structured mode "
            "(Content-Type: application/cloudevents+json); in binary mode the same "
            "attributes travel as ce-* headers and the body is the data alone."
        ),
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "dataschema",
            "data",
        ],
        "properties": {
            "specversion": {"const": n.SPECVERSION, "description": "CloudEvents version."},
            "id": {
                "type": "string",
                "minLength": 1,
                "description": (
                    "Unique per event, and the same on every retry and re-publish "
                    "(a UUID derived from the Job uid, the type and the task): deduplicate on it."
                ),
            },
            "source": {
                "type": "string",
                "pattern": "^/apis/mediaflow\\.dev/v1alpha1/namespaces/[^/]+/workflows/[^/]+$",
                "description": (
                    "The Workflow: /apis/mediaflow.dev/v1alpha1/namespaces/<ns>/workflows/<name>."
                ),
            },
            "type": {
                "enum": list(n.EVENT_TYPES.values()),
                "description": "What happened.",
            },
            "subject": {
                "type": "string",
                "minLength": 1,
                "description": "The uploaded object, as <bucket>/<key>.",
            },
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (RFC 3339, UTC).",
            },
            "datacontenttype": {"const": n.DATA_CONTENT_TYPE, "description": "data is JSON."},
            "dataschema": {"const": n.DATA_SCHEMA_URL, "description": "The schema of data."},
            "traceparent": {
                "type": "string",
                "pattern": n.TRACEPARENT_PATTERN,
                "description": (
                    "W3C Trace Context of the upload's processing (CloudEvents distributed "
                    "tracing extension); absent when unknown."
                ),
            },
            "data": {"$ref": n.DATA_SCHEMA_URL},
        },
        "allOf": [
            _when_type(n.TYPE_ACCEPTED, _data_requires(outcome=["accepted"])),
            _when_type(n.TYPE_SUCCEEDED, _data_requires("outputs", outcome=["succeeded"])),
            _when_type(n.TYPE_FAILED, _data_requires("error", outcome=["failed"])),
            _when_type(n.TYPE_SUPERSEDED, _data_requires(outcome=["superseded"])),
            _when_type(
                n.TYPE_TASK_FINISHED,
                _data_requires("task", "outputs", outcome=["succeeded", "skipped", "failed"]),
            ),
        ],
    }


def render(schema: dict[str, Any]) -> str:
    """A schema as committed: indented JSON, keys in generation order, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def default_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "schemas"


def files() -> dict[str, str]:
    """File name -> content of every generated schema."""
    return {
        n.DATA_SCHEMA_FILE: render(data_schema()),
        n.EVENT_SCHEMA_FILE: render(event_schema()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=default_dir(), help="where to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in files().items():
        path = args.output_dir / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        for path in stale:
            print(
                f"{path} is stale: run python -m mediaflow_api.notification_schema", file=sys.stderr
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
