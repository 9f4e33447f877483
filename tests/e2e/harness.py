"""Helpers for operator tests on the real stack: the CRD, a real operator
subprocess, Workflows, uploads, and reading the results back.

Tests synchronise only through ``wait_for`` (a condition with a deadline).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from minio import Minio
from prometheus_client.parser import text_string_to_metric_families

from mediaflow_api import __version__
from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator.diagnostics import DUMP_END
from tests.support.processes import free_port, tail
from tests.support.waiting import ConditionTimeout, wait_for
from tests.support.workflow_api import ensure_namespace, install_crd

__all__ = ["ensure_namespace", "install_crd", "wait_for"]

# Jobs run as real containers on the stack's node: the stand-in worker is
# tests/e2e/fake_worker.py baked into a test image built FROM the worker image
# (tests/e2e/fake-worker.Containerfile, by `make images`).
FAKE_WORKER_IMAGE = "localhost/mediaflow-fake-worker:test"
FAKE_WORKER_COMMAND = "python /opt/mediaflow-test/fake_worker.py"
WORKER_IMAGE = f"ghcr.io/mediaflow/worker:{__version__}"
# The image of Jobs whose tasks need the ML packages (scripts/images.sh builds it).
WORKER_ML_IMAGE = f"ghcr.io/mediaflow/worker-ml:{__version__}"
# Namespaces of Workflows enforce the restricted Pod Security Standard, as a
# careful cluster would: the operator's Jobs must pass it.
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
REPO = Path(__file__).resolve().parents[2]
SYSTEM_NAMESPACE = "mediaflow-system"
DEFAULT_SECRET = "mediaflow-storage"


def install_peering(api_client: client.ApiClient, name: str) -> None:
    """kopf's peering CRD from config/peering.yaml, and a peering object ``name``."""
    ext = client.ApiextensionsV1Api(api_client)
    crd_doc, peering_doc = list(yaml.safe_load_all((REPO / "config" / "peering.yaml").read_text()))
    try:
        ext.create_custom_resource_definition(crd_doc)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        found = ext.read_custom_resource_definition(crd_doc["metadata"]["name"])
        return any(
            c.type == "Established" and c.status == "True" for c in (found.status.conditions or [])
        )

    wait_for(established, 60, "kopf's peering CRD to be established")
    group, version = peering_doc["apiVersion"].split("/")
    body = {**peering_doc, "metadata": {"name": name}}
    client.CustomObjectsApi(api_client).create_cluster_custom_object(
        group, version, "clusterkopfpeerings", body
    )


def put_secret(
    api_client: client.ApiClient, namespace: str, name: str, data: dict[str, str]
) -> None:
    core = client.CoreV1Api(api_client)
    body = {"metadata": {"name": name, "namespace": namespace}, "stringData": data}
    try:
        core.create_namespaced_secret(namespace, body)  # type: ignore[arg-type]  # a plain manifest
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(name, namespace, body)  # type: ignore[arg-type]  # a plain manifest


@dataclass
class OperatorProcess:
    """``python -m mediaflow_operator`` as a real subprocess (so SIGKILL is real)."""

    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "mediaflow_operator"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO,
            )
        self.starts += 1
        port = self.env["MEDIAFLOW_LIVENESS_ENDPOINT"].rsplit(":", 1)[1].split("/")[0]
        wait_for(
            lambda: self._healthy(int(port)), 60, lambda: f"operator liveness\n{self.log_tail()}"
        )

    def _healthy(self, port: int) -> bool:
        import urllib.request

        assert self.popen is not None
        if self.popen.poll() is not None:
            raise AssertionError(
                f"operator exited with {self.popen.returncode}:\n{self.log_tail()}"
            )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no final status write."""
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def diagnose(self, lines: int = 400) -> str:
        """The log's end after asking the operator to log what every task and
        thread waits on (``diagnostics``: SIGUSR1), for a failure message."""
        if self.popen is None or self.popen.poll() is not None:
            return self.log_tail(lines)
        os.kill(self.popen.pid, signal.SIGUSR1)
        with contextlib.suppress(ConditionTimeout):  # a stuck loop cannot dump: the log as is
            wait_for(lambda: DUMP_END in self.log_text()[-4000:], 5, "the operator's task dump")
        return self.log_tail(lines)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics_text(self) -> str:
        """What the operator's Prometheus endpoint serves."""
        port = self.env["MEDIAFLOW_METRICS_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())


def operator_env(
    kube_cluster: Any,
    minio_server: Any,
    nats_server: Any,
    *,
    worker_sleep: float = 0.0,
    sweep_interval: float = 300,
    sweep_grace: float = 20,
    worker_command: str | None = None,
    stream: str = "MEDIAFLOW_EVENTS",
    share_storage_with: str = "*",
) -> dict[str, str]:
    """The environment of an operator process on the stack. ``share_storage_with``
    lists the namespaces (space-separated, ``*`` for all) that may use the default
    storage Secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAFLOW_", "KUBERNETES_"))}
    env.update(
        {
            "KUBECONFIG": str(kube_cluster.kubeconfig),
            "MEDIAFLOW_NATS_URL": nats_server.url,
            "MEDIAFLOW_NATS_STREAM": stream,
            "MEDIAFLOW_NATS_SUBJECT": minio_server.notify_subject,
            "MEDIAFLOW_MINIO_NOTIFY_TARGET_ID": minio_server.notify_target_id,
            "MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID": minio_server.notify_fast_target_id,
            "MEDIAFLOW_S3_ENDPOINT": minio_server.endpoint,
            "MEDIAFLOW_S3_ACCESS_KEY": minio_server.access_key,
            "MEDIAFLOW_S3_SECRET_KEY": minio_server.secret_key,
            "MEDIAFLOW_DEFAULT_STORAGE_SECRET": f"{SYSTEM_NAMESPACE}/{DEFAULT_SECRET}",
            "MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES": share_storage_with,
            "MEDIAFLOW_WORKER_IMAGE": WORKER_IMAGE if worker_command else FAKE_WORKER_IMAGE,
            # The stand-in worker answers for ML tasks too (it is in no other image).
            "MEDIAFLOW_WORKER_ML_IMAGE": WORKER_ML_IMAGE if worker_command else FAKE_WORKER_IMAGE,
            "MEDIAFLOW_WORKER_COMMAND": worker_command
            or f"{FAKE_WORKER_COMMAND} --sleep {worker_sleep}",
            "MEDIAFLOW_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
            "MEDIAFLOW_METRICS_PORT": str(free_port()),
            "MEDIAFLOW_SWEEP_INTERVAL_SECONDS": str(sweep_interval),
            "MEDIAFLOW_SWEEP_GRACE_SECONDS": str(sweep_grace),
            "MEDIAFLOW_RECONCILE_INTERVAL_SECONDS": "20",
            "MEDIAFLOW_STATUS_FLUSH_SECONDS": "1",
            "MEDIAFLOW_POLL_SECONDS": "0.5",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


class OperatorLog(Protocol):
    """What tests read of an operator, wherever it runs (a local process or the
    chart's Deployment)."""

    def log_text(self) -> str: ...

    def log_tail(self, lines: int = 60) -> str: ...

    def diagnose(self, lines: int = 400) -> str: ...

    def metrics_text(self) -> str: ...


@dataclass
class Stack:
    """Everything a test needs: API clients, MinIO, a namespace of its own."""

    api: client.ApiClient
    minio: Minio
    namespace: str
    operator: OperatorLog
    created: list[str] = field(default_factory=list)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    def bucket(self, prefix: str = "b") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.minio.make_bucket(name)
        return name

    def create_workflow(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body, field_validation="Strict"
        )
        self.created.append(name)
        return cast(dict[str, Any], created)

    def get(self, name: str) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return cast(dict[str, Any], found)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )

    def delete(self, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def gone(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def condition(self, name: str, type_: str) -> str | None:
        for cond in self.status(name).get("conditions") or []:
            if cond.get("type") == type_:
                return str(cond.get("status"))
        return None

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            wf = self.get(name)
            status = wf.get("status") or {}
            ok = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            gen_ok = status.get("observedGeneration") == wf["metadata"]["generation"]
            return wf if ok and gen_ok and status.get("consumer") is not None else None

        return wait_for(
            ready, timeout, lambda: f"Workflow {name} Ready\n{self.operator.diagnose()}"
        )

    def jobs(self, workflow_uid: str | None = None) -> list[Any]:
        selector = "app.kubernetes.io/managed-by=mediaflow-operator"
        if workflow_uid:
            selector += f",mediaflow.dev/workflow-uid={workflow_uid}"
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=selector).items)

    def upload(self, bucket: str, key: str, data: bytes = b"media bytes", **kw: Any) -> None:
        self.minio.put_object(bucket, key, io.BytesIO(data), len(data), **kw)

    def has_manifest(self, bucket: str, directory: str) -> bool:
        try:
            self.minio.stat_object(bucket, directory + "manifest.json")
        except Exception:
            return False
        return True

    def cleanup(self) -> None:
        for name in self.created:
            self.delete(name)
        for name in self.created:

            def deleted(n: str = name) -> bool:
                return self.gone(n)

            wait_for(deleted, 60, f"Workflow {name} deleted (finalizer)")


def our_rule_prefixes(minio: Minio, bucket: str) -> list[str]:
    from mediaflow_operator.bucket_rules import our_prefixes

    return our_prefixes(minio.get_bucket_notification(bucket))


def delete_router_consumer(nats_url: str, stream: str, namespaces: tuple[str, ...]) -> None:
    """Delete the router consumer of an operator limited to ``namespaces`` once
    it is gone for good: on a stream shared with the next tests' operators it
    would hold every event (JetStream drops it only after days of inactivity)."""
    import asyncio

    import nats

    from mediaflow_operator import queue

    async def delete() -> None:
        nc = await nats.connect(nats_url)
        try:
            await queue.delete_consumer(nc.jetstream(), stream, queue.router_durable(namespaces))
        finally:
            await nc.close()

    asyncio.run(delete())


def consumer_exists(nats_url: str, stream: str, durable: str) -> bool:
    """Ask NATS directly whether a durable consumer exists."""
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    async def check() -> bool:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().consumer_info(stream, durable)
            return True
        except NotFoundError:
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


def counters(status: dict[str, Any]) -> dict[str, int]:
    return {
        k: int(status.get(k) or 0)
        for k in ("received", "skipped", "running", "succeeded", "failed")
    }


def prepare_stack(kube_cluster: Any, minio_server: Any) -> tuple[client.ApiClient, str]:
    """CRD, the default storage Secret, and a fresh restricted namespace."""
    api = kube_cluster.api_client()
    install_crd(api)
    ensure_namespace(api, SYSTEM_NAMESPACE)
    put_secret(
        api,
        SYSTEM_NAMESPACE,
        DEFAULT_SECRET,
        {
            "endpoint": minio_server.endpoint,
            "accessKey": minio_server.access_key,
            "secretKey": minio_server.secret_key,
            "secure": "false",
        },
    )
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace(api, namespace, labels=RESTRICTED)
    return api, namespace


def stack_fixture(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path, **env_kw: Any
) -> Iterator[Stack]:
    """Body of the ``stack`` fixtures: CRD, default Secret, namespace, operator."""
    api, namespace = prepare_stack(kube_cluster, minio_server)
    extra_env = env_kw.pop("extra_env", None) or {}
    env_kw.setdefault("share_storage_with", namespace)
    env = operator_env(kube_cluster, minio_server, nats_server, **env_kw)
    env.update(extra_env(api) if callable(extra_env) else extra_env)
    operator = OperatorProcess(env, tmp_path / "operator.log")
    operator.start()
    stack = Stack(api=api, minio=minio_server.client(), namespace=namespace, operator=operator)
    try:
        yield stack
    finally:
        try:
            if operator.popen is not None and operator.popen.poll() is not None:
                operator.start()
            stack.cleanup()
        finally:
            operator.stop()


def operator_metric(stack: Stack, name: str, **labels: str) -> float:
    """The value of the operator's sample ``name`` with exactly ``labels`` (0 when absent)."""
    for family in text_string_to_metric_families(stack.operator.metrics_text()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
