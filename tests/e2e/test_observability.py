"""One upload can be followed end to end: its trace context, pass-through context
and correlation id reach its Job; JSON log lines name the Workflow, the object and
the Job; ``/metrics`` counts exactly what happened; a deleted Workflow's series go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Stack, counters, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM = f"00-{TRACE}-00f067aa0ba902b7-01"
TASKS = [{"name": "thumbs", "snapshot": {"times": ["1"]}}]


@pytest.fixture
def json_log_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Stack]:
    """The operator as a process of the checkout, logging JSON (MEDIAFLOW_LOG_FORMAT=json)."""
    yield from stack_fixture(
        kube_cluster,
        minio_server,
        nats_server,
        tmp_path,
        extra_env={"MEDIAFLOW_LOG_FORMAT": "json"},
    )


def _samples(stack: Stack, namespace: str, workflow: str) -> dict[tuple[str, str], float]:
    """(sample name, the other labels as k=v,...) -> value, for one Workflow's series."""
    found = {}
    for family in text_string_to_metric_families(stack.operator.metrics_text()):
        for sample in family.samples:
            labels = dict(sample.labels)
            ours = labels.pop("namespace", None) == namespace
            if not ours or labels.pop("workflow", None) != workflow:
                continue
            if sample.name.endswith(("_bucket", "_created")):
                continue  # the _count and _sum say enough here
            rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            found[(sample.name, rest)] = sample.value
    return found


def test_an_upload_is_followed_from_its_metadata_to_the_job_the_logs_and_the_metrics(
    json_log_stack: Stack,
) -> None:
    stack = json_log_stack
    ns = stack.namespace
    bucket = stack.bucket("obs")
    wf = stack.create_workflow(
        "traced",
        {
            "trigger": {"bucket": bucket, "prefix": "in/", "suffixes": [".mp4"]},
            "tasks": TASKS,
            "notifications": {"context": "workflow-context"},
        },
    )
    stack.wait_ready("traced")
    stack.upload(
        bucket,
        "in/traced.mp4",
        metadata={
            "x-amz-meta-traceparent": UPSTREAM,
            "x-amz-meta-mediaflow-context": '{"order": 7}',
            "x-amz-meta-mediaflow-correlation-id": "order-7",
        },
    )
    stack.upload(bucket, "in/plain.mp4")
    stack.upload(bucket, "in/bad-input.mp4")  # the fake worker fails it: BadInput
    stack.upload(bucket, "in/notes.txt")  # skipped: suffix

    def finished() -> dict[str, int] | None:
        c = counters(stack.status("traced"))
        done = c["succeeded"] == 2 and c["failed"] == 1 and c["skipped"] == 1
        return c if done else None

    wait_for(finished, 120, lambda: f"3 results and a skip\n{stack.operator.diagnose()}")

    # --- the Jobs carry the upload's facts ---
    jobs = {
        j.metadata.annotations["mediaflow.dev/key"]: j for j in stack.jobs(wf["metadata"]["uid"])
    }
    assert sorted(jobs) == ["in/bad-input.mp4", "in/plain.mp4", "in/traced.mp4"]
    traced = jobs["in/traced.mp4"]
    notes = traced.metadata.annotations
    assert notes["mediaflow.dev/traceparent"].startswith(f"00-{TRACE}-")  # the trace continues
    assert notes["mediaflow.dev/traceparent"] != UPSTREAM  # with a span of the Job's own
    assert notes["mediaflow.dev/context"] == '{"order": 7}'
    assert notes["mediaflow.dev/correlation-id"] == "order-7"
    env = {e.name: e.value for e in traced.spec.template.spec.containers[0].env}
    assert env["TRACEPARENT"] == notes["mediaflow.dev/traceparent"]
    plain = jobs["in/plain.mp4"].metadata
    assert plain.annotations["mediaflow.dev/context"] == "workflow-context"
    assert plain.annotations["mediaflow.dev/correlation-id"] == plain.name
    assert TRACE not in plain.annotations["mediaflow.dev/traceparent"]

    # --- JSON log lines name the Workflow, the object and the Job ---
    lines = []
    for line in stack.operator.log_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # output of something that is not the operator's logger
    about_traced = [r for r in lines if r.get("key") == "in/traced.mp4"]
    created = [r for r in about_traced if "created Job" in r["message"]]
    counted = [r for r in about_traced if "succeeded" in r["message"]]
    for record in (*created, *counted):
        assert record["workflow"] == f"{ns}/traced"
        assert record["bucket"] == bucket
        assert record["job"] == traced.metadata.name
    assert len(created) == 1, about_traced
    assert len(counted) == 1, about_traced

    # --- /metrics counts what happened ---
    def metrics_settled() -> dict[tuple[str, str], float] | None:
        samples = _samples(stack, ns, "traced")
        return samples if samples.get(("mediaflow_jobs_active", "")) == 0 else None

    samples = wait_for(metrics_settled, 30, "mediaflow_jobs_active back to 0")
    assert samples[("mediaflow_jobs_created_total", "trigger=event")] == 3
    assert samples[("mediaflow_upload_to_job_seconds_count", "")] == 3
    assert 0 < samples[("mediaflow_upload_to_job_seconds_sum", "")] < 3 * 120
    assert samples[("mediaflow_events_total", "reason=Matches,verdict=process")] == 3
    assert samples[("mediaflow_events_total", "reason=SuffixMismatch,verdict=skip")] == 1
    assert samples[("mediaflow_job_results_total", "outcome=succeeded,reason=Succeeded")] == 2
    assert samples[("mediaflow_job_results_total", "outcome=failed,reason=BadInput")] == 1
    assert samples[("mediaflow_job_duration_seconds_count", "outcome=succeeded")] == 2
    assert samples[("mediaflow_job_duration_seconds_count", "outcome=failed")] == 1
    # Set for every dispatching Workflow from one listing of the consumers (stream_watch).
    wait_for(
        lambda: _samples(stack, ns, "traced").get(("mediaflow_backlog_messages", "")) == 0,
        30,
        "the backlog gauge of the Workflow (0: nothing waits)",
    )

    # --- a deleted Workflow's series go with it ---
    stack.delete("traced")
    wait_for(lambda: stack.gone("traced"), 60, "Workflow traced deleted")
    wait_for(
        lambda: not _samples(stack, ns, "traced"),
        30,
        f"no series of the deleted Workflow\n{_samples(stack, ns, 'traced')}",
    )
