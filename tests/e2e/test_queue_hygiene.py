"""The stream keeps only what a dispatching Workflow will read, survives being
deleted, has limits, and the operator starts cleanly (issue 10, defects 5, 7, 10).

All on the real stack: MinIO publishes into the real JetStream stream, the
operator is a real process (``queue_stack``: stream check every second, orphan
sweep every 2 s, periodic reconcile 300 s so that only a prompt reaction passes).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from minio.commonconfig import Tags
from minio.notificationconfig import PrefixFilterRule, QueueConfig
from nats.js import JetStreamContext
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from mediaflow_operator import naming, queue
from mediaflow_operator.matching import CONTENT_EVENTS
from tests.e2e.conftest import QUEUE_STREAM_MAX_BYTES, QUEUE_STREAM_MAX_MSGS
from tests.e2e.harness import (
    REPO,
    OperatorProcess,
    Stack,
    consumer_exists,
    counters,
    operator_env,
    prepare_stack,
    wait_for,
)

pytestmark = pytest.mark.e2e

STREAM = "MEDIAFLOW_EVENTS"  # operator_env's default: MinIO's subject belongs to one stream
TASKS = [{"name": "thumbs", "snapshot": {"times": ["1"]}}]
T = TypeVar("T")


def _js(url: str, action: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Run ``action`` with a fresh JetStream connection (tests are synchronous)."""

    async def run() -> T:
        nc = await nats.connect(url)
        try:
            return await action(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())


def _stream(url: str) -> StreamInfo | None:
    async def info(js: JetStreamContext) -> StreamInfo | None:
        try:
            return await js.stream_info(STREAM)
        except NotFoundError:
            return None

    return _js(url, info)


def _reason(stack: Stack, name: str, type_: str) -> str:
    for cond in stack.status(name).get("conditions") or []:
        if cond.get("type") == type_:
            return f"{cond.get('status')}/{cond.get('reason')}"
    return ""


def _settled(url: str, durable: str) -> bool:
    """The consumer has nothing waiting and nothing delivered-but-unacked."""

    async def info(js: JetStreamContext) -> bool:
        found = await js.consumer_info(STREAM, durable)
        return not found.num_pending and not found.num_ack_pending

    return _js(url, info)


def _metric(stack: Stack, name: str) -> float | None:
    """The value of an unlabelled metric of the operator."""
    for line in stack.operator.metrics_text().splitlines():
        metric, _, value = line.partition(" ")
        if metric == name:
            return float(value)
    return None


def _workflow(stack: Stack, name: str, bucket: str, **execution: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"trigger": {"bucket": bucket, "prefix": "in/"}, "tasks": TASKS}
    if execution:
        spec["execution"] = execution
    return stack.create_workflow(name, spec)


def test_tagging_a_processed_object_does_not_process_it_again(
    queue_stack: Stack, nats_server: Any, minio_server: Any
) -> None:
    stack = queue_stack
    bucket = stack.bucket("tags")
    wf = _workflow(stack, "tags", bucket, finishedJobRetentionSeconds=0)
    stack.wait_ready("tags")
    uid, durable = wf["metadata"]["uid"], stack.status("tags")["consumer"]

    # A rule of someone else on the same bucket sends tagging events to the same
    # target: so the tag event reaches the stream whatever our own rule asks for,
    # and the router must not route it.
    config = stack.minio.get_bucket_notification(bucket)
    config.queue_config_list.append(
        QueueConfig(
            queue=minio_server.notify_arn,
            events=["s3:ObjectCreated:PutTagging"],
            config_id="probe-tagging",
            prefix_filter_rule=PrefixFilterRule("in/"),
        )
    )
    stack.minio.set_bucket_notification(bucket, config)

    stack.upload(bucket, "in/a.mp4")

    def processed_and_deleted() -> dict[str, int] | None:
        c = counters(stack.status("tags"))
        done = c["succeeded"] == 1 and c["running"] == 0 and not stack.jobs(uid)
        return c if done else None

    before = wait_for(
        processed_and_deleted,
        90,
        lambda: f"a.mp4 processed, Job deleted\n{stack.operator.diagnose()}",
    )
    wait_for(lambda: _settled(nats_server.url, durable), 30, "the upload's events settled")
    last_seq = _stream(nats_server.url).state.last_seq

    tags = Tags.new_object_tags()
    tags["reviewed"] = "yes"
    stack.minio.set_object_tags(bucket, "in/a.mp4", tags)

    # Not vacuous: the tagging event is in the stream and the router settled it.
    wait_for(
        lambda: _stream(nats_server.url).state.last_seq > last_seq,
        30,
        "the tagging event published into the stream",
    )
    router = queue.router_durable(())
    # The router's consumer is shared by every operator of the session: an operator
    # of an earlier test stopped with a pull request open may have been handed
    # messages it never acked, which come back to this operator's router only
    # after AckWait (60 s).
    wait_for(
        lambda: _settled(nats_server.url, router),
        queue.ACK_WAIT_SECONDS + 60,
        "the tagging event settled",
    )
    wait_for(lambda: _settled(nats_server.url, durable), 30, "the Workflow's queue settled")
    assert stack.jobs(uid) == [], "tagging started a second Job"
    assert counters(stack.status("tags")) == before
    # And our own rule does not ask for tagging events in the first place.
    ours = [
        q
        for q in stack.minio.get_bucket_notification(bucket).queue_config_list
        if naming.is_our_rule(q.config_id)
    ]
    # (one rule per MinIO target: the durable one and the fast one)
    assert [sorted(q.events) for q in ours] == [sorted(CONTENT_EVENTS)] * 2


def test_a_workflow_gets_its_consumer_only_once_it_can_dispatch(
    queue_stack: Stack, nats_server: Any
) -> None:
    stack = queue_stack
    bucket = f"late-{uuid.uuid4().hex[:10]}"  # does not exist yet
    wf = _workflow(stack, "late", bucket)
    durable = naming.consumer_name(stack.namespace, "late", wf["metadata"]["uid"])
    wait_for(
        lambda: _reason(stack, "late", "StorageReady") == "False/BucketNotFound",
        60,
        lambda: f"StorageReady False (bucket missing)\n{stack.operator.diagnose()}",
    )
    # The queue step ran in that same reconcile (one status write for all steps).
    assert _reason(stack, "late", "QueueReady").startswith("True/")
    assert not consumer_exists(nats_server.url, STREAM, durable), (
        "a Workflow that cannot dispatch holds a consumer (and so every event)"
    )
    assert not stack.status("late").get("consumer")

    stack.minio.make_bucket(bucket)
    stack.wait_ready("late", timeout=60)
    assert consumer_exists(nats_server.url, STREAM, durable)
    assert stack.status("late")["consumer"] == durable


def test_an_orphan_consumer_is_deleted_and_others_are_kept(
    queue_stack: Stack, nats_server: Any, minio_server: Any
) -> None:
    stack = queue_stack
    bucket = stack.bucket("orph")
    _workflow(stack, "alive", bucket)
    stack.wait_ready("alive")
    alive = stack.status("alive")["consumer"]
    # A consumer of a Workflow that no longer exists (its finalizer lost to a
    # timeout while NATS was away), and one that some other tool owns.
    orphan = naming.consumer_name(stack.namespace, "gone", str(uuid.uuid4()))
    foreign = f"audit_{uuid.uuid4().hex[:8]}"

    async def create(js: JetStreamContext) -> None:
        description = queue.CONSUMER_DESCRIPTION.format(namespace=stack.namespace, name="gone")
        await js.add_consumer(
            STREAM, queue.consumer_config(orphan, minio_server.notify_subject, description)
        )
        await js.add_consumer(
            STREAM,
            queue.consumer_config(foreign, minio_server.notify_subject, "kept by someone else"),
        )

    _js(nats_server.url, create)
    try:
        wait_for(
            lambda: not consumer_exists(nats_server.url, STREAM, orphan),
            30,
            lambda: f"orphan consumer {orphan} deleted\n{stack.operator.diagnose()}",
        )
        assert consumer_exists(nats_server.url, STREAM, foreign)
        assert consumer_exists(nats_server.url, STREAM, alive)
    finally:
        _js(nats_server.url, lambda js: queue.delete_consumer(js, STREAM, foreign))


def test_a_deleted_stream_is_recreated_with_the_consumers_at_once(
    queue_stack: Stack, nats_server: Any
) -> None:
    stack = queue_stack
    bucket = stack.bucket("reset")
    wf = _workflow(stack, "reset", bucket)
    stack.wait_ready("reset")
    durable = stack.status("reset")["consumer"]
    created_before = _stream(nats_server.url).created

    _js(nats_server.url, lambda js: js.delete_stream(STREAM))

    def recreated() -> bool:
        info = _stream(nats_server.url)
        return (
            info is not None
            and info.created != created_before
            and consumer_exists(nats_server.url, STREAM, durable)
        )

    # Well inside the periodic reconcile (300 s here, 120 s by default).
    wait_for(recreated, 15, lambda: f"stream and consumer re-created\n{stack.operator.diagnose()}")
    stack.upload(bucket, "in/after-reset.mp4")

    def processed() -> bool:
        return counters(stack.status("reset"))["succeeded"] == 1

    wait_for(
        processed, 90, lambda: f"upload after the reset processed\n{stack.operator.diagnose()}"
    )
    assert len(stack.jobs(wf["metadata"]["uid"])) == 1


def test_the_stream_has_limits_and_an_alarm(
    queue_stack: Stack, nats_server: Any, minio_server: Any
) -> None:
    stack = queue_stack
    info = _stream(nats_server.url)
    assert info is not None
    assert (info.config.max_bytes, info.config.max_msgs) == (
        QUEUE_STREAM_MAX_BYTES,
        QUEUE_STREAM_MAX_MSGS,
    )
    assert str(getattr(info.config.discard, "value", info.config.discard)) == "new"
    wait_for(
        lambda: _metric(stack, "mediaflow_stream_max_bytes") == QUEUE_STREAM_MAX_BYTES,
        15,
        "the stream's limit as a metric",
    )

    # A consumer nobody reads (not ours: the operator leaves it) holds what is
    # published; a few messages pass this fixture's alarm ratio.
    holder = f"holder_{uuid.uuid4().hex[:8]}"

    async def fill(js: JetStreamContext) -> None:
        await js.add_consumer(
            STREAM, queue.consumer_config(holder, minio_server.notify_subject, "test holder")
        )
        for _ in range(10):
            await js.publish(minio_server.notify_subject, b"{}")

    _js(nats_server.url, fill)
    try:
        wait_for(
            lambda: (
                f"stream {STREAM} is" in stack.operator.log_text()
                and (_metric(stack, "mediaflow_stream_fill_ratio") or 0) > 0
            ),
            15,
            lambda: f"the fill alarm in the log and the metric\n{stack.operator.diagnose()}",
        )
    finally:
        _js(nats_server.url, lambda js: queue.delete_consumer(js, STREAM, holder))


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mediaflow_operator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )


def _stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=30)


def test_startup_waits_for_a_kubeconfig_and_recovers(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> None:
    api, namespace = prepare_stack(kube_cluster, minio_server)
    env = operator_env(kube_cluster, minio_server, nats_server)
    later = tmp_path / "mounted-later.kubeconfig"
    env["KUBECONFIG"] = str(later)
    log = tmp_path / "operator.log"
    popen = _start(env, log)
    operator = OperatorProcess(env, log, popen)
    stack = Stack(api=api, minio=minio_server.client(), namespace=namespace, operator=operator)
    try:
        wait_for(
            lambda: "Activity 'startup' failed" in operator.log_text(),
            30,
            lambda: f"the startup handler failing without a kubeconfig\n{operator.diagnose()}",
        )
        shutil.copy(kube_cluster.kubeconfig, later)
        bucket = stack.bucket("boot")
        _workflow(stack, "boot", bucket)
        stack.wait_ready("boot", timeout=45)
        assert "Address already in use" not in operator.log_text()
        assert "mediaflow_jobs_created_total" in operator.metrics_text()
        stack.cleanup()
    finally:
        _stop(popen)


def test_a_metrics_port_in_use_stops_the_operator_with_a_clear_message(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> None:
    env = operator_env(kube_cluster, minio_server, nats_server)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        env["MEDIAFLOW_METRICS_PORT"] = str(taken.getsockname()[1])
        log = tmp_path / "operator.log"
        popen = _start(env, log)
        try:
            wait_for(lambda: popen.poll() is not None, 45, "the operator to give up")
        finally:
            _stop(popen)
    text = log.read_text(errors="replace")
    assert popen.returncode != 0
    assert "cannot serve metrics on port" in text, text[-3000:]
