"""Prometheus metrics of the operator (``MEDIAFLOW_METRICS_PORT``, 0 = off).

Per-Workflow totals live in the Workflow status; these are for dashboards and
alerts across Workflows (rates, poison events, reconcile failures).
"""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

JOBS_CREATED = Counter(
    "mediaflow_jobs_created_total",
    "Worker Jobs created, by how they were triggered.",
    ["namespace", "workflow", "trigger"],
)
JOB_RESULTS = Counter(
    "mediaflow_job_results_total",
    "Finished worker Jobs recorded in a Workflow status.",
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


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0: do nothing)."""
    if port:
        start_http_server(port)
