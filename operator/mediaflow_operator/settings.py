"""The operator's configuration: one typed class read from ``MEDIAFLOW_*`` env vars.

Every field is documented; ``Settings.from_env()`` is the only place that reads
the environment. Secret values (``s3_secret_key``) are ``SecretStr`` so they never
appear in logs or reprs.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mediaflow_api import __version__

ENV_PREFIX = "MEDIAFLOW_"


def parse_volume_source(text: str) -> dict[str, Any]:
    """A Kubernetes volume source from its JSON (``{"<type>": {...}}``: exactly
    one source type, as in a pod's ``volumes[]`` less ``name``); ValueError
    saying what is wrong. The API server checks the source's own fields when
    it admits the Job (the Workflow's JobTemplateValid dry run shows it)."""
    try:
        source = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(source, dict) or len(source) != 1:
        raise ValueError(
            "a volume source is a JSON object with exactly one key, the source type "
            f'(e.g. {{"persistentVolumeClaim": {{"claimName": "models"}}}}), not {text!r}'
        )
    kind, fields = next(iter(source.items()))
    if kind == "name" or not isinstance(fields, dict):
        raise ValueError(f"{kind!r} is not a volume source type with an object of fields")
    return source


class Settings(BaseModel):
    """Operator settings; each field is read from ``MEDIAFLOW_<FIELD NAME IN UPPER CASE>``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="NATS server URL (JetStream enabled)."
    )
    nats_stream: str = Field(
        default="MEDIAFLOW_EVENTS",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="JetStream stream that stores MinIO's events; created if missing.",
    )
    nats_subject: str = Field(
        default="mediaflow.events",
        description="Subject MinIO's NATS target publishes to (MINIO_NOTIFY_NATS_SUBJECT_<ID>).",
    )
    nats_work_subject_prefix: str = Field(
        default="mediaflow.work",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description=(
            "Subject prefix of the events the router copies for each Workflow "
            "(<prefix>.<workflow uid>), in the same stream."
        ),
    )
    nats_stream_max_age_seconds: int = Field(
        default=7 * 86400,
        ge=60,
        description="How long an event may wait in the stream for a busy Workflow.",
    )
    nats_stream_max_bytes: int = Field(
        default=1024**3,
        ge=1024 * 1024,
        description=(
            "Size limit of the stream. At the limit new events are refused (discard new): "
            "MinIO keeps them in its queue_dir and retries, nothing waiting is dropped."
        ),
    )
    nats_stream_max_msgs: int = Field(
        default=1_000_000, ge=1000, description="Message limit of the stream (discard new)."
    )
    nats_stream_max_consumers: int = Field(
        default=10_000,
        ge=16,
        description=(
            "Consumer limit of the stream: one per Workflow plus one router per operator. "
            "Set explicitly because nats-server caps a stream that sets none at 1,000 "
            "(jetstream.limits.default_max_consumers), which a large installation reaches."
        ),
    )
    stream_alarm_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description=(
            "Fill ratio of the stream (bytes or messages vs. their limit) above which the "
            "operator logs a warning and posts a StreamNearlyFull Warning Event on every "
            "dispatching Workflow."
        ),
    )
    stream_check_seconds: float = Field(
        default=5,
        ge=1,
        description=(
            "How often the operator checks the stream: re-creates it (and every Workflow's "
            "consumer) when it was deleted or replaced, and updates its fill metrics."
        ),
    )
    orphan_sweep_seconds: float = Field(
        default=120,
        ge=1,
        description=(
            "How often consumers on the stream whose Workflow no longer exists are deleted "
            "(one left behind by a Workflow deleted while NATS was unreachable); with "
            "namespaces set, also how often the Workflows outside them are listed (their "
            "prefixes stay in the rules of buckets shared with them)."
        ),
    )
    minio_notify_target_id: str = Field(
        default="MEDIAFLOW",
        description=(
            "ID of the NATS notification target configured on MinIO (the suffix of its "
            "MINIO_NOTIFY_NATS_*_<ID> variables; case-sensitive in the ARN)."
        ),
    )
    minio_notify_arn: str = Field(
        default="",
        description="Full ARN of the target; default arn:minio:sqs::<target id>:nats.",
    )
    minio_notify_fast_target_id: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_]*$",
        description=(
            "ID of a second NATS target on MinIO, on the same subject but without "
            "queue_dir, that MinIO publishes to at once; every bucket rule is set for "
            "both targets and the router stores one copy of the two deliveries. "
            "Empty: off (events wait for the durable target's 3 s replay tick)."
        ),
    )
    minio_notify_fast_arn: str = Field(
        default="",
        description=(
            "Full ARN of the fast target; default arn:minio:sqs::<fast target id>:nats "
            "when the fast target id is set."
        ),
    )
    s3_endpoint: str = Field(
        default="127.0.0.1:9000", description="host:port of MinIO, for the operator itself."
    )
    s3_access_key: str = Field(default="", description="Access key of the operator's MinIO user.")
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""), description="Secret key of the operator's MinIO user."
    )
    s3_secure: bool = Field(default=False, description="Use TLS to reach MinIO.")
    s3_region: str = Field(default="", description="Region passed to the S3 client (optional).")
    default_storage_secret: str = Field(
        default="",
        description=(
            "namespace/name of the Secret used by Workflows without spec.storage.secretRef. "
            "Workers read it by secretKeyRef, so it is copied into the Workflow's namespace "
            "(as mediaflow-default-storage) when it lives elsewhere, but only into the "
            "namespaces of default_storage_namespaces."
        ),
    )
    default_storage_namespaces: tuple[str, ...] = Field(
        default=(),
        description=(
            "Namespaces (space-separated; * for all) whose Workflows may use the default "
            "storage Secret, i.e. receive a copy of the operator's own MinIO credentials. "
            "Empty: only the Secret's own namespace. Elsewhere a Workflow needs "
            "spec.storage.secretRef."
        ),
    )
    worker_image: str = Field(
        default=f"ghcr.io/mediaflow/worker:{__version__}",
        description="Default worker image (tagged with this release's version).",
    )
    worker_ml_image: str = Field(
        default=f"ghcr.io/mediaflow/worker-ml:{__version__}",
        description=(
            "Worker image of the Jobs whose tasks need the ML packages and models "
            "(quality, cover, ocr, speech, moderation), unless the Workflow's "
            "spec.execution.image names one; the lean worker image runs every other Job."
        ),
    )
    models_volume: str = Field(
        default="",
        description=(
            "A Kubernetes volume source as JSON (e.g. "
            '{"persistentVolumeClaim": {"claimName": "models"}} or '
            '{"configMap": {"name": "classifiers"}}) mounted read-only at /models '
            "(MEDIAFLOW_MODELS_DIR) in the Jobs of ML tasks only: the administrator's "
            "classifiers that the moderation task may load. Empty: none."
        ),
    )
    worker_command: tuple[str, ...] = Field(
        default=("mediaflow-worker", "job"),
        description="Container command of worker Jobs (space-separated in the env var).",
    )
    sweep_interval_seconds: float = Field(
        default=300, ge=1, description="How often each Workflow's trigger prefix is swept."
    )
    sweep_grace_seconds: float = Field(
        default=60,
        ge=0,
        description="Objects younger than this are left to their events by the sweep.",
    )
    reconcile_interval_seconds: float = Field(
        default=120, ge=5, description="Periodic re-reconcile of rules and consumers."
    )
    kube_threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description=(
            "Threads (and pooled connections) for blocking Kubernetes API calls: at most "
            "this many requests in flight, whatever the number of Workflows."
        ),
    )
    storage_threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description=(
            "Threads (and pooled connections) for blocking MinIO calls (bucket checks, rules, "
            "sweep listings, manifests), apart from the Kubernetes ones: a slow MinIO cannot "
            "delay Job creation or status writes."
        ),
    )
    status_flush_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description=(
            "At most one counter write per Workflow per interval. Skipped events stay "
            "unacked until that write, so it must stay well below the 60 s AckWait."
        ),
    )
    poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Wait of a dispatcher between its steps while anything is in flight (a Job "
            "running or awaiting counting, a status write, a refusal); an idle one sleeps "
            "until a change wakes it, at most the fallback below."
        ),
    )
    dispatch_fallback_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest time an idle dispatcher sleeps and goes without asking its queue for "
            "events (the router wakes it for new ones; this catches events put back for later)."
        ),
    )
    peering_name: str = Field(
        default="", description="kopf peering name (needs kopf's peering CRD); empty: standalone."
    )
    peering_priority: int = Field(
        default=0,
        description=(
            "kopf peering priority: the active replica gets a higher one than the standby. "
            "Peers of equal priority all pause (kopf), so replicas must differ."
        ),
    )
    peering_lifetime_seconds: int = Field(
        default=60,
        ge=5,
        description=(
            "How long a peer counts as alive after its last keep-alive: a standby takes "
            "over this long after the active replica died without saying goodbye."
        ),
    )
    peering_handover_seconds: float = Field(
        default=20,
        ge=0,
        description=(
            "With peering, a dispatcher waits this long after it starts before it "
            "dispatches or reads the counters: the time a paused peer may take to stop "
            "its own dispatchers (daemon cancellation backoff + timeout)."
        ),
    )
    liveness_endpoint: str = Field(
        default="http://0.0.0.0:8080/healthz", description="kopf liveness probe URL; empty: off."
    )
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Port of the Prometheus /metrics; 0: off."
    )
    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces to watch (space-separated); empty: cluster-wide."
    )
    notify_stream: str = Field(
        default="MEDIAFLOW_NOTIFICATIONS",
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "JetStream stream (work queue) holding notifications until they are delivered: "
            "they survive operator restarts and receiver outages."
        ),
    )
    notify_subject_prefix: str = Field(
        default="mediaflow.outbox",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="Subject prefix of the notification stream (<prefix>.<workflow uid>.<sink>).",
    )
    notify_stream_max_age_seconds: int = Field(
        default=7 * 86400,
        ge=60,
        description="How long an undelivered notification is kept (a receiver down for longer).",
    )
    notify_stream_max_bytes: int = Field(
        default=256 * 1024**2,
        ge=1024 * 1024,
        description=(
            "Size limit of the notification stream. At the limit new notifications are refused "
            "(discard new): the finished Jobs wait uncounted until there is room again."
        ),
    )
    notify_duplicate_window_seconds: float = Field(
        default=600,
        ge=1,
        description=(
            "JetStream de-duplicates a notification published again with the same id within "
            "this window (an operator restarted between publishing and counting)."
        ),
    )
    notify_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Objects one sink delivers for at the same time (in order per object).",
    )
    notify_allowed_cidrs: tuple[str, ...] = Field(
        default=(),
        description=(
            "Networks (CIDRs, space-separated) notifications may reach although refused by "
            "default (loopback, link-local, the API server): the administrator's exceptions."
        ),
    )
    notify_denied_cidrs: tuple[str, ...] = Field(
        default=(),
        description=(
            "Networks (CIDRs, space-separated) notifications must never reach, in addition to "
            "loopback, link-local (cloud metadata) and the API server (e.g. node addresses)."
        ),
    )
    notify_failure_event_seconds: float = Field(
        default=300,
        ge=1,
        description=(
            "At most one NotificationFailed Event per sink per interval (the status always "
            "shows the last failure)."
        ),
    )

    @field_validator(
        "worker_command",
        "namespaces",
        "default_storage_namespaces",
        "notify_allowed_cidrs",
        "notify_denied_cidrs",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        return tuple(value.split()) if isinstance(value, str) else value

    @field_validator("notify_allowed_cidrs", "notify_denied_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network (CIDR): {cidr!r}") from exc
        return value

    @field_validator("models_volume")
    @classmethod
    def _volume_source(cls, value: str) -> str:
        if value.strip():
            parse_volume_source(value)
        return value.strip()

    @property
    def models_volume_source(self) -> dict[str, Any] | None:
        """The models volume's source (``models_volume`` parsed); None when unset."""
        return parse_volume_source(self.models_volume) if self.models_volume else None

    @model_validator(mode="after")
    def _subjects_apart(self) -> Settings:
        # The router reads MinIO's subject and writes the work subjects of the same
        # stream: a copy on a subject it reads would be routed again, forever.
        work = self.nats_work_subject_prefix
        for name, subject in (
            ("MEDIAFLOW_NATS_SUBJECT", self.nats_subject),
            ("MEDIAFLOW_NOTIFY_SUBJECT_PREFIX", self.notify_subject_prefix),
        ):
            if subject == work or subject.startswith(work + ".") or work.startswith(subject + "."):
                raise ValueError(
                    f"{name} ({subject!r}) overlaps MEDIAFLOW_NATS_WORK_SUBJECT_PREFIX ({work!r})"
                )
        return self

    @model_validator(mode="after")
    def _fast_target_apart(self) -> Settings:
        # MinIO sends an event once per target, however many rules name it: the
        # durable target named twice gives no fast path at all, only a second rule.
        if self.notify_fast_arn and self.notify_fast_arn == self.notify_arn:
            raise ValueError(
                f"the fast notification target ({self.notify_fast_arn!r}) is the durable "
                "one (MEDIAFLOW_MINIO_NOTIFY_TARGET_ID / _ARN): it needs a target of its own"
            )
        return self

    @property
    def notify_arn(self) -> str:
        """ARN of MinIO's durable NATS target (the one with ``queue_dir``)."""
        return self.minio_notify_arn or f"arn:minio:sqs::{self.minio_notify_target_id}:nats"

    @property
    def notify_fast_arn(self) -> str:
        """ARN of MinIO's fast NATS target (no ``queue_dir``); empty when off."""
        if self.minio_notify_fast_arn:
            return self.minio_notify_fast_arn
        if self.minio_notify_fast_target_id:
            return f"arn:minio:sqs::{self.minio_notify_fast_target_id}:nats"
        return ""

    @property
    def notify_arns(self) -> tuple[str, ...]:
        """Every ARN a bucket rule of ours is set for: the durable one first."""
        return (
            (self.notify_arn, self.notify_fast_arn) if self.notify_fast_arn else (self.notify_arn,)
        )

    @property
    def default_storage_secret_ref(self) -> tuple[str, str] | None:
        if not self.default_storage_secret:
            return None
        namespace, _, name = self.default_storage_secret.partition("/")
        if not name:
            raise ValueError("MEDIAFLOW_DEFAULT_STORAGE_SECRET must be namespace/name")
        return namespace, name

    @classmethod
    def env_help(cls) -> list[tuple[str, str]]:
        """(environment variable, "description (default: ...)") for every setting,
        generated from the fields: what ``mediaflow-operator --help`` prints."""
        rows = []
        for name, info in cls.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, SecretStr):
                shown = "unset" if not default.get_secret_value() else "set"
            elif isinstance(default, tuple):
                shown = " ".join(str(v) for v in default) or "empty"
            else:
                shown = str(default) if default != "" else "empty"
            rows.append((ENV_PREFIX + name.upper(), f"{info.description} (default: {shown})"))
        return rows

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        return cls.model_validate(values)
