"""The ``Workflow`` custom resource (``mediaflow.dev/v1alpha1``): names and spec.

These models, with the status in ``workflow_status`` and the field types in
``workflow_fields``, are the single source of truth of
``crds/mediaflow.dev_workflows.yaml`` (``python -m mediaflow_api.crd``
regenerates it; a unit test proves the committed file is current). The
operator converts a Workflow's ``spec`` into ``WorkflowSpec`` once, at the
edge, and works with typed values from there on.

Rules that a JSON schema cannot state live twice, as pydantic validators (for the
operator and tests) and as ``x-kubernetes-validations`` CEL rules (for the API
server), exactly like ``mediaflow_api.tasks`` does for the tasks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from mediaflow_api.tasks import (
    TASKS_LIST_VALIDATIONS,
    TASKS_MAX_ITEMS,
    TaskSpec,
    check_unique_task_names,
)
from mediaflow_api.workflow_fields import (
    ApiModel,
    BucketName,
    DnsSubdomain,
    KeyPrefix,
    LabelValue,
    Quantity,
    ResourceName,
    Suffix,
    bucket_ok,
    label_key_cel,
    label_key_ok,
    prefix_ok,
    quantity_value,
)
from mediaflow_api.workflow_status import WorkflowStatus

GROUP = "mediaflow.dev"
VERSION = "v1alpha1"
KIND = "Workflow"
PLURAL = "workflows"
SINGULAR = "workflow"
SHORT_NAMES = ["mfw"]
CATEGORIES = ["mediaflow"]


class Trigger(ApiModel):
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

    _check_bucket = field_validator("bucket")(bucket_ok)
    _check_prefix = field_validator("prefix")(prefix_ok)


class Output(ApiModel):
    """Where results go. Each input gets one directory per Workflow:
    <prefix><key relative to trigger prefix>.mediaflow/<namespace>/<workflow>/
    holding <task>/... and manifest.json."""

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

    _check_bucket = field_validator("bucket")(bucket_ok)

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str | None) -> str | None:
        return value if value is None else prefix_ok(value)


class SecretReference(ApiModel):
    """A Secret in the Workflow's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret (same namespace as the Workflow).")


class Storage(ApiModel):
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


def _rule(rule: str, message: str, field_path: str = "") -> dict[str, JsonValue]:
    entry: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


# What a sink may be told. The reference service's notify modes map onto these:
# "on finish" is the default [Succeeded, Failed]; "on every change" adds
# Accepted (the Job was created) and TaskFinished (one per task of the object).
NotificationEvent = Literal["Accepted", "Succeeded", "Failed", "Superseded", "TaskFinished"]
NOTIFICATION_EVENTS: tuple[NotificationEvent, ...] = (
    "Accepted",
    "Succeeded",
    "Failed",
    "Superseded",
    "TaskFinished",
)
CONTEXT_MAX_LENGTH = 1000


def _finish_events() -> list[NotificationEvent]:
    return ["Succeeded", "Failed"]


def _events_field(sink: str) -> list[NotificationEvent]:
    return Field(
        default_factory=_finish_events,
        min_length=1,
        max_length=len(NOTIFICATION_EVENTS),
        description=(
            f"Which events {sink}: Accepted (its Job was created), Succeeded, Failed, "
            "Superseded (the object changed while its Job ran; the newer version's Job "
            "reports), TaskFinished (one per task, before the object's final event). "
            "Default: Succeeded and Failed ('on finish')."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class WebhookNotification(ApiModel):
    """A signed HTTP POST of a CloudEvent per event (see docs/notifications.md)."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s/?#@]+(/[^\s]*)?$",
        description=(
            "http(s) URL that receives a CloudEvent per event. Addresses of the cluster's API "
            "server, loopback and link-local (cloud metadata) are refused unless the "
            "administrator allows them; redirects are followed only to the same host."
        ),
    )
    signing_secret_ref: SecretReference | None = Field(
        default=None,
        alias="signingSecretRef",
        description=(
            "Secret with key 'key': one or more whitespace-separated Standard Webhooks secrets "
            "('whsec_' + base64). Every delivery is signed with each of them (webhook-signature), "
            "so keys can be rotated without downtime. Without it deliveries are unsigned."
        ),
    )
    events: list[NotificationEvent] = _events_field("are posted")
    content_mode: Literal["structured", "binary"] = Field(
        default="structured",
        alias="contentMode",
        description=(
            "CloudEvents HTTP content mode: structured (the whole event as "
            "application/cloudevents+json) or binary (ce-* headers, the data as the body)."
        ),
    )
    timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=60,
        alias="timeoutSeconds",
        description="Time limit of one delivery attempt (connect, send, response).",
    )
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=20,
        alias="maxAttempts",
        description=(
            "Attempts per event before it is given up and reported (exponential backoff with "
            "jitter between attempts, from 1 s up to 5 min)."
        ),
    )
    ca_secret_ref: SecretReference | None = Field(
        default=None,
        alias="caSecretRef",
        description=(
            "Secret with key 'ca.crt': PEM certificates trusted for this https URL in addition "
            "to the system's. TLS verification cannot be turned off."
        ),
    )


class QueueNotification(ApiModel):
    """A CloudEvent per event published to a NATS subject (see docs/notifications.md)."""

    subject: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="NATS subject, e.g. 'media.done' (no wildcards).",
    )
    events: list[NotificationEvent] = _events_field("are published")
    server_secret_ref: SecretReference | None = Field(
        default=None,
        alias="serverSecretRef",
        description=(
            "Secret naming another NATS server: key 'url' (nats:// or tls://), optional 'user' "
            "and 'password', or 'token', and 'ca.crt'. Default: the operator's own NATS."
        ),
    )


class Notifications(ApiModel):
    """Where to announce what happens to each object (Kubernetes Events are always recorded)."""

    context: str = Field(
        default="",
        max_length=CONTEXT_MAX_LENGTH,
        description=(
            "Pass-through context carried unchanged in every notification (data.context), "
            "e.g. an application's own JSON. An object's user metadata 'mediaflow-context' "
            "(x-amz-meta-mediaflow-context) overrides it for that object."
        ),
    )
    webhooks: list[WebhookNotification] = Field(
        default_factory=list,
        max_length=8,
        description="HTTP endpoints to notify (each URL once).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "self.all(w, self.exists_one(v, v.url == w.url))", "webhook URLs must be unique"
                )
            ]
        },
    )
    queues: list[QueueNotification] = Field(
        default_factory=list,
        max_length=8,
        description="NATS subjects to publish to (each subject once per server).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "self.all(q, self.exists_one(r, r.subject == q.subject && "
                    "(has(r.serverSecretRef) ? r.serverSecretRef.name : '') == "
                    "(has(q.serverSecretRef) ? q.serverSecretRef.name : '')))",
                    "queue subjects must be unique per server",
                )
            ]
        },
    )

    @field_validator("webhooks")
    @classmethod
    def _unique_urls(cls, hooks: list[WebhookNotification]) -> list[WebhookNotification]:
        urls = [h.url for h in hooks]
        for url in urls:
            if urls.count(url) > 1:
                raise ValueError(f"webhook URLs must be unique: {url!r} appears twice")
        return hooks

    @field_validator("queues")
    @classmethod
    def _unique_subjects(cls, queues: list[QueueNotification]) -> list[QueueNotification]:
        seen: set[tuple[str, str]] = set()
        for q in queues:
            key = (q.subject, q.server_secret_ref.name if q.server_secret_ref else "")
            if key in seen:
                raise ValueError(f"queue subjects must be unique per server: {q.subject!r}")
            seen.add(key)
        return queues


class ResourceRequirements(ApiModel):
    """Compute resources of the worker container."""

    # The API server refuses a pod whose request exceeds its limit; say so at apply.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "!has(self.requests) || !has(self.limits) || self.requests.all(r, "
                    "!(r in self.limits) || !isQuantity(self.requests[r]) || "
                    "!isQuantity(self.limits[r]) || "
                    "quantity(self.requests[r]).compareTo(quantity(self.limits[r])) <= 0)",
                    "requests must be less than or equal to limits",
                    ".requests",
                )
            ]
        }
    )

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

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceRequirements:
        for name, request in self.requests.items():
            limit = self.limits.get(name)
            if limit is not None and quantity_value(request) > quantity_value(limit):
                raise ValueError(
                    f"requests must be less than or equal to limits ({name}: {request} > {limit})"
                )
        return self


_TOLERATION_RULES: list[JsonValue] = [
    _rule(
        "!has(self.key) || self.key == '' || " + label_key_cel("self.key"),
        "key must be a valid label key",
        ".key",
    ),
    _rule(
        "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        "operator must be Exists when key is empty",
        ".operator",
    ),
    _rule(
        "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        "value must be empty when operator is Exists",
        ".value",
    ),
    _rule(
        "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "effect must be NoExecute when tolerationSeconds is set",
        ".effect",
    ),
]


class Toleration(ApiModel):
    """A toleration of the worker pod (same meaning as in a Pod spec)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _TOLERATION_RULES})

    key: str | None = Field(default=None, max_length=316, description="Taint key to tolerate.")
    operator: Literal["Exists", "Equal"] = Field(
        default="Equal", description="Exists or Equal (to value)."
    )
    value: LabelValue | None = Field(default=None, description="Taint value for Equal.")
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

    @model_validator(mode="after")
    def _as_a_pod_spec_allows(self) -> Toleration:
        # Twins of _TOLERATION_RULES: what the API server's Pod validation refuses.
        if self.key and not label_key_ok(self.key):
            raise ValueError(f"key must be a valid label key: {self.key!r}")
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("effect must be NoExecute when tolerationSeconds is set")
        return self


_NODE_SELECTOR_RULES: list[JsonValue] = [
    _rule("self.all(k, " + label_key_cel("k") + ")", "nodeSelector keys must be valid label keys")
]


class Execution(ApiModel):
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
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        alias="nodeSelector",
        max_length=32,
        description="Node labels the worker pod must run on.",
        json_schema_extra={"x-kubernetes-validations": _NODE_SELECTOR_RULES},
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Tolerations of the worker pod."
    )

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not label_key_ok(k)]
        if bad:
            raise ValueError(f"nodeSelector keys must be valid label keys: {bad[0]!r}")
        return value

    priority_class_name: DnsSubdomain | None = Field(
        default=None, alias="priorityClassName", description="PriorityClass of the worker pod."
    )


# Twin of ``WorkflowSpec._task_outputs_outside_the_trigger``: a task's custom
# output (``tasks[].output``) in the trigger bucket needs a prefix that is
# neither above nor below the trigger prefix (they differ at some character,
# so no key under it can start with the trigger prefix). Custom keys lie in no
# ``*.mediaflow/`` directory, so of the two loop guards (``matching.
# output_decision``) only the metadata marker would stop them: one guard is
# too few for a loop, and the trigger directory stays the uploaders' own.
_TASK_OUTPUT_BUCKET = (
    "(has(t.output.bucket) ? t.output.bucket : "
    "(has(self.output.bucket) ? self.output.bucket : self.trigger.bucket))"
)
_TASK_OUTPUT_PREFIX = "(has(t.output.prefix) ? t.output.prefix : '')"
_TRIGGER_PREFIX = "(has(self.trigger.prefix) ? self.trigger.prefix : '')"
_SPEC_RULES: list[JsonValue] = [
    _rule(
        f"self.tasks.all(t, !has(t.output) || {_TASK_OUTPUT_BUCKET} != self.trigger.bucket || "
        f"(!{_TASK_OUTPUT_PREFIX}.startsWith({_TRIGGER_PREFIX}) && "
        f"!{_TRIGGER_PREFIX}.startsWith({_TASK_OUTPUT_PREFIX})))",
        "a task's output (bucket, prefix) must lie outside the trigger directory: another "
        "bucket, or a prefix neither above nor below the trigger prefix",
        ".tasks",
    )
]


def task_output_overlaps_trigger(
    trigger_bucket: str, trigger_prefix: str, bucket: str, prefix: str
) -> bool:
    """Whether keys under ``bucket``/``prefix`` may lie in the trigger
    directory (pure; the rule of ``_SPEC_RULES``)."""
    if bucket != trigger_bucket:
        return False
    return prefix.startswith(trigger_prefix) or trigger_prefix.startswith(prefix)


class WorkflowSpec(ApiModel):
    """The desired behaviour: which uploads to process, how, and where results go."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

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

    @model_validator(mode="after")
    def _task_outputs_outside_the_trigger(self) -> WorkflowSpec:
        for task in self.tasks:
            out = task.output
            if out is not None and task_output_overlaps_trigger(
                self.trigger.bucket,
                self.trigger.prefix,
                out.bucket or self.output_bucket,
                out.prefix,
            ):
                raise ValueError(
                    f"task {task.name!r}: a task's output (bucket, prefix) must lie outside the "
                    "trigger directory: another bucket, or a prefix neither above nor below the "
                    f"trigger prefix {self.trigger.prefix!r}"
                )
        return self

    @property
    def output_bucket(self) -> str:
        return self.output.bucket or self.trigger.bucket

    @property
    def output_prefix(self) -> str:
        return self.trigger.prefix if self.output.prefix is None else self.output.prefix


class Workflow(ApiModel):
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
