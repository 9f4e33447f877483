"""Generate the Workflow CustomResourceDefinition from the pydantic models.

``python -m mediaflow_api.crd`` writes ``crds/mediaflow.dev_workflows.yaml``
and the template CRDs (``mediaflow.dev_mediatemplates.yaml``,
``mediaflow.dev_clustermediatemplates.yaml``, from ``mediaflow_api.templates``)
into ``crds/`` and the chart's ``crds/``; ``--check`` exits 1 when a committed
file is stale.

Pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3
subset. The conversion:

- ``$ref`` into ``$defs`` is inlined (structural schemas have no references);
- ``anyOf: [X, {type: null}]`` (an ``Optional``) becomes plain ``X``: absence is
  how Kubernetes says "unset", ``null`` is never stored;
- ``title``, ``examples`` and ``additionalProperties: false`` are dropped (the
  API server prunes or, with strict field validation, rejects unknown fields);
- ``const`` becomes a one-value ``enum``, numeric ``exclusiveMinimum: n``
  becomes ``minimum: n`` + ``exclusiveMinimum: true`` (OpenAPI v3.0);
- ``x-kubernetes-validations`` (CEL) and descriptions, defaults, bounds,
  patterns and enums are carried over unchanged.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from mediaflow_api import templates, workflow, workflow_status

CRD_FILE_NAME = f"{workflow.GROUP}_{workflow.PLURAL}.yaml"
TEMPLATE_CRD_FILE_NAME = f"{templates.GROUP}_{templates.PLURAL}.yaml"
CLUSTER_TEMPLATE_CRD_FILE_NAME = f"{templates.GROUP}_{templates.CLUSTER_PLURAL}.yaml"
_DROP = {"title", "examples", "$defs", "$schema"}


class SchemaError(ValueError):
    """The pydantic schema uses something that has no structural equivalent."""


def _resolve(ref: str, defs: dict[str, Any]) -> dict[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise SchemaError(f"unsupported $ref {ref!r}")
    target: dict[str, Any] = defs[ref[len(prefix) :]]
    return target


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _merge(outer: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    """Keywords written next to a $ref/anyOf (description, default) win over the target's."""
    merged = dict(inner)
    for key, value in outer.items():
        if key == "x-kubernetes-validations" and key in merged:
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def to_structural(schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Convert one pydantic JSON schema node (recursively) into a structural schema."""
    node = copy.deepcopy(schema)
    if "$ref" in node:
        target = _resolve(node.pop("$ref"), defs)
        node = _merge(node, copy.deepcopy(target))
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if not _is_null(o)]
        if len(options) != 1:
            raise SchemaError(f"{path or '<root>'}: unions of several types are not structural")
        option = options[0]
        if "$ref" in option:
            option = _merge(
                {k: v for k, v in option.items() if k != "$ref"}, _resolve(option["$ref"], defs)
            )
        node = _merge(node, copy.deepcopy(option))
        if node.get("default", 0) is None:
            node.pop("default")
        return to_structural(node, defs, path)
    for key in ("oneOf", "allOf", "not"):
        if key in node:
            raise SchemaError(f"{path or '<root>'}: {key} is not supported")

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "properties":
            out["properties"] = {
                name: to_structural(sub, defs, f"{path}.{name}") for name, sub in value.items()
            }
        elif key == "items":
            out["items"] = to_structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = to_structural(value, defs, f"{path}{{}}")
            # False/True: structural schemas state unknown fields by pruning.
        elif key == "propertyNames":
            # dict[Literal[...], X]: the key set cannot be said structurally; a CEL rule can.
            allowed = value.get("enum")
            if allowed:
                rule = "self.all(k, k in " + repr(list(allowed)).replace('"', "'") + ")"
                out.setdefault("x-kubernetes-validations", []).append(
                    {"rule": rule, "message": f"keys must be one of {', '.join(allowed)}"}
                )
        elif key == "default" and isinstance(value, dict):
            # Nested defaults fill in once the object exists: '{}' is enough and
            # keeps one source for every default.
            out["default"] = {}
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        raise SchemaError(f"{path or '<root>'}: free-form objects are not structural")
    return out


def _model_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return to_structural(raw, defs)


def _crd(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    singular: str,
    short_names: tuple[str, ...] | list[str],
    scope: str,
    description: str,
    spec_model: type[Any],
    status_model: type[Any],
    printer_columns: Any,
) -> dict[str, Any]:
    """One CRD of ours: a ``spec`` and a status subresource, both from models."""
    status_schema = _model_schema(status_model)
    status_schema.pop("required", None)
    root = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this object.",
            },
            "kind": {"type": "string", "description": "Kind is the REST resource type."},
            "metadata": {"type": "object"},
            "spec": _model_schema(spec_model),
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "mediaflow"},
            "annotations": {
                "mediaflow.dev/generated-by": "python -m mediaflow_api.crd (do not edit by hand)"
            },
        },
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": list(workflow.CATEGORIES),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def build_crd() -> dict[str, Any]:
    """The complete Workflow CustomResourceDefinition as a dict."""
    return _crd(
        group=workflow.GROUP,
        version=workflow.VERSION,
        kind=workflow.KIND,
        plural=workflow.PLURAL,
        singular=workflow.SINGULAR,
        short_names=workflow.SHORT_NAMES,
        scope="Namespaced",
        description=(
            "A Workflow turns every upload under a trigger bucket/prefix into a Kubernetes Job "
            "that runs FFmpeg tasks and writes the results to an output bucket/prefix."
        ),
        spec_model=workflow.WorkflowSpec,
        status_model=workflow_status.WorkflowStatus,
        printer_columns=workflow.PRINTER_COLUMNS,
    )


def build_template_crd(*, cluster: bool) -> dict[str, Any]:
    """The MediaTemplate (``cluster=False``) or ClusterMediaTemplate CRD as a dict."""
    kind = templates.CLUSTER_TEMPLATE_KIND if cluster else templates.TEMPLATE_KIND
    where = (
        "any namespace's Workflows (platform presets)" if cluster else "its namespace's Workflows"
    )
    return _crd(
        group=templates.GROUP,
        version=templates.VERSION,
        kind=kind,
        plural=templates.CLUSTER_PLURAL if cluster else templates.PLURAL,
        singular=templates.CLUSTER_SINGULAR if cluster else templates.SINGULAR,
        short_names=templates.CLUSTER_SHORT_NAMES if cluster else templates.SHORT_NAMES,
        scope="Cluster" if cluster else "Namespaced",
        description=(
            f"A {kind} holds one task type's settings (or watermarks) that tasks of "
            f"{where} refer to by name (task.template), validated like inline settings."
        ),
        spec_model=templates.MediaTemplateSpec,
        status_model=templates.MediaTemplateStatus,
        printer_columns=templates.PRINTER_COLUMNS,
    )


class _Yaml11SafeDumper(yaml.SafeDumper):
    """Quotes the strings YAML 1.1 readers (kubectl, helm: go-yaml v2) take
    for booleans but PyYAML writes bare: ``y``, ``n`` (a property named ``y``
    made ``helm install`` refuse the CRD)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if value in ("y", "Y", "n", "N") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Yaml11SafeDumper.add_representer(str, _represent_str)


def _yaml(crd: dict[str, Any], source: str) -> str:
    header = f"# Generated by `python -m mediaflow_api.crd` from {source}. Do not edit.\n"
    return header + yaml.dump(
        crd, Dumper=_Yaml11SafeDumper, sort_keys=False, width=100, allow_unicode=True
    )


def render() -> str:
    """The Workflow CRD as YAML text, exactly as committed in crds/."""
    return _yaml(build_crd(), "mediaflow_api.workflow")


def render_all() -> dict[str, str]:
    """Every generated CRD: file name -> YAML text."""
    return {
        CRD_FILE_NAME: render(),
        TEMPLATE_CRD_FILE_NAME: _yaml(build_template_crd(cluster=False), "mediaflow_api.templates"),
        CLUSTER_TEMPLATE_CRD_FILE_NAME: _yaml(
            build_template_crd(cluster=True), "mediaflow_api.templates"
        ),
    }


def default_path() -> Path:
    return Path(__file__).resolve().parents[2] / "crds" / CRD_FILE_NAME


def chart_crds_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "charts" / "mediaflow" / "crds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=default_path(), help="Workflow CRD file to write"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    # The other CRDs go next to the Workflow's, and all of them into the chart too.
    targets = [args.output.parent]
    if args.output == default_path():
        targets.append(chart_crds_dir())
    stale = False
    for directory in targets:
        for name, text in render_all().items():
            path = (
                args.output
                if directory == targets[0] and name == CRD_FILE_NAME
                else (directory / name)
            )
            if args.check:
                if not path.exists() or path.read_text() != text:
                    print(f"{path} is stale: run python -m mediaflow_api.crd", file=sys.stderr)
                    stale = True
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
