"""The router against a real JetStream: the stream and the router's consumer
made together, each event copied to exactly the Workflows it is for, the
originals gone once routed, copies stored again after a crash dropped as
duplicates (counted as such, no dispatcher woken), and a consumer of an
older operator switched to its own subject."""

from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from mediaflow_operator import naming, queue, routing
from mediaflow_operator.pools import Pool
from mediaflow_operator.router import Router
from mediaflow_operator.routing import Route
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.s3_events import parse_message
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.integration


def _event(key: str, bucket: str = "media", sequencer: str = "") -> bytes:
    obj: dict[str, Any] = {"key": key, "eTag": "e", "size": 3}
    if sequencer:
        obj["sequencer"] = sequencer
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }
    return json.dumps({"Records": [record]}).encode()


async def _drain(js: JetStreamContext, stream: str, durable: str) -> list[str]:
    """The keys of every message waiting for ``durable`` (acked as read)."""
    sub = await js.pull_subscribe_bind(consumer=durable, stream=stream)
    keys: list[str] = []
    while True:
        try:
            batch = await sub.fetch(16, timeout=1)
        except TimeoutError:
            return keys
        for msg in batch:
            keys.append(json.loads(msg.data)["Records"][0]["s3"]["object"]["key"])
            await msg.ack_sync()


def _router_events(result: str) -> float:
    return REGISTRY.get_sample_value("mediaflow_router_events_total", {"result": result}) or 0.0


def _copies() -> float:
    return REGISTRY.get_sample_value("mediaflow_routed_copies_total") or 0.0


def test_events_reach_exactly_their_workflows_once(nats_server: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        nats_url=nats_server.url,
        nats_stream=f"R{tag}",
        nats_subject=f"test.{tag}.events",
        nats_work_subject_prefix=f"test.{tag}.work",
        notify_stream=f"N{tag}",
        notify_subject_prefix=f"test.{tag}.outbox",
    )
    # Only NATS is used: no Kubernetes or MinIO client is needed.
    rt = Runtime(
        settings=settings,
        kube=SimpleNamespace(pool=Pool("kube", 1)),  # type: ignore[arg-type]
        minio=None,
        storage_pool=Pool("storage", 1),
    )
    workflows = {"videos": "videos/", "everything": "", "quiet": "nothing-here/"}
    index = {"media": [Route(uid, prefix) for uid, prefix in workflows.items()]}

    async def scenario() -> None:
        js = await rt.jetstream()
        try:
            info = await js.stream_info(settings.nats_stream)
            assert set(info.config.subjects or []) == {
                settings.nats_subject,
                f"test.{tag}.work.*",
            }
            # The router's consumer exists before anything is published.
            assert await queue.consumer_exists(js, settings.nats_stream, rt.router_durable)
            durables = {uid: naming.consumer_name("ns", uid, uid) for uid in workflows}
            # "quiet" was made by an older operator, on MinIO's subject: switched in place.
            await js.add_consumer(
                settings.nats_stream,
                queue.consumer_config(durables["quiet"], settings.nats_subject, "old"),
            )
            for uid, durable in durables.items():
                subject = routing.work_subject(settings.nats_work_subject_prefix, uid)
                await queue.ensure_consumer(js, settings.nats_stream, durable, subject, uid)
            quiet = await js.consumer_info(settings.nats_stream, durables["quiet"])
            assert quiet.config.filter_subject == f"test.{tag}.work.quiet"

            for data in (_event("videos/a.mp4"), _event("photos/b.jpg"), b"{not json"):
                await js.publish(settings.nats_subject, data)
            await js.publish(settings.nats_subject, _event("videos/c.mp4", bucket="elsewhere"))
            for uid in workflows:
                rt.doorbells.bell(uid)  # each Workflow's dispatcher runs
            router = Router(rt, index)
            routed = 0
            while routed < 4:
                routed += await router.step()
            assert routed == 4

            assert await _drain(js, settings.nats_stream, durables["videos"]) == ["videos/a.mp4"]
            assert await _drain(js, settings.nats_stream, durables["everything"]) == [
                "videos/a.mp4",
                "photos/b.jpg",
            ]
            assert await _drain(js, settings.nats_stream, durables["quiet"]) == []
            assert rt.doorbells.bell("videos").is_set()
            assert not rt.doorbells.bell("quiet").is_set()
            # Originals acked (or terminated), copies acked: nothing is left.
            info = await js.stream_info(settings.nats_stream)
            assert info.state.messages == 0
            router_info = await js.consumer_info(settings.nats_stream, rt.router_durable)
            assert (router_info.num_pending, router_info.num_ack_pending) == (0, 0)

            # A router that stored its copies and died before the ack: the
            # original comes back, its copies are stored again and dropped.
            await js.publish(settings.nats_subject, _event("videos/d.mp4"))
            sub = await js.pull_subscribe_bind(
                consumer=rt.router_durable, stream=settings.nats_stream
            )
            [original] = await sub.fetch(1, timeout=5)
            # Copies stored (for both Workflows it is for), no ack: a crash.
            events = parse_message(original.data)
            await router._publish(js, original, routing.targets(index, events), events)
            await original.nak()  # what AckWait would do, at once
            for uid in workflows:
                rt.doorbells.bell(uid).clear()
            duplicates, copies = _router_events("duplicate"), _copies()
            while await router.step() == 0:
                pass
            for uid in ("videos", "everything"):
                assert await _drain(js, settings.nats_stream, durables[uid]) == ["videos/d.mp4"]
            assert (_router_events("duplicate"), _copies()) == (duplicates + 1, copies)
            assert not any(rt.doorbells.bell(uid).is_set() for uid in workflows), (
                "a duplicate wakes nobody"
            )

            # One event that MinIO sent twice (its fast and its durable target, or
            # a retry from its queue_dir): two messages in the stream, one copy
            # (same sequencer, same identity), one routed and one duplicate.
            twice = _event("videos/e.mp4", sequencer="18A0F00D00000001")
            await js.publish(settings.nats_subject, twice)
            await js.publish(settings.nats_subject, twice)
            routed_events, duplicates = _router_events("routed"), _router_events("duplicate")
            routed = 0
            while routed < 2:
                routed += await router.step()
            for uid in ("videos", "everything"):
                assert await _drain(js, settings.nats_stream, durables[uid]) == ["videos/e.mp4"]
            assert _router_events("routed") == routed_events + 1
            assert _router_events("duplicate") == duplicates + 1
            assert _copies() == copies + 2
            assert rt.doorbells.bell("videos").is_set()
        finally:
            for name in (settings.nats_stream, settings.notify_stream):
                await js.delete_stream(name)
            await rt.close()

    asyncio.run(scenario())


def test_a_copy_for_a_workflow_without_a_consumer_is_not_kept(nats_server: Any) -> None:
    """Why the router routes only to Workflows whose status names a consumer:
    with interest retention a copy nobody filters for is dropped at once."""
    tag = uuid.uuid4().hex[:8]
    stream = f"R{tag}"

    async def scenario() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            limits = queue.StreamLimits(max_age_seconds=3600, max_bytes=1 << 20, max_msgs=1000)
            await queue.ensure_stream(js, stream, [f"t.{tag}.events", f"t.{tag}.work.*"], limits)
            await js.publish(f"t.{tag}.work.nobody", b"{}")
            info = await js.stream_info(stream)
            assert info.state.messages == 0
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(scenario())
