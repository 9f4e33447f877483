"""Session fixtures for the real local stack and the media corpus.

Every integration and e2e test talks to real servers started here: NATS
JetStream, MinIO (with a JetStream notification target), etcd +
kube-apiserver + kube-controller-manager, and one real node (containerd,
kubelet, kube-proxy, kube-scheduler, CoreDNS) running the images `make
images` built. Servers listen on the host end of the node's network (see
tests/support/node_network.py), where pods reach them. Each component starts
once per session, only when a test asks for it; when a test fails, the tail of
every component's log is attached to its report.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.kube import KubeControlPlane, start_control_plane
from tests.support.minio import MinioServer, start_minio
from tests.support.nats import NatsServer, start_nats
from tests.support.node import KubeNode, node_images, start_node
from tests.support.node_network import NodeNetwork, create_node_network
from tests.support.processes import log_tails

if TYPE_CHECKING:
    from kubernetes import client

STACK_FIXTURES = {"nats_server", "minio_server", "kube_cluster", "stack_workdir", "stack_network"}


class KubeCluster:
    """The control plane plus the real node that runs its pods."""

    def __init__(self, control_plane: KubeControlPlane, node: KubeNode) -> None:
        self.control_plane = control_plane
        self.node = node
        self.kubeconfig = control_plane.kubeconfig
        self.server = control_plane.server

    def api_client(self) -> client.ApiClient:
        """A fresh ``kubernetes.client.ApiClient`` authenticated as cluster admin."""
        return self.control_plane.api_client()

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        """What a pod's container printed (`kubectl logs`, through the kubelet)."""
        from kubernetes import client

        with self.api_client() as api:
            return str(
                client.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, container=container)
            )


@pytest.fixture(scope="session")
def stack_workdir() -> Iterator[Path]:
    """One temporary directory for every component's data and logs."""
    keep = os.environ.get("MEDIAFLOW_KEEP_STACK_DIR")
    directory = Path(tempfile.mkdtemp(prefix="mediaflow-stack-"))
    yield directory
    if not keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_network() -> Iterator[NodeNetwork]:
    """The node's network namespace; servers listen on its host address."""
    network = create_node_network()
    yield network
    network.destroy()


@pytest.fixture(scope="session")
def nats_server(stack_workdir: Path, stack_network: NodeNetwork) -> Iterator[NatsServer]:
    server = start_nats(stack_workdir, stack_network.host_ip)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def minio_server(
    stack_workdir: Path, nats_server: NatsServer, stack_network: NodeNetwork
) -> Iterator[MinioServer]:
    server = start_minio(stack_workdir, nats_server.port, stack_network.host_ip)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_cluster(stack_workdir: Path, stack_network: NodeNetwork) -> Iterator[KubeCluster]:
    control_plane = start_control_plane(stack_workdir, stack_network.host_ip)
    try:
        node = start_node(stack_workdir, stack_network, control_plane, node_images())
    except BaseException:
        control_plane.stop()
        raise
    try:
        yield KubeCluster(control_plane, node)
    finally:
        node.stop()
        control_plane.stop()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-world media corpus (see shared/media/SOURCES.md).

    Read from ``MEDIAFLOW_MEDIA_CORPUS``. Without it the test is skipped with
    that reason (a skip is never counted as a pass); CI sets
    ``MEDIAFLOW_REQUIRE_CORPUS=1`` so a missing corpus fails instead.
    """
    value = os.environ.get("MEDIAFLOW_MEDIA_CORPUS", "")
    path = Path(value) if value else None
    if path is None or not path.is_dir() or not any(path.iterdir()):
        reason = (
            f"media corpus not available (MEDIAFLOW_MEDIA_CORPUS={value!r}); "
            "point it at the shared media directory to run corpus tests"
        )
        if os.environ.get("MEDIAFLOW_REQUIRE_CORPUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


TIERS = ("unit", "integration", "e2e", "reliability")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so `make test` runs each once."""
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if untiered:
        raise pytest.UsageError(
            "tests without a tier marker (unit, integration, e2e or reliability):\n  "
            + "\n  ".join(untiered)
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
        return
    workdir = getattr(item, "funcargs", {}).get("stack_workdir")
    if workdir is None:
        return
    tails = log_tails(workdir)
    if tails:
        report.sections.append(("local stack logs (tails)", tails))
