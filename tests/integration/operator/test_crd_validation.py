"""The API server itself rejects invalid Workflows with a message naming the field."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.harness import wait_for
from tests.support.binaries import binary
from tests.support.workflow_api import create_workflow_object
from tests.unit.operator.test_workflow_model import EXECUTION_INVALID, EXECUTION_VALID

pytestmark = pytest.mark.integration

VALID: dict[str, Any] = {
    "trigger": {"bucket": "uploads", "prefix": "incoming/", "suffixes": [".mp4"]},
    "tasks": [{"name": "thumbs", "snapshot": {"times": ["1"]}}],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    node = spec
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return spec


_DELETE = object()

INVALID = [
    ("no tasks", _with("tasks", []), "spec.tasks"),
    ("tasks missing", _with("tasks", _DELETE), "spec.tasks"),
    ("trigger missing", _with("trigger", _DELETE), "spec.trigger"),
    ("bucket missing", _with("trigger.bucket", _DELETE), "spec.trigger.bucket"),
    (
        "two task types in one task",
        _with("tasks", [{"name": "x", "snapshot": {"times": ["1"]}, "analysis": {}}]),
        "spec.tasks[0]",
    ),
    ("task without a type", _with("tasks", [{"name": "x"}]), "spec.tasks[0]"),
    (
        "duplicate task names",
        _with("tasks", [{"name": "x", "analysis": {}}, {"name": "x", "analysis": {}}]),
        "spec.tasks",
    ),
    (
        "task name not a DNS label",
        _with("tasks", [{"name": "Bad_Name", "analysis": {}}]),
        "spec.tasks[0].name",
    ),
    ("upper-case bucket", _with("trigger.bucket", "Uploads"), "spec.trigger.bucket"),
    ("bucket too short", _with("trigger.bucket", "ab"), "spec.trigger.bucket"),
    ("bucket with ..", _with("trigger.bucket", "up..loads"), "spec.trigger.bucket"),
    ("bucket like an IP", _with("trigger.bucket", "10.0.0.1"), "spec.trigger.bucket"),
    ("prefix without slash", _with("trigger.prefix", "incoming"), "spec.trigger.prefix"),
    ("prefix with leading slash", _with("trigger.prefix", "/incoming/"), "spec.trigger.prefix"),
    ("output prefix without slash", _with("output", {"prefix": "out"}), "spec.output.prefix"),
    ("bad output bucket", _with("output", {"bucket": "-media"}), "spec.output.bucket"),
    ("suffix with slash", _with("trigger.suffixes", ["a/b"]), "spec.trigger.suffixes[0]"),
    (
        "negative concurrency",
        _with("execution", {"maxConcurrentJobs": -1}),
        "spec.execution.maxConcurrentJobs",
    ),
    (
        "zero concurrency",
        _with("execution", {"maxConcurrentJobs": 0}),
        "spec.execution.maxConcurrentJobs",
    ),
    (
        "too much concurrency",
        _with("execution", {"maxConcurrentJobs": 5000}),
        "spec.execution.maxConcurrentJobs",
    ),
    ("negative retries", _with("execution", {"backoffLimit": -1}), "spec.execution.backoffLimit"),
    (
        "tiny deadline",
        _with("execution", {"activeDeadlineSeconds": 1}),
        "spec.execution.activeDeadlineSeconds",
    ),
    (
        "bad pull policy",
        _with("execution", {"imagePullPolicy": "Sometimes"}),
        "spec.execution.imagePullPolicy",
    ),
    (
        "bad resource quantity",
        _with("execution", {"resources": {"limits": {"cpu": "lots"}}}),
        "spec.execution.resources.limits.cpu",
    ),
    (
        "unknown resource name",
        _with("execution", {"resources": {"limits": {"gpu": "1"}}}),
        "spec.execution.resources.limits",
    ),
    (
        "bad toleration operator",
        _with("execution", {"tolerations": [{"key": "a", "operator": "Maybe"}]}),
        "spec.execution.tolerations[0].operator",
    ),
    (
        "webhook without http(s)",
        _with("notifications", {"webhooks": [{"url": "ftp://example.com/x"}]}),
        "spec.notifications.webhooks[0].url",
    ),
    ("unknown spec field", _with("surprise", True), "spec.surprise"),
    ("suspend not a bool", _with("suspend", "yes"), "spec.suspend"),
]


def _create(api: client.ApiClient, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return create_workflow_object(api, namespace, spec)


def test_a_valid_workflow_is_accepted_and_defaulted(api: client.ApiClient, namespace: str) -> None:
    created = _create(api, namespace, copy.deepcopy(VALID))
    spec = created["spec"]
    assert spec["suspend"] is False
    assert spec["execution"]["maxConcurrentJobs"] == 4
    assert spec["trigger"]["processExisting"] is False


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_workflow_is_rejected_naming_the_field(
    api: client.ApiClient, namespace: str, case: str, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as info:
        _create(api, namespace, spec)
    assert info.value.status in (400, 422), info.value.body
    assert field in info.value.body, f"{case}: {info.value.body}"


@pytest.mark.parametrize(
    ("case", "execution", "field", "needle"),
    EXECUTION_INVALID,
    ids=[c[0] for c in EXECUTION_INVALID],
)
def test_execution_a_pod_cannot_have_is_rejected_at_apply_naming_the_field(
    api: client.ApiClient,
    namespace: str,
    case: str,
    execution: dict[str, Any],
    field: str,
    needle: str,
) -> None:
    """What the API server would refuse in the Job's pod (every Job create a
    422) is refused when the Workflow is applied, by the CRD's CEL rules."""
    with pytest.raises(ApiException) as info:
        _create(api, namespace, _with("execution", execution))
    assert info.value.status == 422, info.value.body
    assert field in info.value.body, f"{case}: {info.value.body}"
    assert needle in info.value.body, f"{case}: {info.value.body}"


@pytest.mark.parametrize("execution", EXECUTION_VALID)
def test_execution_a_pod_can_have_is_accepted(
    api: client.ApiClient, namespace: str, execution: dict[str, Any]
) -> None:
    _create(api, namespace, _with("execution", execution))


def test_kubectl_explains_the_api_and_prints_the_columns(
    api: client.ApiClient, namespace: str, kube_cluster: Any
) -> None:
    kubectl = [binary("kubectl"), "--kubeconfig", str(kube_cluster.kubeconfig)]

    def explained() -> str | None:
        out = subprocess.run(
            [*kubectl, "explain", "workflow.spec.trigger"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout if out.returncode == 0 and "processExisting" in out.stdout else None

    text = wait_for(explained, 60, "kubectl explain workflow.spec.trigger")
    assert "Trigger directory" in text
    assert "case-insensitively" in text
    _create(api, namespace, copy.deepcopy(VALID))
    table = subprocess.run(
        [*kubectl, "get", "mfw", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    header = table.splitlines()[0].split()
    assert header == [
        "NAME",
        "SUSPENDED",
        "BUCKET",
        "PREFIX",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "READY",
        "AGE",
    ]
    category = subprocess.run(
        [*kubectl, "get", "mediaflow", "-n", namespace, "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "workflow.mediaflow.dev/" in category
