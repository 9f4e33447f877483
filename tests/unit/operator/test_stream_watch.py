"""Pure parts of the operator-wide stream care: fill, alarm, orphan consumers,
and the operator's --help generated from the settings."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_operator import naming, queue, stream_watch
from mediaflow_operator.bucket_index import BucketShare
from mediaflow_operator.settings import Settings
from mediaflow_operator.stream_watch import Usage, alarm_message, orphan_consumers, owner_of

pytestmark = pytest.mark.unit


def _ours(namespace: str, name: str, uid: str) -> tuple[str, str]:
    description = queue.CONSUMER_DESCRIPTION.format(namespace=namespace, name=name)
    return naming.consumer_name(namespace, name, uid), description


def test_fill_is_the_fuller_of_bytes_and_messages() -> None:
    assert Usage(50, 10, 100, 1000).ratio == 0.5
    assert Usage(10, 900, 100, 1000).ratio == 0.9
    assert Usage(10, 900, -1, -1).ratio == 0.0  # no limits: never "full"


def test_alarm_above_the_threshold_only() -> None:
    assert alarm_message("S", Usage(79, 0, 100, 1000), 0.8) == ""
    message = alarm_message("S", Usage(85, 0, 100, 1000), 0.8)
    assert "85%" in message
    assert "stream S" in message


def test_owner_is_read_from_our_description_only() -> None:
    assert owner_of("Workflow ns/wf") == ("ns", "wf")
    assert owner_of("someone else's consumer") is None
    assert owner_of("") is None


def test_orphans_are_our_consumers_without_a_live_workflow() -> None:
    live = _ours("ns", "alive", "uid-1")
    dead = _ours("ns", "gone", "uid-2")
    same_name_new_uid = _ours("ns", "alive", "uid-0")  # a deleted predecessor
    foreign = ("wf_not_ours", "made by hand")
    other_tool = ("audit", "Workflow x/y")
    consumers = [live, dead, same_name_new_uid, foreign, other_tool]
    assert orphan_consumers(consumers, {live[0]}) == sorted([dead[0], same_name_new_uid[0]])


def test_a_namespaced_operator_leaves_other_namespaces_alone() -> None:
    mine = _ours("team-a", "gone", "uid-1")
    theirs = _ours("team-b", "theirs", "uid-2")
    assert orphan_consumers([mine, theirs], set(), ("team-a",)) == [mine[0]]


def test_backlogs_are_read_for_our_consumers_from_one_listing() -> None:
    mine = _ours("team-a", "videos", "uid-1")
    theirs = _ours("team-b", "photos", "uid-2")
    listed = [
        (*mine, 7),
        (*theirs, 3),
        ("audit", "Workflow x/y", 9),  # not ours by name
        (queue.router_durable(()), "mediaflow router", 11),
    ]
    assert stream_watch.backlogs(listed) == {("team-a", "videos"): 7, ("team-b", "photos"): 3}
    assert stream_watch.backlogs(listed, ("team-a",)) == {("team-a", "videos"): 7}


def test_stream_limits_discard_new_events() -> None:
    limits = queue.StreamLimits(max_age_seconds=60, max_bytes=1 << 20, max_msgs=1000)
    config = queue.stream_config("S", ["subj"], limits)
    assert (config.max_bytes, config.max_msgs) == (1 << 20, 1000)
    assert str(getattr(config.discard, "value", config.discard)) == "new"
    assert not queue.needs_update(config, config)
    smaller = queue.stream_config("S", ["subj"], queue.StreamLimits(60, 1 << 20, 999))
    assert queue.needs_update(config, smaller)
    # Always an explicit consumer limit: nats-server caps a stream without one at 1,000.
    assert config.max_consumers == Settings().nats_stream_max_consumers == 10_000
    more = queue.stream_config("S", ["subj"], queue.StreamLimits(60, 1 << 20, 1000, 20_000))
    assert queue.needs_update(config, more)


def test_help_lists_every_setting_from_the_model() -> None:
    from mediaflow_operator.__main__ import parser

    text = parser().format_help()
    for name in Settings.model_fields:
        assert f"MEDIAFLOW_{name.upper()}" in text
    assert "MEDIAFLOW_NATS_STREAM_MAX_BYTES" in text


class ListingKube:
    def __init__(self, items: list[dict[str, Any]] | None) -> None:
        self.items = items

    async def list_workflows(self) -> list[dict[str, Any]]:
        if self.items is None:
            raise RuntimeError("API server away")
        return self.items


def _workflow(namespace: str, uid: str, prefix: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": uid, "uid": uid},
        "spec": {"trigger": {"bucket": "media", "prefix": prefix}},
    }


def test_workflows_outside_the_watched_namespaces_are_refreshed_from_one_list() -> None:
    kube = ListingKube([_workflow("watched", "a", "a/"), _workflow("elsewhere", "x", "x/")])
    rt: Any = SimpleNamespace(
        kube=kube, settings=Settings(namespaces=("watched",)), outside_shares={}
    )
    asyncio.run(stream_watch.refresh_outside_shares(rt))
    assert rt.outside_shares == {"media": [BucketShare("x", "x/", True)]}
    kube.items = None  # a failed list leaves the last one's shares in place
    with pytest.raises(RuntimeError):
        asyncio.run(stream_watch.refresh_outside_shares(rt))
    assert rt.outside_shares == {"media": [BucketShare("x", "x/", True)]}
