"""The CRD in crds/ is generated from the models, structural, and fully described."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mediaflow_api import crd, workflow_status

pytestmark = pytest.mark.unit


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, sub in (node.get("properties") or {}).items():
        found += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def test_committed_crd_is_a_fresh_generation() -> None:
    committed = crd.default_path().read_text()
    assert committed == crd.render(), "crds/ is stale: run python -m mediaflow_api.crd"


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        for keyword in ("$ref", "anyOf", "oneOf", "allOf", "not", "$defs", "title"):
            assert keyword not in node, f"{path} has {keyword}"
        assert "type" in node or path in ("",), f"{path} has no type"
        if node.get("type") == "object" and path not in (".metadata",):
            assert "properties" in node or "additionalProperties" in node, path
        assert node.get("additionalProperties") is not False, path


def test_every_spec_and_status_field_is_described() -> None:
    for path, node in _walk(_schema()):
        if path.startswith((".spec", ".status")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"


def test_every_status_field_is_declared() -> None:
    declared = set(_schema()["properties"]["status"]["properties"])
    assert declared == {
        f.alias or name for name, f in workflow_status.WorkflowStatus.model_fields.items()
    }


def test_cel_rules_cover_what_the_schema_cannot_say() -> None:
    text = yaml.safe_dump(_schema())
    assert "task names must be unique" in text
    assert "set exactly one of" in text
    assert "bucket names must not contain" in text


def test_crd_metadata_for_kubectl() -> None:
    spec = crd.build_crd()["spec"]
    assert spec["names"]["shortNames"] == ["mfw"]
    assert spec["names"]["categories"] == ["mediaflow"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == [
        "Suspended",
        "Bucket",
        "Prefix",
        "Running",
        "Succeeded",
        "Failed",
        "Ready",
        "Age",
    ]


def test_defaults_survive_generation() -> None:
    execution = _schema()["properties"]["spec"]["properties"]["execution"]
    assert execution["default"] == {}
    assert execution["properties"]["maxConcurrentJobs"]["default"] == 4
    assert execution["properties"]["maxConcurrentJobs"]["minimum"] == 1


def test_optional_union_becomes_plain_property() -> None:
    schema = crd.to_structural(
        {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "default": None}, {}
    )
    assert schema == {"type": "string", "maxLength": 3}


def test_real_unions_are_refused() -> None:
    with pytest.raises(crd.SchemaError):
        crd.to_structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
