"""Creating the Job for one object, for events and the sweep.

The Job is planned by ``job_render.plan_job`` (deterministic name: a second
create of the same object version answers ``AlreadyExists``, which counts as
success). A created Job counts against ``maxConcurrentJobs`` and as
``running`` at once (``pending``), before the watch shows it.
"""

from __future__ import annotations

from mediaflow_api.job import ObjectRef
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import metrics
from mediaflow_operator.clock import iso, now
from mediaflow_operator.context import DispatchContext
from mediaflow_operator.job_render import Trigger, plan_job
from mediaflow_operator.ledger import StatusLedger


class Launcher:
    def __init__(self, ctx: DispatchContext, ledger: StatusLedger) -> None:
        self.ctx = ctx
        self.ledger = ledger

    async def launch(self, spec: WorkflowSpec, obj: ObjectRef, *, trigger: Trigger) -> str:
        """Create (or find) the Job for ``obj``; returns its name. Raises on API
        trouble: the caller decides between retrying and giving up."""
        workflow = self.ctx.workflow()
        settings = self.ctx.rt.settings
        plan = plan_job(
            workflow,
            spec,
            obj,
            image=settings.worker_image,
            command=settings.worker_command,
            trigger=trigger,
        )
        created = await self.ctx.rt.kube.create_job(workflow.namespace, plan.manifest)
        log = self.ctx.log
        if created:
            metrics.JOBS_CREATED.labels(workflow.namespace, workflow.name, trigger).inc()
            self.ctx.pending.add(plan.name)
            self.ledger.set_field("lastDispatchTime", iso(now()))
            log.info("created Job %s for %s/%s", plan.name, obj.bucket, obj.key)
        else:
            log.info("Job %s for %s/%s already exists", plan.name, obj.bucket, obj.key)
        return plan.name
