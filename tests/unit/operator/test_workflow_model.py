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


def test_status_round_trips_with_aliases() -> None:
    status = WorkflowStatus.model_validate(
        {"observedGeneration": 3, "received": 5, "countedJobs": ["u1"], "lastFailures": []}
    )
    assert status.model_dump(by_alias=True, exclude_none=True)["countedJobs"] == ["u1"]
