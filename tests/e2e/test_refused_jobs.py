"""Jobs the API server refuses: the uploads wait in the queue, the Workflow
says why, and processing resumes by itself when the cause is lifted.

(a) A ResourceQuota that allows no Jobs: every create is a 403. Nothing is
    terminated, the creates back off, JobsAdmitted/Ready say so with the
    quota's message, one Event, one log line, the refusal metric counts;
    deleting the quota processes every upload once, in upload order.
(b) A site's ValidatingAdmissionPolicy that the CRD cannot know about makes the
    rendered Job invalid (422): reconcile's dry run reports JobTemplateValid
    False naming the field, the uploads stay in the queue untouched; fixing the
    spec processes them.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import nats
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.harness import Stack, counters, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "probe", "analysis": {}}]
STREAM = "MEDIAFLOW_EVENTS"  # harness.operator_env's stream


def _stream_last_seq(nats_url: str) -> int:
    async def read() -> int:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().stream_info(STREAM)
            return int(info.state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(read())


def _consumer_pending(nats_url: str, durable: str) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().consumer_info(STREAM, durable)
            return int(info.num_pending or 0), int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return asyncio.run(read())


def _upload_in_order(stack: Stack, nats_url: str, bucket: str, keys: list[str]) -> None:
    """Upload one by one, each after the previous one's event is in the stream:
    stream order is upload order."""
    for key in keys:
        before = _stream_last_seq(nats_url)
        stack.upload(bucket, key)
        wait_for(lambda: _stream_last_seq(nats_url) > before, 30, f"the event of {key}")  # noqa: B023


def _events(stack: Stack, name: str, reason: str) -> list[Any]:
    items = client.CoreV1Api(stack.api).list_namespaced_event(stack.namespace).items
    return [e for e in items if e.involved_object.name == name and e.reason == reason]


def _condition(stack: Stack, name: str, type_: str) -> dict[str, Any]:
    for cond in stack.status(name).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def _metric(stack: Stack, name: str, **labels: str) -> float:
    """The value of one series (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in stack.operator.metrics_text().splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _created_keys(stack: Stack, bucket: str) -> list[str]:
    """Keys of this bucket in the order the operator created their Jobs."""
    pattern = re.compile(rf"created Job \S+ for {re.escape(bucket)}/(\S+)")
    return [m.group(1) for m in pattern.finditer(stack.operator.log_text())]


def test_jobs_refused_by_a_quota_wait_in_the_queue_and_run_in_order_once_it_is_lifted(
    refusal_stack: Stack, nats_server: Any
) -> None:
    stack = refusal_stack
    ns = stack.namespace
    core = client.CoreV1Api(stack.api)
    quota: dict[str, Any] = {
        "metadata": {"name": "no-jobs"},
        "spec": {"hard": {"count/jobs.batch": "0"}},
    }
    core.create_namespaced_resource_quota(ns, quota)  # type: ignore[arg-type]
    # The quota controller fills in its status; until then admission says
    # "status unknown", which is a refusal too, but with another message.
    wait_for(
        lambda: core.read_namespaced_resource_quota("no-jobs", ns).status.hard or None,
        60,
        "the quota's status",
    )
    bucket = stack.bucket("quota")
    wf = stack.create_workflow("quota", {"trigger": {"bucket": bucket}, "tasks": TASKS})
    stack.wait_ready("quota")
    keys = [f"clip-{i}.mp4" for i in range(6)]
    _upload_in_order(stack, nats_server.url, bucket, keys)

    def refused() -> dict[str, Any] | None:
        cond = _condition(stack, "quota", "JobsAdmitted")
        return cond if cond.get("status") == "False" else None

    cond = wait_for(refused, 60, lambda: f"JobsAdmitted=False\n{stack.operator.diagnose()}")
    assert cond["reason"] == "JobCreationRefused"
    assert "exceeded quota: no-jobs" in cond["message"]
    assert "count/jobs.batch" in cond["message"]
    ready = _condition(stack, "quota", "Ready")
    assert ready["status"] == "False"
    assert "JobsAdmitted" in ready["message"]
    wait_for(
        lambda: _events(stack, "quota", "JobCreationRefused"), 30, "a JobCreationRefused Event"
    )

    # Backoff: creates are tried at 0, 5, 15, 35 s ... (one probe per period), not
    # tens per second. Four refusals take at least 5 + 10 + 20 = 35 s.
    series = {"namespace": ns, "workflow": "quota", "code": "403"}
    first = wait_for(
        lambda: _metric(stack, "mediaflow_job_create_refusals_total", **series),
        30,
        "a refusal counted",
    )
    started = time.monotonic()
    wait_for(
        lambda: _metric(stack, "mediaflow_job_create_refusals_total", **series) >= first + 2,
        60,
        "two more probes",
    )
    assert time.monotonic() - started >= 10, "probes must back off (5 s, then 10 s)"
    assert _metric(stack, "mediaflow_job_create_refusals_total", **series) <= first + 3
    # Waiting, not dropped: no Job, nothing terminated, one Event and one log line
    # for the episode, no tracebacks.
    assert stack.jobs(wf["metadata"]["uid"]) == []
    assert _metric(stack, "mediaflow_poison_events_total", namespace=ns, workflow="quota") == 0
    assert _events(stack, "quota", "PoisonEvent") == []
    assert len(_events(stack, "quota", "JobCreationRefused")) == 1
    log = stack.operator.log_text()
    assert log.count("Job creation refused") == 1, stack.operator.log_tail()
    assert "Traceback" not in log

    # The cause is lifted: everything is processed once, in upload order.
    core.delete_namespaced_resource_quota("no-jobs", ns)

    def done() -> dict[str, int] | None:
        c = counters(stack.status("quota"))
        return c if c["succeeded"] == len(keys) and c["running"] == 0 else None

    final = wait_for(done, 120, lambda: f"all uploads processed\n{stack.operator.diagnose()}")
    assert final == {"received": 6, "skipped": 0, "running": 0, "succeeded": 6, "failed": 0}
    job_keys = sorted(
        j.metadata.annotations["mediaflow.dev/key"] for j in stack.jobs(wf["metadata"]["uid"])
    )
    assert job_keys == sorted(keys)
    assert _created_keys(stack, bucket) == keys
    wait_for(
        lambda: _condition(stack, "quota", "JobsAdmitted").get("status") == "True",
        30,
        "JobsAdmitted=True",
    )
    assert _condition(stack, "quota", "Ready")["status"] == "True"
    assert _events(stack, "quota", "JobCreationAdmitted")
    assert _metric(stack, "mediaflow_poison_events_total", namespace=ns, workflow="quota") == 0


POLICY_MESSAGE = "this cluster requires a memory limit on every container"


def _require_memory_limits(api: client.ApiClient, namespace: str) -> str:
    """A ValidatingAdmissionPolicy (bound to ``namespace`` only) refusing Jobs
    whose containers have no memory limit: 422 Invalid, like a site's policy."""
    admission = client.AdmissionregistrationV1Api(api)
    name = f"mf-memory-limits-{namespace}"
    policy: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["batch"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["jobs"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": (
                        "object.spec.template.spec.containers.all(c, has(c.resources) && "
                        "has(c.resources.limits) && 'memory' in c.resources.limits)"
                    ),
                    "message": POLICY_MESSAGE,
                    "reason": "Invalid",
                }
            ],
        },
    }
    admission.create_validating_admission_policy(policy)  # type: ignore[arg-type]
    binding: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    admission.create_validating_admission_policy_binding(binding)  # type: ignore[arg-type]
    probe: dict[str, Any] = {
        "metadata": {"name": "policy-probe"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "x"}],
                }
            }
        },
    }

    def enforced() -> bool:
        try:
            client.BatchV1Api(api).create_namespaced_job(namespace, probe, dry_run="All")  # type: ignore[arg-type]
        except ApiException as exc:
            return exc.status == 422 and POLICY_MESSAGE in str(exc.body)
        return False

    wait_for(enforced, 60, "the admission policy in force")
    return name


def test_a_spec_whose_job_the_api_server_rejects_keeps_uploads_waiting_until_fixed(
    refusal_stack: Stack, nats_server: Any
) -> None:
    stack = refusal_stack
    admission = client.AdmissionregistrationV1Api(stack.api)
    policy = _require_memory_limits(stack.api, stack.namespace)
    try:
        bucket = stack.bucket("policy")
        wf = stack.create_workflow("policed", {"trigger": {"bucket": bucket}, "tasks": TASKS})

        def invalid() -> dict[str, Any] | None:
            cond = _condition(stack, "policed", "JobTemplateValid")
            return cond if cond.get("status") == "False" else None

        cond = wait_for(invalid, 60, lambda: f"JobTemplateValid=False\n{stack.operator.diagnose()}")
        assert cond["reason"] == "JobInvalid"
        assert POLICY_MESSAGE in cond["message"]
        ready = _condition(stack, "policed", "Ready")
        assert ready["status"] == "False"
        assert "JobTemplateValid" in ready["message"]
        # The consumer and the bucket rule are in place: uploads reach the queue
        # and wait there, undelivered.
        durable = wait_for(lambda: stack.status("policed").get("consumer"), 60, "a consumer")
        _upload_in_order(stack, nats_server.url, bucket, ["a.mp4", "b.mp4"])
        wait_for(
            lambda: _consumer_pending(nats_server.url, durable) == (2, 0),
            30,
            "two events waiting in the queue",
        )
        assert stack.jobs(wf["metadata"]["uid"]) == []
        assert _events(stack, "policed", "PoisonEvent") == []
        ns = stack.namespace
        assert (
            _metric(stack, "mediaflow_poison_events_total", namespace=ns, workflow="policed") == 0
        )

        # The fix: a memory limit. The next dry run passes and the queue drains.
        stack.patch_spec("policed", {"execution": {"resources": {"limits": {"memory": "256Mi"}}}})
        wait_for(
            lambda: _condition(stack, "policed", "JobTemplateValid").get("status") == "True",
            60,
            "JobTemplateValid=True",
        )

        def done() -> dict[str, int] | None:
            c = counters(stack.status("policed"))
            return c if c["succeeded"] == 2 and c["running"] == 0 else None

        wait_for(done, 120, lambda: f"both uploads processed\n{stack.operator.diagnose()}")
        assert _condition(stack, "policed", "Ready")["status"] == "True"
        assert _events(stack, "policed", "PoisonEvent") == []
    finally:
        admission.delete_validating_admission_policy_binding(policy)
        admission.delete_validating_admission_policy(policy)
