"""The operator works with exactly the permissions of config/rbac.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api.templates import GROUP, VERSION
from mediaflow_api.templates import PLURAL as TEMPLATE_PLURAL
from tests.e2e.harness import (
    REPO,
    SYSTEM_NAMESPACE,
    Stack,
    counters,
    ensure_namespace,
    stack_fixture,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _apply_rbac(api: client.ApiClient) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    ensure_namespace(api, SYSTEM_NAMESPACE)
    for doc in yaml.safe_load_all((REPO / "config" / "rbac.yaml").read_text()):
        kind = doc["kind"]
        try:
            if kind == "ServiceAccount":
                core.create_namespaced_service_account(doc["metadata"]["namespace"], doc)
            elif kind == "ClusterRole":
                rbac.create_cluster_role(doc)
            elif kind == "ClusterRoleBinding":
                rbac.create_cluster_role_binding(doc)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if kind == "ClusterRole":
                rbac.replace_cluster_role(doc["metadata"]["name"], doc)


def _service_account_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: Path, target: Path
) -> Path:
    _apply_rbac(api)
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            "mediaflow-operator",
            SYSTEM_NAMESPACE,
            {"spec": {"expirationSeconds": 3600}},  # type: ignore[arg-type]  # a plain manifest
        )
        .status.token
    )
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}
        ],
        "current-context": "operator",
    }
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return target


@pytest.fixture
def sa_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    def env(api: client.ApiClient) -> dict[str, str]:
        path = _service_account_kubeconfig(api, kube_cluster.kubeconfig, tmp_path / "sa.kubeconfig")
        return {"KUBECONFIG": str(path)}

    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path, extra_env=env)


def test_operator_runs_with_the_shipped_rbac(sa_stack: Stack) -> None:
    stack = sa_stack
    bucket = stack.bucket("rbac")
    # Its task's settings come from a template: reading templates and writing their
    # status (usedBy) are part of the shipped permissions too.
    stack.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        stack.namespace,
        TEMPLATE_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MediaTemplate",
            "metadata": {"name": "probe", "namespace": stack.namespace},
            "spec": {"analysis": {}},
        },
    )
    stack.create_workflow(
        "rbac",
        {
            "trigger": {"bucket": bucket},
            "tasks": [{"name": "probe", "template": {"name": "probe"}}],
            "execution": {"finishedJobRetentionSeconds": 0},
        },
    )
    stack.wait_ready("rbac")
    stack.upload(bucket, "bad-input.mp4")
    stack.upload(bucket, "good.mp4")

    def done() -> dict[str, int] | None:
        c = counters(stack.status("rbac"))
        return c if c["succeeded"] == 1 and c["failed"] == 1 and c["running"] == 0 else None

    wait_for(done, 90, lambda: f"results as the ServiceAccount\n{stack.operator.diagnose()}")
    assert stack.status("rbac")["lastFailures"][0]["reason"] == "BadInput"
    wait_for(lambda: stack.jobs() == [], 60, "Jobs deleted by the operator")

    def used_by() -> Any:
        found = stack.custom.get_namespaced_custom_object(
            GROUP, VERSION, stack.namespace, TEMPLATE_PLURAL, "probe"
        )
        return (cast(dict[str, Any], found).get("status") or {}).get("usedBy")

    wait_for(lambda: used_by() == [f"{stack.namespace}/rbac"], 30, "the template's usedBy")
    # A refusal is logged as "(403)" / "Forbidden" / "... is forbidden"; a bare "403" is no
    # evidence (Job names end in a hash, e.g. mf-rbac-5981f52d92403691).
    refusals = re.findall(r"(?i).*(?:forbidden|\(403\)).*", stack.operator.log_text())
    assert refusals == []
