"""The ``status`` of a Workflow: conditions, counters and their ledgers.

The operator is the only writer. Conditions follow kstatus (``Ready`` plus one
per reconcile step); the counters obey ``received = skipped + running +
succeeded + failed + superseded`` and stay exact through the bounded ledgers
``countedJobs``/``countedEvents`` (see ``mediaflow_operator.ledger``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mediaflow_api.workflow_fields import ApiModel

# The condition types written by the operator: one per reconcile step, JobsAdmitted
# (the dispatcher: whether the API server accepts the Workflow's Jobs), and Ready.
CONDITION_READY = "Ready"
CONDITION_STORAGE = "StorageReady"
CONDITION_QUEUE = "QueueReady"
CONDITION_NOTIFICATION = "NotificationReady"
CONDITION_TEMPLATE = "JobTemplateValid"
CONDITION_JOBS_ADMITTED = "JobsAdmitted"
# Written only for Workflows whose tasks refer to templates (or did).
CONDITION_TEMPLATES = "TemplatesResolved"
CONDITION_TYPES = (
    CONDITION_READY,
    CONDITION_STORAGE,
    CONDITION_QUEUE,
    CONDITION_NOTIFICATION,
    CONDITION_TEMPLATE,
    CONDITION_JOBS_ADMITTED,
    CONDITION_TEMPLATES,
)

# How many entries the bounded status lists keep.
LAST_FAILURES_MAX = 10
LEDGER_MAX = 256
TRIED_JOBS_MAX = 256


class Condition(ApiModel):
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


class Failure(ApiModel):
    """One recent failed object."""

    object: str = Field(max_length=1100, description="The input, as <bucket>/<key>.")
    job: str = Field(default="", max_length=63, description="Name of the failed Job.")
    reason: str = Field(default="", max_length=128, description="Why it failed (CamelCase).")
    message: str = Field(
        default="", max_length=1024, description="Details from the worker's termination message."
    )
    time: datetime | None = Field(default=None, description="When the failure was recorded.")


class DeliveryFailure(ApiModel):
    """The last notification a sink gave up on."""

    time: datetime | None = Field(default=None, description="When it was given up.")
    event_id: str = Field(default="", max_length=128, alias="eventId", description="CloudEvent id.")
    type: str = Field(default="", max_length=128, description="CloudEvent type.")
    object: str = Field(default="", max_length=1100, description="The input, as <bucket>/<key>.")
    attempts: int = Field(default=0, ge=0, description="Delivery attempts made.")
    message: str = Field(
        default="", max_length=1024, description="Why the last attempt failed (no secrets)."
    )


class SinkStatus(ApiModel):
    """Delivery results of one notification sink."""

    sink: str = Field(max_length=32, description="webhook-<i> or queue-<i> (place in the spec).")
    target: str = Field(
        default="", max_length=2100, description="The URL (without query) or nats:<subject>."
    )
    delivered: int = Field(default=0, ge=0, description="Notifications delivered.")
    failed: int = Field(
        default=0, ge=0, description="Notifications given up (attempts spent or refused)."
    )
    last_delivery_time: datetime | None = Field(
        default=None, alias="lastDeliveryTime", description="When the last one was delivered."
    )
    last_failure: DeliveryFailure | None = Field(
        default=None, alias="lastFailure", description="The last notification given up."
    )


class SweepCursor(ApiModel):
    """An unfinished sweep pass: it resumes after ``after`` when the operator restarts."""

    start: datetime = Field(description="Start of the pass's window (last modification).")
    end: datetime = Field(description="End of the pass's window (exclusive).")
    trigger: str = Field(default="", max_length=1100, description="<bucket>/<prefix> swept.")
    after: str = Field(
        default="", max_length=1024, description="The last key done (keys are listed in order)."
    )


class TriedJob(ApiModel):
    """A Job that failed and was deleted: the sweep does not create it again."""

    job: str = Field(max_length=63, description="The Job's name (one per object version).")
    at: datetime = Field(description="When it was deleted.")


class WorkflowStatus(ApiModel):
    """Observed: received = skipped + running + succeeded + failed + superseded."""

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
    superseded: int = Field(
        default=0,
        ge=0,
        description=(
            "Jobs whose input was overwritten or deleted while they ran: they left no "
            "outputs and no manifest; the newer version has its own Job."
        ),
    )
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
    counted_events_stream: str = Field(
        default="",
        alias="countedEventsStream",
        max_length=64,
        description=(
            "Internal: identity (creation time) of the stream whose sequence numbers "
            "countedEvents holds; a re-created stream starts a new ledger."
        ),
    )
    consumer: str = Field(default="", max_length=128, description="JetStream consumer name.")
    swept_until: datetime | None = Field(
        default=None,
        alias="sweptUntil",
        description="Objects modified before this time were checked by the periodic sweep.",
    )
    sweep_cursor: SweepCursor | None = Field(
        default=None,
        alias="sweepCursor",
        description="Internal: the unfinished sweep pass, resumed after a restart.",
    )
    tried_jobs: list[TriedJob] = Field(
        default_factory=list,
        alias="triedJobs",
        max_length=TRIED_JOBS_MAX,
        description=(
            "Internal: Jobs that failed and were deleted; the sweep does not run their object "
            "version again while its windows may still cover it."
        ),
    )
    last_dispatch_time: datetime | None = Field(
        default=None, alias="lastDispatchTime", description="When the last Job was created."
    )
    notifications: list[SinkStatus] = Field(
        default_factory=list,
        max_length=16,
        description="Delivery results per notification sink (webhooks, then queues).",
    )
