"""Manual trigger: process one existing object on request (the reference
service's "process media" call).

A user (or ``mediaflow process``) sets two annotations on the Workflow:
``mediaflow.dev/process: <key>`` and ``mediaflow.dev/process-request: <id>``.
The operator creates a forced Job for the object's current version, named from
the request id (so repeating a request is idempotent, a new request re-runs),
then removes both annotations and records an Event. The request takes the next
free slot under ``maxConcurrentJobs`` (ahead of queued events); while the
Workflow is at its limit it waits in its annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minio.error import S3Error

from mediaflow_api.job import ObjectRef
from mediaflow_api.templates import TemplateError
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import metrics, naming, workflows
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import plan_job
from mediaflow_operator.job_views import JobView, count_active
from mediaflow_operator.ledger import StatusLedger
from mediaflow_operator.logs import object_fields
from mediaflow_operator.runtime import Runtime


class ManualTriggerError(Exception):
    """The request cannot be served (no such object, key outside the trigger)."""


class ManualTrigger:
    """Serves the manual requests of one Workflow, one at a time."""

    def __init__(self, ctx: DispatchContext, ledger: StatusLedger) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.served_request = ""
        self.queued_request = ""

    def waiting(self) -> bool:
        """A request is there that was not served yet."""
        annotations = (self.ctx.body.get("metadata") or {}).get("annotations") or {}
        request = annotations.get(naming.ANNOTATION_PROCESS_REQUEST)
        return bool(request) and request != self.served_request

    async def serve(self, spec: WorkflowSpec | None, jobs: list[JobView]) -> None:
        """Serve a pending request if there is one and a slot is free."""
        annotations = (self.ctx.body.get("metadata") or {}).get("annotations") or {}
        request = annotations.get(naming.ANNOTATION_PROCESS_REQUEST)
        if not request or request == self.served_request:
            return
        key = annotations.get(naming.ANNOTATION_PROCESS, "")
        if spec is not None:
            active = count_active(jobs, self.ctx.pending)
            limit = spec.execution.max_concurrent_jobs
            if active >= limit:
                if self.queued_request != request:
                    self.queued_request = str(request)
                    self.ctx.post_event(
                        "Normal",
                        "ManualTriggerQueued",
                        f"{key} waits: {active} of {limit} Jobs are running",
                    )
                return
        try:
            name = await process(self.ctx.rt, self.ctx.body, key, str(request))
        except ManualTriggerError as exc:
            self.ctx.post_event("Warning", "ManualTriggerFailed", str(exc))
            await clear(self.ctx.rt, self.ctx.body)
        else:
            self.ctx.pending.add(name)
            self.ledger.touch()
            self.ctx.post_event("Normal", "ManualTrigger", f"Job {name} processes {key}")
            self.ctx.log.info(
                "manual trigger: Job %s for %s",
                name,
                key,
                extra=object_fields(str(spec.trigger.bucket) if spec else "", key, name),
            )
        self.served_request = str(request)


async def process(rt: Runtime, body: Mapping[str, Any], key: str, request_id: str) -> str:
    """Create the forced Job for the current version of ``key``; returns its name."""
    try:
        spec = workflows.resolved_spec(body, rt.templates)
    except TemplateError as exc:
        raise ManualTriggerError(exc.message) from None
    workflow = workflows.ref(body)
    if not key.startswith(spec.trigger.prefix):
        raise ManualTriggerError(f"{key!r} is outside the trigger prefix {spec.trigger.prefix!r}")
    obj, user_metadata = await _current_version(rt, spec.trigger.bucket, key)
    plan = plan_job(
        workflow,
        spec,
        obj,
        image=rt.settings.worker_image,
        ml_image=rt.settings.worker_ml_image,
        models_volume=rt.settings.models_volume_source,
        command=rt.settings.worker_command,
        trigger="manual",
        nonce=request_id,
        force=True,
        user_metadata=user_metadata,
    )
    if await rt.kube.create_job(workflow.namespace, plan.manifest):
        metrics.JOBS_CREATED.labels(workflow.namespace, workflow.name, "manual").inc()
    await clear(rt, body)
    return plan.name


async def _current_version(rt: Runtime, bucket: str, key: str) -> tuple[ObjectRef, dict[str, str]]:
    """The object's current version and its user metadata (``x-amz-meta-*``)."""
    try:
        stat = await rt.storage(rt.minio.stat_object, bucket, key)
    except S3Error as exc:
        raise ManualTriggerError(f"{bucket}/{key}: {exc.code}") from None
    obj = ObjectRef(
        bucket=bucket,
        key=key,
        etag=(stat.etag or "").strip('"'),
        versionId=stat.version_id or "",
        size=stat.size,
    )
    headers = stat.metadata or {}
    user_metadata = {
        str(k): str(v) for k, v in headers.items() if str(k).lower().startswith("x-amz-meta-")
    }
    return obj, user_metadata


async def clear(rt: Runtime, body: Mapping[str, Any]) -> None:
    """Remove the request annotations (the request is served)."""
    workflow = workflows.ref(body)
    await rt.kube.patch_workflow_metadata(
        workflow.namespace,
        workflow.name,
        {"annotations": {naming.ANNOTATION_PROCESS: None, naming.ANNOTATION_PROCESS_REQUEST: None}},
    )
