"""Which worker image a Job runs (lean or worker-ml) and the administrator's
models volume of ML Jobs: ``job_render.worker_image_for`` and
``models_volume_mount``, pure, and the settings that feed them.

The task types that need the ML packages are those whose model sets
``needs_ml``; ``analysis`` (a lean task) stands in for one here by patching
``ML_TASK_TYPES``, so these tests do not depend on which ML task types exist."""

from __future__ import annotations

from typing import Any

import pytest

from mediaflow_api.job import MODELS_DIR, MODELS_DIR_ENV, ObjectRef, WorkflowRef
from mediaflow_api.tasks import TaskSpec
from mediaflow_api.tasks import spec as task_spec
from mediaflow_api.templates import TemplateKey, resolve_tasks
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.job_render import models_volume_mount, plan_job, worker_image_for
from mediaflow_operator.settings import Settings, parse_volume_source

from .samples import spec

pytestmark = pytest.mark.unit

IDENT = WorkflowRef(namespace="media", name="videos", uid="uid-1", generation=7)
LEAN, ML = "worker:1", "worker-ml:1"
PVC = {"persistentVolumeClaim": {"claimName": "models"}}
LEAN_TASK = {"name": "thumbs", "snapshot": {"times": ["1"]}}
ML_TASK = {"name": "inspect", "analysis": {}}  # ML by the fixture below


@pytest.fixture(autouse=True)
def analysis_needs_ml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_spec, "ML_TASK_TYPES", frozenset({"analysis"}))


def _spec(*tasks: dict[str, Any], **overrides: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate(spec(tasks=list(tasks), **overrides))


def _job(workflow: WorkflowSpec, **kwargs: Any) -> dict[str, Any]:
    return plan_job(
        IDENT,
        workflow,
        ObjectRef(bucket="uploads", key="incoming/a.mp4", etag="abc", size=10),
        image=LEAN,
        command=("mediaflow-worker", "job"),
        trigger="event",
        **kwargs,
    ).manifest


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def test_lean_tasks_run_the_lean_image() -> None:
    assert worker_image_for(_spec(LEAN_TASK), image=LEAN, ml_image=ML) == LEAN


def test_one_ml_task_among_others_makes_the_job_an_ml_job() -> None:
    assert worker_image_for(_spec(LEAN_TASK, ML_TASK), image=LEAN, ml_image=ML) == ML
    job = _job(_spec(LEAN_TASK, ML_TASK), ml_image=ML)
    assert _pod(job)["containers"][0]["image"] == ML


def test_the_workflows_own_image_wins_for_ml_tasks_too() -> None:
    workflow = _spec(ML_TASK, execution={"image": "mine:3"})
    assert worker_image_for(workflow, image=LEAN, ml_image=ML) == "mine:3"
    assert _pod(_job(workflow, ml_image=ML))["containers"][0]["image"] == "mine:3"


def test_without_an_ml_image_setting_the_default_image_runs_everything() -> None:
    # Callers that predate the setting (and a blank setting) keep one image.
    assert worker_image_for(_spec(ML_TASK), image=LEAN, ml_image="") == LEAN


def test_a_task_typed_by_its_template_picks_the_image_once_resolved() -> None:
    workflow = _spec({"name": "inspect", "template": {"name": "checks"}})
    store: dict[TemplateKey, dict[str, Any]] = {
        TemplateKey("MediaTemplate", "media", "checks"): {"analysis": {}}
    }
    lookup = store.get
    resolved = workflow.model_copy(update={"tasks": resolve_tasks(workflow.tasks, "media", lookup)})
    assert worker_image_for(resolved, image=LEAN, ml_image=ML) == ML
    # Unresolved, the task has no type: planning refuses rather than guess.
    with pytest.raises(ValueError, match="not resolved"):
        worker_image_for(workflow, image=LEAN, ml_image=ML)


def test_the_models_volume_is_mounted_read_only_in_ml_jobs() -> None:
    volumes, mounts, env = models_volume_mount(_spec(ML_TASK), PVC)
    assert volumes == [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}]
    assert mounts == [{"name": "models", "mountPath": MODELS_DIR, "readOnly": True}]
    assert env == [{"name": MODELS_DIR_ENV, "value": MODELS_DIR}]
    pod = _pod(_job(_spec(ML_TASK), ml_image=ML, models_volume=PVC))
    assert volumes[0] in pod["volumes"]
    container = pod["containers"][0]
    assert mounts[0] in container["volumeMounts"]
    assert env[0] in container["env"]
    # The scratch volume stays the only writable one.
    assert {"name": "scratch", "mountPath": "/scratch"} in container["volumeMounts"]


def test_lean_jobs_never_see_the_models_volume() -> None:
    assert models_volume_mount(_spec(LEAN_TASK), PVC) == ([], [], [])
    pod = _pod(_job(_spec(LEAN_TASK), ml_image=ML, models_volume=PVC))
    assert [v["name"] for v in pod["volumes"]] == ["scratch"]
    assert MODELS_DIR_ENV not in {e["name"] for e in pod["containers"][0]["env"]}


def test_no_models_volume_without_the_setting() -> None:
    assert models_volume_mount(_spec(ML_TASK), None) == ([], [], [])


def test_settings_read_the_ml_image_and_the_models_volume_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MEDIAFLOW_WORKER_ML_IMAGE": "registry.example/worker-ml:9",
            "MEDIAFLOW_MODELS_VOLUME": '{"configMap": {"name": "classifiers"}}',
        }
    )
    assert settings.worker_ml_image == "registry.example/worker-ml:9"
    assert settings.models_volume_source == {"configMap": {"name": "classifiers"}}
    defaults = Settings.from_env({})
    assert defaults.worker_ml_image.startswith("ghcr.io/mediaflow/worker-ml:")
    assert defaults.models_volume_source is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{not json", "not JSON"),
        ("[]", "exactly one key"),
        ('{"configMap": {"name": "a"}, "secret": {"secretName": "b"}}', "exactly one key"),
        ('{"name": {"x": 1}}', "not a volume source type"),
        ('{"persistentVolumeClaim": "models"}', "not a volume source type"),
    ],
)
def test_a_malformed_models_volume_is_refused_at_start(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_volume_source(text)
    with pytest.raises(ValueError, match=complaint):
        Settings.from_env({"MEDIAFLOW_MODELS_VOLUME": text})


def test_the_image_choice_reads_task_types_not_names() -> None:
    # A lean task named like an ML one stays lean.
    task = TaskSpec.model_validate({"name": "ocr", "snapshot": {"times": ["1"]}})
    assert not task_spec.needs_ml_image([task])
