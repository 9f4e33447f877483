"""Reading Workflow objects: identity, typed spec, whether active, whether ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaflow_api.job import WorkflowRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import CONDITION_STORAGE

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


def is_active(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return not meta.get("deletionTimestamp") and not spec.get("suspend", False)


def may_dispatch(body: Mapping[str, Any]) -> bool:
    """Active, consumer in place, and the workers' storage checked: Jobs
    started without their Secret or buckets would only fail."""
    status = body.get("status") or {}
    storage_ok = any(
        c.get("type") == CONDITION_STORAGE and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return is_active(body) and bool(status.get("consumer")) and storage_ok


def storage_secret_name(spec: WorkflowSpec) -> str:
    """The Secret the worker's secretKeyRefs point at (in the Workflow's namespace)."""
    if spec.storage.secret_ref is not None:
        return spec.storage.secret_ref.name
    return DEFAULT_STORAGE_SECRET_NAME
