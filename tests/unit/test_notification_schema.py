"""The published notification schemas: generated from the payload models, committed
fresh, fully described, and able to tell a valid event from an invalid one; the
examples in examples/notifications/ are valid and are what the builders make."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mediaflow_api import notification as n
from mediaflow_api import notification_schema as gen
from mediaflow_api import workflow
from tests.support import notification_samples as samples

pytestmark = pytest.mark.unit

EXAMPLE_FILES = sorted(samples.EXAMPLES_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _errors(event: dict[str, Any]) -> list[str]:
    return [e.message for e in samples.event_validator().iter_errors(event)]


def test_committed_schemas_are_a_fresh_generation() -> None:
    for name, text in gen.files().items():
        committed = (gen.default_dir() / name).read_text()
        assert committed == text, f"schemas/{name} is stale: run make schemas"


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(["--output-dir", str(tmp_path)]) == 0
    assert gen.main(["--output-dir", str(tmp_path), "--check"]) == 0
    (tmp_path / n.DATA_SCHEMA_FILE).write_text("{}\n")
    assert gen.main(["--output-dir", str(tmp_path), "--check"]) == 1
    assert n.DATA_SCHEMA_FILE in capsys.readouterr().err


def test_schemas_are_valid_draft_2020_12_with_their_urls() -> None:
    data, event = gen.data_schema(), gen.event_schema()
    jsonschema.Draft202012Validator.check_schema(data)
    jsonschema.Draft202012Validator.check_schema(event)
    assert data["$id"] == n.DATA_SCHEMA_URL
    assert event["$id"] == n.EVENT_SCHEMA_URL
    assert event["properties"]["data"] == {"$ref": n.DATA_SCHEMA_URL}


def _walk(node: Any, path: str, defs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        target = defs[node["$ref"].removeprefix("#/$defs/")]
        return [(path, {**target, **node}), *_walk(target, path, defs)]
    found = [(path, node)]
    for name, sub in (node.get("properties") or {}).items():
        found += _walk(sub, f"{path}.{name}", defs)
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]", defs)
    return found


def test_every_data_field_is_described() -> None:
    schema = gen.data_schema()
    nodes = _walk(schema, "data", schema["$defs"])
    assert len(nodes) > 40  # the walk really went down into every model
    for path, node in nodes:
        if not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description"


def test_every_model_field_is_in_the_schema_by_its_wire_name() -> None:
    schema = gen.data_schema()
    wire = {f.alias or name for name, f in n.NotificationData.model_fields.items()}
    assert set(schema["properties"]) == wire
    assert "correlationId" in wire
    assert "outputCount" in wire


def test_schema_has_no_nulls_and_stays_open_to_new_fields() -> None:
    text = json.dumps(gen.data_schema())
    assert '"null"' not in text  # unknown fields are absent, never null
    assert '"additionalProperties": false' not in text
    event = _load(samples.EXAMPLES_DIR / "succeeded.json")
    event["data"]["addedInV1_1"] = {"anything": True}
    event["data"]["outputs"][0]["bitRate"] = 1_800_000
    assert _errors(event) == []


def test_every_name_a_sink_may_list_has_one_event_type() -> None:
    assert tuple(n.EVENT_TYPES) == workflow.NOTIFICATION_EVENTS
    assert len(set(n.EVENT_TYPES.values())) == len(n.EVENT_TYPES)
    assert n.CONTEXT_MAX == workflow.CONTEXT_MAX_LENGTH == 1000


def test_there_is_one_example_per_event_type() -> None:
    types = sorted(_load(path)["type"] for path in EXAMPLE_FILES)
    assert types == sorted(n.EVENT_TYPES.values())


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_is_valid_against_the_schema_and_the_models(path: Path) -> None:
    event = _load(path)
    assert _errors(event) == []
    # The models forbid unknown fields: a misspelt example field fails here.
    n.NotificationData.model_validate(event["data"])


def test_examples_are_what_the_builders_make() -> None:
    made = samples.examples()
    assert sorted(made) == [p.name for p in EXAMPLE_FILES]
    for name, event in made.items():
        committed = (samples.EXAMPLES_DIR / name).read_text()
        assert committed == samples.render(event), f"{name} is stale: run make schemas"


@pytest.mark.parametrize(
    ("example", "change", "complaint"),
    [
        ("failed.json", lambda e: e["data"].pop("error"), "'error' is a required property"),
        ("task-finished.json", lambda e: e["data"].pop("task"), "'task' is a required property"),
        (
            "succeeded.json",
            lambda e: e["data"].update(outcome="failed"),
            "'failed' is not one of ['succeeded']",
        ),
        ("accepted.json", lambda e: e.update(specversion="0.3"), "'1.0' was expected"),
        ("accepted.json", lambda e: e.update(traceparent="00-abc-01"), "does not match"),
        ("accepted.json", lambda e: e.update(type="dev.mediaflow.other"), "is not one of"),
        ("accepted.json", lambda e: e.pop("subject"), "'subject' is a required property"),
        ("accepted.json", lambda e: e["data"].update(context="x" * 1001), "is too long"),
        (
            "succeeded.json",
            lambda e: e["data"]["outputs"][0].update(size=-1),
            "less than the minimum",
        ),
        (
            "accepted.json",
            lambda e: e["data"]["input"].update(versionId=None),
            "None is not of type 'string'",
        ),
    ],
)
def test_schema_rejects_what_mediaflow_never_sends(
    example: str, change: Any, complaint: str
) -> None:
    event = copy.deepcopy(_load(samples.EXAMPLES_DIR / example))
    assert _errors(event) == []
    change(event)
    errors = _errors(event)
    assert any(complaint in e for e in errors), errors


def test_the_documented_example_is_the_committed_one() -> None:
    doc = (samples.EXAMPLES_DIR.parents[1] / "docs" / "notifications.md").read_text()
    payload = doc.split("## Payload", 1)[1]
    block = payload.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == _load(samples.EXAMPLES_DIR / "failed.json")
