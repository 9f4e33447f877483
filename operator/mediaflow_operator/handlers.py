"""kopf wiring: every decorator lives here, each a thin call into a plain module.

Read this file to find any behaviour; the work is in reconcile.py (rules,
consumers, conditions), dispatch.py (events -> Jobs -> counters; it names the
modules it delegates to), bucket_rules.py and job_render.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from mediaflow_api.templates import TemplateKey
from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator import (
    bucket_index,
    default_storage,
    diagnostics,
    dispatch,
    metrics,
    naming,
    reconcile,
    routing,
    stream_watch,
    template_refs,
    template_watch,
    workflows,
)
from mediaflow_operator.bucket_index import BucketShare
from mediaflow_operator.job_views import JobView, forget_deleted_job, job_view
from mediaflow_operator.logs import QuietSuccesses
from mediaflow_operator.router import RouterService
from mediaflow_operator.routing import Route
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.settings import Settings

logger = logging.getLogger(__name__)

SETTINGS = Settings.from_env()
WORKFLOWS = (GROUP, VERSION, PLURAL)
RECONCILE_TIMEOUT = 120


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's own state under our API group; timeouts chosen on purpose."""
    settings.persistence.finalizer = "mediaflow.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mediaflow.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="mediaflow.dev", key="last-handled-configuration"
    )
    # Re-establish watches every few minutes even when the server keeps them open.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.posting.level = logging.INFO
    logging.getLogger("kopf.objects").addFilter(QuietSuccesses(("job_changed", "workflow_changed")))
    # Only sync handlers use kopf's executor (ours are all async); the blocking
    # client calls have their own bounded pools (pools.py, Runtime).
    settings.execution.max_workers = 8
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
    # settings.queueing.worker_limit stays unlimited: at start kopf holds every
    # object's handlers until every object is indexed, so a limit below the
    # number of Workflows would deadlock. Startup is bounded instead by the
    # pools (requests in flight) and by periodic_delay (the timers' spread).
    # A standby replica runs with a lower priority and takes over when the active one goes.
    if SETTINGS.peering_name:
        settings.peering.name = SETTINGS.peering_name
        settings.peering.priority = SETTINGS.peering_priority
        settings.peering.lifetime = SETTINGS.peering_lifetime_seconds
        settings.peering.mandatory = True
        settings.peering.clusterwide = True
    else:
        settings.peering.standalone = True


def _rt(memo: kopf.Memo) -> Runtime:
    return memo["runtime"]  # type: ignore[no-any-return]


STARTUP_RETRY_SECONDS = 2.0


# Start the shared clients once; everything else connects lazily and retries.
# kopf retries this handler until it succeeds, so every step is safe to repeat:
# the metrics server starts once per process (metrics.serve), a port taken by
# another process stops the operator with a clear message (retrying cannot free
# it), and a missing or broken Kubernetes config (a kubeconfig mounted a moment
# later) is retried every few seconds.
@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    diagnostics.install_dump_on_signal(asyncio.get_running_loop())
    try:
        metrics.serve(SETTINGS.metrics_port)
    except OSError as exc:
        raise kopf.PermanentError(
            f"cannot serve metrics on port {SETTINGS.metrics_port} (MEDIAFLOW_METRICS_PORT): {exc}"
        ) from exc
    if "runtime" not in memo:
        try:
            memo["runtime"] = Runtime.create(SETTINGS)
        except Exception as exc:
            raise kopf.TemporaryError(
                f"cannot create the API clients yet (retrying): {type(exc).__name__}: {exc}",
                delay=STARTUP_RETRY_SECONDS,
            ) from exc
    rt = _rt(memo)
    if not rt.api_server_addresses:
        try:
            rt.api_server_addresses = tuple(await rt.kube.api_server_addresses())
        except Exception as exc:  # the egress guard still has KUBERNETES_SERVICE_HOST
            logger.warning("API server addresses not discovered: %s", exc)
    outside_listed = False
    if SETTINGS.namespaces and "outside_shares" not in memo:
        # Before any reconcile writes a shared bucket's rule (kopf starts the
        # watches after the startup handlers).
        try:
            await stream_watch.refresh_outside_shares(rt)
            outside_listed = True
        except Exception as exc:  # stream_watch retries every orphan-sweep interval
            logger.warning("Workflows outside the watched namespaces not listed yet: %s", exc)
        memo["outside_shares"] = True
    if "router" not in memo:
        # Runs while a dispatcher of this process runs (router.RouterService).
        memo["router"] = RouterService(rt)
    if "stream_watch" not in memo:
        # One operator-wide task: stream re-creation, fill alarm, orphan consumers.
        # Its first refresh of the outside shares waits an interval when this one worked.
        watch = stream_watch.StreamWatch(_rt(memo), outside_listed=outside_listed)
        memo["stream_watch"] = asyncio.create_task(watch.run(), name="stream-watch")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    router = memo.get("router")
    if isinstance(router, RouterService):
        await router.stop()
    task = memo.get("stream_watch")
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if "runtime" in memo:  # absent when startup never succeeded
        await _rt(memo).close()


# The daemons read the Jobs of their Workflow from this in-memory index (fed by a watch).
@kopf.index("batch", "v1", "jobs", labels={naming.LABEL_MANAGED_BY: naming.MANAGED_BY})
def mediaflow_jobs(body: kopf.Body, **_: Any) -> dict[str, JobView]:
    view = job_view(dict(body))
    return {view.workflow_uid: view}


# A Job changed: its Workflow's dispatcher wakes (it sleeps while idle). A deleted Job
# frees its slot at once, also when kopf merged its ADDED and DELETED events and the
# index never showed it (job_views.PendingJobs). Async: kopf runs sync handlers in
# threads, and asyncio events are set from the loop only.
@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_MANAGED_BY: naming.MANAGED_BY})
async def job_changed(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if "runtime" in memo:
        rt = _rt(memo)
        rt.wakeups.ring(forget_deleted_job(rt.pending_jobs, type, dict(body)))


# The Workflow changed (spec, a manual request, suspension): its dispatcher wakes,
# and the templates it started or stopped using update their usedBy.
@kopf.on.event(*WORKFLOWS)
async def workflow_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    if "runtime" in memo:
        rt = _bind(memo, kwargs)
        rt.wakeups.ring(workflows.ref(body).uid)
        await template_watch.on_workflow_event(rt, type, dict(body))


# Templates (template_refs.py): both kinds indexed, and each Workflow's references, so
# kopf judges no Workflow before every template is read. A template's change re-judges
# the Workflows that use it (template_watch.py).
@kopf.index(*template_refs.MEDIA_TEMPLATES)
def mediaflow_templates(
    body: kopf.Body, **_: Any
) -> dict[TemplateKey, template_refs.TemplateEntry]:
    return template_refs.entry_of(body)


@kopf.index(*template_refs.CLUSTER_MEDIA_TEMPLATES)
def mediaflow_cluster_templates(
    body: kopf.Body, **_: Any
) -> dict[TemplateKey, template_refs.TemplateEntry]:
    return template_refs.entry_of(body)


@kopf.index(*WORKFLOWS)
def mediaflow_template_users(
    body: kopf.Body, **_: Any
) -> dict[TemplateKey, template_refs.TemplateUser]:
    return template_refs.users_of(body)


@kopf.on.event(*template_refs.MEDIA_TEMPLATES)
async def media_template_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    if "runtime" in memo:
        await template_watch.on_template_event(_bind(memo, kwargs), type, dict(body))


@kopf.on.event(*template_refs.CLUSTER_MEDIA_TEMPLATES)
async def cluster_media_template_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    if "runtime" in memo:
        await template_watch.on_template_event(_bind(memo, kwargs), type, dict(body))


def _bind(memo: kopf.Memo, kwargs: dict[str, Any]) -> Runtime:
    """The runtime, with the template indices of this handler call bound to its catalog."""
    rt = _rt(memo)
    rt.templates.bind(kwargs)
    return rt


# The Workflows of each trigger bucket, kept by the Workflow watch: a bucket's rule is
# computed from it, never from a list of all Workflows (bucket_index.py). kopf runs no
# handler before every Workflow listed at start is indexed.
@kopf.index(*WORKFLOWS)
def mediaflow_buckets(body: kopf.Body, **_: Any) -> dict[str, BucketShare]:
    return bucket_index.share_of(body)


# Where the router sends each bucket's events: the active Workflows with a consumer
# (routing.py). Changes with the same watch event that shows a Workflow's rule ready.
@kopf.index(*WORKFLOWS)
def mediaflow_routes(body: kopf.Body, **_: Any) -> dict[str, Route]:
    return routing.route_of(body)


# The Workflows of each namespace that use the default storage Secret: its copy there is
# deleted when none is left (default_storage.release_unused), without listing Workflows.
@kopf.index(*WORKFLOWS)
def mediaflow_storage_users(body: kopf.Body, **_: Any) -> dict[str, str]:
    return default_storage.user_of(body)


def _indices(kwargs: dict[str, Any]) -> reconcile.Indices:
    # Every handler that reconciles binds the template indices too (template_refs).
    """The indices above, as kopf passes them (by the functions' names; kopf's
    handler protocols do not know those names, so they are read from the kwargs)."""
    return reconcile.Indices(
        buckets=kwargs["mediaflow_buckets"], storage_users=kwargs["mediaflow_storage_users"]
    )


# Reconcile on create, on every spec change, and on operator start (resume).
@kopf.on.resume(*WORKFLOWS, timeout=RECONCILE_TIMEOUT)
@kopf.on.create(*WORKFLOWS, timeout=RECONCILE_TIMEOUT)
@kopf.on.update(*WORKFLOWS, field="spec", timeout=RECONCILE_TIMEOUT)
async def reconcile_workflow(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    old: Any = None,
    new: Any = None,
    reason: str = "",
    **kwargs: Any,
) -> None:
    old_buckets: tuple[str, ...] = ()
    if isinstance(old, dict):
        old_bucket = (old.get("trigger") or {}).get("bucket")
        old_buckets = (old_bucket,) if old_bucket else ()
    was_suspended = bool(old.get("suspend")) if isinstance(old, dict) else None
    result = await reconcile.reconcile(
        _bind(memo, kwargs), dict(body), _indices(kwargs), old_buckets=old_buckets
    )
    if result.permanent:
        raise kopf.PermanentError(result.permanent)
    suspended = bool((body.get("spec") or {}).get("suspend"))
    if was_suspended is not None and was_suspended != suspended:
        kopf.info(
            body,
            reason="Suspended" if suspended else "Resumed",
            message="no new work" if suspended else "processing new uploads again",
        )
    if result.retry:
        raise kopf.TemporaryError(
            "not ready: "
            + "; ".join(f"{t}: {s.message}" for t, s in result.steps.items() if not s.ok),
            delay=10,
        )
    if result.ready:
        logger.info("reconciled (%s): ready", reason or "resume")
    else:
        # Not retried: only a spec change can fix it (e.g. JobTemplateValid=False).
        logger.warning(
            "reconciled (%s): not ready: %s",
            reason or "resume",
            "; ".join(f"{t}: {s.message}" for t, s in result.steps.items() if s.ok is False),
        )


def _first_periodic_delay(body: kopf.Body, **_: Any) -> float:
    return bucket_index.periodic_delay(workflows.ref(body).uid, SETTINGS.reconcile_interval_seconds)


# Periodic re-reconcile: MinIO rules edited by others, NATS restarts, late buckets; the
# safety net for a rule written from a stale index. Each Workflow at its own offset.
@kopf.timer(
    *WORKFLOWS,
    interval=SETTINGS.reconcile_interval_seconds,
    initial_delay=_first_periodic_delay,
    idle=10,
)
async def reconcile_periodically(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    await reconcile.reconcile(_bind(memo, kwargs), dict(body), _indices(kwargs))
    # The stream's fill alarm (stream_watch) on each dispatching Workflow, once
    # when it starts and once when it ends (memo is this Workflow's own here).
    alarm, shown = _rt(memo).stream_alarm, str(memo.get("stream_alarm_shown", ""))
    if workflows.may_dispatch(body) and bool(alarm) != bool(shown):
        if alarm:
            kopf.warn(body, reason="StreamNearlyFull", message=alarm)
        else:
            kopf.info(body, reason="StreamUsageNormal", message="the event stream has room again")
        memo["stream_alarm_shown"] = alarm


# Deleting: our consumer and our share of the bucket rule go (owned Jobs are garbage-collected).
@kopf.on.delete(*WORKFLOWS, timeout=RECONCILE_TIMEOUT)
async def finalize_workflow(
    body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    await reconcile.finalize(_rt(memo), dict(body), _indices(kwargs))
    ref = workflows.ref(body)
    metrics.forget_workflow(ref.namespace, ref.name)  # its series end with it
    logger.info("removed consumer and bucket rule")


# One dispatcher per Workflow: pulls its routed events while below maxConcurrentJobs
# (the router runs while any dispatcher does), counts results,
# serves manual triggers (`mediaflow process`) and sweeps for lost events. On stop it gets
# 5 s to finish its step and write the status before it is cancelled (at most 20 s in all:
# the peering handover waits that long, see Settings.peering_handover_seconds).
DAEMON_CANCELLATION_BACKOFF = 5
DAEMON_CANCELLATION_TIMEOUT = 15


@kopf.daemon(  # type: ignore[arg-type]
    *WORKFLOWS,
    cancellation_backoff=DAEMON_CANCELLATION_BACKOFF,
    cancellation_timeout=DAEMON_CANCELLATION_TIMEOUT,
)
async def dispatcher(
    body: kopf.Body,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    mediaflow_jobs: kopf.Index[str, JobView],
    mediaflow_routes: kopf.Index[str, Route],
    **kwargs: Any,
) -> None:
    uid = workflows.ref(body).uid

    def jobs() -> list[JobView]:
        return list(mediaflow_jobs.get(uid, []))

    def post_event(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    if SETTINGS.peering_name and SETTINGS.peering_handover_seconds > 0:
        # This replica may have just taken over from a peer that was paused a moment
        # ago: let that peer's dispatcher finish and write its counters first, then
        # read them. Two dispatchers of one Workflow would overwrite each other's counts.
        await stopped.wait(SETTINGS.peering_handover_seconds)
        if stopped:
            return
    _bind(memo, kwargs)
    router: RouterService = memo["router"]
    router.acquire(mediaflow_routes)
    try:
        await dispatch.Dispatcher(_rt(memo), body, jobs, post_event).run(stopped)
    finally:
        await router.release()
    if body.get("metadata", {}).get("deletionTimestamp"):
        # Stopped for the deletion: a last step may have set a series after the
        # delete handler removed them.
        ref = workflows.ref(body)
        metrics.forget_workflow(ref.namespace, ref.name)
