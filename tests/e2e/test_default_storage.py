"""The operator's own MinIO credentials go only where the administrator shares
them (defect 8 of issue 10): the default storage Secret is copied into listed
namespaces only, refused with a named reason elsewhere, and its copies are
removed when nothing uses them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator import naming
from mediaflow_operator.default_storage import COPIED_FROM
from tests.e2e.harness import (
    RESTRICTED,
    SYSTEM_NAMESPACE,
    Stack,
    ensure_namespace,
    stack_fixture,
    wait_for,
)

pytestmark = pytest.mark.e2e

COPY = "mediaflow-default-storage"


@pytest.fixture
def shared_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[tuple[Stack, str]]:
    """An operator that shares the default Secret with one extra namespace only;
    the stack's own namespace is *not* shared."""
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    ensure_namespace(kube_cluster.api_client(), shared, labels=RESTRICTED)
    for stack in stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, share_storage_with=shared
    ):
        yield stack, shared


def _secret(stack: Stack, namespace: str) -> Any:
    try:
        return client.CoreV1Api(stack.api).read_namespaced_secret(COPY, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _storage_condition(stack: Stack, name: str) -> dict[str, Any] | None:
    for cond in stack.status(name).get("conditions") or []:
        if cond.get("type") == "StorageReady":
            return dict(cond)
    return None


def _workflow(stack: Stack, namespace: str, name: str, bucket: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "a", "analysis": {}}],
        },
    }
    stack.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def _is_ready(stack: Stack, namespace: str, name: str) -> bool:
    wf: Any = stack.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (wf.get("status") or {}).get("conditions") or []
    )


def _delete(stack: Stack, namespace: str, name: str) -> None:
    stack.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def gone() -> bool:
        try:
            stack.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, 60, f"Workflow {namespace}/{name} deleted")


def test_a_namespace_not_shared_gets_no_copy_and_a_named_reason(
    shared_stack: tuple[Stack, str],
) -> None:
    stack, _ = shared_stack
    # A copy left from when the namespace was still shared: it must go.
    client.CoreV1Api(stack.api).create_namespaced_secret(
        stack.namespace,
        {  # type: ignore[arg-type]  # a plain manifest
            "metadata": {
                "name": COPY,
                "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY},
                "annotations": {COPIED_FROM: f"{SYSTEM_NAMESPACE}/mediaflow-storage"},
            },
            "stringData": {"accessKey": "old", "secretKey": "old", "endpoint": "x:1"},
        },
    )
    bucket = stack.bucket("noshare")
    stack.create_workflow(
        "noshare",
        {"trigger": {"bucket": bucket, "prefix": "in/"}, "tasks": [{"name": "a", "analysis": {}}]},
    )

    def refused() -> dict[str, Any] | None:
        cond = _storage_condition(stack, "noshare")
        return cond if cond and cond.get("reason") == "DefaultStorageNotShared" else None

    cond = wait_for(
        refused, 60, lambda: f"StorageReady names the refusal\n{stack.operator.diagnose()}"
    )
    assert cond["status"] == "False"
    assert stack.namespace in cond["message"]
    assert "MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES" in cond["message"]
    assert "storage.shareWithNamespaces" in cond["message"]
    assert stack.condition("noshare", "Ready") == "False"
    wait_for(lambda: _secret(stack, stack.namespace) is None, 30, "the old copy deleted")
    assert not stack.jobs()


def test_a_shared_namespace_gets_a_copy_until_its_last_workflow_goes(
    shared_stack: tuple[Stack, str],
) -> None:
    stack, shared = shared_stack
    bucket = stack.bucket("share")
    _workflow(stack, shared, "first", bucket)
    _workflow(stack, shared, "second", bucket)
    wait_for(lambda: _is_ready(stack, shared, "first"), 60, "first Ready")
    wait_for(lambda: _is_ready(stack, shared, "second"), 60, "second Ready")
    copy = _secret(stack, shared)
    assert copy is not None
    assert copy.metadata.annotations[COPIED_FROM] == f"{SYSTEM_NAMESPACE}/mediaflow-storage"
    source = client.CoreV1Api(stack.api).read_namespaced_secret(
        "mediaflow-storage", SYSTEM_NAMESPACE
    )
    assert copy.data == source.data

    # One of two users leaves: the copy stays for the other.
    _delete(stack, shared, "first")
    assert _secret(stack, shared) is not None
    # The last one leaves: the operator's credentials leave the namespace with it.
    _delete(stack, shared, "second")
    wait_for(lambda: _secret(stack, shared) is None, 30, "the unused copy deleted")


def test_a_secret_of_the_same_name_that_is_not_ours_is_never_deleted(
    shared_stack: tuple[Stack, str],
) -> None:
    stack, _ = shared_stack
    client.CoreV1Api(stack.api).create_namespaced_secret(
        stack.namespace,
        {"metadata": {"name": COPY}, "stringData": {"accessKey": "mine"}},  # type: ignore[arg-type]
    )
    bucket = stack.bucket("foreign")
    stack.create_workflow(
        "foreign",
        {"trigger": {"bucket": bucket, "prefix": "in/"}, "tasks": [{"name": "a", "analysis": {}}]},
    )
    wait_for(
        lambda: (
            (_storage_condition(stack, "foreign") or {}).get("reason") == "DefaultStorageNotShared"
        ),
        60,
        "refused",
    )
    assert _secret(stack, stack.namespace) is not None
