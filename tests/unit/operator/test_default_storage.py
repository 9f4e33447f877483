"""Who may use the operator's default storage Secret (pure rules), and
releasing a namespace's copy from the watch-fed index of its users."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_operator import default_storage, naming
from mediaflow_operator.default_storage import copy_of, is_our_copy, may_share, uses_default_storage
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit


def test_only_the_secrets_own_namespace_by_default() -> None:
    assert may_share("mediaflow-system", "mediaflow-system", ())
    assert not may_share("team-a", "mediaflow-system", ())


def test_listed_namespaces_and_the_wildcard_share() -> None:
    assert may_share("media", "mediaflow-system", ("media", "video"))
    assert not may_share("mediaX", "mediaflow-system", ("media", "video"))
    assert may_share("anything", "mediaflow-system", ("*",))


def test_the_setting_is_read_space_separated() -> None:
    settings = Settings.from_env({"MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES": "media  video"})
    assert settings.default_storage_namespaces == ("media", "video")
    assert Settings.from_env({}).default_storage_namespaces == ()


def test_a_workflow_with_its_own_secret_or_being_deleted_does_not_use_the_default() -> None:
    assert uses_default_storage({"metadata": {}, "spec": {}})
    assert uses_default_storage({"metadata": {}, "spec": {"storage": {}}})
    assert not uses_default_storage(
        {"metadata": {}, "spec": {"storage": {"secretRef": {"name": "own"}}}}
    )
    assert not uses_default_storage(
        {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}
    )


def test_a_copy_is_marked_as_ours_and_only_such_a_secret_counts_as_one() -> None:
    source = {"type": "Opaque", "data": {"accessKey": "YQ=="}, "metadata": {"name": "s"}}
    copy = copy_of(source, "media", ("mediaflow-system", "mediaflow-storage"))
    assert copy["metadata"]["namespace"] == "media"
    assert copy["metadata"]["name"] == "mediaflow-default-storage"
    assert copy["data"] == {"accessKey": "YQ=="}
    assert is_our_copy(copy)
    foreign = {"metadata": {"name": "mediaflow-default-storage", "labels": {}}}
    assert not is_our_copy(foreign)
    labelled_only = {
        "metadata": {"labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY}, "annotations": {}}
    }
    assert not is_our_copy(labelled_only)
    assert not is_our_copy(None)


def test_the_index_holds_a_workflow_under_its_namespace_while_it_uses_the_default() -> None:
    meta = {"namespace": "media", "name": "vod", "uid": "u1"}
    assert default_storage.user_of({"metadata": meta, "spec": {}}) == {"media": "u1"}
    own = {"metadata": meta, "spec": {"storage": {"secretRef": {"name": "own"}}}}
    assert default_storage.user_of(own) == {}, "empty, so kopf drops its old entry"
    deleting = {"metadata": {**meta, "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}
    assert default_storage.user_of(deleting) == {}


class SecretsKube:
    def __init__(self, copy: dict[str, Any]) -> None:
        self.copy = copy
        self.deleted: list[tuple[str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.copy

    async def delete_secret(self, namespace: str, name: str) -> None:
        self.deleted.append((namespace, name))


def _release(users: dict[str, list[str]], leaving: str) -> list[tuple[str, str]]:
    source = {"type": "Opaque", "data": {}, "metadata": {"name": "s"}}
    kube = SecretsKube(copy_of(source, "media", ("mediaflow-system", "mediaflow-storage")))
    rt: Any = SimpleNamespace(
        kube=kube,
        settings=Settings(default_storage_secret="mediaflow-system/mediaflow-storage"),
    )
    asyncio.run(default_storage.release_unused(rt, "media", users, leaving_uid=leaving))
    return kube.deleted


def test_the_copy_stays_while_another_workflow_of_the_namespace_uses_it() -> None:
    assert _release({"media": ["u1", "u2"]}, leaving="u1") == []


def test_the_copy_goes_with_the_last_user_though_the_index_still_lists_it() -> None:
    assert _release({"media": ["u1"], "other": ["u9"]}, leaving="u1") == [
        ("media", "mediaflow-default-storage")
    ]
    assert _release({}, leaving="u1") == [("media", "mediaflow-default-storage")]
