"""The router's pure parts (``routing``, ``doorbell.FetchPacer``) and its
handling of one batch against fakes (``router.Router.route``): what is copied
where, acked, terminated or put back. The real JetStream behaviour (stored
copies, duplicates dropped, filters) is in
tests/integration/operator/test_router.py."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from nats.js.api import PubAck
from prometheus_client import REGISTRY
from pydantic import ValidationError

from mediaflow_operator import routing
from mediaflow_operator.doorbell import Doorbells, FetchPacer
from mediaflow_operator.router import CopyFailed, Router
from mediaflow_operator.routing import Route
from mediaflow_operator.s3_events import parse_message
from mediaflow_operator.settings import Settings

from .samples import FakeMsg

pytestmark = pytest.mark.unit


def _message(
    key: str,
    bucket: str = "media",
    event: str = "s3:ObjectCreated:Put",
    metadata: dict[str, str] | None = None,
) -> bytes:
    record = {
        "eventName": event,
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "eTag": "e", "size": 3, "userMetadata": metadata or {}},
        },
    }
    return json.dumps({"Records": [record]}).encode()


def _body(
    uid: str,
    bucket: str,
    prefix: str = "",
    *,
    consumer: str = "wf_c",
    suspend: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": f"wf-{uid}", "uid": uid, "generation": 1},
        "spec": {"trigger": {"bucket": bucket, "prefix": prefix}, "suspend": suspend},
        "status": {"consumer": consumer},
    }


INDEX: dict[str, list[Route]] = {
    "media": [Route("all", ""), Route("videos", "videos/"), Route("deep", "videos/raw/")],
    "other": [Route("elsewhere", "")],
}


def test_an_active_workflow_with_a_consumer_is_routed_to() -> None:
    assert routing.route_of(_body("u1", "media", "in/")) == {"media": Route("u1", "in/")}


@pytest.mark.parametrize(
    "body",
    [
        _body("u1", "media", consumer=""),  # the reconcile has not made its consumer yet
        _body("u1", "media", suspend=True),
        {"metadata": {"uid": "u1"}, "spec": {"trigger": {}}, "status": {"consumer": "c"}},
    ],
    ids=["no-consumer", "suspended", "no-bucket"],
)
def test_a_workflow_that_cannot_take_events_is_not_routed_to(body: dict[str, Any]) -> None:
    # An empty dict, not None: kopf would keep the Workflow's old entry.
    assert routing.route_of(body) == {}


def test_an_event_goes_to_every_workflow_whose_prefix_holds_the_key_and_no_other() -> None:
    def to(key: str, bucket: str = "media") -> list[str]:
        return routing.targets(INDEX, parse_message(_message(key, bucket)))

    assert to("videos/raw/a.mp4") == ["all", "deep", "videos"]
    assert to("videos/b.mp4") == ["all", "videos"]
    assert to("photos/c.jpg") == ["all"]
    assert to("x.mp4", bucket="other") == ["elsewhere"]
    assert to("x.mp4", bucket="unknown") == []


def test_outputs_and_events_that_are_not_new_content_go_nowhere() -> None:
    output = _message("videos/a.mp4.mediaflow/ns/wf/out.mp4")
    marked = _message("videos/b.mp4", metadata={"X-Amz-Meta-Mediaflow-Output": "true"})
    tagged = _message("videos/c.mp4", event="s3:ObjectCreated:PutTagging")
    for data in (output, marked, tagged):
        assert routing.targets(INDEX, parse_message(data)) == []


def test_a_message_with_several_records_reaches_each_target_once() -> None:
    first = json.loads(_message("videos/a.mp4"))["Records"][0]
    second = json.loads(_message("photos/b.jpg"))["Records"][0]
    data = json.dumps({"Records": [first, second, first]}).encode()
    assert routing.targets(INDEX, parse_message(data)) == ["all", "videos"]


def _sequenced(key: str, sequencer: str) -> bytes:
    payload = json.loads(_message(key))
    payload["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    return json.dumps(payload).encode()


def test_copies_have_a_subject_and_an_id_of_their_workflow() -> None:
    assert routing.work_subject("mediaflow.work", "u-1") == "mediaflow.work.u-1"
    assert routing.work_subjects("mediaflow.work") == "mediaflow.work.*"
    plain = parse_message(_message("videos/a.mp4"))  # no sequencer: the stream sequence
    ids = {routing.message_id("s1", 7, uid, plain) for uid in ("a", "b")}
    assert len(ids) == 2
    assert routing.message_id("s1", 7, "a", plain) != routing.message_id("s2", 7, "a", plain)


def test_one_event_sent_twice_by_minio_has_one_copy_id() -> None:
    first = parse_message(_sequenced("videos/a.mp4", "1879A2B3C4D5E6F7"))
    again = parse_message(_sequenced("videos/a.mp4", "1879A2B3C4D5E6F7"))
    uploaded_again = parse_message(_sequenced("videos/a.mp4", "1879A2B3C4D5E6F8"))
    assert routing.message_id("s", 7, "a", first) == routing.message_id("s", 9, "a", again)
    assert routing.message_id("s", 7, "a", first) != routing.message_id("s", 9, "a", uploaded_again)
    assert routing.message_id("s", 7, "a", first) != routing.message_id("s", 7, "b", first)


@pytest.mark.parametrize(
    "env",
    [
        {"MEDIAFLOW_NATS_SUBJECT": "mediaflow.work.events"},
        {"MEDIAFLOW_NATS_WORK_SUBJECT_PREFIX": "mediaflow.events"},
        {"MEDIAFLOW_NOTIFY_SUBJECT_PREFIX": "mediaflow.work"},
    ],
)
def test_settings_refuse_work_subjects_that_overlap_the_routers_input(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="MEDIAFLOW_NATS_WORK_SUBJECT_PREFIX"):
        Settings.from_env(env)


# --- FetchPacer ---
def test_a_fresh_dispatcher_looks_at_its_queue_once() -> None:
    pacer = FetchPacer(fallback=30)
    assert pacer.due(0, rung=False)
    pacer.fetched(0, asked=4, got=0, put_back_after=None)
    assert not pacer.due(1, rung=False)  # idle: no pull
    assert pacer.due(1, rung=True)  # the router rang
    assert pacer.due(30, rung=False)  # the fallback


def test_a_full_pull_is_followed_by_another() -> None:
    pacer = FetchPacer(fallback=30)
    pacer.fetched(0, asked=4, got=4, put_back_after=None)
    assert pacer.due(0.1, rung=False)
    pacer.fetched(0.1, asked=4, got=1, put_back_after=None)
    assert not pacer.due(0.2, rung=False)


def test_events_put_back_are_pulled_when_they_come_due() -> None:
    pacer = FetchPacer(fallback=30)
    pacer.fetched(10, asked=4, got=2, put_back_after=5.0)
    assert not pacer.due(14, rung=False)
    assert pacer.due(15, rung=False)
    pacer.fetched(15, asked=4, got=0, put_back_after=None)
    assert not pacer.due(16, rung=False)


def test_a_doorbell_is_per_workflow_and_forgotten_with_its_dispatcher() -> None:
    bells = Doorbells()
    bell = bells.bell("a")
    bells.ring("b")  # no dispatcher: nothing is kept for it
    assert not bell.is_set()
    assert not bells.bell("b").is_set()
    bells.ring("a")
    assert bell.is_set()
    bells.forget("a")
    assert bells.bell("a") is not bell


# --- Router.route against fakes ---
class FakeJetStream:
    """Stores copies like JetStream: a message id seen before is a duplicate
    (the PubAck says so) and is not stored again."""

    def __init__(self, log: list[tuple[str, Any]], refuse: str = "") -> None:
        self.log = log
        self.refuse = refuse
        self.published: list[tuple[str, str]] = []

    async def publish(self, subject: str, payload: bytes, **options: Any) -> PubAck:
        if subject == self.refuse:
            raise RuntimeError("maximum messages exceeded")
        msg_id = options["headers"]["Nats-Msg-Id"]
        if any(seen == msg_id for _, seen in self.published):
            return PubAck(stream="S", seq=len(self.published), duplicate=True)
        self.published.append((subject, msg_id))
        return PubAck(stream="S", seq=len(self.published))


def _router(js: FakeJetStream) -> tuple[Router, Doorbells]:
    bells = Doorbells()
    for routes in INDEX.values():
        for route in routes:
            bells.bell(route.uid)  # each Workflow's dispatcher runs

    async def jetstream(**_: Any) -> FakeJetStream:
        return js

    rt = SimpleNamespace(settings=Settings(), jetstream=jetstream, stream_id="S", doorbells=bells)
    return Router(rt, INDEX), bells  # type: ignore[arg-type]


def test_a_batch_is_copied_acked_after_its_copies_and_rings_the_targets() -> None:
    log: list[tuple[str, Any]] = []
    js = FakeJetStream(log)
    router, bells = _router(js)
    messages = [
        FakeMsg(log, 1, _message("videos/a.mp4")),
        FakeMsg(log, 2, b"{not json"),
        FakeMsg(log, 3, _message("x.mp4", bucket="unknown")),
        FakeMsg(log, 4, _message("photos/b.jpg")),
    ]
    asyncio.run(router.route(messages))
    # Poison and unmatched settle while matching; the routed ones once copied, in order.
    assert log == [("term", 2), ("ack", 3), ("ack", 1), ("ack", 4)]
    assert js.published == [
        ("mediaflow.work.all", "seq:S:1:all"),
        ("mediaflow.work.videos", "seq:S:1:videos"),
        ("mediaflow.work.all", "seq:S:4:all"),
    ]
    assert bells.bell("all").is_set()
    assert bells.bell("videos").is_set()
    assert not bells.bell("deep").is_set()


def test_a_refused_copy_puts_its_message_and_the_rest_back_in_order() -> None:
    log: list[tuple[str, Any]] = []
    js = FakeJetStream(log, refuse="mediaflow.work.videos")
    router, bells = _router(js)
    messages = [
        FakeMsg(log, 1, _message("photos/a.jpg")),
        FakeMsg(log, 2, _message("videos/b.mp4")),
        FakeMsg(log, 3, _message("photos/c.jpg")),
    ]
    with pytest.raises(CopyFailed, match="maximum messages"):
        asyncio.run(router.route(messages))
    assert log == [("ack", 1), ("nak", 2), ("nak", 3)]
    # The second message is not acked; its copy stored for "all" rang that
    # Workflow's doorbell (it is a duplicate when the message comes back, below),
    # the refused one for "videos" did not.
    assert [uid for uid in ("all", "videos") if bells.bell(uid).is_set()] == ["all"]


def _count(result: str) -> float:
    return REGISTRY.get_sample_value("mediaflow_router_events_total", {"result": result}) or 0.0


def _copies() -> float:
    return REGISTRY.get_sample_value("mediaflow_routed_copies_total") or 0.0


def test_an_event_delivered_by_both_minio_targets_is_stored_and_rung_once() -> None:
    """MinIO's fast and durable targets publish the same record (same sequencer)
    as two messages: the second one's copies are duplicates, acked without
    waking any dispatcher, and counted as a duplicate, not as routed."""
    log: list[tuple[str, Any]] = []
    js = FakeJetStream(log)
    router, bells = _router(js)
    event = _sequenced("videos/a.mp4", "1879A2B3C4D5E6F7")
    routed, duplicate = _count("routed"), _count("duplicate")
    copies = _copies()
    asyncio.run(router.route([FakeMsg(log, 1, event)]))
    assert [uid for uid in ("all", "videos", "deep") if bells.bell(uid).is_set()] == [
        "all",
        "videos",
    ]
    for uid in ("all", "videos"):
        bells.bell(uid).clear()  # the dispatchers took their copies
    asyncio.run(router.route([FakeMsg(log, 2, event)]))  # the other target's delivery
    assert log == [("ack", 1), ("ack", 2)]
    assert [subject for subject, _ in js.published] == [
        "mediaflow.work.all",
        "mediaflow.work.videos",
    ]
    assert not any(bells.bell(uid).is_set() for uid in ("all", "videos", "deep"))
    assert (_count("routed"), _count("duplicate")) == (routed + 1, duplicate + 1)
    assert _copies() == copies + 2


def test_a_copy_stored_before_a_refusal_is_rung_and_not_again_when_it_returns() -> None:
    """A message whose second copy was refused comes back; its first copy is a
    duplicate then, so its Workflow must have been woken the first time."""
    log: list[tuple[str, Any]] = []
    js = FakeJetStream(log, refuse="mediaflow.work.videos")
    router, bells = _router(js)
    event = _sequenced("videos/a.mp4", "1879A2B3C4D5E6F7")
    with pytest.raises(CopyFailed):
        asyncio.run(router.route([FakeMsg(log, 1, event)]))
    assert bells.bell("all").is_set()
    assert not bells.bell("videos").is_set()
    bells.bell("all").clear()
    js.refuse = ""
    routed = _count("routed")
    asyncio.run(router.route([FakeMsg(log, 1, event)]))  # redelivered after the nak
    assert log == [("nak", 1), ("ack", 1)]
    assert bells.bell("videos").is_set()
    assert not bells.bell("all").is_set()
    assert _count("routed") == routed + 1, "one new copy: routed, not a duplicate"


class SlowJetStream(FakeJetStream):
    """Each PubAck takes a while; counts the publishes in flight at once."""

    in_flight = 0
    most = 0

    async def publish(self, subject: str, payload: bytes, **options: Any) -> PubAck:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return await super().publish(subject, payload, **options)
        finally:
            self.in_flight -= 1


def test_the_copies_of_a_batch_are_stored_concurrently_and_acked_in_order() -> None:
    """One PubAck round trip per event, one after another, capped a burst at the
    router's round trip time."""
    log: list[tuple[str, Any]] = []
    js = SlowJetStream(log)
    router, _ = _router(js)
    messages = [FakeMsg(log, seq, _message(f"photos/{seq}.jpg")) for seq in range(1, 41)]
    asyncio.run(router.route(messages))
    assert js.most > 10
    assert log == [("ack", seq) for seq in range(1, 41)]
    assert len(js.published) == 40
