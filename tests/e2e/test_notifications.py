"""Notifications end to end: a real operator, real Jobs on the node, a real HTTP
receiver and a real NATS subscriber.

The receiver verifies every signature with the independent ``standardwebhooks``
implementation and parses every body with the ``cloudevents`` SDK; payloads are
validated against the published schema.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from base64 import b64encode
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from kubernetes import client
from standardwebhooks import Webhook

from tests.e2e.harness import OperatorProcess, Stack, counters, stack_fixture, wait_for
from tests.support.nats import start_nats
from tests.support.notification_schema import assert_valid_event
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ALLOW_LOOPBACK = {"MEDIAFLOW_NOTIFY_ALLOWED_CIDRS": "127.0.0.0/8"}


@pytest.fixture
def notify_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator as a process that may reach the test's receiver on 127.0.0.1
    (loopback is refused by default: the administrator's exception)."""
    yield from stack_fixture(
        kube_cluster, minio_server, nats_server, tmp_path, extra_env=ALLOW_LOOPBACK
    )


def _whsec() -> str:
    return "whsec_" + b64encode(secrets.token_bytes(32)).decode()


def _secret(stack: Stack, name: str, data: dict[str, str]) -> None:
    client.CoreV1Api(stack.api).create_namespaced_secret(
        stack.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
    )


def _event_of(request: Any) -> Any:
    """The CloudEvent of a request, parsed by the SDK (structured or binary)."""
    return from_http(HTTPMessage(headers=request.headers, body=request.body), JSONFormat())


def _structured(request: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(request.body)
    return doc


def test_signed_webhook_retried_until_accepted_exactly_once_per_object(
    notify_stack: Stack,
) -> None:
    stack = notify_stack
    old_key, new_key = _whsec(), _whsec()
    # Rotation: the operator signs with both keys, this receiver knows only the new one.
    _secret(stack, "hook-keys", {"key": f"{old_key} {new_key}"})
    receiver = WebhookReceiver(answer=lambda attempt: 500 if attempt < 2 else 204).start()
    verifier = Webhook(new_key)
    try:
        bucket = stack.bucket("hook")
        wf = stack.create_workflow(
            "hooked",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "notifications": {
                    "context": '{"tenant":"acme"}',
                    "webhooks": [
                        {
                            "url": receiver.url,
                            "signingSecretRef": {"name": "hook-keys"},
                            "events": ["Succeeded", "Failed"],
                            "maxAttempts": 5,
                        }
                    ],
                },
            },
        )
        stack.wait_ready("hooked")
        keys = ["in/a.mp4", "in/b.mp4", "in/bad-input.mp4"]
        for key in keys:
            stack.upload(bucket, key)

        def all_accepted() -> list[Any] | None:
            got = receiver.accepted()
            return got if len(got) >= len(keys) else None

        accepted = wait_for(
            all_accepted, 180, lambda: f"3 accepted deliveries\n{stack.operator.diagnose()}"
        )
        # Exactly one accepted delivery per finished object, and it stays so.
        wait_for(
            lambda: counters(stack.status("hooked"))["running"] == 0 or None, 60, "no Job running"
        )
        assert len(receiver.accepted()) == len(keys)
        events = [_structured(r) for r in accepted]
        assert sorted(e["subject"] for e in events) == sorted(f"{bucket}/{k}" for k in keys)
        # Every attempt of one event carried the same id; each was tried three times.
        per_id = Counter(r.webhook_id for r in receiver.all())
        assert set(per_id) == {e["id"] for e in events}
        assert all(n == 3 for n in per_id.values()), per_id
        for request in receiver.all():
            verifier.verify(request.body, request.headers)  # raises on a bad signature
            assert request.headers["content-type"].startswith("application/cloudevents+json")
            event = _event_of(request)
            assert event.get_id() == request.webhook_id
        by_key = {e["subject"].split("/", 1)[1]: e for e in events}
        for event in events:
            assert_valid_event(event)
            assert event["data"]["context"] == '{"tenant":"acme"}'
            assert event["data"]["workflow"]["uid"] == wf["metadata"]["uid"]
        assert by_key["in/a.mp4"]["type"] == "dev.mediaflow.object.succeeded"
        assert by_key["in/a.mp4"]["data"]["outputs"], "the outputs the manifest lists"
        failed = by_key["in/bad-input.mp4"]
        assert failed["type"] == "dev.mediaflow.object.failed"
        assert failed["data"]["error"]["code"]

        # The status counts each delivery once; the metrics agree with what happened.
        def counted() -> dict[str, Any] | None:
            sinks: list[dict[str, Any]] = stack.status("hooked").get("notifications") or []
            return sinks[0] if sinks and sinks[0].get("delivered") == len(keys) else None

        sink = wait_for(counted, 30, "status.notifications counts the deliveries")
        assert sink["failed"] == 0
        assert sink["sink"] == "webhook-0"
        metrics = stack.operator.metrics_text()
        ns, name = stack.namespace, "hooked"
        assert _sample(metrics, "mediaflow_jobs_created_total", ns, name) == len(keys)
        assert _sample(metrics, "mediaflow_job_results_total", ns, name, outcome="succeeded") == 2
        assert _sample(metrics, "mediaflow_job_results_total", ns, name, outcome="failed") == 1
        assert _sample(
            metrics, "mediaflow_notification_deliveries_total", ns, name, result="delivered"
        ) == len(keys)
        assert _sample(
            metrics, "mediaflow_notification_deliveries_total", ns, name, result="retried"
        ) == 2 * len(keys)
    finally:
        receiver.stop()


def _sample(text: str, metric: str, namespace: str, workflow: str, **labels: str) -> float:
    """Sum of the samples of ``metric`` for one Workflow (and ``labels``)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        wanted = {"namespace": namespace, "workflow": workflow, **labels}
        if all(found.get(k) == v for k, v in wanted.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_binary_mode_and_every_change_events(notify_stack: Stack) -> None:
    stack = notify_stack
    receiver = WebhookReceiver().start()
    try:
        bucket = stack.bucket("bin")
        stack.create_workflow(
            "binary",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "notifications": {
                    "webhooks": [
                        {
                            "url": receiver.url,
                            "contentMode": "binary",
                            "events": ["Accepted", "TaskFinished", "Succeeded", "Failed"],
                        }
                    ]
                },
            },
        )
        stack.wait_ready("binary")
        stack.upload(bucket, "in/clip.mp4")
        got = wait_for(
            lambda: r if len(r := receiver.accepted()) >= 3 else None,
            120,
            lambda: f"accepted, task and final events\n{stack.operator.diagnose()}",
        )
        types = [r.headers["ce-type"] for r in got]
        # In order per object: accepted, then each task, then the object's event.
        assert types == [
            "dev.mediaflow.object.accepted",
            "dev.mediaflow.task.finished",
            "dev.mediaflow.object.succeeded",
        ]
        for request in got:
            assert request.headers["content-type"].startswith("application/json")
            event = _event_of(request)
            assert event.get_subject() == f"{bucket}/in/clip.mp4"
            assert "webhook-signature" not in request.headers  # no key configured
    finally:
        receiver.stop()


def test_nats_subscriber_gets_one_valid_message_per_object_with_its_context(
    notify_stack: Stack, nats_server: Any
) -> None:
    stack = notify_stack
    subject = f"media.done.{secrets.token_hex(4)}"
    bucket = stack.bucket("q")
    received: list[dict[str, Any]] = []

    async def collect(until: int) -> None:
        nc = await nats.connect(nats_server.url)
        try:
            sub = await nc.subscribe(subject)
            ready.set_result(True)
            while len(received) < until:
                msg = await sub.next_msg(timeout=180)
                assert msg.headers
                assert msg.headers.get("Content-Type") == "application/cloudevents+json"
                received.append(json.loads(msg.data))
            # Nothing more arrives for these objects (one message per object).
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=5)
        finally:
            await nc.close()

    loop = asyncio.new_event_loop()
    ready: asyncio.Future[bool] = loop.create_future()
    task = loop.create_task(collect(2))
    loop.run_until_complete(ready)
    stack.create_workflow(
        "queued",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "notifications": {"context": "default-context", "queues": [{"subject": subject}]},
        },
    )
    stack.wait_ready("queued")
    own_context = '{"order": 42, "note": "quotes \\" and & survive"}'
    stack.upload(bucket, "in/with-context.mp4", metadata={"mediaflow-context": own_context})
    stack.upload(bucket, "in/plain.mp4")
    loop.run_until_complete(asyncio.wait_for(task, 240))
    loop.close()
    by_key = {e["subject"].split("/", 1)[1]: e for e in received}
    assert sorted(by_key) == ["in/plain.mp4", "in/with-context.mp4"]
    for event in received:
        assert_valid_event(event)
        assert event["type"] == "dev.mediaflow.object.succeeded"
    assert by_key["in/with-context.mp4"]["data"]["context"] == own_context
    assert by_key["in/plain.mp4"]["data"]["context"] == "default-context"


def test_a_queue_on_another_nats_server_named_by_a_secret(
    notify_stack: Stack, tmp_path: Path
) -> None:
    stack = notify_stack
    other = start_nats(tmp_path / "other-nats")
    subject = "media.elsewhere"
    received: list[dict[str, Any]] = []
    try:
        _secret(stack, "other-nats", {"url": other.url})

        async def collect() -> None:
            nc = await nats.connect(other.url)
            try:
                sub = await nc.subscribe(subject)
                ready.set_result(True)
                msg = await sub.next_msg(timeout=180)
                received.append(json.loads(msg.data))
            finally:
                await nc.close()

        loop = asyncio.new_event_loop()
        ready: asyncio.Future[bool] = loop.create_future()
        task = loop.create_task(collect())
        loop.run_until_complete(ready)
        bucket = stack.bucket("far")
        stack.create_workflow(
            "far",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "notifications": {
                    "queues": [{"subject": subject, "serverSecretRef": {"name": "other-nats"}}]
                },
            },
        )
        stack.wait_ready("far")
        stack.upload(bucket, "in/far.mp4")
        loop.run_until_complete(asyncio.wait_for(task, 240))
        loop.close()
        (event,) = received
        assert_valid_event(event)
        assert event["subject"] == f"{bucket}/in/far.mp4"
        sinks = wait_for(
            lambda: (
                n
                if (n := stack.status("far").get("notifications")) and n[0]["delivered"] == 1
                else None
            ),
            30,
            "the delivery counted",
        )
        assert sinks[0]["target"] == f"nats:{subject}@other-nats"
    finally:
        other.stop()


def test_pending_notifications_survive_an_operator_kill(notify_stack: Stack) -> None:
    stack = notify_stack
    receiver = WebhookReceiver(answer=lambda attempt: 503)  # not started: the receiver is down
    bucket = stack.bucket("kill")
    stack.create_workflow(
        "durable",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "notifications": {"webhooks": [{"url": receiver.url, "maxAttempts": 20}]},
        },
    )
    stack.wait_ready("durable")
    keys = [f"in/{i}.mp4" for i in range(4)]
    for key in keys:
        stack.upload(bucket, key)
    # Every object processed and counted while its notification cannot be delivered.
    wait_for(
        lambda: counters(stack.status("durable"))["succeeded"] == len(keys) or None,
        120,
        lambda: f"4 objects processed\n{stack.operator.diagnose()}",
    )
    assert isinstance(stack.operator, OperatorProcess)  # a local process to SIGKILL
    stack.operator.kill()  # SIGKILL with every notification pending
    receiver.answer = lambda attempt: 200
    receiver.start()
    try:
        stack.operator.start()
        got = wait_for(
            lambda: r if len(r := receiver.accepted()) >= len(keys) else None,
            180,
            lambda: f"the pending notifications after the restart\n{stack.operator.diagnose()}",
        )
        assert sorted(_structured(r)["subject"] for r in got) == sorted(
            f"{bucket}/{k}" for k in keys
        )
        assert len({r.webhook_id for r in got}) == len(keys)
    finally:
        receiver.stop()


def test_a_dead_receiver_shows_in_status_and_events_and_delays_no_job(notify_stack: Stack) -> None:
    stack = notify_stack
    receiver = WebhookReceiver(answer=lambda attempt: 500).start()
    try:
        bucket = stack.bucket("dead")
        stack.create_workflow(
            "deadhook",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "notifications": {"webhooks": [{"url": receiver.url, "maxAttempts": 2}]},
            },
        )
        stack.wait_ready("deadhook")
        keys = [f"in/{i}.mp4" for i in range(3)]
        for key in keys:
            stack.upload(bucket, key)

        def gave_up() -> dict[str, Any] | None:
            sinks: list[dict[str, Any]] = stack.status("deadhook").get("notifications") or []
            return sinks[0] if sinks and sinks[0].get("failed") == len(keys) else None

        sink = wait_for(gave_up, 180, lambda: f"3 deliveries given up\n{stack.operator.diagnose()}")
        assert sink["delivered"] == 0
        assert sink["lastFailure"]["attempts"] == 2
        assert "500" in sink["lastFailure"]["message"]
        assert counters(stack.status("deadhook"))["succeeded"] == len(keys)
        events = client.CoreV1Api(stack.api).list_namespaced_event(stack.namespace).items
        failed = [e for e in events if e.reason == "NotificationFailed"]
        assert failed, "a NotificationFailed Event"
        # Rate-limited: one Event for the sink in the interval, not one per notification.
        assert len(failed) == 1
        assert (failed[0].count or 1) == 1
        # New uploads keep being processed at once while deliveries fail.
        stack.upload(bucket, "in/late.mp4")
        wait_for(
            lambda: counters(stack.status("deadhook"))["succeeded"] == len(keys) + 1 or None,
            60,
            "the late upload processed",
        )
    finally:
        receiver.stop()


def test_webhooks_to_the_clusters_insides_are_refused(process_stack: Stack) -> None:
    """Without the administrator's exception, loopback and the cloud metadata
    address are refused: never requested, visible as failures."""
    stack = process_stack
    receiver = WebhookReceiver().start()
    try:
        bucket = stack.bucket("ssrf")
        stack.create_workflow(
            "inside",
            {
                "trigger": {"bucket": bucket, "prefix": "in/"},
                "tasks": [{"name": "probe", "analysis": {}}],
                "notifications": {
                    "webhooks": [
                        {"url": receiver.url},
                        {"url": "http://169.254.169.254/latest/meta-data/"},
                    ]
                },
            },
        )
        stack.wait_ready("inside")
        stack.upload(bucket, "in/x.mp4")

        def refused() -> list[dict[str, Any]] | None:
            sinks = stack.status("inside").get("notifications") or []
            return sinks if len(sinks) == 2 and all(s.get("failed") == 1 for s in sinks) else None

        sinks = wait_for(
            refused, 120, lambda: f"both deliveries refused\n{stack.operator.diagnose()}"
        )
        assert receiver.all() == [], "nothing reached the loopback receiver"
        assert all(s["lastFailure"]["attempts"] == 1 for s in sinks), "refusals are not retried"
        assert "127.0.0.1" in sinks[0]["lastFailure"]["message"]
        assert "169.254.169.254" in sinks[1]["lastFailure"]["message"]
    finally:
        receiver.stop()
