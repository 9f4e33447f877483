"""The Workflow API on a test cluster: install the CRD, make namespaces,
create Workflow objects the way ``kubectl apply`` does (strict field validation)."""

from __future__ import annotations

from typing import Any, cast

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api import crd
from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from tests.support.waiting import wait_for


def install_crd(api_client: client.ApiClient) -> None:
    """Create or update mediaflow's CRDs (Workflow, MediaTemplate,
    ClusterMediaTemplate: every file crds/ holds) and wait until they are established."""
    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(crd.default_path().parent.glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        name = manifest["metadata"]["name"]
        names.append(name)
        try:
            current = ext.read_custom_resource_definition(name)
            manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, manifest)
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(manifest)

    def established() -> bool:
        for name in names:
            crd_obj = ext.read_custom_resource_definition(name)
            if not any(
                c.type == "Established" and c.status == "True"
                for c in (crd_obj.status.conditions or [])
            ):
                return False
        return True

    wait_for(established, 60, "mediaflow's CRDs to be established")


def ensure_namespace(
    api_client: client.ApiClient, name: str, labels: dict[str, str] | None = None
) -> None:
    """Create namespace ``name`` (with ``labels``) unless it exists."""
    try:
        client.CoreV1Api(api_client).create_namespace(
            {"metadata": {"name": name, "labels": labels or {}}}  # type: ignore[arg-type]  # a plain manifest
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_workflow_object(
    api_client: client.ApiClient, namespace: str, spec: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """Create a Workflow with strict field validation; ``generateName`` when no name is given."""
    metadata: dict[str, Any] = {"namespace": namespace}
    metadata.update({"name": name} if name else {"generateName": "wf-"})
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": spec,
    }
    created = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
    )
    return cast(dict[str, Any], created)


def workflow_status(api_client: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The status of Workflow ``namespace/name`` (empty before the operator wrote one)."""
    found = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return dict(cast(dict[str, Any], found).get("status") or {})


def is_ready(status: dict[str, Any]) -> bool:
    """Whether a Workflow status says ``Ready=True``."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
