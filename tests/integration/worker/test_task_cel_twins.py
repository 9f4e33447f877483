"""The API server, with the CRD generated from the task models, accepts and
rejects the same task specs as the pydantic models do: every cross-field
rule's CEL twin is real, and the server's defaults agree with the models'."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mediaflow_api.tasks import TaskSpec
from mediaflow_api.workflow import WorkflowSpec
from tests.support.workflow_api import create_workflow_object
from tests.unit.worker.test_adaptive_streaming_plan import STREAMING_INVALID, STREAMING_VALID
from tests.unit.worker.test_cover import COVER_INVALID, COVER_VALID
from tests.unit.worker.test_encoder_spec import ENCODER_INVALID, ENCODER_VALID
from tests.unit.worker.test_moderation import MODERATION_INVALID, MODERATION_VALID
from tests.unit.worker.test_output_names import INVALID_SPECS, VALID_SPECS
from tests.unit.worker.test_task_spec import INVALID as SPEC_INVALID
from tests.unit.worker.test_task_spec import VALID as SPEC_VALID

pytestmark = pytest.mark.integration

VALID = SPEC_VALID + ENCODER_VALID + COVER_VALID + MODERATION_VALID
INVALID = SPEC_INVALID + ENCODER_INVALID + COVER_INVALID + MODERATION_INVALID

# Where the pydantic message and the API server's differ in wording, the
# words the server's message must contain.
SERVER_NEEDLE = {
    "more than 100%": "cannot exceed 100%",
    # The pattern refuses these templates; the server quotes the pattern.
    "fileName": "spec.tasks[0].output.fileName",
    "prefix": "spec.tasks[0].output.prefix",
    "surprise": "surprise",
    # A list of x-kubernetes-list-type set: the server's own duplicate check.
    "classifier.labels must be unique": "Duplicate value",
}


def _create(api: client.ApiClient, namespace: str, task: dict[str, Any]) -> dict[str, Any]:
    trigger = {"bucket": "uploads", "prefix": "incoming/"}
    return create_workflow_object(api, namespace, {"trigger": trigger, "tasks": [task]})


@pytest.mark.parametrize("raw", VALID + STREAMING_VALID, ids=lambda r: r["name"])
def test_server_accepts_valid_tasks_and_defaults_them_like_the_models(
    api: client.ApiClient, namespace: str, raw: dict[str, Any]
) -> None:
    created = _create(api, namespace, raw)
    stored = created["spec"]["tasks"][0]
    assert TaskSpec.model_validate(stored) == TaskSpec.model_validate(raw)


@pytest.mark.parametrize(
    ("raw", "needle"),
    INVALID + STREAMING_INVALID,
    ids=[n for _, n in INVALID + STREAMING_INVALID],
)
def test_server_rejects_what_the_models_reject(
    api: client.ApiClient, namespace: str, raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ApiException) as info:
        _create(api, namespace, raw)
    assert info.value.status in (400, 422), info.value.body
    assert SERVER_NEEDLE.get(needle, needle) in info.value.body


# A task that refers to a template: no task type, or one (the overrides), never two.
TEMPLATE_VALID: list[dict[str, Any]] = [
    {"name": "ref-only", "template": {"name": "hd-h264"}},
    {
        "name": "ref-override",
        "template": {"name": "thumbs", "kind": "ClusterMediaTemplate"},
        "sprite": {"columns": 3},
    },
    {
        "name": "ref-marks",
        "watermarkTemplate": {"name": "brand-marks", "kind": "ClusterMediaTemplate"},
        "transcode": {"preset": "h264-720p"},
    },
]
TEMPLATE_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": "a", "template": {"name": "x"}, "sprite": {}, "analysis": {}}, "at most one"),
    ({"name": "a", "template": {"name": "x", "kind": "Template"}}, "kind"),
    ({"name": "a", "template": {"name": "Bad_Name"}}, "name"),
]


@pytest.mark.parametrize("raw", TEMPLATE_VALID, ids=lambda r: r["name"])
def test_server_accepts_template_references_like_the_models(
    api: client.ApiClient, namespace: str, raw: dict[str, Any]
) -> None:
    stored = TaskSpec.model_validate(_create(api, namespace, raw)["spec"]["tasks"][0])
    expected = TaskSpec.model_validate(raw)
    assert (stored.template, stored.watermark_template) == (
        expected.template,
        expected.watermark_template,
    )


@pytest.mark.parametrize(("raw", "needle"), TEMPLATE_INVALID, ids=[n for _, n in TEMPLATE_INVALID])
def test_server_rejects_template_references_the_models_reject(
    api: client.ApiClient, namespace: str, raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError, match=needle):
        TaskSpec.model_validate(raw)
    with pytest.raises(ApiException) as info:
        _create(api, namespace, raw)
    assert info.value.status in (400, 422), info.value.body
    assert needle in info.value.body


@pytest.mark.parametrize(("case", "spec"), VALID_SPECS, ids=[c for c, _ in VALID_SPECS])
def test_server_accepts_custom_output_names_outside_the_trigger(
    api: client.ApiClient, namespace: str, case: str, spec: dict[str, Any]
) -> None:
    created = create_workflow_object(api, namespace, copy.deepcopy(spec))
    assert WorkflowSpec.model_validate(created["spec"]).tasks[0].output is not None


@pytest.mark.parametrize(
    ("case", "spec", "needle"), INVALID_SPECS, ids=[c for c, _, _ in INVALID_SPECS]
)
def test_server_refuses_looping_or_colliding_output_names_like_the_models(
    api: client.ApiClient, namespace: str, case: str, spec: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ApiException) as info:
        create_workflow_object(api, namespace, copy.deepcopy(spec))
    assert info.value.status in (400, 422), info.value.body
    assert needle in info.value.body
