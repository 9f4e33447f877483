"""A NATS server with JetStream on a free port of the stack's host address.

It can be stopped and started again on the same ports and store directory (the
reliability suite's NATS outage): streams and consumers survive, as on a real
server restart."""

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
    host: str = "127.0.0.1"

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        """Start the stopped server again (same ports, same JetStream store) and
        wait until it is healthy."""
        self.process.start()
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until /healthz answers 200: the client port listens and JetStream is up."""

        def ready() -> bool:
            url = f"http://{self.host}:{self.monitor_port}/healthz?js-enabled-only=true"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)

        self.process.wait_ready(ready, timeout, "healthy")


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
    server = NatsServer(
        url=f"nats://{host}:{port}", port=port, monitor_port=monitor, process=process, host=host
    )
    server.start()
    return server
