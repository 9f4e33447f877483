"""The whole local stack: the node network, NATS JetStream, MinIO, the
Kubernetes control plane and one real node (containerd + kubelet running the
project's images), started in dependency order and stopped in reverse.

Used by the pytest fixtures (tests/conftest.py) and by ``make stack-up``
(``python -m tests.support.stack up``), which runs it in the background for a
person to use and writes ``.mediaflow/stack.env``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .kube import KubeControlPlane, start_control_plane
from .minio import MinioServer, start_minio
from .nats import NatsServer, start_nats
from .node import KubeNode, node_images, remove_node_leftovers, start_node
from .node_network import NodeNetwork, create_node_network
from .processes import ManagedProcess, StackError, log_tails, pid_alive, stop_pid, tail


@dataclass
class LocalStack:
    """Handles to every running component; ``stop()`` stops exactly these."""

    workdir: Path
    network: NodeNetwork | None = None
    nats: NatsServer | None = None
    minio: MinioServer | None = None
    kube: KubeControlPlane | None = None
    node: KubeNode | None = None
    started_in: dict[str, float] = field(default_factory=dict)

    def processes(self) -> list[ManagedProcess]:
        found: list[ManagedProcess] = []
        if self.node:
            found += [self.node.holder, *self.node.processes]
        if self.kube:
            found += self.kube.processes()
        if self.minio:
            found.append(self.minio.process)
        if self.nats:
            found.append(self.nats.process)
        return found

    def stop(self) -> None:
        if self.node:
            self.node.stop()
        if self.kube:
            self.kube.stop()
        if self.minio:
            self.minio.stop()
        if self.nats:
            self.nats.stop()
        if self.network:
            self.network.destroy()

    def env(self) -> dict[str, str]:
        """How to reach the stack, as environment variables (stack.env)."""
        assert self.nats
        assert self.minio
        assert self.kube
        return {
            "KUBECONFIG": str(self.kube.kubeconfig),
            "MEDIAFLOW_NATS_URL": self.nats.url,
            "MEDIAFLOW_S3_ENDPOINT": self.minio.endpoint,
            "MEDIAFLOW_S3_ACCESS_KEY": self.minio.access_key,
            "MEDIAFLOW_S3_SECRET_KEY": self.minio.secret_key,
            "MEDIAFLOW_MINIO_NOTIFY_TARGET_ID": self.minio.notify_target_id,
            "MEDIAFLOW_MINIO_NOTIFY_ARN": self.minio.notify_arn,
            "MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID": self.minio.notify_fast_target_id,
            "MEDIAFLOW_NATS_SUBJECT": self.minio.notify_subject,
            "MEDIAFLOW_STACK_DIR": str(self.workdir),
        }


def _timed(stack: LocalStack, name: str, start: float) -> None:
    stack.started_in[name] = round(time.monotonic() - start, 1)


def start_stack(workdir: Path, *, kube: bool = True, node: bool = True) -> LocalStack:
    """Start the node network, NATS, MinIO and (optionally) Kubernetes with its node.

    On any failure everything already started is stopped before raising.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(workdir=workdir)
    try:
        stack.network = create_node_network()
        host = stack.network.host_ip
        t = time.monotonic()
        stack.nats = start_nats(workdir, host)
        _timed(stack, "nats", t)
        t = time.monotonic()
        stack.minio = start_minio(workdir, stack.nats.port, host)
        _timed(stack, "minio", t)
        if kube:
            t = time.monotonic()
            stack.kube = start_control_plane(workdir, host)
            _timed(stack, "kubernetes", t)
            if node:
                t = time.monotonic()
                stack.node = start_node(workdir, stack.network, stack.kube, node_images())
                _timed(stack, "node", t)
    except BaseException:
        stack.stop()
        raise
    return stack


# -- make stack-up / stack-down ----------------------------------------------------------
def _serve(state_dir: Path) -> int:
    """Run the stack in the foreground until SIGTERM/SIGINT (used by `up`)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t = time.monotonic()
    # A fresh stack each time: MinIO credentials are random per start and
    # MinIO refuses data written under other root credentials.
    shutil.rmtree(state_dir / "stack", ignore_errors=True)
    stack = start_stack(state_dir / "stack")
    try:
        env = stack.env()
        lines = [f"export {k}={v}" for k, v in env.items()]
        (state_dir / "stack.env").write_text("\n".join(lines) + "\n")
        (state_dir / "stack.pids").write_text(
            "\n".join(f"{p.name} {p.pid}" for p in stack.processes()) + "\n"
        )
        assert stack.network
        (state_dir / "stack.network").write_text(f"{stack.network.index}\n")
        (state_dir / "stack.ready").write_text(
            f"started in {time.monotonic() - t:.1f}s {stack.started_in}\n"
        )
        while not stop.wait(1):
            dead = [p.name for p in stack.processes() if not p.alive()]
            if dead:
                print(f"stack component(s) exited: {dead}", file=sys.stderr)
                print(log_tails(stack.workdir), file=sys.stderr)
                return 1
        return 0
    finally:
        stack.stop()
        for name in ("stack.env", "stack.pids", "stack.ready", "stack.network"):
            (state_dir / name).unlink(missing_ok=True)


def _up(state_dir: Path, timeout: float) -> int:
    import subprocess

    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = state_dir / "supervisor.pid"
    if pid_file.exists() and pid_alive(int(pid_file.read_text())):
        print(
            f"stack already running (pid {pid_file.read_text().strip()}); see {state_dir}/stack.env"
        )
        return 0
    (state_dir / "stack.ready").unlink(missing_ok=True)
    log = (state_dir / "supervisor.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stack", "serve", "--state-dir", str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (state_dir / "stack.ready").exists():
            print(f"mediaflow local stack is up: {(state_dir / 'stack.ready').read_text().strip()}")
            print(
                f"  source {state_dir}/stack.env  # KUBECONFIG, MinIO endpoint + credentials, NATS"
            )
            print(f"  kubectl --kubeconfig {state_dir}/stack/kubeconfig get nodes")
            print("  make stack-down                   # stops it all, leaves nothing behind")
            return 0
        if process.poll() is not None:
            print(
                f"stack failed to start:\n{tail(state_dir / 'supervisor.log', 60)}", file=sys.stderr
            )
            pid_file.unlink(missing_ok=True)
            return 1
        time.sleep(0.3)
    print(f"stack not ready after {timeout:.0f}s; see {state_dir}/supervisor.log", file=sys.stderr)
    return 1


def _down(state_dir: Path) -> int:
    pid_file = state_dir / "supervisor.pid"
    pids_file = state_dir / "stack.pids"
    children = []
    if pids_file.exists():
        children = [
            int(line.split()[1]) for line in pids_file.read_text().splitlines() if line.strip()
        ]
    if not pid_file.exists():
        print("no stack running")
        return 0
    pid = int(pid_file.read_text())
    stop_pid(pid, grace=30)
    # The supervisor stops its children; anything it could not stop goes by pid.
    for child in children:
        if pid_alive(child):
            stop_pid(child, grace=5)
    # A supervisor that had to be killed could not stop the node: its
    # containers, cgroups and network namespace go here.
    network_file = state_dir / "stack.network"
    if network_file.exists():
        remove_node_leftovers(NodeNetwork(int(network_file.read_text())))
        network_file.unlink()
    pid_file.unlink(missing_ok=True)
    left = [c for c in [pid, *children] if pid_alive(c)]
    if left:
        raise StackError(f"processes still running after stack-down: {left}")
    print("mediaflow local stack stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.stack")
    parser.add_argument("command", choices=["up", "down", "serve"])
    parser.add_argument("--state-dir", type=Path, default=Path(".mediaflow"))
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    if args.command == "serve":
        return _serve(state_dir)
    if args.command == "up":
        return _up(state_dir, args.timeout)
    return _down(state_dir)


if __name__ == "__main__":
    sys.exit(main())
