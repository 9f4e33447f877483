"""Reading Workflow objects: identity, typed spec, whether active, whether ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaflow_api.job import WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import (
    CONDITION_STORAGE,
    CONDITION_TEMPLATE,
    CONDITION_TEMPLATES,
)
from mediaflow_operator.template_refs import TemplateCatalog, resolve_spec

DEFAULT_STORAGE_SECRET_NAME = "mediaflow-default-storage"  # noqa: S105 (a name)


def ref(body: Mapping[str, Any]) -> WorkflowRef:
    """Namespace, name, UID and current generation of a Workflow object."""
    meta = body.get("metadata") or {}
    return WorkflowRef(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
    )


def parse_spec(body: Mapping[str, Any]) -> WorkflowSpec:
    """The typed spec; raises pydantic.ValidationError for a spec the API server
    let through but the model refuses (should not happen with the CRD installed)."""
    return WorkflowSpec.model_validate(dict(body.get("spec") or {}))


def resolved_spec(body: Mapping[str, Any], catalog: TemplateCatalog) -> WorkflowSpec:
    """The typed spec with its template references resolved: what a Job carries.
    Raises pydantic.ValidationError (see ``parse_spec``) or
    ``mediaflow_api.templates.TemplateError`` (a template missing or not fitting)."""
    return resolve_spec(parse_spec(body), ref(body).namespace, catalog)


def is_active(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return not meta.get("deletionTimestamp") and not spec.get("suspend", False)


def condition_status(body: Mapping[str, Any], type_: str) -> str | None:
    """ "True", "False", "Unknown", or None when the Workflow lacks the condition."""
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


def may_dispatch(body: Mapping[str, Any]) -> bool:
    """Active, consumer in place, the workers' storage checked (Jobs started
    without their Secret or buckets would only fail), and the Job template not
    found invalid (the API server would refuse every Job: the uploads wait in
    the queue until the spec is fixed), and its templates found (the same: the
    uploads wait until the template exists)."""
    status = body.get("status") or {}
    storage_ok = condition_status(body, CONDITION_STORAGE) == "True"
    template_ok = condition_status(body, CONDITION_TEMPLATE) != "False"
    templates_ok = condition_status(body, CONDITION_TEMPLATES) != "False"
    return (
        is_active(body)
        and bool(status.get("consumer"))
        and storage_ok
        and template_ok
        and templates_ok
    )


def storage_secret_name(spec: WorkflowSpec) -> str:
    """The Secret the worker's secretKeyRefs point at (in the Workflow's namespace)."""
    if spec.storage.secret_ref is not None:
        return spec.storage.secret_ref.name
    return DEFAULT_STORAGE_SECRET_NAME
