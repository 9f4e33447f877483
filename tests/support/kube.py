"""A real Kubernetes control plane: etcd, kube-apiserver and
kube-controller-manager, built from the official Go modules (tools/kubestack).
etcd stays on loopback; the API server listens on the stack's host address
(the host end of the node's veth pair, see ``node_network``) so the node and
pods reach it too.

The API server serves TLS with client-certificate authentication and RBAC, and
signs service-account tokens, so tests can act as a ServiceAccount through the
TokenRequest API. The controller manager runs the controllers mediaflow relies
on (Job, garbage collector, TTL-after-finished, namespace) plus the ones that
give every namespace its ``default`` ServiceAccount and root CA ConfigMap, so
the ServiceAccount admission plugin can stay on as in a real cluster.

The API server can be restarted on the same address, optionally after
compacting etcd past its newest revision (the reliability suite's fault): every
resourceVersion a client held before then is expired, so a watch resumed from
one is answered 410 Gone, as after a long partition from a real cluster.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from .binaries import binary
from .pki import ClusterPki, create_cluster_pki
from .processes import ManagedProcess, free_port

if TYPE_CHECKING:
    from kubernetes import client

CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    # With a real node: Services need endpoints (kube-proxy, CoreDNS), an
    # operator runs as a Deployment, and dead pods are collected.
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "endpoints-controller",
    "deployment-controller",
    "replicaset-controller",
    # The chart's bundled MinIO and NATS are StatefulSets with volume claims,
    # bound to the node's pre-provisioned volumes (see node.py).
    "statefulset-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "pod-garbage-collector-controller",
    # ResourceQuota status (hard/used): without it admission refuses every
    # object a quota covers as "status unknown"; the refused-Jobs tests want
    # the real "exceeded quota" answer.
    "resourcequota-controller",
    # Lifts the not-ready taint the kubelet registers its node with.
    "node-lifecycle-controller",
)


@dataclass
class KubeControlPlane:
    """The running control plane and how to reach it as admin."""

    server: str
    kubeconfig: Path
    pki: ClusterPki
    etcd: ManagedProcess
    apiserver: ManagedProcess
    controller_manager: ManagedProcess
    etcd_url: str = ""

    def processes(self) -> list[ManagedProcess]:
        return [self.controller_manager, self.apiserver, self.etcd]

    def stop(self) -> None:
        for process in self.processes():
            process.stop()

    def stop_apiserver(self) -> None:
        """SIGTERM kube-apiserver (its clients see their connections close)."""
        self.apiserver.stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again with the same flags; wait for /readyz."""
        self.apiserver.start()
        self.apiserver.wait_ready(
            lambda: _https_ok(f"{self.server}/readyz", self.pki), 120, "ready (/readyz)"
        )

    def compact_etcd(self) -> int:
        """Compact etcd's history past every resourceVersion handed out so far
        (through etcd's JSON gateway) and return the compacted revision.

        A key outside ``/registry`` is written first so that the revision compacted
        to is newer than any the API server ever sent: compacting only to the head
        leaves the head itself valid, and a client whose last event or bookmark
        carried it (nothing writes etcd while the API server is stopped) could
        resume its watch without ever being told 410 Gone."""
        bump = base64.b64encode(b"/mediaflow-test/compaction-marker").decode()
        written = _etcd_post(
            self.etcd_url, "/v3/kv/put", {"key": bump, "value": base64.b64encode(b"x").decode()}
        )
        revision = int(written["header"]["revision"])
        _etcd_post(self.etcd_url, "/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def api_client(self) -> client.ApiClient:
        """A ``kubernetes.client.ApiClient`` authenticated as the admin."""
        from kubernetes import config

        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api


def write_kubeconfig(
    path: Path,
    server: str,
    pki: ClusterPki,
    user: str = "mediaflow-admin",
    cert: Path | None = None,
    key: Path | None = None,
) -> None:
    """A kubeconfig for ``server`` as ``user`` (default: the admin's certificate)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mediaflow-local",
                "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(cert or pki.admin_cert),
                    "client-key": str(key or pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "mediaflow-local",
                "context": {"cluster": "mediaflow-local", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "mediaflow-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _https_ok(url: str, pki: ClusterPki) -> bool:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
        return bool(response.status == 200 and response.read().strip() == b"ok")


def _etcd_post(etcd_url: str, path: str, body: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL of our own etcd
        etcd_url + path, data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return cast(dict[str, Any], json.loads(response.read()))


def start_control_plane(workdir: Path, host_ip: str = "127.0.0.1") -> KubeControlPlane:
    """Start etcd, then kube-apiserver on ``host_ip`` (wait for /readyz), then
    the controller manager."""
    logs = workdir / "logs"
    pki = create_cluster_pki(workdir / "pki", server_ips=(host_ip,))
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()

    etcd = ManagedProcess(
        "etcd",
        [
            binary("etcd"),
            "--name",
            "mediaflow",
            "--data-dir",
            str(workdir / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster",
            f"mediaflow=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
            "--quota-backend-bytes",
            str(2 * 1024**3),
        ],
        logs / "etcd.log",
    )
    etcd.start()

    def etcd_ready() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{etcd_port}/health", timeout=1) as r:
            return b'"health":"true"' in r.read()

    etcd.wait_ready(etcd_ready, 30, "healthy")

    server = f"https://{host_ip}:{api_port}"
    apiserver = ManagedProcess(
        "kube-apiserver",
        [
            binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={host_ip}",
            f"--secure-port={api_port}",
            f"--advertise-address={host_ip}",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            "--allow-privileged=true",
            "--anonymous-auth=true",
            "--enable-priority-and-fairness=false",
            # The `kubernetes` Service points at the advertise address: what
            # in-cluster clients (an operator pod) connect to.
            # (A loopback address cannot be an endpoint: no reconciler then.)
            "--endpoint-reconciler-type=" + ("none" if host_ip.startswith("127.") else "lease"),
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki.kubelet_client_cert}",
            f"--kubelet-client-key={pki.kubelet_client_key}",
            "--storage-media-type=application/json",
            "--v=1",
        ],
        logs / "kube-apiserver.log",
    )
    apiserver.start()
    apiserver.wait_ready(lambda: _https_ok(f"{server}/readyz", pki), 120, "ready (/readyz)")

    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, server, pki)
    controller_manager = ManagedProcess(
        "kube-controller-manager",
        [
            binary("kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--root-ca-file={pki.ca_cert}",
            "--leader-elect=false",
            "--secure-port=0",
            "--concurrent-job-syncs=10",
            "--v=1",
        ],
        logs / "kube-controller-manager.log",
    )
    controller_manager.start()
    controller_manager.wait_ready(lambda: True, 5, "started")
    return KubeControlPlane(
        server=server,
        kubeconfig=kubeconfig,
        pki=pki,
        etcd=etcd,
        apiserver=apiserver,
        controller_manager=controller_manager,
        etcd_url=f"http://127.0.0.1:{etcd_port}",
    )
