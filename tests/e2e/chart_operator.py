"""The operator as the Helm chart installs it, inside the cluster, behind the
handle the e2e tests use for the host-process operator (its log). The chart
points at the test stack's MinIO and NATS as external services, so the same
tests run against both deployments (see the ``stack`` fixture)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.harness import (
    DEFAULT_SECRET,
    FAKE_WORKER_COMMAND,
    FAKE_WORKER_IMAGE,
    SYSTEM_NAMESPACE,
    Stack,
    delete_router_consumer,
    prepare_stack,
)
from tests.support.binaries import binary
from tests.support.helm import CHART, run_helm


class ChartOperator:
    """One Helm release of charts/mediaflow whose operator watches one namespace."""

    popen = None  # not a local process: nothing to restart from the test

    def __init__(self, api: client.ApiClient, kubeconfig: Path, watched: str) -> None:
        self.api = api
        self.kubeconfig = kubeconfig
        self.watched = watched
        self.release = f"mf-{uuid.uuid4().hex[:6]}"

    def _helm(self, *args: str) -> None:
        run_helm(*args, kubeconfig=self.kubeconfig, namespace=SYSTEM_NAMESPACE, timeout=360)

    def start(self, minio_server: Any, nats_server: Any, worker_sleep: float) -> None:
        """helm install with the stack's MinIO and NATS as external services."""
        fake_repository, fake_tag = FAKE_WORKER_IMAGE.rsplit(":", 1)
        values: dict[str, Any] = {
            "minio.enabled": False,
            "nats.enabled": False,
            "externalMinio.endpoint": minio_server.endpoint,
            "externalMinio.secure": False,
            "externalNats.url": nats_server.url,
            # The stack's MinIO has both targets, as the bundled one has.
            "events.targetId": minio_server.notify_target_id,
            "events.fastTargetId": minio_server.notify_fast_target_id,
            "storage.existingSecret": DEFAULT_SECRET,
            "rbac.namespaces": [self.watched],
            "storage.shareWithNamespaces": [self.watched],
            "worker.image.repository": fake_repository,
            "worker.image.tag": fake_tag,
            "worker.command": [*FAKE_WORKER_COMMAND.split(), "--sleep", str(worker_sleep)],
            # As the host-process operator of the other fixtures is tuned.
            "operator.logFormat": "text",
            "operator.statusFlushSeconds": 1,
            "operator.pollSeconds": 0.5,
            "operator.reconcileIntervalSeconds": 20,
            "operator.sweepIntervalSeconds": 300,
            "operator.sweepGraceSeconds": 20,
            "tests.enabled": False,
        }
        # --set-json keeps numbers, booleans and lists typed for the values schema.
        sets = [a for k, v in values.items() for a in ("--set-json", f"{k}={json.dumps(v)}")]
        self._helm("install", self.release, str(CHART), *sets, "--wait", "--timeout", "4m")

    def stop(self) -> None:
        self._helm("uninstall", self.release, "--wait", "--timeout", "3m")

    def log_text(self) -> str:
        core = client.CoreV1Api(self.api)
        pods = core.list_namespaced_pod(
            SYSTEM_NAMESPACE,
            label_selector=f"app.kubernetes.io/instance={self.release},"
            "app.kubernetes.io/component=operator",
        ).items
        if not pods:
            return ""
        try:
            return str(core.read_namespaced_pod_log(pods[0].metadata.name, SYSTEM_NAMESPACE))
        except ApiException as exc:
            return f"(no operator log: {exc.reason})"

    def metrics_text(self) -> str:
        """The operator pod's Prometheus endpoint, through `kubectl port-forward`
        (the host has no route into the pod network)."""
        forward = subprocess.Popen(
            [binary("kubectl"), "--kubeconfig", str(self.kubeconfig), "-n", SYSTEM_NAMESPACE,
             "port-forward", f"deployment/{self.release}-mediaflow-operator", ":9090"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        try:
            assert forward.stdout is not None
            first = forward.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 9090"
            port = int(first.split("127.0.0.1:", 1)[1].split()[0])
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())
        finally:
            forward.terminate()
            forward.wait(timeout=10)
            if forward.stdout is not None:
                forward.stdout.close()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def diagnose(self, lines: int = 400) -> str:
        """The log's end (the pod's operator is not signalled)."""
        return self.log_tail(lines)


def chart_stack_fixture(
    kube_cluster: Any, minio_server: Any, nats_server: Any, worker_sleep: float = 0.0
) -> Iterator[Stack]:
    """Body of the ``stack`` fixture's chart variant: the chart's operator watches
    the test's namespace only."""
    api, namespace = prepare_stack(kube_cluster, minio_server)
    operator = ChartOperator(api, kube_cluster.kubeconfig, namespace)
    operator.start(minio_server, nats_server, worker_sleep)
    stack = Stack(api=api, minio=minio_server.client(), namespace=namespace, operator=operator)
    try:
        yield stack
    finally:
        try:
            stack.cleanup()
        finally:
            operator.stop()
            delete_router_consumer(nats_server.url, "MEDIAFLOW_EVENTS", (namespace,))
