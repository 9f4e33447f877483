from __future__ import annotations

import json
from typing import Any

import pytest

from mediaflow_api.job import (
    EXIT_BAD_INPUT,
    JOB_ENV,
    STORAGE_ENV,
    STORAGE_ENV_OPTIONAL,
    TERMINATION_MESSAGE_PATH,
    ObjectRef,
    WorkerJob,
    WorkflowRef,
)
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import naming
from mediaflow_operator.job_render import render_job

from .samples import spec

pytestmark = pytest.mark.unit

IDENT = WorkflowRef(namespace="media", name="videos", uid="uid-1", generation=7)


def _render(**spec_overrides: object) -> dict[str, Any]:
    return render_job(
        workflow=IDENT,
        spec=WorkflowSpec.model_validate(spec(**spec_overrides)),
        obj=ObjectRef(bucket="uploads", key="incoming/a b/ç.mp4", etag="abc", size=10),
        job_name="mf-videos-123",
        storage_secret="store",
        image="worker:1",
        command=("mediaflow-worker", "job"),
    )


def _env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_job_carries_a_snapshot_of_the_tasks_and_the_output_dir() -> None:
    job = _render()
    worker_job = WorkerJob.model_validate_json(_env(job)[JOB_ENV]["value"])
    assert [t.name for t in worker_job.tasks] == ["thumbs"]
    assert worker_job.input.key == "incoming/a b/ç.mp4"
    assert worker_job.output.bucket == "uploads"
    assert worker_job.output.dir == "incoming/a b/ç.mp4.mediaflow/media/videos/"
    assert worker_job.workflow.generation == 7
    assert "null" not in _env(job)[JOB_ENV]["value"]


def test_credentials_only_by_secret_key_ref() -> None:
    env = _env(_render())
    for name, key in STORAGE_ENV.items():
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "store", "key": key}
    for name, key in STORAGE_ENV_OPTIONAL.items():
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "store",
            "key": key,
            "optional": True,
        }
    assert all("value" not in e for n, e in env.items() if n.startswith("MEDIAFLOW_S3_"))


def test_pod_is_locked_down_and_follows_the_exit_code_contract() -> None:
    job = _render()
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["command"] == ["mediaflow-worker", "job"]
    assert container["terminationMessagePath"] == TERMINATION_MESSAGE_PATH
    assert _env(job)["MEDIAFLOW_TERMINATION_MESSAGE_PATH"]["value"] == TERMINATION_MESSAGE_PATH
    assert _env(job)["MEDIAFLOW_SCRATCH_DIR"]["value"] == "/scratch"
    assert container["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == [EXIT_BAD_INPUT]
    assert rules[1] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }


def test_execution_settings_reach_the_job() -> None:
    job = _render(
        execution={
            "backoffLimit": 5,
            "activeDeadlineSeconds": 600,
            "image": "custom:2",
            "resources": {"limits": {"cpu": "2"}},
            "nodeSelector": {"pool": "media"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "priorityClassName": "batch-low",
        }
    )
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "custom:2"
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "2"}}
    assert pod["nodeSelector"] == {"pool": "media"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["priorityClassName"] == "batch-low"
    assert json.loads(_env(job)[JOB_ENV]["value"])["limits"]["timeoutSeconds"] == 600


def test_owner_labels_and_annotations_tie_the_job_to_its_workflow_and_object() -> None:
    meta = _render()["metadata"]
    assert meta["ownerReferences"][0] == {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "Workflow",
        "name": "videos",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert meta["labels"][naming.LABEL_WORKFLOW_UID] == "uid-1"
    assert meta["labels"][naming.LABEL_MANAGED_BY] == naming.MANAGED_BY
    assert meta["annotations"][naming.ANNOTATION_KEY] == "incoming/a b/ç.mp4"
    assert meta["annotations"][naming.ANNOTATION_GENERATION] == "7"


def test_output_defaults_follow_the_trigger_and_can_be_moved() -> None:
    job = _render(output={"bucket": "media", "prefix": "processed/"})
    worker_job = WorkerJob.model_validate_json(_env(job)[JOB_ENV]["value"])
    assert worker_job.output.bucket == "media"
    assert worker_job.output.dir == "processed/a b/ç.mp4.mediaflow/media/videos/"
