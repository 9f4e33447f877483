from __future__ import annotations

import re

import pytest

from mediaflow_operator import naming

pytestmark = pytest.mark.unit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_job_name_is_deterministic_and_a_short_dns_label() -> None:
    a = naming.job_name("ns", "videos", "b", "in/x.mp4", '"etag1"')
    assert a == naming.job_name("ns", "videos", "b", "in/x.mp4", "etag1")
    assert len(a) <= 63
    assert DNS_LABEL.match(a)


@pytest.mark.parametrize(
    "change",
    [
        {"namespace": "other"},
        {"workflow": "other"},
        {"bucket": "c"},
        {"key": "in/y.mp4"},
        {"etag": "etag2"},
        {"nonce": "manual-1"},
        {"workflow_uid": "uid-2"},
    ],
)
def test_any_identity_change_gives_another_name(change: dict[str, str]) -> None:
    base = {"namespace": "ns", "workflow": "videos", "bucket": "b", "key": "in/x.mp4", "etag": "e1"}
    nonce = change.pop("nonce", "")
    assert naming.job_name(**base) != naming.job_name(**{**base, **change}, nonce=nonce)


def test_long_and_odd_workflow_names_still_fit() -> None:
    name = naming.job_name("ns", "A" * 200 + ".Weird_Name", "b", "k" * 900, "e")
    assert len(name) <= 63
    assert DNS_LABEL.match(name)


def test_version_id_is_used_when_there_is_no_etag() -> None:
    assert naming.job_name("n", "w", "b", "k", "", "v1") != naming.job_name(
        "n", "w", "b", "k", "", "v2"
    )


def test_consumer_names_are_valid_for_nats() -> None:
    name = naming.consumer_name("my.ns", "wf.with.dots", "1234-5678-90ab-cdef")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert name != naming.consumer_name("my.ns", "wf.with.dots", "ffff-5678-90ab-cdef")


def test_rule_ids_mark_ours() -> None:
    assert naming.is_our_rule(naming.rule_id("incoming/"))
    assert not naming.is_our_rule("other-tool")
    assert not naming.is_our_rule(None)
