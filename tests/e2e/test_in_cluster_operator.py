"""The operator as users deploy it: its own image, inside the cluster, with the
ServiceAccount and RBAC of config/rbac.yaml and the Deployment of
config/manager.yaml; it reaches the API server through in-cluster config (the
`kubernetes` Service, via kube-proxy) and MinIO and NATS through Service DNS
names resolved by the cluster DNS."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api import __version__
from tests.e2e.harness import (
    FAKE_WORKER_COMMAND,
    FAKE_WORKER_IMAGE,
    REPO,
    RESTRICTED,
    counters,
    delete_router_consumer,
    ensure_namespace,
    install_crd,
    put_secret,
    wait_for,
)
from tests.support.workflow_api import create_workflow_object, is_ready, workflow_status

pytestmark = pytest.mark.e2e

OPERATOR_IMAGE = f"ghcr.io/mediaflow/operator:{__version__}"


def _plain(body: dict[str, Any]) -> Any:
    """The client sends a plain manifest as it is; its stubs only know its models."""
    return body


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "config" / name).read_text()) if d]


def _external_service(
    api: client.ApiClient, namespace: str, name: str, ip: str, port: int, service_port: int
) -> None:
    """A Service in front of a server outside the cluster (on the node's host
    address), the way an operator team points a chart at external MinIO/NATS."""
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespaced_service(
        namespace,
        _plain(
            {
                "metadata": {"name": name},
                "spec": {"ports": [{"name": "main", "port": service_port, "targetPort": port}]},
            }
        ),
    )
    discovery.create_namespaced_endpoint_slice(
        namespace,
        _plain(
            {
                "metadata": {"name": name, "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip]}],
                "ports": [{"name": "main", "port": port, "protocol": "TCP"}],
            }
        ),
    )


class InCluster:
    """The operator Deployment from config/, in a system namespace of its own."""

    def __init__(self, api: client.ApiClient, suffix: str) -> None:
        self.api = api
        self.system = f"mediaflow-system-{suffix}"
        self.cluster_role = f"mediaflow-operator-{suffix}"
        self.namespace = f"media-{suffix}"

    def deploy(self, minio_server: Any, nats_server: Any, host_ip: str) -> None:
        ensure_namespace(self.api, self.system)
        ensure_namespace(self.api, self.namespace, labels=RESTRICTED)
        minio_port = int(minio_server.endpoint.rsplit(":", 1)[1])
        _external_service(self.api, self.system, "mediaflow-minio", host_ip, minio_port, 9000)
        _external_service(self.api, self.system, "mediaflow-nats", host_ip, nats_server.port, 4222)
        put_secret(
            self.api,
            self.system,
            "mediaflow-storage",
            {
                "endpoint": f"mediaflow-minio.{self.system}.svc.cluster.local:9000",
                "accessKey": minio_server.access_key,
                "secretKey": minio_server.secret_key,
                "secure": "false",
            },
        )
        core, rbac = client.CoreV1Api(self.api), client.RbacAuthorizationV1Api(self.api)
        for doc in _docs("rbac.yaml"):
            if doc["kind"] == "ServiceAccount":
                meta = {**doc["metadata"], "namespace": self.system}
                core.create_namespaced_service_account(
                    self.system, _plain({**doc, "metadata": meta})
                )
            elif doc["kind"] == "ClusterRole":
                meta = {**doc["metadata"], "name": self.cluster_role}
                rbac.create_cluster_role(_plain({**doc, "metadata": meta}))
            elif doc["kind"] == "ClusterRoleBinding":
                subjects = [{**s, "namespace": self.system} for s in doc["subjects"]]
                rbac.create_cluster_role_binding(
                    _plain(
                        {
                            **doc,
                            "metadata": {**doc["metadata"], "name": self.cluster_role},
                            "roleRef": {**doc["roleRef"], "name": self.cluster_role},
                            "subjects": subjects,
                        }
                    )
                )
        [deployment] = _docs("manager.yaml")
        deployment["metadata"]["namespace"] = self.system
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == OPERATOR_IMAGE
        overrides = {
            "MEDIAFLOW_DEFAULT_STORAGE_SECRET": f"{self.system}/mediaflow-storage",
            # Only this test's Workflows (other tests run their own operators).
            "MEDIAFLOW_NAMESPACES": self.namespace,
            "MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES": self.namespace,
            "MEDIAFLOW_NATS_SUBJECT": minio_server.notify_subject,
            "MEDIAFLOW_WORKER_IMAGE": FAKE_WORKER_IMAGE,
            "MEDIAFLOW_WORKER_COMMAND": f"{FAKE_WORKER_COMMAND} --sleep 0",
            "MEDIAFLOW_STATUS_FLUSH_SECONDS": "1",
            "MEDIAFLOW_POLL_SECONDS": "0.5",
        }
        env = [e for e in container["env"] if e["name"] not in overrides]
        container["env"] = env + [{"name": k, "value": v} for k, v in overrides.items()]
        client.AppsV1Api(self.api).create_namespaced_deployment(self.system, _plain(deployment))

    def operator_pod(self) -> Any:
        pods = (
            client.CoreV1Api(self.api)
            .list_namespaced_pod(
                self.system, label_selector="app.kubernetes.io/name=mediaflow-operator"
            )
            .items
        )
        return pods[0] if pods else None

    def ready(self) -> bool:
        pod = self.operator_pod()
        return bool(
            pod
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        )

    def logs(self) -> str:
        pod = self.operator_pod()
        if pod is None:
            return "(no operator pod)"
        try:
            return str(
                client.CoreV1Api(self.api).read_namespaced_pod_log(
                    pod.metadata.name, self.system, tail_lines=40
                )
            )
        except ApiException as exc:
            return f"(no log: {exc.reason})"

    def remove(self) -> None:
        rbac = client.RbacAuthorizationV1Api(self.api)
        deletions: tuple[Callable[[], object], ...] = (
            lambda: client.CoreV1Api(self.api).delete_namespace(self.namespace),
            lambda: client.CoreV1Api(self.api).delete_namespace(self.system),
            lambda: rbac.delete_cluster_role_binding(self.cluster_role),
            lambda: rbac.delete_cluster_role(self.cluster_role),
        )
        for delete in deletions:
            try:
                delete()
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def in_cluster(kube_cluster: Any, minio_server: Any, nats_server: Any) -> Iterator[InCluster]:
    api = kube_cluster.api_client()
    install_crd(api)
    deployment = InCluster(api, uuid.uuid4().hex[:8])
    deployment.deploy(minio_server, nats_server, kube_cluster.node.network.host_ip)
    try:
        yield deployment
    finally:
        deployment.remove()
        delete_router_consumer(nats_server.url, "MEDIAFLOW_EVENTS", (deployment.namespace,))


def test_the_operator_image_runs_in_the_cluster_with_the_shipped_rbac(
    in_cluster: InCluster, minio_server: Any, kube_cluster: Any
) -> None:
    wait_for(in_cluster.ready, 120, f"the operator pod to be Ready\n{in_cluster.logs()}")
    pod = in_cluster.operator_pod()
    status = pod.status.container_statuses[0]
    assert status.image == OPERATOR_IMAGE
    assert status.container_id.startswith("containerd://")
    assert pod.spec.node_name == kube_cluster.node.name

    minio = minio_server.client()
    bucket = f"incluster-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    custom = client.CustomObjectsApi(in_cluster.api)
    create_workflow_object(
        in_cluster.api,
        in_cluster.namespace,
        {"trigger": {"bucket": bucket}, "tasks": [{"name": "probe", "analysis": {}}]},
        name="in-cluster",
    )

    def status_of() -> dict[str, Any]:
        return workflow_status(in_cluster.api, in_cluster.namespace, "in-cluster")

    wait_for(lambda: is_ready(status_of()), 120, f"the Workflow to be Ready\n{in_cluster.logs()}")
    for key in ("a.mp4", "b.mp4"):
        minio.put_object(bucket, key, io.BytesIO(b"media bytes"), 11)
    wait_for(
        lambda: counters(status_of())["succeeded"] == 2,
        180,
        f"both uploads processed by the in-cluster operator\n{in_cluster.logs()}",
    )
    assert counters(status_of())["failed"] == 0
    # The worker Jobs were created by the operator's ServiceAccount.
    jobs = client.BatchV1Api(in_cluster.api).list_namespaced_job(in_cluster.namespace).items
    assert jobs
    assert all(j.spec.template.spec.automount_service_account_token is False for j in jobs)
    # Deleting the Workflow runs the in-cluster operator's finalizer.
    custom.delete_namespaced_custom_object(
        "mediaflow.dev", "v1alpha1", in_cluster.namespace, "workflows", "in-cluster"
    )

    def gone() -> bool:
        try:
            status_of()
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, 60, f"the finalizer to let the Workflow go\n{in_cluster.logs()}")
