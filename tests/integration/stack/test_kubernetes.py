"""The local Kubernetes control plane and its real node behave like a cluster
for everything mediaflow relies on. Pods run as containers of the project's
worker image (it has Python) under containerd."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api import __version__
from tests.support.binaries import binary, versions
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PY = "python3"
IMAGE = f"ghcr.io/mediaflow/worker:{__version__}"


@pytest.fixture
def namespace(kube_cluster: Any) -> str:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def job_manifest(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": IMAGE, "command": [PY, "-c", script]}
    container.update(spec.pop("container", {}))
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    pod_spec.update(spec.pop("pod", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, **spec.pop("metadata", {})},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}, **spec},
    }


def create_job(batch: client.BatchV1Api, namespace: str, manifest: dict[str, Any]) -> None:
    """The client sends a plain manifest as it is; its stubs only know V1Job."""
    batch.create_namespaced_job(namespace, manifest)  # type: ignore[arg-type]


def job_condition(
    batch: client.BatchV1Api, namespace: str, name: str, kind: str
) -> dict[str, Any] | None:
    job = batch.read_namespaced_job(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type == kind and condition.status == "True":
            return {"reason": condition.reason, "message": condition.message}
    return None


def test_readyz_reports_ok_with_the_admin_kubeconfig(kube_cluster: Any) -> None:
    kubectl = binary("kubectl")
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(kube_cluster.kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "ok"
    version = client.VersionApi(kube_cluster.api_client()).get_code().git_version
    assert version == versions()["KUBERNETES_VERSION"]


def test_a_custom_resource_is_stored_and_its_status_subresource_updated(kube_cluster: Any) -> None:
    api = kube_cluster.api_client()
    ext = client.ApiextensionsV1Api(api)
    group = "smoke.mediaflow.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"seen": {"type": "integer"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)  # type: ignore[arg-type]  # a plain manifest

    def established() -> bool:
        conditions = ext.read_custom_resource_definition(f"gadgets.{group}").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, 30, "the CRD to be Established")
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 3},
    }
    custom.create_namespaced_custom_object(group, "v1", "default", "gadgets", body)
    # Status sent with the main resource is ignored; only the subresource writes it.
    custom.patch_namespaced_custom_object(
        group, "v1", "default", "gadgets", "g1", {"status": {"seen": 1}}
    )

    def gadget() -> dict[str, Any]:
        return cast(
            dict[str, Any],
            custom.get_namespaced_custom_object(group, "v1", "default", "gadgets", "g1"),
        )

    assert "status" not in gadget()
    custom.patch_namespaced_custom_object_status(
        group, "v1", "default", "gadgets", "g1", {"status": {"seen": 7}}
    )
    stored = gadget()
    assert stored["spec"] == {"size": 3}
    assert stored["status"] == {"seen": 7}
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object(
            group,
            "v1",
            "default",
            "gadgets",
            {**body, "metadata": {"name": "g2"}, "spec": {"size": 0}},
        )
    assert invalid.value.status == 422
    assert "spec.size" in invalid.value.body


def test_a_job_whose_pod_exits_zero_completes(kube_cluster: Any, namespace: str) -> None:
    batch = client.BatchV1Api(kube_cluster.api_client())
    create_job(batch, namespace, job_manifest("ok", "print('hello from the pod')"))
    wait_for(lambda: job_condition(batch, namespace, "ok", "Complete"), 60, "Job ok to complete")
    assert batch.read_namespaced_job("ok", namespace).status.succeeded == 1
    pod = client.CoreV1Api(kube_cluster.api_client()).list_namespaced_pod(namespace).items[0]
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert "hello from the pod" in kube_cluster.pod_log(namespace, pod.metadata.name, "main")


def test_a_job_whose_pod_exits_one_fails_after_its_backoff_limit(
    kube_cluster: Any, namespace: str
) -> None:
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    manifest = job_manifest("bad", "import sys; sys.exit(1)", backoffLimit=1)
    create_job(batch, namespace, manifest)
    failed = wait_for(
        lambda: job_condition(batch, namespace, "bad", "Failed"), 90, "Job bad to fail"
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=bad").items
    assert len(pods) == 2, "backoffLimit 1 means one retry"
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {1}


def test_a_pod_failure_policy_on_an_exit_code_fails_the_job_at_once(
    kube_cluster: Any, namespace: str
) -> None:
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    script = (
        "import os, sys; open(os.environ['TERM_PATH'], 'w').write('corrupt input'); sys.exit(2)"
    )
    manifest = job_manifest(
        "poison",
        script,
        backoffLimit=5,
        container={"env": [{"name": "TERM_PATH", "value": "/dev/termination-log"}]},
        podFailurePolicy={
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]},
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    )
    create_job(batch, namespace, manifest)
    failed = wait_for(
        lambda: job_condition(batch, namespace, "poison", "Failed"), 60, "Job poison to fail"
    )
    assert failed["reason"] == "PodFailurePolicy"
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=poison").items
    assert len(pods) == 1, "no retry after a FailJob rule matched"
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 2
    assert terminated.message == "corrupt input"


def test_deleting_the_owner_garbage_collects_its_jobs(kube_cluster: Any, namespace: str) -> None:
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    for name in ("owned-a", "owned-b"):
        create_job(
            batch, namespace, job_manifest(name, "print(1)", metadata={"ownerReferences": [ref]})
        )
    create_job(batch, namespace, job_manifest("unowned", "print(1)"))
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def only_unowned_left() -> bool:
        names = {j.metadata.name for j in batch.list_namespaced_job(namespace).items}
        return names == {"unowned"}

    wait_for(only_unowned_left, 60, "owned Jobs to be garbage-collected")


def test_a_pod_gets_env_from_secrets_config_maps_and_fields_and_its_volumes(
    kube_cluster: Any, namespace: str
) -> None:
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"),
            string_data={"accessKey": "AK", "file.txt": "from-secret"},
        ),
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"mode": "fast"}),
    )
    script = (
        "import json, os, pathlib;"
        "scratch = pathlib.Path(os.environ['SCRATCH']); (scratch / 'x').write_text('w');"
        "out = {k: os.environ.get(k) for k in ('ACCESS','MODE','POD','MISSING')};"
        "out['secretFile'] = pathlib.Path(os.environ['CREDS'], 'file.txt').read_text();"
        "out['scratchWritten'] = (scratch / 'x').read_text();"
        "open(os.environ['TERM_PATH'], 'w').write(json.dumps(out))"
    )
    manifest = job_manifest(
        "env",
        script,
        container={
            "env": [
                {
                    "name": "ACCESS",
                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accessKey"}},
                },
                {
                    "name": "MISSING",
                    "valueFrom": {
                        "secretKeyRef": {"name": "creds", "key": "nope", "optional": True}
                    },
                },
                {
                    "name": "MODE",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                },
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "SCRATCH", "value": "/scratch"},
                {"name": "CREDS", "value": "/etc/creds"},
                {"name": "TERM_PATH", "value": "/dev/termination-log"},
            ],
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
            ],
        },
        pod={
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "creds", "secret": {"secretName": "creds"}},
            ]
        },
    )
    create_job(batch, namespace, manifest)
    wait_for(lambda: job_condition(batch, namespace, "env", "Complete"), 60, "Job env to complete")
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=env").items[0]
    import json

    seen = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert seen == {
        "ACCESS": "AK",
        "MODE": "fast",
        "POD": pod.metadata.name,
        "MISSING": None,
        "secretFile": "from-secret",
        "scratchWritten": "w",
    }


def test_a_missing_secret_key_leaves_the_pod_waiting_with_the_reason(
    kube_cluster: Any, namespace: str
) -> None:
    """The kubelet does not fail such a pod: it retries and says why while
    waiting (only a deadline ends its Job). The operator must expect that."""
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    manifest = job_manifest(
        "nosecret",
        "print(1)",
        container={
            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
        },
    )
    create_job(batch, namespace, manifest)

    def waiting_reason() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=nosecret").items
        for pod in pods:
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting
                if waiting and waiting.reason == "CreateContainerConfigError":
                    return waiting
        return None

    waiting = wait_for(waiting_reason, 60, "the pod to wait for its Secret")
    assert 'secret "absent" not found' in waiting.message


def _container_id(core: client.CoreV1Api, namespace: str, job: str) -> str | None:
    for pod in core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items:
        for status in pod.status.container_statuses or []:
            if status.state.running and status.container_id:
                return str(status.container_id)
    return None


def test_job_deadline_kills_the_running_container(kube_cluster: Any, namespace: str) -> None:
    api = kube_cluster.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    create_job(
        batch,
        namespace,
        job_manifest("slow", "import time; time.sleep(600)", activeDeadlineSeconds=8),
    )
    container_id = wait_for(
        lambda: _container_id(core, namespace, "slow"), 60, "the container to run"
    )
    assert container_id.startswith("containerd://")
    task = container_id.removeprefix("containerd://")
    assert task in kube_cluster.node.ctr("tasks", "list")
    failed = wait_for(
        lambda: job_condition(batch, namespace, "slow", "Failed"),
        60,
        "Job slow to hit its deadline",
    )
    assert failed["reason"] == "DeadlineExceeded"
    wait_for(
        lambda: task not in kube_cluster.node.ctr("tasks", "list"),
        60,
        f"container {task[:12]} to be killed",
    )


def test_a_pod_over_its_memory_limit_is_oom_killed(kube_cluster: Any, namespace: str) -> None:
    batch = client.BatchV1Api(kube_cluster.api_client())
    core = client.CoreV1Api(kube_cluster.api_client())
    script = "blocks = [bytearray(16 * 2**20) for _ in range(64)]; print(len(blocks))"
    manifest = job_manifest(
        "hungry", script, container={"resources": {"limits": {"memory": "64Mi"}}}
    )
    create_job(batch, namespace, manifest)
    wait_for(lambda: job_condition(batch, namespace, "hungry", "Failed"), 90, "Job hungry to fail")
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=hungry").items[0]
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "OOMKilled"
    assert terminated.exit_code == 137


def test_a_restricted_pod_runs_non_root_without_token_on_a_read_only_root(
    kube_cluster: Any,
) -> None:
    """The worker image under the restricted Pod Security Standard: admitted,
    non-root, its root filesystem read-only, no ServiceAccount token; cluster
    DNS and a Service (through kube-proxy) reachable."""
    api = kube_cluster.api_client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    name = f"restricted-{uuid.uuid4().hex[:8]}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    script = (
        "import json, os, pathlib, socket\n"
        "out = {'uid': os.getuid()}\n"
        "try:\n    pathlib.Path('/probe').write_text('x'); out['rootWritable'] = True\n"
        "except OSError as e:\n    out['rootWritable'] = e.strerror\n"
        "out['token'] = os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token')\n"
        "out['dns'] = socket.gethostbyname('kubernetes.default.svc.cluster.local')\n"
        "socket.create_connection(('kubernetes.default', 443), timeout=5).close()\n"
        "out['service'] = 'connected'\n"
        "open('/dev/termination-log', 'w').write(json.dumps(out))\n"
    )
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    manifest = job_manifest(
        "restricted",
        script,
        container={"securityContext": restricted},
        pod={
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        },
    )
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30, "the default SA")
    create_job(batch, name, manifest)
    wait_for(lambda: job_condition(batch, name, "restricted", "Complete"), 90, "Job to complete")
    pod = core.list_namespaced_pod(name, label_selector="job-name=restricted").items[0]
    import json

    seen = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert seen == {
        "uid": 10001,
        "rootWritable": "Read-only file system",
        "token": False,
        "dns": "10.0.0.1",
        "service": "connected",
    }
    assert pod.spec.node_name == kube_cluster.node.name
    core.delete_namespace(name)


def test_a_privileged_pod_is_refused_in_a_restricted_namespace(kube_cluster: Any) -> None:
    core = client.CoreV1Api(kube_cluster.api_client())
    name = f"restricted-{uuid.uuid4().hex[:8]}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    pod = {
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["true"]}]},
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(name, pod)  # type: ignore[arg-type]
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body
    core.delete_namespace(name)


def test_token_request_issues_a_token_for_a_service_account(
    kube_cluster: Any, namespace: str
) -> None:
    api = kube_cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    )
    token = core.create_namespaced_service_account_token(
        "robot",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    config = client.Configuration()
    config.host = kube_cluster.server
    config.ssl_ca_cert = str(kube_cluster.control_plane.pki.ca_cert)
    config.api_key = {"authorization": f"Bearer {token}"}
    as_robot = client.ApiClient(config)
    # RBAC denies an unprivileged ServiceAccount; the 403 proves it was authenticated as itself.
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(as_robot).list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:robot" in denied.value.body
