"""Reconcile one Workflow: storage, Job template, queue, bucket notification;
report each step.

Every step is idempotent and reports a condition (StorageReady,
JobTemplateValid, QueueReady, NotificationReady), written by ``conditions``
(which derives Ready from them and the dispatcher's JobsAdmitted). The caller
(a kopf handler) turns ``ReconcileResult.retry`` into a ``kopf.TemporaryError``.

TemplatesResolved (only for Workflows that refer to templates) says whether
every template the tasks name exists and fits (``template_refs``); while it is
False the Job template is not judged (Unknown), the consumer stays and the
dispatcher leaves the uploads in the queue. ``recheck_templates`` re-judges it
when a template changes.

JobTemplateValid is a server-side dry run of the Job that ``job_render``
plans for a sample object: a spec the API server can never accept (requests
above limits, a site's admission policy) shows here, naming the field, and
the dispatcher leaves the uploads in the queue until the spec is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mediaflow_api.job import STORAGE_ENV, ObjectRef
from mediaflow_api.templates import TemplateError
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_api.workflow_status import (
    CONDITION_NOTIFICATION,
    CONDITION_QUEUE,
    CONDITION_STORAGE,
    CONDITION_TEMPLATE,
    CONDITION_TEMPLATES,
)
from mediaflow_operator import (
    admission,
    bucket_index,
    bucket_rules,
    conditions,
    default_storage,
    metrics,
    naming,
    queue,
    routing,
    workflows,
)
from mediaflow_operator.bucket_index import BucketIndex
from mediaflow_operator.clock import iso, now, parse_time
from mediaflow_operator.conditions import Step
from mediaflow_operator.default_storage import StorageUsers
from mediaflow_operator.job_render import plan_job
from mediaflow_operator.kube import status_of
from mediaflow_operator.logs import WorkflowLogger
from mediaflow_operator.notify import outbox
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.template_refs import TemplateCatalog, resolve_spec

logger = logging.getLogger(__name__)

STORAGE_UNAVAILABLE = "StorageUnavailable"  # the check itself failed (transient)
# The object the dry run renders a Job for: any key under the trigger prefix
# describes the same spec (the key only reaches annotations and the job contract).
DRY_RUN_KEY = "mediaflow-dry-run.bin"
DRY_RUN_ETAG = "0" * 32


@dataclass(frozen=True)
class Indices:
    """What the Workflow watch keeps for reconcile (kopf indices, live views
    updated as events arrive): nothing here lists Workflows."""

    buckets: BucketIndex  # trigger bucket -> its Workflows' shares (bucket_index)
    storage_users: StorageUsers  # namespace -> Workflows using the default Secret


@dataclass
class ReconcileResult:
    steps: dict[str, Step] = field(default_factory=dict)
    retry: bool = False
    permanent: str = ""

    @property
    def ready(self) -> bool:
        return bool(self.steps) and all(s.ok is not False for s in self.steps.values())


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:500]


async def check_storage(
    rt: Runtime, ns: str, spec: WorkflowSpec, users: StorageUsers, *, uid: str = ""
) -> Step:
    """The worker's Secret exists with the required keys; the buckets exist. A
    Workflow with its own Secret releases the namespace's default copy
    (``default_storage``) when it was the last one using it."""
    name = workflows.storage_secret_name(spec)
    if spec.storage.secret_ref is None:
        provided = await default_storage.provide(rt, ns)
        if provided.secret is None:
            return Step(False, provided.reason, provided.message)
        secret = provided.secret
    else:
        await default_storage.release_unused(rt, ns, users, leaving_uid=uid)
        found = await rt.kube.read_secret(ns, name)
        if found is None:
            return Step(
                False, "SecretNotFound", f"Secret {ns}/{name} (spec.storage.secretRef) not found"
            )
        secret = found
    keys = set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())
    missing = sorted(set(STORAGE_ENV.values()) - keys)
    if missing:
        return Step(False, "SecretIncomplete", f"Secret {name} lacks keys: {', '.join(missing)}")
    for label, bucket in buckets_to_check(spec):
        exists = await rt.storage(rt.minio.bucket_exists, bucket)
        if not exists:
            return Step(False, "BucketNotFound", f"{label} bucket {bucket!r} does not exist")
    return Step(True, "StorageReady", f"Secret {name}; buckets exist")


def buckets_to_check(spec: WorkflowSpec) -> list[tuple[str, str]]:
    """(what it is, bucket) of every bucket the Workflow's Jobs read or
    write: trigger, output, and each task's own output bucket
    (``tasks[].output.bucket``), each bucket once."""
    found = [("trigger", spec.trigger.bucket), ("output", spec.output_bucket)]
    for task in spec.tasks:
        if task.output is not None and task.output.bucket is not None:
            found.append((f"task {task.name!r} output", task.output.bucket))
    seen: set[str] = set()
    unique = []
    for label, bucket in found:
        if bucket not in seen:
            seen.add(bucket)
            unique.append((label, bucket))
    return unique


async def check_job_template(rt: Runtime, body: Mapping[str, Any], spec: WorkflowSpec) -> Step:
    """Create the Job planned for a sample object with dryRun=All: the API
    server validates and admits it without storing it. 400/422 name the field
    the spec gets wrong; a 403 (quota, policy) means admission refused before
    the verdict on the template, which stays Unknown (JobsAdmitted reports it
    when a real create meets it)."""
    ident = workflows.ref(body)
    sample = ObjectRef(
        bucket=spec.trigger.bucket, key=spec.trigger.prefix + DRY_RUN_KEY, etag=DRY_RUN_ETAG
    )
    plan = plan_job(
        ident,
        spec,
        sample,
        image=rt.settings.worker_image,
        ml_image=rt.settings.worker_ml_image,
        models_volume=rt.settings.models_volume_source,
        command=rt.settings.worker_command,
        trigger="event",
    )
    try:
        await rt.kube.create_job(ident.namespace, plan.manifest, dry_run=True)
    except Exception as exc:
        code = status_of(exc)
        refusal = admission.refusal_of(code, getattr(exc, "body", None), plan.name)
        if refusal is None:
            raise
        if refusal.code == 403:
            return Step(None, "DryRunRefused", refusal.message)
        return Step(False, "JobInvalid", refusal.message)
    return Step(True, "Valid", "the API server accepts the rendered Job (server-side dry run)")


def templates_step(
    body: Mapping[str, Any], spec: WorkflowSpec, catalog: TemplateCatalog
) -> tuple[Step | None, WorkflowSpec | None]:
    """TemplatesResolved and the resolved spec (None when a template does not
    resolve). The step is None for a Workflow that never referred to a template."""
    refers = any(t.refers_to_templates for t in spec.tasks)
    had = workflows.condition_status(body, CONDITION_TEMPLATES) is not None
    try:
        resolved = resolve_spec(spec, workflows.ref(body).namespace, catalog)
    except TemplateError as exc:
        return Step(False, exc.reason, exc.message), None
    if refers:
        names = sorted(
            {str(r.name) for t in spec.tasks for r in (t.template, t.watermark_template) if r}
        )
        return Step(True, "Resolved", "templates found: " + ", ".join(names)), resolved
    if had:
        return Step(True, "NoReferences", "the tasks refer to no template"), resolved
    return None, resolved


async def judge_templates(
    rt: Runtime, body: Mapping[str, Any], spec: WorkflowSpec
) -> tuple[dict[str, Step], bool]:
    """TemplatesResolved and JobTemplateValid (the dry run of the resolved spec);
    the bool: retry (the dry run itself failed)."""
    steps: dict[str, Step] = {}
    step, resolved = templates_step(body, spec, rt.templates)
    if step is not None:
        steps[CONDITION_TEMPLATES] = step
    if resolved is None:
        steps[CONDITION_TEMPLATE] = Step(
            None, "WaitingForTemplates", "judged once TemplatesResolved is True"
        )
        return steps, False
    try:
        steps[CONDITION_TEMPLATE] = await check_job_template(rt, body, resolved)
    except Exception as exc:
        WorkflowLogger(logger, workflows.ref(body)).warning(
            "Job template dry run failed: %s", _short(exc)
        )
        steps[CONDITION_TEMPLATE] = Step(None, "DryRunFailed", _short(exc))
        return steps, True
    return steps, False


async def recheck_templates(rt: Runtime, body: Mapping[str, Any]) -> bool:
    """Re-judge TemplatesResolved and JobTemplateValid after one of the Workflow's
    templates changed (the other steps do not depend on templates). True when the
    templates resolve."""
    try:
        spec = workflows.parse_spec(body)
    except ValidationError:
        return False  # reconcile reports the invalid spec
    steps, _ = await judge_templates(rt, body, spec)
    await conditions.write(
        rt.kube, workflows.ref(body), steps, active=workflows.is_active(body), at=now()
    )
    step = steps.get(CONDITION_TEMPLATES)
    return step is None or step.ok is True


async def ensure_queue(rt: Runtime, body: Mapping[str, Any], want: bool | None) -> Step:
    """The Workflow's consumer exists exactly while it dispatches (``want``): a
    consumer nobody reads holds every event routed to it until ``max_age``.
    ``want`` None (storage could not be checked just now) leaves it as it is: a
    MinIO blip must not throw away the Workflow's queued events."""
    ident = workflows.ref(body)
    log = WorkflowLogger(logger, ident)
    js = await rt.jetstream(check_stream=True)
    durable = naming.consumer_name(ident.namespace, ident.name, ident.uid)
    stream = rt.settings.nats_stream
    if want is None:
        return Step(True, "Unchanged", f"consumer {durable} kept while storage is unchecked")
    if want:
        if await queue.ensure_consumer(
            js,
            stream,
            durable,
            routing.work_subject(rt.settings.nats_work_subject_prefix, ident.uid),
            queue.CONSUMER_DESCRIPTION.format(namespace=ident.namespace, name=ident.name),
        ):
            log.info("created consumer %s on stream %s", durable, stream)
        if rt.stream_alarm:
            return Step(True, "StreamNearlyFull", f"consumer {durable}; {rt.stream_alarm}")
        return Step(True, "ConsumerReady", f"consumer {durable} on stream {stream}")
    why = "suspended" if not workflows.is_active(body) else "storage not ready"
    if await queue.delete_consumer(js, stream, durable):
        log.info("deleted consumer %s on stream %s (%s)", durable, stream, why)
    if not workflows.is_active(body):
        return Step(True, "Suspended", "no consumer while suspended")
    return Step(True, "NoConsumer", "no consumer until StorageReady")


async def sync_bucket(
    rt: Runtime, bucket: str, index: BucketIndex, body: Mapping[str, Any], *, deleting: bool = False
) -> None:
    """Write ``bucket``'s rule from the Workflows the index holds for it, with
    ``body`` (the Workflow being reconciled, fresher than the index; ``deleting``:
    being finalized, so it adds nothing). The index is read inside the bucket's
    lock (``bucket_rules.apply``), not before."""
    current_uid = workflows.ref(body).uid
    current = None if deleting else bucket_index.share_of(body).get(bucket)

    def prefixes() -> list[str]:
        shares = [*index.get(bucket, ()), *rt.outside_shares.get(bucket, ())]
        return bucket_index.rule_prefixes(shares, current_uid=current_uid, current=current)

    await bucket_rules.apply(rt.storage_pool, rt.minio, bucket, prefixes, rt.settings.notify_arns)


async def reconcile(
    rt: Runtime,
    body: Mapping[str, Any],
    indices: Indices,
    *,
    old_buckets: tuple[str, ...] = (),
) -> ReconcileResult:
    """Run all steps for one Workflow and write conditions + observedGeneration."""
    ident = workflows.ref(body)
    log = WorkflowLogger(logger, ident)
    status = dict(body.get("status") or {})
    result = ReconcileResult()
    at = now()
    try:
        spec = workflows.parse_spec(body)
    except ValidationError as exc:
        result.permanent = f"invalid spec: {exc.errors()[0].get('msg', exc)}"
        result.steps[CONDITION_STORAGE] = Step(False, "InvalidSpec", result.permanent)
        try:  # a Workflow that cannot dispatch keeps no consumer
            result.steps[CONDITION_QUEUE] = await ensure_queue(rt, body, False)
        except Exception as exc:
            log.warning("queue step failed: %s", _short(exc))
        await _write(rt, body, result, status, at, active=False)
        return result
    active = workflows.is_active(body)

    try:
        result.steps[CONDITION_STORAGE] = await check_storage(
            rt, ident.namespace, spec, indices.storage_users, uid=ident.uid
        )
    except Exception as exc:
        log.warning("storage check failed: %s", _short(exc))
        result.steps[CONDITION_STORAGE] = Step(False, STORAGE_UNAVAILABLE, _short(exc))
    if not result.steps[CONDITION_STORAGE].ok:
        result.retry = True

    # Not a retry when invalid: only a spec change (a new reconcile) can fix it,
    # or, for templates, the template's creation (recheck_templates).
    template_steps, retry = await judge_templates(rt, body, spec)
    result.steps.update(template_steps)
    result.retry = result.retry or retry

    # The stream and consumer must exist before the bucket rule makes MinIO publish;
    # the consumer only while the Workflow can dispatch (see ensure_queue). A Job
    # template the API server refuses keeps the consumer: uploads wait in the queue.
    storage = result.steps[CONDITION_STORAGE]
    want = None if storage.reason == STORAGE_UNAVAILABLE else active and storage.ok is True
    try:
        result.steps[CONDITION_QUEUE] = await ensure_queue(rt, body, want)
    except Exception as exc:
        log.warning("queue step failed: %s", _short(exc))
        result.steps[CONDITION_QUEUE] = Step(False, "QueueUnavailable", _short(exc))
        result.retry = True

    if result.steps[CONDITION_QUEUE].ok and result.steps[CONDITION_STORAGE].ok:
        try:
            for bucket in sorted({spec.trigger.bucket, *old_buckets}):
                await sync_bucket(rt, bucket, indices.buckets, body)
            result.steps[CONDITION_NOTIFICATION] = (
                Step(
                    True,
                    "RuleReady",
                    f"bucket {spec.trigger.bucket} notifies "
                    + " and ".join(rt.settings.notify_arns),
                )
                if active
                else Step(True, "Suspended", "no bucket rule while suspended")
            )
        except Exception as exc:
            log.warning("notification step failed: %s", _short(exc))
            result.steps[CONDITION_NOTIFICATION] = Step(False, "NotificationFailed", _short(exc))
            result.retry = True
    else:
        result.steps[CONDITION_NOTIFICATION] = Step(
            False, "Waiting", "waits for StorageReady and QueueReady"
        )
    for type_, step in result.steps.items():
        if step.ok is False and step.reason not in ("Waiting",):
            metrics.RECONCILE_FAILURES.labels(type_).inc()
    await _write(rt, body, result, status, at, active=active)
    return result


def activation_time(body: Mapping[str, Any], at: datetime) -> datetime:
    """When the Workflow became active: its creation for a Workflow applied
    active and not edited since, else ``at`` (a resume or a late first
    activation is noticed by this reconcile). Uploads from that second on are
    the Workflow's, also those made before the bucket rule existed (the sweep
    finds them); a pre-existing object of the very same second may be taken too.
    """
    meta = body.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    if created is not None and int(meta.get("generation") or 0) <= 1:
        return min(created, at)
    return at


async def _write(
    rt: Runtime,
    body: Mapping[str, Any],
    result: ReconcileResult,
    status: dict[str, Any],
    at: Any,
    *,
    active: bool,
) -> None:
    ident = workflows.ref(body)
    patch: dict[str, Any] = {"observedGeneration": ident.generation}
    durable = naming.consumer_name(ident.namespace, ident.name, ident.uid)
    queue_step = result.steps.get(CONDITION_QUEUE, Step(False, "", ""))
    queue_ok = queue_step.ok is True and queue_step.reason not in ("NoConsumer", "Unchanged")
    if queue_step.reason == "NoConsumer":
        patch["consumer"] = ""  # deleted: the dispatcher stops pulling
    elif active and queue_ok:
        patch["consumer"] = durable
        if not status.get("activeSince"):
            patch["activeSince"] = iso(activation_time(body, at))
    elif not active:
        patch["consumer"] = ""
        patch["activeSince"] = None
    await conditions.write(rt.kube, ident, result.steps, active=active, at=at, extra=patch)


async def finalize(rt: Runtime, body: Mapping[str, Any], indices: Indices) -> None:
    """On delete: remove our share of the bucket rule, then our consumer (rule
    first: MinIO stops publishing for us before the consumer goes). A consumer
    left behind (NATS away until kopf gives up) is deleted by ``stream_watch``."""
    ident = workflows.ref(body)
    bucket = ((body.get("spec") or {}).get("trigger") or {}).get("bucket")
    if bucket:
        await sync_bucket(rt, bucket, indices.buckets, body, deleting=True)
    await default_storage.release_unused(
        rt, ident.namespace, indices.storage_users, leaving_uid=ident.uid
    )
    js = await rt.jetstream()
    durable = naming.consumer_name(ident.namespace, ident.name, ident.uid)
    if await queue.delete_consumer(js, rt.settings.nats_stream, durable):
        WorkflowLogger(logger, ident).info(
            "deleted consumer %s on stream %s (Workflow deleted)", durable, rt.settings.nats_stream
        )
    # Its undelivered notifications go with it (announcing for a Workflow that
    # no longer exists would go on without a status to show failures in).
    removed = await outbox.forget_sinks(js, rt.settings, ident.uid, keep=set())
    if removed:
        WorkflowLogger(logger, ident).info(
            "deleted %d notification queue(s) (Workflow deleted)", len(removed)
        )
