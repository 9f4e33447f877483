"""The fault suite: bursts of uploads in flight while the stack breaks underneath.

Each scenario ends with the same verdict (``scenario.check_exactly_once``): every
accepted upload processed exactly once (one Job, one manifest, exact counters) and
the Workflow's consumer drained. Its figures go to docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import OperatorProcess, Stack, wait_for
from tests.reliability.conftest import Load
from tests.reliability.scenario import (
    PREFIX,
    JobRecorder,
    Uploads,
    check_exactly_once,
    create_workflow,
    keys,
    settle,
)

pytestmark = pytest.mark.reliability

STREAM = "MEDIAFLOW_EVENTS"  # the stream of operator_env's operators


def test_operator_sigkill_three_times_mid_burst(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    load: Load,
    rng: random.Random,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="operator SIGKILL",
        order=1,
        load={"bursts": load.kills, "uploads/burst": load.burst, "worker": "1 s", "concurrency": 6},
        fault=f"SIGKILL the operator {load.kills} times, each after a random Job of a burst; "
        "uploads while it is down; restart",
    )
    stack = open_stack(worker_sleep=1.0)
    operator = stack.operator
    assert isinstance(operator, OperatorProcess)  # a local process to SIGKILL
    bucket = stack.bucket("kill")
    create_workflow(stack, "kill", bucket)
    uploads = Uploads(stack, bucket)
    kill_points: list[int] = []
    downtime = 0.0
    with JobRecorder(stack.api, stack.namespace) as recorder:
        for round_ in range(load.kills):
            before = recorder.count()
            burst = uploads.burst_in_background(keys(f"r{round_}", load.burst), pace=0.1)
            # The moment: right after a random Job of this burst was created.
            point = rng.randint(1, load.burst)
            kill_points.append(point)
            target = before + point
            wait_for(
                lambda t=target: recorder.count() >= t,  # type: ignore[misc]
                120,
                f"Job {point} of round {round_}",
            )
            operator.kill()
            killed = time.monotonic()
            uploads.burst(keys(f"down{round_}", max(1, load.burst // 5)))  # while it is dead
            burst.join(timeout=120)
            operator.start()
            downtime += time.monotonic() - killed
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "kill",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "kill", bucket, uploads, recorder, final)
    measure.update(
        inputs={**measure["inputs"], "kill after Job #": kill_points},
        measured={**figures, "operator down s": round(downtime, 1), "all done s": round(took, 1)},
    )


def test_nats_outage_longer_than_minio_reconnects(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    load: Load,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="NATS outage",
        order=2,
        load={"bursts": 3, "uploads/burst": load.burst, "worker": "1 s", "concurrency": 6},
        fault="NATS stopped (same port and store) with Jobs running; one burst uploaded "
        "while it is down; started again",
    )
    stack = open_stack(worker_sleep=1.0)
    bucket = stack.bucket("nats")
    create_workflow(stack, "nats", bucket)
    uploads = Uploads(stack, bucket)
    with JobRecorder(stack.api, stack.namespace) as recorder:
        uploads.burst(keys("before", load.burst))
        wait_for(lambda: recorder.count() >= 3, 120, "Jobs running before the outage")
        nats_server.stop()
        stopped = time.monotonic()
        try:
            # MinIO accepts uploads and keeps their events in its queue_dir; its NATS
            # client reconnects every 2 s and the store retries every 3 s: the outage
            # outlasts many of those rounds.
            uploads.burst(keys("during", load.burst), pace=0.2)
            remaining = load.nats_outage_s - (time.monotonic() - stopped)
            if remaining > 0:
                time.sleep(remaining)  # the fault's length, not synchronisation
        finally:
            nats_server.start()
        outage = time.monotonic() - stopped
        uploads.burst(keys("after", load.burst))
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "nats",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "nats", bucket, uploads, recorder, final)
    measure.update(
        inputs={**measure["inputs"], "outage s": load.nats_outage_s},
        measured={**figures, "NATS down s": round(outage, 1), "all done s": round(took, 1)},
    )


def test_minio_restart_mid_burst(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    minio_server: Any,
    load: Load,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="MinIO restart",
        order=3,
        load={"bursts": 1, "uploads/burst": 3 * load.burst, "worker": "1 s", "concurrency": 6},
        fault="MinIO stopped and started (same address, data, queue_dir) after a third of "
        "the burst, Jobs running; uploads go on meanwhile (2 of them while it is down; "
        "refused ones are not accepted)",
    )
    stack = open_stack(worker_sleep=1.0)
    bucket = stack.bucket("minio")
    create_workflow(stack, "minio", bucket)
    uploads = Uploads(stack, bucket)
    total = 3 * load.burst
    with JobRecorder(stack.api, stack.namespace) as recorder:
        burst = uploads.burst_in_background(keys("burst", total), pace=0.1)
        wait_for(lambda: len(uploads.accepted) >= total // 3, 60, "a third of the burst accepted")
        wait_for(lambda: recorder.count() >= 2, 60, "Jobs running before the restart")
        stopped = time.monotonic()
        minio_server.stop()
        try:
            # Uploads while it is down are refused (after the client's own retries):
            # they are not accepted and must not be processed.
            uploads.burst(keys("down", 2))
        finally:
            minio_server.start()
        restart = time.monotonic() - stopped
        burst.join(timeout=300)
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "minio",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "minio", bucket, uploads, recorder, final)
    measure.update(
        measured={**figures, "MinIO down s": round(restart, 1), "all done s": round(took, 1)},
    )


def test_apiserver_restart_expires_watches(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    kube_cluster: Any,
    load: Load,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="API server restart, watches expired",
        order=4,
        load={"bursts": 3, "uploads": 4 * load.burst, "worker": "1 s", "concurrency": 6},
        fault="kube-apiserver stopped with Jobs running, etcd compacted past its head, "
        "uploads meanwhile, apiserver started again",
    )
    stack = open_stack(worker_sleep=1.0)
    bucket = stack.bucket("apisrv")
    create_workflow(stack, "apisrv", bucket)
    uploads = Uploads(stack, bucket)
    control_plane = kube_cluster.control_plane
    with JobRecorder(stack.api, stack.namespace) as recorder:
        uploads.burst(keys("before", 2 * load.burst))
        wait_for(lambda: recorder.count() >= 3, 120, "Jobs running before the restart")
        stopped = time.monotonic()
        control_plane.stop_apiserver()
        try:
            # Every resourceVersion handed out so far is compacted away: a watch
            # resumed from one is answered 410 Gone.
            revision = control_plane.compact_etcd()
            uploads.burst(keys("during", load.burst))
        finally:
            control_plane.start_apiserver()
        down = time.monotonic() - stopped
        uploads.burst(keys("after", load.burst))
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "apisrv",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "apisrv", bucket, uploads, recorder, final)
        assert recorder.gone >= 1, "the test's own watch was never told 410 Gone"
    measure.update(
        inputs={**measure["inputs"], "compacted to revision": revision},
        measured={
            **figures,
            "410 Gone seen by a resumed watch": recorder.gone,
            "apiserver down s": round(down, 1),
            "all done s": round(took, 1),
        },
    )


def test_worker_pods_deleted(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    load: Load,
    rng: random.Random,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="worker pods deleted",
        order=5,
        load={"bursts": 1, "uploads": 2 * load.burst, "worker": "5 s", "concurrency": 6},
        fault=f"{load.pod_deletions} running worker pods deleted (each Job hit once; "
        "backoffLimit 2)",
    )
    stack = open_stack(worker_sleep=5.0)
    bucket = stack.bucket("pods")
    create_workflow(stack, "pods", bucket)
    uploads = Uploads(stack, bucket)
    core = client.CoreV1Api(stack.api)
    deleted: dict[str, str] = {}  # job name -> pod deleted

    def running_victim() -> str | None:
        pods = core.list_namespaced_pod(stack.namespace, field_selector="status.phase=Running")
        fresh = sorted(
            p.metadata.name
            for p in pods.items
            if (p.metadata.labels or {}).get("job-name") not in deleted
            and p.metadata.deletion_timestamp is None
        )
        return rng.choice(fresh) if fresh else None

    with JobRecorder(stack.api, stack.namespace) as recorder:
        uploads.burst(keys("burst", 2 * load.burst))
        for _ in range(load.pod_deletions):
            victim = wait_for(running_victim, 120, "a running worker pod not hit yet")
            pod = core.read_namespaced_pod(victim, stack.namespace)
            deleted[pod.metadata.labels["job-name"]] = victim
            core.delete_namespaced_pod(victim, stack.namespace)
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "pods",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "pods", bucket, uploads, recorder, final)
    measure.update(
        inputs={**measure["inputs"], "pods": len(deleted)},
        measured={**figures, "all done s": round(took, 1)},
    )


def publish(nats_url: str, subject: str, payloads: list[bytes]) -> None:
    """Publish ``payloads`` to the stream's subject, as MinIO would (JetStream)."""
    import nats

    async def send() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            for data in payloads:
                await js.publish(subject, data)
        finally:
            await nc.close()

    asyncio.run(send())


def s3_event(bucket: str, key: str) -> bytes:
    """An event shaped like MinIO's for an upload of ``bucket/key``."""
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 11, "eTag": "0123456789abcdef0123456789abcdef"},
        },
    }
    return json.dumps(
        {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}", "Records": [record]}
    ).encode()


def poison_count(stack: Stack) -> float:
    """Unparseable events the operator's router terminated (they belong to no
    Workflow, so the counter has no namespace: this scenario's operator is the
    only one that saw them)."""
    total = 0.0
    for line in stack.operator.metrics_text().splitlines():
        if line.startswith('mediaflow_router_events_total{result="poison"}'):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_poison_messages(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    minio_server: Any,
    load: Load,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="poison messages",
        order=6,
        load={"uploads": 2 * load.burst, "worker": "1 s", "concurrency": 6},
        fault=f"published to the stream's subject amid the burst, {load.poison_each} of each: "
        "malformed, for an unknown bucket, for deleted objects of the Workflow's prefix",
    )
    stack = open_stack(worker_sleep=1.0)
    bucket = stack.bucket("poison")
    # backoffLimit 0: the events of deleted objects fail at their first pod.
    create_workflow(stack, "poison", bucket, backoff_limit=0)
    uploads = Uploads(stack, bucket)
    n = load.poison_each
    malformed = [b"{not json", b"[]", b'{"Records": "nope"}'] * n
    malformed = malformed[:n]
    unknown = [s3_event(f"no-such-bucket-{i}", f"{PREFIX}x-{i}.mp4") for i in range(n)]
    gone = [f"{PREFIX}deleted-{i:03d}.mp4" for i in range(n)]
    with JobRecorder(stack.api, stack.namespace) as recorder:
        burst = uploads.burst_in_background(keys("good", 2 * load.burst), pace=0.05)
        publish(
            nats_server.url,
            minio_server.notify_subject,
            [
                m
                for trio in zip(
                    malformed, unknown, [s3_event(bucket, k) for k in gone], strict=True
                )
                for m in trio
            ],
        )
        burst.join(timeout=120)
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "poison",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted) + n,
            timeout=load.settle_s,
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "poison", bucket, uploads, recorder, final, gone=gone)
        terminated = wait_for(
            lambda: poison_count(stack) >= n and poison_count(stack), 60, "poison metric"
        )
        assert terminated == n, f"{terminated} poison events terminated, {n} published"
    measure.update(
        measured={
            **figures,
            "poison terminated": int(terminated),
            "deleted counted failed": final["failed"],
            "all done s": round(took, 1),
        },
    )


def delete_stream(nats_url: str, stream: str) -> None:
    import nats

    async def delete() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(delete())


def test_stream_deleted_mid_burst(
    open_stack: Callable[..., Stack],
    nats_server: Any,
    load: Load,
    measure: dict[str, Any],
) -> None:
    measure.update(
        scenario="stream deleted",
        order=7,
        load={"uploads": 3 * load.burst, "worker": "2 s", "concurrency": 2},
        fault="the JetStream stream deleted with a backlog queued; uploads go on",
    )
    # The events of the backlog die with the stream: the sweep (every 10 s here)
    # must find those uploads.
    stack = open_stack(worker_sleep=2.0, sweep_interval=10, sweep_grace=5)
    bucket = stack.bucket("stream")
    create_workflow(stack, "stream", bucket, concurrency=2)
    uploads = Uploads(stack, bucket)
    with JobRecorder(stack.api, stack.namespace) as recorder:
        uploads.burst(keys("before", 2 * load.burst))
        wait_for(lambda: recorder.count() >= 2, 120, "Jobs running, a backlog in the stream")
        deleted_at = time.monotonic()
        delete_stream(nats_server.url, STREAM)
        uploads.burst(keys("after", load.burst), pace=0.1)
        assert uploads.first_at is not None
        final, took = settle(
            stack,
            "stream",
            nats_server.url,
            STREAM,
            expected=len(uploads.accepted),
            timeout=load.settle_s / 2,  # the sweep runs every 10 s here
            since=uploads.first_at,
        )
        figures = check_exactly_once(stack, "stream", bucket, uploads, recorder, final)
    measure.update(
        measured={
            **figures,
            "recovered after deletion s": round(time.monotonic() - deleted_at, 1),
            "all done s": round(took, 1),
        },
    )
