from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chart_operator import chart_stack_fixture
from tests.e2e.harness import Stack, stack_fixture


@pytest.fixture(params=["process", "chart"])
def stack(
    request: pytest.FixtureRequest,
    kube_cluster: Any,
    minio_server: Any,
    nats_server: Any,
    tmp_path: Path,
) -> Iterator[Stack]:
    """A namespace of its own and a running operator (fake worker, instant):
    once as a process of the checkout, once as the Helm chart installs it in
    the cluster (its image, RBAC and settings from charts/mediaflow)."""
    if request.param == "chart":
        yield from chart_stack_fixture(kube_cluster, minio_server, nats_server)
    else:
        yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path)


@pytest.fixture
def process_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """Like ``stack`` with the operator as a process of the checkout only (for
    tests of operator behaviour the chart adds nothing to)."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path)


@pytest.fixture
def slow_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """Like ``stack`` but each worker runs for 3 seconds (to observe concurrency)."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path, worker_sleep=3.0)


@pytest.fixture
def lingering_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """Each worker runs for 20 seconds: long enough to delete its pod or to
    outlive a 10-second deadline."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path, worker_sleep=20.0)


@pytest.fixture
def sweeping_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """A stack whose operator sweeps every 2 seconds for objects older than 1 second."""
    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, sweep_interval=2, sweep_grace=1
    )


@pytest.fixture
def refusal_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator as a process of the checkout (its backoff and conditions are
    what the refused-Jobs tests watch; the chart variant adds nothing there)."""
    yield from stack_fixture(kube_cluster, minio_server, nats_server, tmp_path)


@pytest.fixture
def real_worker_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator with the real worker command (`mediaflow-worker job`, FFmpeg)."""
    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, worker_command="mediaflow-worker job"
    )


@pytest.fixture
def peered_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The stack's operator joins a kopf peering (priority 100, 10 s lifetime);
    a test starts a standby with a lower priority next to it."""
    import uuid

    from tests.e2e.harness import install_peering

    def peering_env(api: Any) -> dict[str, str]:
        name = f"mediaflow-{uuid.uuid4().hex[:8]}"
        install_peering(api, name)
        return {
            "MEDIAFLOW_PEERING_NAME": name,
            "MEDIAFLOW_PEERING_PRIORITY": "100",
            "MEDIAFLOW_PEERING_LIFETIME_SECONDS": "10",
            "MEDIAFLOW_PEERING_HANDOVER_SECONDS": "5",
        }

    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, worker_sleep=2.0, extra_env=peering_env
    )


# The stream settings of the queue-hygiene tests (tests/e2e/test_queue_hygiene.py).
QUEUE_STREAM_MAX_BYTES = 64 * 1024 * 1024
QUEUE_STREAM_MAX_MSGS = 50_000
QUEUE_ALARM_RATIO = 0.0001  # 5 held messages of 50,000 raise the alarm


@pytest.fixture
def queue_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator as a process (not the chart: these tests need its new settings)
    with small stream limits, a stream check every second, an orphan sweep every
    2 s, and a periodic reconcile too slow (300 s) to hide a missing prompt reaction."""
    yield from stack_fixture(
        kube_cluster,
        minio_server,
        nats_server,
        tmp_path,
        extra_env={
            "MEDIAFLOW_RECONCILE_INTERVAL_SECONDS": "300",
            "MEDIAFLOW_STREAM_CHECK_SECONDS": "1",
            "MEDIAFLOW_ORPHAN_SWEEP_SECONDS": "2",
            "MEDIAFLOW_NATS_STREAM_MAX_BYTES": str(QUEUE_STREAM_MAX_BYTES),
            "MEDIAFLOW_NATS_STREAM_MAX_MSGS": str(QUEUE_STREAM_MAX_MSGS),
            "MEDIAFLOW_STREAM_ALARM_RATIO": str(QUEUE_ALARM_RATIO),
        },
    )
