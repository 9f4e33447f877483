"""One real Kubernetes node beside the local control plane.

containerd + runc (from Debian) and a CNI bridge run the pods; the kubelet,
kube-proxy and kube-scheduler come from the same pinned Kubernetes module as
the control plane (tools/kubestack); CoreDNS (from its Go module) answers
cluster DNS names. The project's images, built from its Dockerfiles by
``make images``, are imported into containerd, so pods run exactly what a user
would deploy.

Everything the node changes stays in namespaces it owns and that disappear
with it:

- its network namespace (see ``node_network``): the pod bridge, forwarding,
  kube-proxy's iptables rules;
- a private mount namespace shared by containerd, the kubelet and the
  containers (runc must see the kubelet's volume mounts): overlay and volume
  mounts, ``/var/lib`` and ``/var/log`` for the node's state and pod logs,
  ``/run/netns`` for the pods' network namespaces, and the three kernel
  settings the kubelet insists on (``protectKernelDefaults``: it checks them
  instead of writing them; the expected values are bind-mounted over their
  ``/proc/sys`` files in that namespace only, the host keeps its own);
- a cgroup root ``/mediaflow-<n>`` under each cgroup hierarchy.

``stop()`` kills every process in that cgroup root and in the mount
namespace, removes the cgroups and deletes the network namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .binaries import binary
from .kube import KubeControlPlane, write_kubeconfig
from .node_network import POD_CIDR, NodeNetwork
from .pki import issue_client_certificate
from .processes import ManagedProcess, StackError, free_port, tail

NODE_NAME = "mediaflow-node"
# The node's default StorageClass: hostPath volumes made in advance (there is no
# dynamic provisioner), so a chart's claims with default values bind as on a
# cluster with a storage class.
STORAGE_CLASS = "local-hostpath"
LOCAL_VOLUMES = 6
LOCAL_VOLUME_SIZE = "20Gi"
# containerd keeps this image as the pod sandbox; `make images` builds it from
# Debian's static catatonit (no registry to pull the real pause image from).
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
# What the kubelet wants (protectKernelDefaults) where the host differs.
KUBELET_KERNEL_DEFAULTS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
}
CGROUP_MOUNTS = Path("/sys/fs/cgroup")


def image_archives_dir() -> Path:
    """Where ``make images`` leaves docker-archive tarballs for containerd."""
    cache = os.environ.get("MEDIAFLOW_CACHE") or str(Path.home() / ".cache" / "mediaflow")
    return Path(cache) / "images"


def node_images() -> list[Path]:
    """The image archives ``make images`` prepared for the node, in its order."""
    directory = image_archives_dir()
    listing = directory / "node-images.txt"
    if not listing.exists():
        raise StackError(f"no node images in {directory}: run `make images` first")
    archives = []
    for ref in listing.read_text().split():
        archive = directory / (ref.replace("/", "_").replace(":", "_") + ".tar")
        if not archive.exists():
            raise StackError(f"image archive {archive} is missing: run `make images`")
        archives.append(archive)
    return archives


def node_directory(network: NodeNetwork) -> Path:
    """The node's state (containerd, kubelet, pod volumes). A short path of its
    own: the kubelet's unix sockets live under it and a socket path may not
    exceed 107 bytes, which a pytest temporary directory easily does."""
    return Path("/var/tmp/mediaflow") / f"node-{network.index}"


def remove_node_leftovers(network: NodeNetwork) -> None:
    """Undo what a node that died without stopping left: its containers,
    cgroups, state directory and network namespace (the mount namespace died
    with its processes)."""
    root = f"/mediaflow-{network.index}"
    _kill_cgroup_tree(root)
    _remove_cgroup_tree(root)
    shutil.rmtree(node_directory(network), ignore_errors=True)
    network.destroy()


@dataclass
class KubeNode:
    """The running node's processes and namespaces."""

    network: NodeNetwork
    directory: Path
    cgroup_root: str
    holder: ManagedProcess
    processes: list[ManagedProcess] = field(default_factory=list)
    containerd_socket: Path | None = None
    name: str = NODE_NAME
    dns_ip: str = ""

    def mount_namespace(self) -> str:
        return os.readlink(f"/proc/{self.holder.pid}/ns/mnt")

    def ctr(self, *args: str, timeout: float = 300) -> str:
        """Run ``ctr`` against the node's containerd (namespace k8s.io)."""
        assert self.containerd_socket is not None
        result = subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def image_references(self) -> set[str]:
        """The image references containerd holds for the kubelet."""
        return {line.split()[0] for line in self.ctr("images", "list").splitlines()[1:] if line}

    def stop(self) -> None:
        """Stop every node component and every container, leaving nothing behind."""
        for process in reversed(self.processes):
            if process.name != "containerd":
                process.stop(grace=5)
        _kill_cgroup_tree(self.cgroup_root)
        for process in self.processes:
            if process.name == "containerd":
                process.stop(grace=5)
        if self.holder.alive():
            _kill_mount_namespace(self.mount_namespace(), keep=self.holder.pid)
        self.holder.stop(grace=2)
        _kill_cgroup_tree(self.cgroup_root)
        _remove_cgroup_tree(self.cgroup_root)
        # Its mounts went with the mount namespace: only plain files are left.
        shutil.rmtree(self.directory, ignore_errors=True)


# -- cgroups -------------------------------------------------------------------------------
def _hierarchies() -> list[Path]:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return [
        Path(parts[1])
        for parts in (line.split() for line in mounts)
        if parts[2] in ("cgroup", "cgroup2") and parts[1].startswith(str(CGROUP_MOUNTS) + "/")
    ]


def _create_cgroup_root(name: str) -> None:
    for hierarchy in _hierarchies():
        path = hierarchy / name.lstrip("/")
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():
            # A new cpuset is empty and admits no task until given the parent's.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (path / knob).write_text((hierarchy / knob).read_text())


def _cgroup_dirs(name: str) -> list[Path]:
    found: list[Path] = []
    for hierarchy in _hierarchies():
        root = hierarchy / name.lstrip("/")
        if root.is_dir():
            found += [Path(d) for d, _, _ in os.walk(root)]
    return found


def _kill_cgroup_tree(name: str, timeout: float = 15) -> None:
    """SIGKILL every process in the node's cgroups (containers outlive their shims)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set()
        for directory in _cgroup_dirs(name):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_cgroup_tree(name: str) -> None:
    for directory in sorted(_cgroup_dirs(name), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()


def _kill_mount_namespace(namespace: str, keep: int) -> None:
    """SIGKILL every process in the node's mount namespace but its holder."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (keep, os.getpid()):
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "ns" / "mnt") == namespace:
                os.kill(int(entry.name), signal.SIGKILL)


# -- configuration files ---------------------------------------------------------------------
def _holder_script(directory: Path) -> str:
    """Mounts private to the node, then wait forever holding the namespace."""
    lines = ["set -eu"]
    overrides = directory / "sysctl"
    overrides.mkdir(exist_ok=True)
    for key, value in KUBELET_KERNEL_DEFAULTS.items():
        target = Path("/proc/sys") / key
        if target.read_text().strip() != value:
            fake = overrides / key.replace("/", ".")
            fake.write_text(value + "\n")
            lines.append(f"mount --bind {fake} {target}")
    for sub in ("var-lib", "var-log"):
        (directory / sub).mkdir(exist_ok=True)
    lines += [
        f"mount --bind {directory / 'var-lib'} /var/lib",
        f"mount --bind {directory / 'var-log'} /var/log",
        "mkdir -p /run/netns",
        "mount -t tmpfs -o mode=0755 tmpfs /run/netns",
        f"touch {directory / 'holder.ready'}",
        "exec sleep infinity",
    ]
    return "\n".join(lines) + "\n"


def _containerd_config(directory: Path) -> str:
    root, state = directory / "containerd" / "root", directory / "containerd" / "state"
    return f"""version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{directory / "containerd.sock"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{directory / "cni"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / "containerd" / "opt"}"
"""


def _cni_config(directory: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "mediaflow",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(directory / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _kubelet_config(node: KubeNode, ca_cert: Path) -> dict[str, Any]:
    directory = node.directory
    (directory / "resolv.conf").write_text("")
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.network.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        # These machines mount cgroup v1 controllers; 1.34 still runs on them.
        "failCgroupV1": False,
        "protectKernelDefaults": True,
        "clusterDNS": [node.dns_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": str(directory / "resolv.conf"),
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "failSwapOn": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "enableControllerAttachDetach": False,
        "volumePluginDir": str(directory / "volume-plugins"),
        "rotateCertificates": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": True,
    }


def _kube_proxy_config(node: KubeNode, kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node.name,
        "bindAddress": node.network.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Zero leaves the kernel's conntrack limits and timeouts as they are
        # (they are global, not per network namespace).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # Replies of pod -> Service -> host traffic must come back through the
        # node's namespace: masquerade every Service connection.
        "iptables": {"masqueradeAll": True, "localhostNodePorts": False, "syncPeriod": "10s"},
        "nodePortAddresses": [f"{node.network.node_ip}/32"],
    }


def _corefile(node: KubeNode, kubeconfig: Path, ready_port: int) -> str:
    return f""".:53 {{
    bind {node.dns_ip}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""


# -- start -----------------------------------------------------------------------------------
def _in_node(node: KubeNode, argv: list[str]) -> list[str]:
    """Run ``argv`` in the node's network and mount namespaces."""
    return ["nsenter", f"--target={node.holder.pid}", "--mount", "--net", "--", *argv]


def start_node(
    workdir: Path,
    network: NodeNetwork,
    control_plane: KubeControlPlane,
    images: list[Path] | None = None,
) -> KubeNode:
    """Start containerd, import ``images``, then kubelet, kube-proxy,
    kube-scheduler and CoreDNS; return once the node is Ready."""
    directory = node_directory(network)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    logs = workdir / "logs"
    cgroup_root = f"/mediaflow-{network.index}"
    holder = ManagedProcess(
        "node-namespaces",
        [
            "nsenter",
            f"--net={network.netns_path}",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            _holder_script(directory),
        ],
        logs / "node-namespaces.log",
    )
    node = KubeNode(
        network=network,
        directory=directory,
        cgroup_root=cgroup_root,
        holder=holder,
        containerd_socket=directory / "containerd.sock",
        dns_ip=network.host_ip,
    )
    try:
        _start(node, workdir, control_plane, images or [])
    except BaseException:
        node.stop()
        raise
    return node


def _start(
    node: KubeNode, workdir: Path, control_plane: KubeControlPlane, images: list[Path]
) -> None:
    directory, logs = node.directory, workdir / "logs"
    _create_cgroup_root(node.cgroup_root)
    node.holder.start()
    node.holder.wait_ready(lambda: (directory / "holder.ready").exists(), 10, "holding namespaces")

    (directory / "cni").mkdir(exist_ok=True)
    (directory / "cni" / "10-mediaflow.conflist").write_text(json.dumps(_cni_config(directory)))
    (directory / "containerd.toml").write_text(_containerd_config(directory))
    containerd = ManagedProcess(
        "containerd",
        _in_node(node, ["containerd", "--config", str(directory / "containerd.toml")]),
        logs / "containerd.log",
    )
    node.processes.append(containerd)
    containerd.start()
    containerd.wait_ready(lambda: bool(node.ctr("version", timeout=5)), 30, "serving")
    for archive in images:
        node.ctr("images", "import", "--no-unpack", str(archive))

    pki = control_plane.pki
    certs = directory / "pki"
    certs.mkdir(exist_ok=True)

    def kubeconfig_for(user: str, group: str | None) -> Path:
        cert, key = issue_client_certificate(pki, certs, user, group)
        path = directory / f"{user.replace(':', '-')}.kubeconfig"
        write_kubeconfig(path, control_plane.server, pki, user=user, cert=cert, key=key)
        return path

    kubelet_kubeconfig = kubeconfig_for(f"system:node:{node.name}", "system:nodes")
    proxy_kubeconfig = kubeconfig_for("system:kube-proxy", None)
    scheduler_kubeconfig = kubeconfig_for("system:kube-scheduler", None)

    kubelet_config = directory / "kubelet.yaml"
    kubelet_config.write_text(yaml.safe_dump(_kubelet_config(node, pki.ca_cert)))
    kubelet = ManagedProcess(
        "kubelet",
        _in_node(
            node,
            [
                binary("kubelet"),
                f"--config={kubelet_config}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={directory / 'kubelet'}",
                f"--cert-dir={directory / 'kubelet-pki'}",
                f"--hostname-override={node.name}",
                f"--node-ip={node.network.node_ip}",
                "--v=1",
            ],
        ),
        logs / "kubelet.log",
    )
    proxy_config = directory / "kube-proxy.yaml"
    proxy_config.write_text(yaml.safe_dump(_kube_proxy_config(node, proxy_kubeconfig)))
    kube_proxy = ManagedProcess(
        "kube-proxy",
        _in_node(node, [binary("kube-proxy"), f"--config={proxy_config}", "--v=1"]),
        logs / "kube-proxy.log",
    )
    scheduler = ManagedProcess(
        "kube-scheduler",
        [
            binary("kube-scheduler"),
            f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--v=1",
        ],
        logs / "kube-scheduler.log",
    )
    ready_port = free_port()
    corefile = directory / "Corefile"
    corefile.write_text(_corefile(node, control_plane.kubeconfig, ready_port))
    coredns = ManagedProcess(
        "coredns", [binary("coredns"), "-conf", str(corefile)], logs / "coredns.log"
    )
    for process in (kubelet, kube_proxy, scheduler, coredns):
        node.processes.append(process)
        process.start()
    coredns.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{ready_port}/ready"), 60, "ready")
    kubelet.wait_ready(lambda: _node_ready(control_plane, node.name), 90, "Ready on the API")
    _provision_local_volumes(node, control_plane)


def _provision_local_volumes(node: KubeNode, control_plane: KubeControlPlane) -> None:
    """The default StorageClass and its pre-made hostPath volumes on this node."""
    from kubernetes import client

    with control_plane.api_client() as api:
        client.StorageV1Api(api).create_storage_class(
            client.V1StorageClass(
                metadata=client.V1ObjectMeta(
                    name=STORAGE_CLASS,
                    annotations={"storageclass.kubernetes.io/is-default-class": "true"},
                ),
                provisioner="kubernetes.io/no-provisioner",
                reclaim_policy="Retain",
                volume_binding_mode="Immediate",
            )
        )
        core = client.CoreV1Api(api)
        for index in range(LOCAL_VOLUMES):
            path = node.directory / "volumes" / f"pv-{index}"
            path.mkdir(parents=True)
            # Pods run as arbitrary non-root users and fsGroup does not apply
            # to hostPath: the directory itself must let them write.
            path.chmod(0o777)
            core.create_persistent_volume(
                client.V1PersistentVolume(
                    metadata=client.V1ObjectMeta(name=f"local-{index}"),
                    spec=client.V1PersistentVolumeSpec(
                        capacity={"storage": LOCAL_VOLUME_SIZE},
                        access_modes=["ReadWriteOnce"],
                        storage_class_name=STORAGE_CLASS,
                        persistent_volume_reclaim_policy="Retain",
                        host_path=client.V1HostPathVolumeSource(path=str(path), type="Directory"),
                    ),
                )
            )


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
        return bool(response.status == 200)


def _node_ready(control_plane: KubeControlPlane, name: str) -> bool:
    from kubernetes import client

    with control_plane.api_client() as api:
        node = client.CoreV1Api(api).read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def node_log_tail(node: KubeNode, lines: int = 40) -> str:
    """The kubelet's log tail, for failure messages."""
    kubelet = next((p for p in node.processes if p.name == "kubelet"), None)
    return tail(kubelet.log_path, lines) if kubelet else ""
