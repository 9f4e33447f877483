"""Which sink gets which notification, and what names a sink's queue."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.notify.events import Notification
from mediaflow_operator.notify.nats_sink import reserved_subject
from mediaflow_operator.notify.sinks import route, sinks_for, wanted_kinds
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit


def spec(notifications: dict[str, Any]) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "trigger": {"bucket": "media"},
            "tasks": [{"name": "probe", "analysis": {}}],
            "notifications": notifications,
        }
    )


HOOK_A = {"url": "https://a.example.com/hook?token=s3cr3t"}
HOOK_B = {"url": "https://b.example.com/hook", "events": ["Accepted", "Failed"]}
QUEUE = {"subject": "media.done", "events": ["TaskFinished", "Succeeded"]}


def test_a_sinks_key_follows_what_it_is_not_where_it_stands() -> None:
    first = sinks_for(spec({"webhooks": [HOOK_A, HOOK_B], "queues": [QUEUE]}))
    reordered = sinks_for(spec({"webhooks": [HOOK_B, HOOK_A], "queues": [QUEUE]}))
    assert [s.label for s in first] == ["webhook-0", "webhook-1", "queue-0"]
    assert {s.key for s in first} == {s.key for s in reordered}
    assert first[0].key == reordered[1].key  # HOOK_A keeps its queue in the outbox
    assert len({s.key for s in first}) == 3
    # Another server is another sink, even for the same subject.
    other = sinks_for(spec({"queues": [{**QUEUE, "serverSecretRef": {"name": "far"}}]}))
    assert other[0].key != first[2].key
    assert other[0].target == "nats:media.done@far"


def test_the_target_shown_never_carries_the_query() -> None:
    (sink,) = sinks_for(spec({"webhooks": [HOOK_A]}))
    assert sink.target == "https://a.example.com/hook"
    assert "s3cr3t" not in sink.target


def test_each_sink_gets_only_the_kinds_it_asked_for_in_order() -> None:
    sinks = sinks_for(spec({"webhooks": [HOOK_A, HOOK_B], "queues": [QUEUE]}))
    notes = [
        Notification("Accepted", {"id": "1"}),
        Notification("TaskFinished", {"id": "2"}),
        Notification("Succeeded", {"id": "3"}),
    ]
    routed = [(s.label, n.id) for s, n in route(sinks, notes)]
    assert routed == [
        ("webhook-1", "1"),
        ("queue-0", "2"),
        ("webhook-0", "3"),  # default events: Succeeded, Failed
        ("queue-0", "3"),
    ]
    assert wanted_kinds(sinks) == {"Accepted", "TaskFinished", "Succeeded", "Failed"}
    assert wanted_kinds([]) == frozenset()


def test_the_same_url_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="webhook URLs must be unique"):
        spec({"webhooks": [HOOK_A, HOOK_A]})
    with pytest.raises(ValidationError, match="unique per server"):
        spec({"queues": [QUEUE, QUEUE]})


@pytest.mark.parametrize(
    ("subject", "refused"),
    [
        ("media.done", False),
        ("mediaflow", True),  # a prefix of the operator's own subjects
        ("mediaflow.events", True),
        ("mediaflow.events.x", True),
        ("mediaflow.outbox.abc.def", True),
        ("_INBOX.abc", True),
        ("mediaflowx.done", False),
    ],
)
def test_subjects_of_the_operator_itself_are_refused(subject: str, refused: bool) -> None:
    assert (reserved_subject(subject, Settings()) is not None) is refused
