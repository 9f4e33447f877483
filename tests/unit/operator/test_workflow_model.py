from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import WorkflowStatus

from .samples import spec

pytestmark = pytest.mark.unit


def test_minimal_spec_gets_documented_defaults() -> None:
    parsed = WorkflowSpec.model_validate(spec())
    assert parsed.suspend is False
    assert parsed.execution.max_concurrent_jobs == 4
    assert parsed.output_bucket == "uploads"
    assert parsed.output_prefix == "incoming/"


def test_output_location_overrides_the_trigger() -> None:
    parsed = WorkflowSpec.model_validate(spec(output={"bucket": "media", "prefix": ""}))
    assert parsed.output_bucket == "media"
    assert parsed.output_prefix == ""


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"tasks": []}, "tasks"),
        ({"tasks": [{"name": "a", "analysis": {}}, {"name": "a", "analysis": {}}]}, "unique"),
        ({"trigger": {"bucket": "Uploads"}}, "bucket"),
        ({"trigger": {"bucket": "a..b"}}, ".."),
        ({"trigger": {"bucket": "192.168.1.1"}}, "IP"),
        ({"trigger": {"bucket": "ok", "prefix": "in"}}, "bucket"),
        ({"trigger": {"bucket": "uploads", "prefix": "in"}}, "end with '/'"),
        ({"trigger": {"bucket": "uploads", "prefix": "/in/"}}, "start with '/'"),
        ({"execution": {"maxConcurrentJobs": 0}}, "maxConcurrentJobs"),
        ({"execution": {"maxConcurrentJobs": -1}}, "maxConcurrentJobs"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_specs_are_refused(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        WorkflowSpec.model_validate(spec(**overrides))
    assert needle in str(info.value)


# Execution fields the API server would refuse in the Job's pod: refused at
# apply by the CRD's CEL rules and by the models alike (tests/integration/
# operator/test_crd_validation.py runs the same table against the API server).
# (case, execution, the field the server names, words both messages contain)
EXECUTION_INVALID: list[tuple[str, dict[str, object], str, str]] = [
    (
        "cpu request above its limit",
        {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}},
        "spec.execution.resources.requests",
        "requests must be less than or equal to limits",
    ),
    (
        "memory request above its limit in other units",
        {"resources": {"requests": {"memory": "1100M"}, "limits": {"memory": "1Gi"}}},
        "spec.execution.resources.requests",
        "requests must be less than or equal to limits",
    ),
    (
        "toleration Exists with a value",
        {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]},
        "spec.execution.tolerations[0].value",
        "value must be empty when operator is Exists",
    ),
    (
        "toleration without key and not Exists",
        {"tolerations": [{"operator": "Equal", "value": "x"}]},
        "spec.execution.tolerations[0].operator",
        "operator must be Exists when key is empty",
    ),
    (
        "toleration key not a label key",
        {"tolerations": [{"key": "bad key!", "operator": "Exists"}]},
        "spec.execution.tolerations[0].key",
        "key must be a valid label key",
    ),
    (
        "tolerationSeconds without NoExecute",
        {"tolerations": [{"key": "a", "operator": "Exists", "tolerationSeconds": 5}]},
        "spec.execution.tolerations[0].effect",
        "effect must be NoExecute when tolerationSeconds is set",
    ),
    (
        "nodeSelector key not a label key",
        {"nodeSelector": {"disk type": "ssd"}},
        "spec.execution.nodeSelector",
        "nodeSelector keys must be valid label keys",
    ),
    (
        "nodeSelector key with an empty prefix",
        {"nodeSelector": {"/disk": "ssd"}},
        "spec.execution.nodeSelector",
        "nodeSelector keys must be valid label keys",
    ),
    (
        "nodeSelector value not a label value",
        {"nodeSelector": {"disk": "fast ssd"}},
        "spec.execution.nodeSelector.disk",
        "",
    ),
]
EXECUTION_VALID: list[dict[str, object]] = [
    {
        "resources": {
            "requests": {"cpu": "500m", "memory": "1G"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        }
    },
    {"resources": {"requests": {"cpu": "2"}, "limits": {"memory": "1Gi"}}},
    {"tolerations": [{"operator": "Exists"}, {"key": "example.com/gpu", "operator": "Exists"}]},
    {"tolerations": [{"key": "a", "value": "b", "effect": "NoExecute", "tolerationSeconds": 5}]},
    {"nodeSelector": {"kubernetes.io/os": "linux", "disk": "", "tier": "a.b-c_d"}},
]


@pytest.mark.parametrize(
    ("case", "execution", "field", "needle"),
    EXECUTION_INVALID,
    ids=[c[0] for c in EXECUTION_INVALID],
)
def test_execution_the_api_server_would_refuse_is_refused(
    case: str, execution: dict[str, object], field: str, needle: str
) -> None:
    with pytest.raises(ValidationError) as info:
        WorkflowSpec.model_validate(spec(execution=execution))
    assert needle in str(info.value), case


@pytest.mark.parametrize("execution", EXECUTION_VALID)
def test_valid_execution_is_accepted(execution: dict[str, object]) -> None:
    WorkflowSpec.model_validate(spec(execution=execution))


def test_status_round_trips_with_aliases() -> None:
    status = WorkflowStatus.model_validate(
        {"observedGeneration": 3, "received": 5, "countedJobs": ["u1"], "lastFailures": []}
    )
    assert status.model_dump(by_alias=True, exclude_none=True)["countedJobs"] == ["u1"]
