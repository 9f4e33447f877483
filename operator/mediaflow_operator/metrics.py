"""Prometheus metrics of the operator (``MEDIAFLOW_METRICS_PORT``, 0 = off).

Per-Workflow totals live in the Workflow status; these are for dashboards and
alerts across Workflows (rates, latencies, backlogs, poison events, reconcile
failures). ``docs/metrics.md`` lists every one (a unit test keeps the two equal).

Rules that keep the series bounded:

- labels are ``namespace`` and ``workflow`` plus small closed sets (a verdict,
  a reason from ``JOB_REASONS``/``matching``, a trigger, a sink id such as
  ``webhook-0``); never a key, a Job name or a free-form message;
- every metric with a ``workflow`` label is a ``PerWorkflow``: it remembers
  the label sets it hands out, so ``forget_workflow`` can remove every series
  of a deleted Workflow through prometheus-client's public ``remove``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from mediaflow_api.job import REASON_SUCCEEDED, REASON_SUPERSEDED, REASON_UP_TO_DATE

M = TypeVar("M", Counter, Gauge, Histogram)


class _Removable:
    def remove(self, values: tuple[str, ...]) -> None:
        raise NotImplementedError


# (namespace, workflow) -> the (metric, label values) handed out for it.
_series: dict[tuple[str, str], set[tuple[_Removable, tuple[str, ...]]]] = {}
_lock = threading.Lock()


class PerWorkflow(_Removable, Generic[M]):
    """A metric whose first two labels are ``namespace`` and ``workflow``;
    ``labels`` works like prometheus-client's and records the series so that
    ``forget_workflow`` can remove it."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric

    def labels(self, namespace: str, workflow: str, *rest: str) -> M:
        """The child of these label values (created on first use, like ``Metric.labels``)."""
        values = (namespace, workflow, *rest)
        child: M = self.metric.labels(*values)
        with _lock:
            _series.setdefault((namespace, workflow), set()).add((self, values))
        return child

    def remove(self, values: tuple[str, ...]) -> None:
        with contextlib.suppress(KeyError):  # never created, or removed already
            self.metric.remove(*values)


# Exposed name (with ``_total`` for counters) -> label names, of every metric
# defined here: what docs/metrics.md must list.
LABEL_NAMES: dict[str, tuple[str, ...]] = {}


def _labels(name: str, extra: Sequence[str], *, per_workflow: bool = True) -> list[str]:
    labels = ["namespace", "workflow", *extra] if per_workflow else list(extra)
    LABEL_NAMES[name] = tuple(labels)
    return labels


def _counter(name: str, doc: str, *extra: str) -> PerWorkflow[Counter]:
    return PerWorkflow(Counter(name, doc, _labels(name, extra)))


def _gauge(name: str, doc: str, *extra: str) -> PerWorkflow[Gauge]:
    return PerWorkflow(Gauge(name, doc, _labels(name, extra)))


def _histogram(
    name: str, doc: str, buckets: Sequence[float], *extra: str
) -> PerWorkflow[Histogram]:
    return PerWorkflow(Histogram(name, doc, _labels(name, extra), buckets=buckets))


def _global_counter(name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, _labels(name, labels, per_workflow=False))


def _global_gauge(name: str, doc: str) -> Gauge:
    return Gauge(name, doc, _labels(name, (), per_workflow=False))


def forget_workflow(namespace: str, name: str) -> None:
    """Remove every series of the Workflow ``namespace/name`` (it was deleted):
    a dashboard must not show a deleted Workflow's last values forever."""
    with _lock:
        series = _series.pop((namespace, name), set())
    for metric, values in series:
        metric.remove(values)


# --- Reasons: closed sets, so a reason label stays bounded ---

# What a finished Job's reason can be: the worker's termination-summary reasons
# (``mediaflow_worker.errors`` and its CLI; a unit test checks this set holds every
# one of them), Kubernetes' Job condition reasons, the kubelet's OOM kill.
JOB_REASONS = frozenset(
    {
        # exit 0
        REASON_SUCCEEDED,
        REASON_UP_TO_DATE,
        REASON_SUPERSEDED,
        # the worker's failures
        "Failed",
        "BadInput",
        "InputNotFound",
        "EmptyInput",
        "InputRejected",
        "UnreadableInput",
        "IncompatibleCopy",
        "QualityRejected",
        "InvalidOutputName",
        "OutputCollision",
        "ModerationBlocked",
        "InvalidSpec",
        "EncoderUnavailable",
        "ModelUnavailable",
        "AssetUnusable",
        "AssetNotFound",
        "ProcessingFailed",
        "Timeout",
        "OutputTooLarge",
        "OutputTooSmall",
        "StorageError",
        "Interrupted",
        "InternalError",
        # Kubernetes and the kubelet
        "BackoffLimitExceeded",
        "DeadlineExceeded",
        "PodFailurePolicy",
        "OOMKilled",
    }
)
OTHER_REASON = "Other"


def job_reason(outcome: str, reason: str) -> str:
    """The ``reason`` label of a finished Job: its reason when known, the
    outcome's default when it has none, ``Other`` for anything else."""
    if not reason:
        return {"succeeded": REASON_SUCCEEDED, "superseded": REASON_SUPERSEDED}.get(
            outcome, "Failed"
        )
    return reason if reason in JOB_REASONS else OTHER_REASON


# --- Events and Jobs ---

EVENTS = _counter(
    "mediaflow_events_total",
    "Queue events handled by a Workflow dispatcher, by verdict (process, skip, ignore) "
    "and reason (matching.Reason).",
    "verdict",
    "reason",
)
POISON_EVENTS = _counter("mediaflow_poison_events_total", "Unparseable queue events terminated.")
JOBS_CREATED = _counter(
    "mediaflow_jobs_created_total",
    "Worker Jobs created, by how they were triggered (event, sweep, manual).",
    "trigger",
)
JOB_CREATE_REFUSALS = _counter(
    "mediaflow_job_create_refusals_total",
    "Job creates the API server refused (quota, admission, invalid Job), by HTTP status.",
    "code",
)
JOB_RESULTS = _counter(
    "mediaflow_job_results_total",
    "Finished worker Jobs recorded in a Workflow status, by outcome (succeeded, failed, "
    "superseded) and reason (a closed set; Other for an unknown one).",
    "outcome",
    "reason",
)
JOB_DURATION = _histogram(
    "mediaflow_job_duration_seconds",
    "Run time of finished worker Jobs, from the Job's start to its finish, by outcome.",
    (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600),
    "outcome",
)
UPLOAD_TO_JOB = _histogram(
    "mediaflow_upload_to_job_seconds",
    "Time from an upload (the S3 event's eventTime) to the creation of its Job; "
    "Jobs created by the sweep or a manual trigger are not observed.",
    (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
BACKLOG = _gauge(
    "mediaflow_backlog_messages",
    "Events waiting in a Workflow's consumer: not yet delivered plus delivered and unacked.",
)
ACTIVE_JOBS = _gauge(
    "mediaflow_jobs_active",
    "Unfinished worker Jobs of a Workflow (counted against maxConcurrentJobs).",
)

# --- Notifications (``notify``); ``sink`` is ``webhook-<i>`` or ``queue-<i>``, the
# index in spec.notifications ---

NOTIFICATION_RESULTS = ("delivered", "retried", "failed", "refused")
NOTIFICATIONS_ENQUEUED = _counter(
    "mediaflow_notifications_enqueued_total",
    "Notifications written to the outbox, one per (event, sink).",
    "sink",
)
NOTIFICATION_DELIVERIES = _counter(
    "mediaflow_notification_deliveries_total",
    "Notification delivery attempts by result: delivered, retried (an attempt failed, "
    "another follows), failed (the retry budget is spent), refused (given up at once: "
    "not worth retrying, e.g. the egress guard refused the address, a 4xx answer).",
    "sink",
    "result",
)
NOTIFICATION_LATENCY = _histogram(
    "mediaflow_notification_delivery_seconds",
    "Time from the notified event (its CloudEvent time) to its delivery.",
    (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    "sink",
)
NOTIFICATIONS_PENDING = _gauge(
    "mediaflow_notifications_pending",
    "Notifications in the outbox not delivered yet.",
    "sink",
)


def sink_id(kind: str, index: int) -> str:
    """The ``sink`` label of the ``index``-th entry of spec.notifications'
    ``webhooks`` (kind ``webhook``) or ``queues`` (kind ``queue``)."""
    return f"{kind}-{index}"


# --- Operator-wide ---

RECONCILE_FAILURES = _global_counter(
    "mediaflow_reconcile_failures_total", "Reconcile steps that failed.", "step"
)
STREAM_BYTES = _global_gauge("mediaflow_stream_bytes", "Bytes held by the event stream.")
STREAM_MESSAGES = _global_gauge("mediaflow_stream_messages", "Messages held by the event stream.")
STREAM_MAX_BYTES = _global_gauge("mediaflow_stream_max_bytes", "Size limit of the event stream.")
STREAM_MAX_MESSAGES = _global_gauge(
    "mediaflow_stream_max_messages", "Message limit of the event stream."
)
STREAM_FILL_RATIO = _global_gauge(
    "mediaflow_stream_fill_ratio",
    "The fuller of bytes/max_bytes and messages/max_messages of the event stream "
    "(at 1 new events are refused; alarm above MEDIAFLOW_STREAM_ALARM_RATIO).",
)
STREAM_RESETS = _global_counter(
    "mediaflow_stream_resets_total",
    "Times the event stream was found deleted or replaced (consumers re-created).",
)
ROUTER_EVENTS = _global_counter(
    "mediaflow_router_events_total",
    "MinIO events the router handled, by result: routed (copied to at least one "
    "Workflow), duplicate (every copy was already stored: the same event delivered "
    "again, e.g. by MinIO's second target), unmatched (no Workflow's bucket and "
    "prefix), poison (unparseable, terminated), retried (put back after a copy was "
    "not stored).",
    "result",
)
ROUTED_COPIES = _global_counter(
    "mediaflow_routed_copies_total",
    "Copies of events the router stored for Workflows (one per matching Workflow; "
    "copies JetStream dropped as duplicates are not counted).",
)
ORPHAN_CONSUMERS_DELETED = _global_counter(
    "mediaflow_orphan_consumers_deleted_total",
    "Consumers deleted because their Workflow no longer exists.",
)

_serving: set[int] = set()


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0: do nothing), at most once per process:
    kopf retries a failed startup handler, and a second server on the same port
    would fail with "Address already in use" on every retry. An ``OSError`` (the
    port taken by another process) is for the caller to report."""
    if not port or port in _serving:
        return
    start_http_server(port)
    _serving.add(port)
