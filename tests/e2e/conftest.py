from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Stack, stack_fixture


@pytest.fixture
def stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """A namespace of its own and a running operator (fake worker, instant)."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path)


@pytest.fixture
def slow_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """Like ``stack`` but each worker runs for 3 seconds (to observe concurrency)."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path, worker_sleep=3.0)


@pytest.fixture
def sweeping_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """A stack whose operator sweeps every 2 seconds for objects older than 1 second."""
    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, sweep_interval=2, sweep_grace=1
    )


@pytest.fixture
def real_worker_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator with the real worker command (`mediaflow-worker job`, FFmpeg)."""
    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, worker_command="mediaflow-worker job"
    )
