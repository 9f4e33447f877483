"""The local Kubernetes control plane and the test pod runner behave like a
real cluster for everything mediaflow relies on."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.binaries import binary, versions
from tests.support.processes import pid_alive
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PY = "python3"


@pytest.fixture
def namespace(kube_cluster: Any) -> str:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def job_manifest(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "python:3", "command": [PY, "-c", script]}
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


def test_the_pod_runner_resolves_env_volumes_and_translates_mount_paths(
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


def test_a_missing_secret_key_fails_the_pod_with_a_reason(
    kube_cluster: Any, namespace: str
) -> None:
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
    wait_for(
        lambda: job_condition(batch, namespace, "nosecret", "Failed"), 60, "Job nosecret to fail"
    )
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=nosecret").items[0]
    assert 'secret "absent" not found' in pod.status.container_statuses[0].state.terminated.message


def test_job_deadline_kills_the_running_process(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    batch = client.BatchV1Api(kube_cluster.api_client())
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    create_job(batch, namespace, job_manifest("slow", script, activeDeadlineSeconds=3))
    pid = int(
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the pod process to start")
    )
    failed = wait_for(
        lambda: job_condition(batch, namespace, "slow", "Failed"),
        60,
        "Job slow to hit its deadline",
    )
    assert failed["reason"] == "DeadlineExceeded"
    wait_for(lambda: not pid_alive(pid), 30, f"process {pid} to be killed")


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
