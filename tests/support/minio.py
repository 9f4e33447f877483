"""A MinIO server with a NATS JetStream notification target, listening on the
stack's host address (reachable from the node's pods).

A notification target can only be configured when MinIO starts (environment
variables, suffix = target id); bucket rules that point at it are set live by
the operator. Two targets publish to the same subject, as in the chart: the
durable one has a ``queue_dir`` (MinIO persists every event there and sends it
at its next 3 s replay tick, keeping it while NATS is away), the fast one has
none (MinIO publishes at once; lost when NATS is away). The operator sets every
rule for both, and its router stores one copy of the two deliveries.

The server can be stopped and started again on the same address, data and
queue directory with the same credentials (the reliability suite's restarts).
"""

from __future__ import annotations

import os
import secrets
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from .binaries import binary
from .processes import ManagedProcess, free_port

# MinIO takes the target id verbatim from the env var suffix, and ARNs are
# case-sensitive: the ARN is arn:minio:sqs::MEDIAFLOW:nats.
NOTIFY_TARGET_ID = "MEDIAFLOW"
NOTIFY_FAST_TARGET_ID = "MEDIAFLOW_FAST"
NOTIFY_SUBJECT = "mediaflow.events"


@dataclass
class MinioServer:
    """A running MinIO; credentials are random per stack."""

    endpoint: str
    access_key: str
    secret_key: str
    console_port: int
    process: ManagedProcess
    notify_target_id: str = NOTIFY_TARGET_ID
    notify_fast_target_id: str = NOTIFY_FAST_TARGET_ID
    notify_subject: str = NOTIFY_SUBJECT

    @property
    def notify_arn(self) -> str:
        """ARN of the durable target (with ``queue_dir``)."""
        return f"arn:minio:sqs::{self.notify_target_id}:nats"

    @property
    def notify_fast_arn(self) -> str:
        """ARN of the fast target (no ``queue_dir``)."""
        return f"arn:minio:sqs::{self.notify_fast_target_id}:nats"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self) -> Minio:
        """A minio-py client with the root credentials."""
        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False
        )

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        """Start the stopped server again (same address, data, queue directory and
        credentials) and wait until it is ready."""
        self.process.start()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until MinIO's readiness probe answers 200."""

        def ready() -> bool:
            url = f"http://{self.endpoint}/minio/health/ready"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)

        self.process.wait_ready(ready, timeout, "ready")


def start_minio(workdir: Path, nats_port: int, host: str = "127.0.0.1") -> MinioServer:
    port, console = free_port(), free_port()
    data, queue = workdir / "minio" / "data", workdir / "minio" / "queue"
    data.mkdir(parents=True, exist_ok=True)
    queue.mkdir(parents=True, exist_ok=True)
    access_key = "mediaflow-" + secrets.token_hex(4)
    secret_key = secrets.token_urlsafe(24)
    tid, fast = NOTIFY_TARGET_ID, NOTIFY_FAST_TARGET_ID
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "minio"),
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CI_CD": "on",
        f"MINIO_NOTIFY_NATS_ENABLE_{tid}": "on",
        f"MINIO_NOTIFY_NATS_ADDRESS_{tid}": f"{host}:{nats_port}",
        f"MINIO_NOTIFY_NATS_SUBJECT_{tid}": NOTIFY_SUBJECT,
        f"MINIO_NOTIFY_NATS_JETSTREAM_{tid}": "on",
        f"MINIO_NOTIFY_NATS_QUEUE_DIR_{tid}": str(queue),
        f"MINIO_NOTIFY_NATS_QUEUE_LIMIT_{tid}": "100000",
        # Same subject, no queue dir: published at once by MinIO's send workers.
        f"MINIO_NOTIFY_NATS_ENABLE_{fast}": "on",
        f"MINIO_NOTIFY_NATS_ADDRESS_{fast}": f"{host}:{nats_port}",
        f"MINIO_NOTIFY_NATS_SUBJECT_{fast}": NOTIFY_SUBJECT,
        f"MINIO_NOTIFY_NATS_JETSTREAM_{fast}": "on",
    }
    process = ManagedProcess(
        "minio",
        [
            binary("minio"),
            "server",
            "--quiet",
            "--address",
            f"{host}:{port}",
            "--console-address",
            f"127.0.0.1:{console}",
            str(data),
        ],
        workdir / "logs" / "minio.log",
        env=env,
    )
    server = MinioServer(
        endpoint=f"{host}:{port}",
        access_key=access_key,
        secret_key=secret_key,
        console_port=console,
        process=process,
    )
    server.start()
    return server
