"""A NATS server with JetStream on a free port of the stack's host address."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .binaries import binary
from .processes import ManagedProcess, free_port


@dataclass
class NatsServer:
    """A running nats-server; ``url`` is what clients connect to."""

    url: str
    port: int
    monitor_port: int
    process: ManagedProcess

    def stop(self) -> None:
        self.process.stop()


def start_nats(workdir: Path, host: str = "127.0.0.1") -> NatsServer:
    port, monitor = free_port(), free_port()
    store = workdir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        "nats-server",
        [
            binary("nats-server"),
            "-js",
            "-a",
            host,
            "-p",
            str(port),
            "-m",
            str(monitor),
            "-sd",
            str(store),
        ],
        workdir / "logs" / "nats.log",
    )
    process.start()

    def ready() -> bool:
        # /healthz answers 200 only once the client port listens and JetStream is up.
        url = f"http://{host}:{monitor}/healthz?js-enabled-only=true"
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)

    process.wait_ready(ready, 30, "healthy")
    return NatsServer(url=f"nats://{host}:{port}", port=port, monitor_port=monitor, process=process)
