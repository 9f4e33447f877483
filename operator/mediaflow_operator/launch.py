"""Creating the Job for one object, for events and the sweep.

The Job is planned by ``job_render.plan_job`` (deterministic name: a second
create of the same object version answers ``AlreadyExists``, which counts as
success). A created Job counts against ``maxConcurrentJobs`` and as
``running`` at once (``pending``), before the watch shows it.

A refused create (``admission``: 403, 400/422, 413) is counted in
``mediaflow_job_create_refusals_total``, recorded in the Workflow's
``AdmissionGate`` and raised as ``JobRefused``; a create that succeeds (or
finds its Job) ends the refusal episode. Events and the sweep both create
through here, so the gate sees both.

A created Job is counted in ``mediaflow_jobs_created_total`` and, when its
object came with an event time (an S3 event, not the sweep), observed in
``mediaflow_upload_to_job_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from mediaflow_api.job import ObjectRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import admission, metrics
from mediaflow_operator.admission import AdmissionGate, JobRefused
from mediaflow_operator.clock import iso, now
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import Trigger, plan_job
from mediaflow_operator.kube import status_of
from mediaflow_operator.ledger import StatusLedger
from mediaflow_operator.logs import object_fields
from mediaflow_operator.notify.notifier import Notifier, accepted_facts


class Launcher:
    def __init__(
        self, ctx: DispatchContext, ledger: StatusLedger, notifier: Notifier | None = None
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.notifier = notifier
        self.gate = AdmissionGate()

    async def launch(
        self,
        spec: WorkflowSpec,
        obj: ObjectRef,
        *,
        trigger: Trigger,
        user_metadata: Mapping[str, str] | None = None,
        event_time: datetime | None = None,
        record: bool = True,
    ) -> str:
        """Create (or find) the Job for ``obj``; returns its name. Raises
        ``JobRefused`` when the API server refuses it, other errors on transient
        API trouble: the caller decides between retrying and giving up.
        ``user_metadata``: the object's (trace context, context, correlation
        id); ``event_time``: when the upload happened, for the latency metric.
        ``record=False``: the caller records the outcome in ``gate`` itself
        (creates made concurrently, whose outcomes arrive in any order)."""
        workflow = self.ctx.workflow()
        settings = self.ctx.rt.settings
        plan = plan_job(
            workflow,
            spec,
            obj,
            image=settings.worker_image,
            ml_image=settings.worker_ml_image,
            models_volume=settings.models_volume_source,
            command=settings.worker_command,
            trigger=trigger,
            user_metadata=user_metadata,
        )
        try:
            created = await self.ctx.rt.kube.create_job(workflow.namespace, plan.manifest)
        except Exception as exc:
            code = status_of(exc)
            refusal = admission.refusal_of(code, getattr(exc, "body", None), plan.name)
            if refusal is None:
                raise
            metrics.JOB_CREATE_REFUSALS.labels(
                workflow.namespace, workflow.name, str(refusal.code)
            ).inc()
            if record:
                self.gate.on_refused(refusal, now())
            raise JobRefused(refusal) from None
        if record:
            self.gate.on_admitted()
        log = self.ctx.log
        fields = object_fields(obj.bucket, obj.key, plan.name)
        if created:
            metrics.JOBS_CREATED.labels(workflow.namespace, workflow.name, trigger).inc()
            if event_time is not None:
                latency = (datetime.now(UTC) - event_time).total_seconds()
                metrics.UPLOAD_TO_JOB.labels(workflow.namespace, workflow.name).observe(
                    max(0.0, latency)  # clocks of MinIO and the operator may disagree a little
                )
            self.ctx.pending.add(plan.name)
            self.ledger.set_field("lastDispatchTime", iso(now()))
            log.info("created Job %s for %s/%s", plan.name, obj.bucket, obj.key, extra=fields)
        else:
            log.info(
                "Job %s for %s/%s already exists", plan.name, obj.bucket, obj.key, extra=fields
            )
        if self.notifier is not None:
            # Before the caller acks the event: a crash in between finds the Job
            # (AlreadyExists) on redelivery and publishes this again, same id.
            await self.notifier.job_accepted(
                plan.name, created, accepted_facts(workflow, obj, plan, uploaded_at=event_time)
            )
        return plan.name
