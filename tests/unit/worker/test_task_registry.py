"""The worker's table of task types agrees with the contract's: every task
type has exactly one handler, for the contract's model of that type."""

from __future__ import annotations

import pytest

from mediaflow_api.tasks import TASK_MODELS, TASK_TYPES, TaskSpec
from mediaflow_worker.errors import SpecError
from mediaflow_worker.tasks.registry import HANDLERS, prepare

pytestmark = pytest.mark.unit

# One valid example per task type (a new type without one fails below).
EXAMPLES = {
    "transcode": {"preset": "h264-360p"},
    "snapshot": {"count": 2},
    "sprite": {},
    "animatedImage": {},
    "adaptiveStreaming": {"ladder": "mobile-ladder"},
    "analysis": {"loudness": True},
    "quality": {"failOn": ["black"]},
    "cover": {"count": 2, "images": {"format": "webp", "width": 320}},
    "ocr": {"intervalSeconds": 2},
    "speech": {"keywords": [{"name": "k", "words": ["hello"]}]},
    "moderation": {"block": [{"name": "banned", "words": ["forbidden"]}]},
}


def test_every_contract_task_type_has_exactly_one_handler_for_its_model() -> None:
    assert list(TASK_MODELS) == TASK_TYPES
    assert sorted(HANDLERS) == sorted(TASK_MODELS)
    for kind, model in TASK_MODELS.items():
        assert HANDLERS[kind].model is model, kind


def test_the_task_types_are_the_task_entrys_fields() -> None:
    fields = {info.alias or name for name, info in TaskSpec.model_fields.items()} - {
        "name",
        "template",
        "watermarkTemplate",
        "output",
    }
    assert fields == set(TASK_MODELS)


@pytest.mark.parametrize("kind", TASK_TYPES)
def test_each_task_type_is_prepared_by_its_own_handler(kind: str) -> None:
    task = TaskSpec.model_validate({"name": "t", kind: EXAMPLES[kind]})
    assert task.kind == kind
    assert isinstance(task.type_spec, TASK_MODELS[kind])
    prepared = prepare(task)
    assert prepared.handler is HANDLERS[kind]
    assert isinstance(prepared.required_encoders(), set)


def test_a_spec_that_cannot_be_resolved_names_its_task() -> None:
    # A preset's codec cannot go in a container chosen elsewhere: caught by
    # validation, so force it past the model to reach the resolver.
    task = TaskSpec.model_validate({"name": "web", "transcode": {"preset": "vp9-720p"}})
    assert task.transcode is not None
    task.transcode.container = "mov"
    with pytest.raises(SpecError, match=r"^task 'web': transcode: video codec 'vp9'"):
        prepare(task)
