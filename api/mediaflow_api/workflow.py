"""The ``Workflow`` custom resource (``mediaflow.dev/v1alpha1``): spec and status.

These models are the single source of truth of ``crds/mediaflow.dev_workflows.yaml``
(``python -m mediaflow_api.crd`` regenerates it; a unit test proves the committed
file is current). The operator converts a Workflow's ``spec`` into
``WorkflowSpec`` once, at the edge, and works with typed values from there on.

Rules that a JSON schema cannot state live twice, as pydantic validators (for the
operator and tests) and as ``x-kubernetes-validations`` CEL rules (for the API
server), exactly like ``mediaflow_api.tasks`` does for the tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mediaflow_api.tasks import (
    BUCKET_PATTERN,
    TASKS_LIST_VALIDATIONS,
    TASKS_MAX_ITEMS,
    TaskSpec,
    check_unique_task_names,
)

GROUP = "mediaflow.dev"
VERSION = "v1alpha1"
KIND = "Workflow"
PLURAL = "workflows"
SINGULAR = "workflow"
SHORT_NAMES = ["mfw"]
CATEGORIES = ["mediaflow"]

# The condition types written by the operator, one per reconcile step plus Ready.
CONDITION_READY = "Ready"
CONDITION_STORAGE = "StorageReady"
CONDITION_QUEUE = "QueueReady"
CONDITION_NOTIFICATION = "NotificationReady"
CONDITION_TYPES = (CONDITION_READY, CONDITION_STORAGE, CONDITION_QUEUE, CONDITION_NOTIFICATION)

# How many entries the bounded status lists keep.
LAST_FAILURES_MAX = 10
LEDGER_MAX = 256

_PREFIX_MAX = 512


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    rule_dict = {"rule": rule, "message": message}
    if field_path:
        rule_dict["fieldPath"] = field_path
    return rule_dict


# S3 bucket names: the pattern says the alphabet and length; CEL adds what a
# regular expression without look-ahead says badly.
BUCKET_VALIDATIONS = [
    _cel("!self.contains('..')", "bucket names must not contain '..'"),
    _cel(
        "!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",
        "bucket names must not look like an IP address",
    ),
    _cel(
        "!self.contains('.-') && !self.contains('-.')", "bucket names must not contain '.-' or '-.'"
    ),
]
BucketName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=63, pattern=BUCKET_PATTERN),
    Field(json_schema_extra={"x-kubernetes-validations": BUCKET_VALIDATIONS}),
]
# A key prefix ("directory"): empty, or ending in '/', never starting with '/'.
PREFIX_VALIDATIONS = [
    _cel("self == '' || self.endsWith('/')", "a prefix must be empty or end with '/'"),
    _cel("!self.startsWith('/')", "a prefix must not start with '/'"),
    _cel("!self.contains('//')", "a prefix must not contain '//'"),
    _cel("!self.contains('.mediaflow/')", "a prefix must not contain '.mediaflow/' (output dirs)"),
]
KeyPrefix = Annotated[
    str,
    StringConstraints(max_length=_PREFIX_MAX),
    Field(json_schema_extra={"x-kubernetes-validations": PREFIX_VALIDATIONS}),
]
Suffix = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[^/*?]+$")]
DnsLabel = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
]
DnsSubdomain = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
# A Kubernetes resource quantity ("500m", "2", "1Gi", "1.5G").
Quantity = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$"
    ),
]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


def _prefix_ok(value: str) -> str:
    if value and not value.endswith("/"):
        raise ValueError("a prefix must be empty or end with '/'")
    if value.startswith("/") or "//" in value:
        raise ValueError("a prefix must not start with '/' or contain '//'")
    if ".mediaflow/" in value:
        raise ValueError("a prefix must not contain '.mediaflow/' (output dirs)")
    return value


def _bucket_ok(value: str | None) -> str | None:
    if value is None:
        return value
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("bucket names must not contain '..', '.-' or '-.'")
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        raise ValueError("bucket names must not look like an IP address")
    return value


class _Model(BaseModel):
    """camelCase aliases, unknown keys rejected (the API server prunes or rejects them too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- spec ------------------------------------------------------------------


class Trigger(_Model):
    """Where uploads start processing."""

    bucket: BucketName = Field(description="Bucket whose uploads trigger the Workflow.")
    prefix: KeyPrefix = Field(
        default="",
        description=(
            "Trigger directory: only keys starting with this prefix are processed. Empty means "
            "the whole bucket; otherwise it must end with '/' (e.g. 'incoming/')."
        ),
    )
    suffixes: list[Suffix] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Only keys ending with one of these suffixes are processed, compared "
            "case-insensitively (e.g. '.mp4' also matches 'CLIP.MP4'). Empty means every key."
        ),
    )
    process_existing: bool = Field(
        default=False,
        alias="processExisting",
        description=(
            "Also process objects that were already in the trigger directory when the Workflow "
            "became active (picked up by the periodic sweep). Default false: only new uploads."
        ),
    )

    _check_bucket = field_validator("bucket")(_bucket_ok)
    _check_prefix = field_validator("prefix")(_prefix_ok)


class Output(_Model):
    """Where results go. Each input gets its own directory:
    <prefix><key relative to trigger prefix>.mediaflow/ holding <task>/... and manifest.json."""

    bucket: BucketName | None = Field(
        default=None, description="Bucket for the outputs. Default: the trigger bucket."
    )
    prefix: KeyPrefix | None = Field(
        default=None,
        description=(
            "Output directory (empty or ending with '/'). Default: the trigger prefix. Outputs "
            "written into the trigger directory never trigger new work (they carry the "
            "mediaflow-output user metadata)."
        ),
    )

    _check_bucket = field_validator("bucket")(_bucket_ok)

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str | None) -> str | None:
        return value if value is None else _prefix_ok(value)


class SecretReference(_Model):
    """A Secret in the Workflow's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret (same namespace as the Workflow).")


class Storage(_Model):
    """How workers reach the object store."""

    secret_ref: SecretReference | None = Field(
        default=None,
        alias="secretRef",
        description=(
            "Secret with the keys 'endpoint', 'accessKey', 'secretKey' (optional: 'region', "
            "'secure'). Default: the operator-wide default storage Secret. Its values reach the "
            "worker only through secretKeyRef environment variables."
        ),
    )


NotificationEvent = Literal["Succeeded", "Failed"]


def _all_events() -> list[NotificationEvent]:
    return ["Succeeded", "Failed"]


class WebhookNotification(_Model):
    """An HTTP POST of a JSON summary per finished object (delivered in a later release)."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="http(s) URL that receives a JSON POST per finished object.",
    )
    signing_secret_ref: SecretReference | None = Field(
        default=None,
        alias="signingSecretRef",
        description="Secret with key 'key': the body is signed with HMAC-SHA256 using it.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=_all_events,
        min_length=1,
        max_length=2,
        description="Which outcomes are sent: Succeeded, Failed.",
    )


class QueueNotification(_Model):
    """A message per finished object published to a NATS subject (delivered in a later release)."""

    subject: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="NATS subject on the operator's NATS server, e.g. 'media.done'.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=_all_events,
        min_length=1,
        max_length=2,
        description="Which outcomes are sent: Succeeded, Failed.",
    )


class Notifications(_Model):
    """Where to announce finished objects (Kubernetes Events are always recorded)."""

    webhooks: list[WebhookNotification] = Field(
        default_factory=list, max_length=8, description="HTTP endpoints to notify."
    )
    queues: list[QueueNotification] = Field(
        default_factory=list, max_length=8, description="NATS subjects to publish to."
    )


class ResourceRequirements(_Model):
    """Compute resources of the worker container."""

    requests: dict[ResourceName, Quantity] = Field(
        default_factory=dict,
        max_length=3,
        description="Requested resources, e.g. {cpu: '500m', memory: '1Gi'}.",
    )
    limits: dict[ResourceName, Quantity] = Field(
        default_factory=dict,
        max_length=3,
        description="Resource limits, e.g. {cpu: '2', memory: '4Gi'}.",
    )


class Toleration(_Model):
    """A toleration of the worker pod (same meaning as in a Pod spec)."""

    key: str | None = Field(default=None, max_length=316, description="Taint key to tolerate.")
    operator: Literal["Exists", "Equal"] = Field(
        default="Equal", description="Exists or Equal (to value)."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty means all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        alias="tolerationSeconds",
        ge=0,
        le=31_536_000,
        description="For NoExecute: how long the pod stays bound after the taint appears.",
    )


class Execution(_Model):
    """How the Jobs of this Workflow run."""

    max_concurrent_jobs: int = Field(
        default=4,
        alias="maxConcurrentJobs",
        ge=1,
        le=1000,
        description=(
            "At most this many unfinished Jobs exist for the Workflow at once; further uploads "
            "wait in the queue."
        ),
    )
    backoff_limit: int = Field(
        default=2,
        alias="backoffLimit",
        ge=0,
        le=10,
        description=(
            "Retries of a failed worker pod (transient failures). Bad input fails at once."
        ),
    )
    active_deadline_seconds: int = Field(
        default=3600,
        alias="activeDeadlineSeconds",
        ge=10,
        le=7 * 86400,
        description="Time limit per Job, all retries included.",
    )
    finished_job_retention_seconds: int = Field(
        default=600,
        alias="finishedJobRetentionSeconds",
        ge=0,
        le=7 * 86400,
        description=(
            "How long a finished Job (and its pod logs) is kept after its result was recorded "
            "in the status; then the operator deletes it."
        ),
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=r"^[^\s]+$",
        description="Worker image override. Default: the operator's configured worker image.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, alias="imagePullPolicy", description="Pull policy of the worker image."
    )
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        json_schema_extra={"default": {}},
        description="Resource requests and limits of the worker container.",
    )
    node_selector: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict,
        alias="nodeSelector",
        max_length=32,
        description="Node labels the worker pod must run on.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Tolerations of the worker pod."
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None, alias="priorityClassName", description="PriorityClass of the worker pod."
    )


class WorkflowSpec(_Model):
    """The desired behaviour: which uploads to process, how, and where results go."""

    suspend: bool = Field(
        default=False,
        description=(
            "Stop starting new work: the bucket rule and queue consumer are removed while "
            "suspended, in-flight Jobs finish. Uploads during suspension are not processed."
        ),
    )
    trigger: Trigger = Field(description="Which uploads start processing.")
    output: Output = Field(
        default_factory=Output,
        json_schema_extra={"default": {}},
        description="Where the outputs of each input are written.",
    )
    tasks: list[TaskSpec] = Field(
        min_length=1,
        max_length=TASKS_MAX_ITEMS,
        description=(
            "What to do with each input, in order. Each task has a unique name and exactly one "
            "task type. Jobs carry a snapshot: edits apply to new uploads only."
        ),
        json_schema_extra={
            "x-kubernetes-validations": TASKS_LIST_VALIDATIONS,
            # A map keyed by name: server-side apply merges tasks by name (GitOps).
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    notifications: Notifications = Field(
        default_factory=Notifications,
        json_schema_extra={"default": {}},
        description="Where to announce finished objects.",
    )
    storage: Storage = Field(
        default_factory=Storage,
        json_schema_extra={"default": {}},
        description="Object store credentials for the workers.",
    )
    execution: Execution = Field(
        default_factory=Execution,
        json_schema_extra={"default": {}},
        description="Concurrency, retries, limits and pod placement.",
    )

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        return check_unique_task_names(tasks)

    @property
    def output_bucket(self) -> str:
        return self.output.bucket or self.trigger.bucket

    @property
    def output_prefix(self) -> str:
        return self.trigger.prefix if self.output.prefix is None else self.output.prefix


# --- status ----------------------------------------------------------------


class Condition(_Model):
    """A kstatus-style condition."""

    type: str = Field(max_length=64, description="Ready, StorageReady, QueueReady, ...")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=128, description="CamelCase machine reason.")
    message: str = Field(default="", max_length=2048, description="Human-readable details.")
    last_transition_time: datetime | None = Field(
        default=None,
        alias="lastTransitionTime",
        description="When the status last changed.",
    )
    observed_generation: int | None = Field(
        default=None,
        alias="observedGeneration",
        description="The spec generation this condition was computed for.",
    )


class Failure(_Model):
    """One recent failed object."""

    object: str = Field(max_length=1100, description="The input, as <bucket>/<key>.")
    job: str = Field(default="", max_length=63, description="Name of the failed Job.")
    reason: str = Field(default="", max_length=128, description="Why it failed (CamelCase).")
    message: str = Field(
        default="", max_length=1024, description="Details from the worker's termination message."
    )
    time: datetime | None = Field(default=None, description="When the failure was recorded.")


class WorkflowStatus(_Model):
    """What the operator observed. received = skipped + running + succeeded + failed."""

    observed_generation: int | None = Field(
        default=None,
        alias="observedGeneration",
        description="The spec generation the conditions describe.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready plus one per reconcile step (StorageReady, QueueReady, ...).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    active_since: datetime | None = Field(
        default=None,
        alias="activeSince",
        description=(
            "When the Workflow last became active (created or resumed); the sweep ignores "
            "older objects unless trigger.processExisting."
        ),
    )
    received: int = Field(
        default=0, ge=0, description="Uploads seen in the trigger directory (not our outputs)."
    )
    skipped: int = Field(
        default=0, ge=0, description="Uploads not processed: suffix mismatch or folder markers."
    )
    running: int = Field(default=0, ge=0, description="Jobs created whose result is pending.")
    succeeded: int = Field(default=0, ge=0, description="Objects processed successfully.")
    failed: int = Field(default=0, ge=0, description="Objects whose Job failed.")
    last_failures: list[Failure] = Field(
        default_factory=list,
        alias="lastFailures",
        max_length=LAST_FAILURES_MAX,
        description="The most recent failures, newest first.",
    )
    counted_jobs: list[str] = Field(
        default_factory=list,
        alias="countedJobs",
        max_length=LEDGER_MAX,
        description=(
            "Internal: UIDs of the Jobs most recently counted; keeps counters exact when the "
            "operator restarts between recording a result and marking its Job."
        ),
    )
    counted_events: list[int] = Field(
        default_factory=list,
        alias="countedEvents",
        max_length=LEDGER_MAX,
        description=(
            "Internal: queue sequence numbers of the skipped events most recently counted "
            "(same purpose as countedJobs)."
        ),
    )
    consumer: str = Field(default="", max_length=128, description="JetStream consumer name.")
    swept_until: datetime | None = Field(
        default=None,
        alias="sweptUntil",
        description="Objects modified before this time were checked by the periodic sweep.",
    )
    last_dispatch_time: datetime | None = Field(
        default=None, alias="lastDispatchTime", description="When the last Job was created."
    )


class Workflow(_Model):
    """A Workflow object as stored by the API server (metadata kept loose)."""

    api_version: Literal["mediaflow.dev/v1alpha1"] = Field(
        default="mediaflow.dev/v1alpha1", alias="apiVersion", description="API version."
    )
    kind: Literal["Workflow"] = Field(default="Workflow", description="Kind.")
    spec: WorkflowSpec = Field(description="Desired behaviour.")
    status: WorkflowStatus = Field(default_factory=WorkflowStatus, description="Observed state.")


PRINTER_COLUMNS = [
    {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "Bucket", "type": "string", "jsonPath": ".spec.trigger.bucket"},
    {"name": "Prefix", "type": "string", "jsonPath": ".spec.trigger.prefix"},
    {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
    {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
    {"name": "Failed", "type": "integer", "jsonPath": ".status.failed"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
