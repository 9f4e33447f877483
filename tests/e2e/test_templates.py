"""Templates on the real stack: the API server validates them like inline
settings; a Workflow whose template is missing is not Ready, says which, and
keeps its uploads waiting; the template's creation makes it Ready and the
waiting upload becomes a Job carrying the resolved settings (a snapshot); the
templates show who uses them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from mediaflow_api.templates import CLUSTER_PLURAL, GROUP, PLURAL, VERSION
from mediaflow_operator import naming
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e


def _template_body(
    kind: str, name: str, spec: dict[str, Any], namespace: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": meta, "spec": spec}


def _create_template(stack: Stack, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    created = stack.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        stack.namespace,
        PLURAL,
        _template_body("MediaTemplate", name, spec, stack.namespace),
        field_validation="Strict",
    )
    return cast(dict[str, Any], created)


def _template(stack: Stack, name: str) -> dict[str, Any]:
    found = stack.custom.get_namespaced_custom_object(GROUP, VERSION, stack.namespace, PLURAL, name)
    return cast(dict[str, Any], found)


@pytest.fixture
def cluster_template(process_stack: Stack) -> Iterator[str]:
    """A ClusterMediaTemplate of this test (cluster-scoped: removed afterwards)."""
    name = f"thumbs-{uuid.uuid4().hex[:8]}"
    process_stack.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        CLUSTER_PLURAL,
        _template_body(
            "ClusterMediaTemplate", name, {"sprite": {"intervalSeconds": 2, "columns": 4}}
        ),
        field_validation="Strict",
    )
    yield name
    try:
        process_stack.custom.delete_cluster_custom_object(GROUP, VERSION, CLUSTER_PLURAL, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _job_tasks(job: Any) -> list[dict[str, Any]]:
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    tasks: list[dict[str, Any]] = json.loads(env["MEDIAFLOW_JOB"])["tasks"]
    return tasks


def _job_for(stack: Stack, uid: str, key: str) -> Any:
    for job in stack.jobs(uid):
        if job.metadata.annotations.get(naming.ANNOTATION_KEY) == key:
            return job
    return None


def _condition(stack: Stack, name: str, type_: str) -> dict[str, Any] | None:
    for cond in stack.status(name).get("conditions") or []:
        if cond.get("type") == type_:
            return cast(dict[str, Any], cond)
    return None


def test_the_api_server_validates_a_template_like_inline_settings(process_stack: Stack) -> None:
    stack = process_stack
    with pytest.raises(ApiException) as err:
        _create_template(stack, "bad-columns", {"sprite": {"columns": 99}})
    assert err.value.status == 422
    assert "spec.sprite.columns" in str(err.value.body)
    # A CEL rule of the task model (crf and bitrate exclude each other) applies as well.
    with pytest.raises(ApiException) as err:
        _create_template(stack, "bad-rate", {"transcode": {"video": {"crf": 20, "bitrate": "1M"}}})
    assert err.value.status == 422
    assert "mutually exclusive" in str(err.value.body)
    with pytest.raises(ApiException) as err:
        _create_template(stack, "two-kinds", {"sprite": {}, "analysis": {}})
    assert err.value.status == 422
    assert "set exactly one of" in str(err.value.body)


def test_a_missing_template_holds_the_uploads_until_it_exists(
    process_stack: Stack, cluster_template: str
) -> None:
    stack = process_stack
    bucket = stack.bucket("tpl")
    _create_template(stack, "marks", {"watermarks": [{"text": "(c) e2e"}]})
    wf = stack.create_workflow(
        "uses-templates",
        {
            "trigger": {"bucket": bucket, "prefix": "in/"},
            "tasks": [
                {
                    "name": "web",
                    "template": {"name": "web-small"},
                    "watermarkTemplate": {"name": "marks"},
                    "transcode": {"video": {"crf": 30}},
                },
                {
                    "name": "thumbs",
                    "template": {"name": cluster_template, "kind": "ClusterMediaTemplate"},
                },
            ],
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    uid = wf["metadata"]["uid"]

    def not_resolved() -> dict[str, Any] | None:
        cond = _condition(stack, "uses-templates", "TemplatesResolved")
        return cond if cond and cond["status"] == "False" else None

    cond = wait_for(
        not_resolved, 60, lambda: f"TemplatesResolved=False\n{stack.operator.diagnose()}"
    )
    assert cond["reason"] == "TemplateNotFound"
    assert f"task 'web': MediaTemplate {stack.namespace}/web-small not found" in cond["message"]
    ready = _condition(stack, "uses-templates", "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert "web-small" in ready["message"]

    # The cluster template already counts this Workflow among its users.
    def cluster_used_by() -> Any:
        found = stack.custom.get_cluster_custom_object(
            GROUP, VERSION, CLUSTER_PLURAL, cluster_template
        )
        return cast(dict[str, Any], found).get("status", {}).get("usedBy")

    wait_for(
        lambda: cluster_used_by() == [f"{stack.namespace}/uses-templates"],
        30,
        lambda: f"the cluster template's usedBy: {cluster_used_by()}",
    )

    # An upload now waits in the queue (the consumer is there, nothing is dispatched).
    assert stack.status("uses-templates").get("consumer")
    stack.upload(bucket, "in/early.mp4")

    _create_template(
        stack,
        "web-small",
        {"transcode": {"preset": "h264-480p", "video": {"height": 240, "preset": "ultrafast"}}},
    )
    stack.wait_ready("uses-templates")
    job = wait_for(
        lambda: _job_for(stack, uid, "in/early.mp4"),
        60,
        lambda: f"a Job for the waiting upload\n{stack.operator.diagnose()}",
    )
    web, thumbs = _job_tasks(job)
    assert "template" not in web
    assert "template" not in thumbs
    assert web["transcode"]["preset"] == "h264-480p"
    assert web["transcode"]["video"] == {"height": 240, "preset": "ultrafast", "crf": 30}
    assert [w["text"] for w in web["transcode"]["watermarks"]] == ["(c) e2e"]
    assert "watermarkTemplate" not in web
    assert thumbs["sprite"]["intervalSeconds"] == 2
    assert thumbs["sprite"]["columns"] == 4
    wait_for(
        lambda: (
            _template(stack, "web-small").get("status")
            == {"usedBy": [f"{stack.namespace}/uses-templates"], "workflowCount": 1}
        ),
        30,
        "the template's usedBy",
    )

    # Editing the template changes new Jobs only: the first one keeps its snapshot.
    stack.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        stack.namespace,
        PLURAL,
        "web-small",
        {"spec": {"transcode": {"video": {"height": 360}}}},
        _content_type="application/merge-patch+json",
    )
    stack.upload(bucket, "in/late.mp4")
    late = wait_for(lambda: _job_for(stack, uid, "in/late.mp4"), 60, "a Job for the late upload")
    assert _job_tasks(late)[0]["transcode"]["video"]["height"] == 360
    first = stack.batch.read_namespaced_job(job.metadata.name, stack.namespace)
    assert _job_tasks(first)[0]["transcode"]["video"]["height"] == 240

    # Deleting a template in use is allowed: the Workflow says it is missing again.
    stack.custom.delete_namespaced_custom_object(
        GROUP, VERSION, stack.namespace, PLURAL, "web-small"
    )
    wait_for(not_resolved, 60, "TemplatesResolved=False after the template's deletion")


def test_usage_follows_the_workflows(process_stack: Stack) -> None:
    stack = process_stack
    _create_template(stack, "meta", {"analysis": {"loudness": True}})
    bucket = stack.bucket("use")
    spec = {
        "trigger": {"bucket": bucket},
        "tasks": [{"name": "a", "template": {"name": "meta"}}],
    }
    stack.create_workflow("one", spec)
    stack.create_workflow("two", spec)
    ns = stack.namespace

    def usage() -> dict[str, Any]:
        return dict(_template(stack, "meta").get("status") or {})

    wait_for(
        lambda: usage() == {"usedBy": [f"{ns}/one", f"{ns}/two"], "workflowCount": 2},
        30,
        lambda: f"two users: {usage()}",
    )
    stack.wait_ready("one")
    stack.patch_spec("two", {"tasks": [{"name": "a", "analysis": {}}]})
    wait_for(
        lambda: usage() == {"usedBy": [f"{ns}/one"], "workflowCount": 1},
        30,
        lambda: f"one user after the edit: {usage()}",
    )
    stack.delete("one")
    wait_for(
        lambda: usage() == {"usedBy": [], "workflowCount": 0},
        60,
        lambda: f"no user after the deletion: {usage()}",
    )
