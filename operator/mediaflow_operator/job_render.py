"""From one input object to its Kubernetes Job: name and manifest, pure functions.

``plan_job`` is the one path from an object to a Job, used by events, the
sweep and the manual trigger alike: the name is deterministic (``naming``), so
the same object version always plans the same Job.

The Job is the whole contract with the worker (``mediaflow_api.job``): a
``WorkerJob`` snapshot in ``MEDIAFLOW_JOB``, storage credentials only through
``secretKeyRef``, the exit-code contract in the ``podFailurePolicy``, and a
locked-down pod (non-root, read-only root filesystem, no service account token).
The upload's facts (``object_facts``: trace context, pass-through context,
correlation id) ride along as annotations, and the trace context as the
worker's ``TRACEPARENT`` environment variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mediaflow_api.job import (
    EXIT_BAD_INPUT,
    JOB_ENV,
    MODELS_DIR,
    MODELS_DIR_ENV,
    SECRETS_DIR,
    STORAGE_ENV,
    STORAGE_ENV_OPTIONAL,
    TERMINATION_MESSAGE_PATH,
    TRACEPARENT_ENV,
    Limits,
    ObjectRef,
    OutputLocation,
    WorkerJob,
    WorkflowRef,
    secret_key_refs,
)
from mediaflow_api.metadata import output_dir_for
from mediaflow_api.tasks import needs_ml_image
from mediaflow_api.workflow import GROUP, KIND, VERSION, WorkflowSpec
from mediaflow_operator import naming, object_facts, workflows

SCRATCH_DIR = "/scratch"
CONTAINER_NAME = "worker"
# Past the result's recording, the operator deletes finished Jobs itself; the
# TTL is a backstop for Jobs whose operator is gone for good.
TTL_BACKSTOP_SECONDS = 86400


Trigger = Literal["event", "sweep", "manual"]  # the Job's mediaflow.dev/trigger label


@dataclass(frozen=True)
class JobPlan:
    """The Job for one object version: its deterministic name and its manifest."""

    name: str
    manifest: dict[str, Any]


def job_name_for(workflow: WorkflowRef, obj: ObjectRef, *, nonce: str = "") -> str:
    """The deterministic Job name of ``obj`` for ``workflow`` (``nonce``: a forced re-run)."""
    return naming.job_name(
        workflow.namespace,
        workflow.name,
        obj.bucket,
        obj.key,
        obj.etag,
        obj.version_id,
        workflow_uid=workflow.uid,
        nonce=nonce,
    )


def plan_job(
    workflow: WorkflowRef,
    spec: WorkflowSpec,
    obj: ObjectRef,
    *,
    image: str,
    command: Sequence[str],
    trigger: Trigger,
    nonce: str = "",
    force: bool = False,
    user_metadata: Mapping[str, str] | None = None,
    ml_image: str = "",
    models_volume: Mapping[str, Any] | None = None,
) -> JobPlan:
    """The Job that processes ``obj`` with a snapshot of ``spec`` (``image`` and
    ``command``: the operator's worker defaults; ``ml_image``: its default for
    Jobs whose tasks need the ML packages, ``models_volume`` the volume source
    mounted at ``/models`` in those; ``user_metadata``: the object's, for its
    trace context, context and correlation id). ``spec`` is resolved (its
    templates): a task's type decides the image."""
    name = job_name_for(workflow, obj, nonce=nonce)
    manifest = render_job(
        workflow=workflow,
        spec=spec,
        obj=obj,
        job_name=name,
        storage_secret=workflows.storage_secret_name(spec),
        image=image,
        command=command,
        trigger=trigger,
        force=force,
        user_metadata=user_metadata,
        ml_image=ml_image,
        models_volume=models_volume,
    )
    return JobPlan(name=name, manifest=manifest)


def worker_image_for(spec: WorkflowSpec, *, image: str, ml_image: str) -> str:
    """The image of a Job of ``spec`` (resolved): the Workflow's own
    ``execution.image`` when it names one (its owner knows what it runs),
    else ``ml_image`` when a task needs the ML packages (and the operator has
    one), else the lean ``image``."""
    if spec.execution.image:
        return spec.execution.image
    if ml_image and needs_ml_image(spec.tasks):
        return ml_image
    return image


def models_volume_mount(
    spec: WorkflowSpec, source: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes, mounts and env that put the administrator's models volume
    (``source``: a Kubernetes volume source) read-only at ``MODELS_DIR`` in a
    Job whose tasks need the ML packages (the moderation task's classifiers);
    nothing for any other Job, or without a source. The mount is read-only
    whatever the source allows: a Job never changes the models it is lent."""
    if not source or not needs_ml_image(spec.tasks):
        return [], [], []
    volume = {"name": "models", **{k: dict(v) for k, v in source.items()}}
    mount = {"name": "models", "mountPath": MODELS_DIR, "readOnly": True}
    env = {"name": MODELS_DIR_ENV, "value": MODELS_DIR}
    return [volume], [mount], [env]


def render_job(
    *,
    workflow: WorkflowRef,
    spec: WorkflowSpec,
    obj: ObjectRef,
    job_name: str,
    storage_secret: str,
    image: str,
    command: Sequence[str],
    trigger: Trigger = "event",
    force: bool = False,
    user_metadata: Mapping[str, str] | None = None,
    ml_image: str = "",
    models_volume: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Job manifest (a dict ready for ``create_namespaced_job``)."""
    execution = spec.execution
    facts = object_facts.object_facts(
        user_metadata,
        workflow_context=spec.notifications.context,
        job_name=job_name,
        identity=f"{workflow.namespace}/{job_name}",
    )
    worker_job = WorkerJob(
        workflow=workflow,
        input=obj,
        output=OutputLocation(
            bucket=spec.output_bucket,
            dir=output_dir_for(
                obj.key,
                spec.trigger.prefix,
                spec.output_prefix,
                workflow.namespace,
                workflow.name,
            ),
            triggerPrefix=spec.trigger.prefix,
        ),
        tasks=spec.tasks,
        limits=Limits.model_validate({"timeoutSeconds": execution.active_deadline_seconds}),
        force=force,
    )
    env: list[dict[str, Any]] = [
        {"name": JOB_ENV, "value": worker_job.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": "MEDIAFLOW_SCRATCH_DIR", "value": SCRATCH_DIR},
        {"name": "TMPDIR", "value": SCRATCH_DIR},
        {"name": "MEDIAFLOW_TERMINATION_MESSAGE_PATH", "value": TERMINATION_MESSAGE_PATH},
        {"name": TRACEPARENT_ENV, "value": facts.traceparent},
    ]
    for env_name, secret_key in STORAGE_ENV.items():
        env.append(_secret_env(env_name, storage_secret, secret_key, optional=False))
    for env_name, secret_key in STORAGE_ENV_OPTIONAL.items():
        env.append(_secret_env(env_name, storage_secret, secret_key, optional=True))

    labels = {
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        naming.LABEL_COMPONENT: "worker",
        naming.LABEL_WORKFLOW: naming.label_value(workflow.name),
        naming.LABEL_WORKFLOW_UID: workflow.uid,
        naming.LABEL_TRIGGER: trigger,
    }
    annotations = {
        naming.ANNOTATION_BUCKET: obj.bucket,
        naming.ANNOTATION_KEY: obj.key,
        naming.ANNOTATION_ETAG: obj.etag,
        naming.ANNOTATION_GENERATION: str(workflow.generation),
        naming.ANNOTATION_TRACEPARENT: facts.traceparent,
        naming.ANNOTATION_CORRELATION_ID: facts.correlation_id,
    }
    if facts.context:
        annotations[naming.ANNOTATION_CONTEXT] = facts.context
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": worker_image_for(spec, image=image, ml_image=ml_image),
        "command": list(command),
        "env": env,
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_DIR}],
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if execution.image_pull_policy:
        container["imagePullPolicy"] = execution.image_pull_policy
    resources = {
        k: dict(v)
        for k, v in (
            ("requests", execution.resources.requests),
            ("limits", execution.resources.limits),
        )
        if v
    }
    if resources:
        container["resources"] = resources

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    volumes, mounts = secret_key_volumes(spec)
    pod_spec["volumes"] += volumes
    container["volumeMounts"] += mounts
    volumes, mounts, models_env = models_volume_mount(spec, models_volume)
    pod_spec["volumes"] += volumes
    container["volumeMounts"] += mounts
    env += models_env
    if execution.node_selector:
        pod_spec["nodeSelector"] = dict(execution.node_selector)
    if execution.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in execution.tolerations
        ]
    if execution.priority_class_name:
        pod_spec["priorityClassName"] = execution.priority_class_name

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": workflow.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": workflow.name,
                    "uid": workflow.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": execution.backoff_limit,
            "activeDeadlineSeconds": execution.active_deadline_seconds,
            "ttlSecondsAfterFinished": execution.finished_job_retention_seconds
            + TTL_BACKSTOP_SECONDS,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER_NAME,
                            "operator": "In",
                            "values": [EXIT_BAD_INPUT],
                        },
                    },
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {
                "metadata": {
                    "labels": {k: v for k, v in labels.items() if k != naming.LABEL_TRIGGER},
                    "annotations": {naming.ANNOTATION_KEY: obj.key},
                },
                "spec": pod_spec,
            },
        },
    }


def _secret_env(name: str, secret: str, key: str, *, optional: bool) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


# Mounted Secret keys are readable by the pod's group (fsGroup) only.
SECRET_FILE_MODE = 0o440


def secret_key_volumes(spec: WorkflowSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts that put exactly the Secret keys the tasks name (an
    HLS encryption key) at ``SECRETS_DIR/<secret>/<key>``, read-only.

    By reference only: the kubelet reads the Secret when it starts the pod, so
    neither the operator (which needs no RBAC on Secrets for this) nor the Job
    spec ever holds the key. ``optional``: a missing Secret or key does not
    leave the pod waiting for its volume until the deadline; the worker
    starts, finds no key file and fails at once with exit 2 naming the Secret
    and key (``AssetNotFound``)."""
    keys: dict[str, list[str]] = {}
    for ref in secret_key_refs(spec.tasks):
        keys.setdefault(ref.name, []).append(ref.key)
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, (name, names) in enumerate(keys.items()):
        volume = f"secret-key-{i}"
        volumes.append(
            {
                "name": volume,
                "secret": {
                    "secretName": name,
                    "items": [{"key": k, "path": k} for k in names],
                    "defaultMode": SECRET_FILE_MODE,
                    "optional": True,
                },
            }
        )
        mounts.append({"name": volume, "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True})
    return volumes, mounts
