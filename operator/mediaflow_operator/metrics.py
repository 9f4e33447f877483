"""Prometheus metrics of the operator (``MEDIAFLOW_METRICS_PORT``, 0 = off).

Per-Workflow totals live in the Workflow status; these are for dashboards and
alerts across Workflows (rates, poison events, reconcile failures).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

JOBS_CREATED = Counter(
    "mediaflow_jobs_created_total",
    "Worker Jobs created, by how they were triggered.",
    ["namespace", "workflow", "trigger"],
)
JOB_RESULTS = Counter(
    "mediaflow_job_results_total",
    "Finished worker Jobs recorded in a Workflow status (succeeded, failed, superseded).",
    ["namespace", "workflow", "outcome"],
)
EVENTS = Counter(
    "mediaflow_events_total",
    "Queue events handled by a Workflow dispatcher, by verdict.",
    ["namespace", "workflow", "verdict"],
)
POISON_EVENTS = Counter(
    "mediaflow_poison_events_total",
    "Unparseable queue events terminated.",
    ["namespace", "workflow"],
)
JOB_CREATE_REFUSALS = Counter(
    "mediaflow_job_create_refusals_total",
    "Job creates the API server refused (quota, admission, invalid Job), by HTTP status.",
    ["namespace", "workflow", "code"],
)
RECONCILE_FAILURES = Counter(
    "mediaflow_reconcile_failures_total", "Reconcile steps that failed.", ["step"]
)

STREAM_BYTES = Gauge("mediaflow_stream_bytes", "Bytes held by the event stream.")
STREAM_MESSAGES = Gauge("mediaflow_stream_messages", "Messages held by the event stream.")
STREAM_MAX_BYTES = Gauge("mediaflow_stream_max_bytes", "Size limit of the event stream.")
STREAM_MAX_MESSAGES = Gauge("mediaflow_stream_max_messages", "Message limit of the event stream.")
STREAM_FILL_RATIO = Gauge(
    "mediaflow_stream_fill_ratio",
    "The fuller of bytes/max_bytes and messages/max_messages of the event stream "
    "(at 1 new events are refused; alarm above MEDIAFLOW_STREAM_ALARM_RATIO).",
)
STREAM_RESETS = Counter(
    "mediaflow_stream_resets_total",
    "Times the event stream was found deleted or replaced (consumers re-created).",
)
ORPHAN_CONSUMERS_DELETED = Counter(
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
