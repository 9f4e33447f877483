"""The local node's own network namespace, joined to the host by a veth pair.

The node (containerd, kubelet, kube-proxy and every pod) lives in a network
namespace of its own, so that everything it needs to change stays inside it:
IP forwarding for the pod bridge, kube-proxy's iptables rules, the bridge
itself. The host's network settings are never touched, and deleting the
namespace removes all of it at once.

::

    host netns                          node netns "mediaflow-<n>"
    ─────────                           ──────────────────────────
    MinIO, NATS, kube-apiserver,        mfn<n> 10.87.<n>.2 ── default route
    CoreDNS on 10.87.<n>.1 (mfh<n>) ═══ cni0   10.88.0.1/16 ── pods 10.88.x.y
                                        (pods reach the host through masquerade)

Servers the pods must reach bind to the host end of the pair, an address of
this machine that exists only while the stack runs; nothing listens on the
machine's real interfaces. Each stack takes the first free ``<n>``, so two
stacks (two pytest sessions) can run side by side.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Pod and Service ranges exist only inside the node's namespace (and the
# Service range only as iptables rules there), so every stack uses the same.
POD_CIDR = "10.88.0.0/16"
SERVICE_CIDR = "10.0.0.0/24"
VETH_PREFIX = "10.87"


class NetworkError(RuntimeError):
    """The node network could not be created."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class NodeNetwork:
    """One node namespace and its link to the host."""

    index: int

    @property
    def netns(self) -> str:
        return f"mediaflow-{self.index}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def host_if(self) -> str:
        return f"mfh{self.index}"

    @property
    def node_if(self) -> str:
        return f"mfn{self.index}"

    @property
    def host_ip(self) -> str:
        """Where host servers listen for the node and its pods."""
        return f"{VETH_PREFIX}.{self.index}.1"

    @property
    def node_ip(self) -> str:
        """The node's InternalIP (the kubelet refuses a loopback one)."""
        return f"{VETH_PREFIX}.{self.index}.2"

    def pids(self) -> list[int]:
        """Every process whose network namespace is this node's."""
        result = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in result.stdout.split() if p.isdigit()]

    def destroy(self) -> None:
        """Kill what still runs inside and delete the namespace and the veth pair."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline and self.pids():
                time.sleep(0.1)
        _ip("netns", "delete", self.netns, check=False)
        _ip("link", "delete", self.host_if, check=False)


def create_node_network(max_index: int = 250) -> NodeNetwork:
    """Create the node namespace and its veth link under the first free index.

    Creating the host end of the veth pair is the lock: the kernel refuses a
    second interface with the same name, so two stacks never share an index.
    """
    for index in range(max_index):
        network = NodeNetwork(index)
        created = _ip(
            "link",
            "add",
            network.host_if,
            "type",
            "veth",
            "peer",
            "name",
            network.node_if,
            check=False,
        )
        if created.returncode != 0:
            if "File exists" in created.stderr:
                continue
            raise NetworkError(f"cannot create a veth pair: {created.stderr.strip()}")
        try:
            _setup(network)
        except BaseException:
            network.destroy()
            raise
        return network
    raise NetworkError(f"no free node network index below {max_index}")


def _setup(network: NodeNetwork) -> None:
    ns = network.netns
    if network.netns_path.exists():
        # A namespace left by a stack that was killed: its veth is gone (we
        # could create ours), so nothing uses it.
        _ip("netns", "delete", ns, check=False)
    _ip("netns", "add", ns)
    _ip("link", "set", network.node_if, "netns", ns)
    _ip("addr", "add", f"{network.host_ip}/30", "dev", network.host_if)
    _ip("link", "set", network.host_if, "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "addr", "add", f"{network.node_ip}/30", "dev", network.node_if)
    _ip("-n", ns, "link", "set", network.node_if, "up")
    _ip("-n", ns, "route", "add", "default", "via", network.host_ip)
    # Forwarding inside the node namespace only (pod <-> Service <-> host);
    # the host's own net.ipv4.ip_forward stays as it is.
    subprocess.run(
        ["nsenter", f"--net={network.netns_path}", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
        check=True,
        capture_output=True,
    )
