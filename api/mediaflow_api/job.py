"""What the operator hands a worker Job, and what the worker reports back.

The operator renders one ``WorkerJob`` per input object as JSON into the
``MEDIAFLOW_JOB`` environment variable of the Job's container: a snapshot of
the Workflow's tasks at dispatch time, so editing a Workflow never changes work
in flight. Storage credentials are *not* part of it: they reach the container
through ``secretKeyRef`` env vars (``STORAGE_ENV``), so no secret ever appears
in a Job spec.

Exit codes are a contract with the Job's ``podFailurePolicy``:

- ``EXIT_OK`` (0): every task succeeded;
- ``EXIT_FAILED`` (1): something transient or unexpected failed; the Job retries;
- ``EXIT_BAD_INPUT`` (2): the input, or an asset the spec names (a watermark
  image, a font), is unusable (missing, corrupt, unsupported, rejected by the
  safety rules); retrying cannot help, so the Job fails at once.

A Job whose input was overwritten (or deleted) while it ran is *superseded*:
the newer version has its own Job, and this one leaves no trace (no outputs,
no manifest). It exits ``EXIT_OK`` with the termination summary's reason
``REASON_SUPERSEDED``. Exit 0, not a code of its own with a ``FailJob`` rule:
the Job then ends ``Complete`` (nothing went wrong, ``kubectl get jobs`` and
``kubectl wait --for=condition=complete`` agree), Kubernetes never retries it,
and no Job ``Failed`` condition reaches tools that alert on failed Jobs. The
operator tells it from a success by the summary (``TerminationSummary.superseded``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediaflow_api.tasks import SecretKeyRef, TaskSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

# Termination-summary reasons of exit 0. Only REASON_SUPERSEDED changes how the
# operator counts the Job.
REASON_SUCCEEDED = "Succeeded"
REASON_UP_TO_DATE = "UpToDate"
REASON_SUPERSEDED = "Superseded"

JOB_ENV = "MEDIAFLOW_JOB"
# The W3C trace context of the Job's span (the OpenTelemetry convention for a
# process's parent span): the worker logs it so its lines join the upload's trace.
TRACEPARENT_ENV = "TRACEPARENT"
# Env var name -> key in the storage Secret. The Secret holds the endpoint
# too, so one reference fully describes where the objects live.
STORAGE_ENV: dict[str, str] = {
    "MEDIAFLOW_S3_ENDPOINT": "endpoint",
    "MEDIAFLOW_S3_ACCESS_KEY": "accessKey",
    "MEDIAFLOW_S3_SECRET_KEY": "secretKey",
}
# Optional Secret keys (secretKeyRef with optional: true).
STORAGE_ENV_OPTIONAL: dict[str, str] = {
    "MEDIAFLOW_S3_REGION": "region",
    "MEDIAFLOW_S3_SECURE": "secure",
}
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_MESSAGE_LIMIT = 4096
# Where a Job's pod finds the Secret keys its tasks name (an HLS encryption
# key): the operator mounts exactly those keys, read-only, as
# SECRETS_DIR/<secret name>/<key>. The Secret's bytes never pass through the
# operator or the Job spec; ``mediaflow-worker run --secret-dir`` mirrors the
# layout locally.
SECRETS_DIR = "/var/run/mediaflow/secrets"
# Where the Job of an ML task finds the administrator's models volume (the
# operator's MEDIAFLOW_MODELS_VOLUME, read-only), and the variable that tells
# the worker so; set only when such a volume is configured.
MODELS_DIR = "/models"
MODELS_DIR_ENV = "MEDIAFLOW_MODELS_DIR"


def secret_key_refs(tasks: Sequence[TaskSpec]) -> list[SecretKeyRef]:
    """The Secret keys ``tasks`` read (each once, in task order)."""
    refs: list[SecretKeyRef] = []
    for task in tasks:
        streaming = task.adaptive_streaming
        if streaming is not None and streaming.encryption is not None:
            ref = streaming.encryption.key_secret
            if ref not in refs:
                refs.append(ref)
    return refs


def secret_key_path(root: str | PurePosixPath, ref: SecretKeyRef) -> PurePosixPath:
    """Where a mounted Secret key lies under ``root`` (``SECRETS_DIR`` in a Job)."""
    return PurePosixPath(root) / ref.name / ref.key


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ObjectRef(_Strict):
    """One object version in a bucket."""

    bucket: str
    key: str
    etag: str = ""
    version_id: str = Field(default="", alias="versionId")
    size: int | None = None


class OutputLocation(_Strict):
    """Where the outputs of one input go: every key starts with ``dir``, but
    those of tasks with custom names (``tasks[].output``), and the manifest is
    always ``dir`` + ``manifest.json``."""

    bucket: str
    dir: str = Field(description="Key prefix ending in '/', see metadata.output_dir_for")
    # The input key relative to it gives {inputDir} of custom output names
    # (``tasks[].output``); those keys need not start with ``dir``.
    trigger_prefix: str = Field(default="", alias="triggerPrefix")


class WorkflowRef(_Strict):
    """The Workflow a Job was made for; ``generation`` is the spec generation of
    the task snapshot (the operator's identity type for a Workflow, too)."""

    namespace: str
    name: str
    uid: str = ""
    generation: int = 0


class Limits(_Strict):
    """Safety limits applied by the worker to hostile input."""

    max_input_bytes: int = Field(default=20 * 1024**3, alias="maxInputBytes")
    max_output_bytes: int = Field(default=50 * 1024**3, alias="maxOutputBytes")
    max_duration_seconds: float = Field(default=6 * 3600, alias="maxDurationSeconds")
    max_pixels: int = Field(default=8192 * 8192, alias="maxPixels")
    timeout_seconds: int = Field(default=3600, alias="timeoutSeconds")


class WorkerJob(_Strict):
    """Everything one worker run needs besides storage credentials."""

    workflow: WorkflowRef
    input: ObjectRef
    output: OutputLocation
    tasks: list[TaskSpec] = Field(min_length=1)
    limits: Limits = Limits()
    force: bool = False

    @field_validator("tasks")
    @classmethod
    def _no_template_references(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        # The Job is a snapshot: the operator resolved every template before rendering it.
        for task in tasks:
            if task.refers_to_templates:
                raise ValueError(
                    f"task {task.name!r} still refers to a template: "
                    "a Job carries resolved settings only"
                )
        return tasks


class TerminationSummary(_Strict):
    """The short JSON the worker writes to the termination message file
    (must stay under TERMINATION_MESSAGE_LIMIT bytes)."""

    ok: bool
    exit_code: int = Field(alias="exitCode")
    reason: str = ""
    message: str = ""
    manifest: str = ""
    outputs: int = 0
    skipped: bool = False

    @property
    def superseded(self) -> bool:
        """The input changed while the Job ran: a newer version's Job owns the
        result, and this one is neither a success nor a failure."""
        return self.reason == REASON_SUPERSEDED
