"""The operator's side of templates: the catalog over kopf's indices, the
TemplatesResolved verdict, usage bookkeeping (``template_refs``, ``reconcile``)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from mediaflow_api.templates import TemplateKey
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import CONDITION_TEMPLATES
from mediaflow_operator import reconcile, workflows
from mediaflow_operator.kube import Kube
from mediaflow_operator.template_refs import (
    TemplateCatalog,
    TemplateEntry,
    TemplateUser,
    changed_references,
    entry_of,
    users_of,
    write_usage,
)

pytestmark = pytest.mark.unit

HD = TemplateKey("MediaTemplate", "media", "hd")
THUMBS = TemplateKey("ClusterMediaTemplate", "", "thumbs")


def _workflow(tasks: list[dict[str, Any]], name: str = "wf", uid: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "media", "name": name, "uid": uid, "generation": 1},
        "spec": {"trigger": {"bucket": "uploads"}, "tasks": tasks},
    }


def _template(kind: str, name: str, spec: dict[str, Any], rv: str = "1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv}
    if kind == "MediaTemplate":
        meta["namespace"] = "media"
    return {"kind": kind, "metadata": meta, "spec": spec}


def _catalog(*bodies: dict[str, Any], users: list[dict[str, Any]] = ()) -> TemplateCatalog:  # type: ignore[assignment]
    namespaced: dict[TemplateKey, list[TemplateEntry]] = {}
    cluster: dict[TemplateKey, list[TemplateEntry]] = {}
    for body in bodies:
        for key, entry in entry_of(body).items():
            (cluster if not key.namespace else namespaced).setdefault(key, []).append(entry)
    index: dict[TemplateKey, list[TemplateUser]] = {}
    for wf in users:
        for key, user in users_of(wf).items():
            index.setdefault(key, []).append(user)
    catalog = TemplateCatalog()
    catalog.bind(
        {
            "mediaflow_templates": namespaced,
            "mediaflow_cluster_templates": cluster,
            "mediaflow_template_users": index,
        }
    )
    return catalog


def test_the_catalog_finds_each_kind_in_its_own_index() -> None:
    catalog = _catalog(
        _template("MediaTemplate", "hd", {"transcode": {}}),
        _template("ClusterMediaTemplate", "thumbs", {"sprite": {}}, rv="7"),
    )
    assert catalog.lookup(HD) == {"transcode": {}}
    assert catalog.lookup(THUMBS) == {"sprite": {}}
    assert catalog.lookup(TemplateKey("MediaTemplate", "other", "hd")) is None
    spec = WorkflowSpec.model_validate(
        _workflow([{"name": "a", "template": {"name": "thumbs", "kind": "ClusterMediaTemplate"}}])[
            "spec"
        ]
    )
    assert catalog.fingerprint(spec, "media") == ("7",)


def test_the_resolved_spec_is_what_a_job_carries() -> None:
    catalog = _catalog(_template("MediaTemplate", "hd", {"transcode": {"preset": "h264-720p"}}))
    body = _workflow([{"name": "a", "template": {"name": "hd"}}])
    spec = workflows.resolved_spec(body, catalog)
    assert spec.tasks[0].template is None
    assert spec.tasks[0].transcode is not None
    assert spec.tasks[0].transcode.preset == "h264-720p"


def test_templates_resolved_names_the_missing_template() -> None:
    body = _workflow([{"name": "a", "template": {"name": "hd"}}])
    spec = workflows.parse_spec(body)
    step, resolved = reconcile.templates_step(body, spec, _catalog())
    assert resolved is None
    assert step is not None
    assert (step.ok, step.reason) == (False, "TemplateNotFound")
    assert "MediaTemplate media/hd not found" in step.message


def test_templates_resolved_is_only_written_for_workflows_with_references() -> None:
    body = _workflow([{"name": "a", "analysis": {}}])
    spec = workflows.parse_spec(body)
    step, resolved = reconcile.templates_step(body, spec, _catalog())
    assert step is None
    assert resolved == spec
    # One that used templates before: the condition says it no longer does.
    body["status"] = {"conditions": [{"type": CONDITION_TEMPLATES, "status": "False"}]}
    step, _ = reconcile.templates_step(body, spec, _catalog())
    assert step is not None
    assert (step.ok, step.reason) == (True, "NoReferences")


def test_a_not_resolved_workflow_does_not_dispatch() -> None:
    body = _workflow([{"name": "a", "template": {"name": "hd"}}])
    body["status"] = {
        "consumer": "c",
        "conditions": [
            {"type": "StorageReady", "status": "True"},
            {"type": CONDITION_TEMPLATES, "status": "False"},
        ],
    }
    assert not workflows.may_dispatch(body)
    body["status"]["conditions"][1]["status"] = "True"
    assert workflows.may_dispatch(body)


def test_usage_lists_each_workflow_once() -> None:
    wf1 = _workflow(
        [{"name": "a", "template": {"name": "hd"}}, {"name": "b", "template": {"name": "hd"}}]
    )
    wf2 = _workflow([{"name": "a", "template": {"name": "hd"}}], name="other", uid="u2")
    catalog = _catalog(_template("MediaTemplate", "hd", {"transcode": {}}), users=[wf1, wf2])
    assert catalog.usage(HD) == {"usedBy": ["media/other", "media/wf"], "workflowCount": 2}


def test_changed_references_are_the_templates_added_or_dropped() -> None:
    catalog = TemplateCatalog()
    assert changed_references(catalog, "u1", [HD], deleted=False) == {HD}
    assert changed_references(catalog, "u1", [HD], deleted=False) == set()
    assert changed_references(catalog, "u1", [THUMBS], deleted=False) == {HD, THUMBS}
    assert changed_references(catalog, "u1", [THUMBS], deleted=True) == {THUMBS}
    assert catalog.references == {}


class FakeKube:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []

    async def patch_template_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        self.patches.append((kind, namespace, name, status))


def test_usage_is_written_once_and_only_for_existing_templates() -> None:
    wf = _workflow([{"name": "a", "template": {"name": "hd"}}])
    catalog = _catalog(_template("MediaTemplate", "hd", {"transcode": {}}), users=[wf])
    fake = FakeKube()
    kube = cast(Kube, fake)
    asyncio.run(write_usage(kube, catalog, [HD, THUMBS]))
    asyncio.run(write_usage(kube, catalog, [HD]))
    assert fake.patches == [
        ("MediaTemplate", "media", "hd", {"usedBy": ["media/wf"], "workflowCount": 1})
    ]
    # A status the watch shows already right is not written again.
    fresh = TemplateCatalog(
        **{k: getattr(catalog, k) for k in ("templates", "cluster_templates", "users")}
    )
    asyncio.run(
        write_usage(kube, fresh, [HD], stored={HD: {"usedBy": ["media/wf"], "workflowCount": 1}})
    )
    assert len(fake.patches) == 1
