"""Operator-wide care of the JetStream stream: one background task per process
(started by ``handlers.startup``), the one place that looks at the stream as a
whole rather than at one Workflow.

Every ``stream_check_seconds`` it

- ensures the stream (re-created with its limits when it was deleted) and
  compares its identity (``queue.stream_identity``: its creation time) with the
  one seen before. A stream that was deleted or replaced, by anyone, loses every
  consumer, and with interest retention a stream without consumers keeps
  nothing: so the consumer of every dispatching Workflow is re-created at once,
  not one by one at the next periodic reconcile;
- publishes the stream's fill (bytes and messages vs. their limits) as metrics,
  and sets ``Runtime.stream_alarm`` above ``stream_alarm_ratio`` (a warning in
  the log here; the Workflows show it as a Warning Event and in QueueReady);
- every ``BACKLOG_REPORT_SECONDS``, sets each Workflow's backlog gauge from one
  paged listing of the consumers (a dispatcher asks NATS nothing while idle);

and every ``orphan_sweep_seconds`` it deletes *orphan* consumers: ours by
name and description (``queue.CONSUMER_PREFIX``/``CONSUMER_DESCRIPTION``) whose
Workflow no longer exists, e.g. one whose finalizer kopf gave up while NATS was
unreachable. Consumers are listed *before* the Workflows, so a consumer created
meanwhile always belongs to a Workflow the listing sees. This listing, not the
watch-fed index of Workflows (``bucket_index``), is the truth here: it is one
list per interval for the whole operator, and kopf's index keeps an entry of a
Workflow deleted while the watch was down (a re-list adds, it never removes),
which would hide that Workflow's orphan for good.

With ``MEDIAFLOW_NAMESPACES`` set it also refreshes, at the same interval,
``Runtime.outside_shares``: the trigger buckets of Workflows in namespaces this
operator does not watch, whose prefixes a shared bucket's rule keeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mediaflow_operator import bucket_index, metrics, naming, queue, routing, workflows
from mediaflow_operator.runtime import Runtime

logger = logging.getLogger(__name__)

# How often the backlog gauges are refreshed: well within a scrape interval.
BACKLOG_REPORT_SECONDS = 10.0


@dataclass(frozen=True)
class Usage:
    """The stream's fill and its limits (a limit <= 0 means none)."""

    bytes: int
    messages: int
    max_bytes: int
    max_msgs: int

    @property
    def ratio(self) -> float:
        """The fuller of the two measures, as a fraction of its limit."""
        ratios = [
            used / limit
            for used, limit in ((self.bytes, self.max_bytes), (self.messages, self.max_msgs))
            if limit > 0
        ]
        return max(ratios, default=0.0)


def alarm_message(stream: str, usage: Usage, threshold: float) -> str:
    """Why the stream needs attention ("" below ``threshold``)."""
    if usage.ratio < threshold:
        return ""
    return (
        f"stream {stream} is {usage.ratio:.0%} full ({usage.bytes} of {usage.max_bytes} bytes, "
        f"{usage.messages} of {usage.max_msgs} messages): at the limit MinIO's events are "
        "refused and wait in MinIO's queue_dir; a Workflow that does not keep up holds them"
    )


def owner_of(description: str) -> tuple[str, str] | None:
    """(namespace, name) from a consumer description we wrote, else None."""
    head, _, rest = description.partition(" ")
    namespace, _, name = rest.partition("/")
    if head != "Workflow" or not namespace or not name:
        return None
    return namespace, name


def _owner_here(name: str, description: str, namespaces: tuple[str, ...]) -> tuple[str, str] | None:
    """(namespace, name) of the Workflow owning one of *our* consumers, when
    this operator serves its namespace (``namespaces`` empty: all); else None."""
    owner = owner_of(description)
    if not name.startswith(queue.CONSUMER_PREFIX) or owner is None:
        return None  # not ours
    if namespaces and owner[0] not in namespaces:
        return None  # another operator may serve it on the same stream
    return owner


def orphan_consumers(
    consumers: Iterable[tuple[str, str]], live: set[str], namespaces: tuple[str, ...] = ()
) -> list[str]:
    """Names of our consumers (name, description) that no live Workflow owns;
    with ``namespaces`` set, only those of Workflows in them."""
    return sorted(
        name
        for name, description in consumers
        if _owner_here(name, description, namespaces) is not None and name not in live
    )


def backlogs(
    consumers: Iterable[tuple[str, str, int]], namespaces: tuple[str, ...] = ()
) -> dict[tuple[str, str], int]:
    """(namespace, name) -> messages waiting, from our consumers (name,
    description, pending + unacked); with ``namespaces`` set only theirs."""
    found = {}
    for name, description, waiting in consumers:
        owner = _owner_here(name, description, namespaces)
        if owner is not None:
            found[owner] = waiting
    return found


def consumer_of(body: Mapping[str, Any]) -> str:
    """The consumer name a Workflow owns (whether or not it exists now)."""
    ident = workflows.ref(body)
    return naming.consumer_name(ident.namespace, ident.name, ident.uid)


def dispatching(body: Mapping[str, Any]) -> bool:
    """Whether the Workflow reads its consumer (reconcile set ``status.consumer``)."""
    return workflows.is_active(body) and bool((body.get("status") or {}).get("consumer"))


async def refresh_outside_shares(rt: Runtime) -> None:
    """``Runtime.outside_shares`` from a cluster-wide list of Workflows (with
    ``MEDIAFLOW_NAMESPACES`` set; the chart grants that ``list``)."""
    items = await rt.kube.list_workflows()
    rt.outside_shares = bucket_index.outside_shares(items, rt.settings.namespaces)


class StreamWatch:
    """The periodic check; ``run`` until cancelled."""

    def __init__(self, rt: Runtime, *, outside_listed: bool = False) -> None:
        """``outside_listed``: the startup handler has just listed the Workflows
        outside the watched namespaces; the first refresh is an interval later."""
        self.rt = rt
        self.seen_id = ""
        self.next_orphan_sweep = 0.0
        self.next_backlog_report = 0.0
        self.next_outside_refresh = (
            time.monotonic() + rt.settings.orphan_sweep_seconds if outside_listed else 0.0
        )

    async def _workflows(self) -> list[dict[str, Any]]:
        items = await self.rt.kube.list_workflows()
        namespaces = self.rt.settings.namespaces
        return [w for w in items if not namespaces or workflows.ref(w).namespace in namespaces]

    async def check(self) -> None:
        """One round: stream identity, fill, and (when due) orphans."""
        settings = self.rt.settings
        if settings.namespaces and time.monotonic() >= self.next_outside_refresh:
            # Before NATS and on its own: the bucket rules need these whether or
            # not NATS is there, and a failed list must not stop the stream checks.
            self.next_outside_refresh = time.monotonic() + settings.orphan_sweep_seconds
            try:
                await refresh_outside_shares(self.rt)
            except Exception as exc:
                logger.warning(
                    "Workflows outside the watched namespaces not listed (their prefixes "
                    "on shared buckets are as of the last list): %s: %s",
                    type(exc).__name__,
                    exc,
                )
        js = await self.rt.jetstream(check_stream=True)
        current = self.rt.stream_id
        if self.seen_id and current != self.seen_id:
            logger.warning(
                "stream %s was deleted or replaced (created %s, before %s): "
                "re-creating the consumers of all dispatching Workflows",
                settings.nats_stream,
                current,
                self.seen_id,
            )
            metrics.STREAM_RESETS.inc()
            await self.restore_consumers()
        self.seen_id = current
        info = await js.stream_info(settings.nats_stream)
        self.report(
            Usage(
                bytes=int(info.state.bytes),
                messages=int(info.state.messages),
                max_bytes=int(info.config.max_bytes or -1),
                max_msgs=int(info.config.max_msgs or -1),
            )
        )
        if time.monotonic() >= self.next_backlog_report:
            await self.report_backlogs()
            self.next_backlog_report = time.monotonic() + BACKLOG_REPORT_SECONDS
        if time.monotonic() >= self.next_orphan_sweep:
            await self.delete_orphans()
            self.next_orphan_sweep = time.monotonic() + settings.orphan_sweep_seconds

    async def restore_consumers(self) -> int:
        """Create the consumer of every dispatching Workflow; how many were missing."""
        settings = self.rt.settings
        js = await self.rt.jetstream()
        created = 0
        for body in await self._workflows():
            if not dispatching(body):
                continue
            ident = workflows.ref(body)
            description = queue.CONSUMER_DESCRIPTION.format(
                namespace=ident.namespace, name=ident.name
            )
            subject = routing.work_subject(settings.nats_work_subject_prefix, ident.uid)
            if await queue.ensure_consumer(
                js, settings.nats_stream, consumer_of(body), subject, description
            ):
                created += 1
        logger.info("re-created %d consumer(s) on stream %s", created, settings.nats_stream)
        return created

    def report(self, usage: Usage) -> None:
        """Fill metrics, and the alarm when it starts or stops."""
        metrics.STREAM_BYTES.set(usage.bytes)
        metrics.STREAM_MESSAGES.set(usage.messages)
        metrics.STREAM_MAX_BYTES.set(usage.max_bytes)
        metrics.STREAM_MAX_MESSAGES.set(usage.max_msgs)
        metrics.STREAM_FILL_RATIO.set(usage.ratio)
        alarm = alarm_message(
            self.rt.settings.nats_stream, usage, self.rt.settings.stream_alarm_ratio
        )
        if alarm and not self.rt.stream_alarm:
            logger.warning("%s", alarm)
        elif not alarm and self.rt.stream_alarm:
            logger.info("stream %s is below its alarm level again", self.rt.settings.nats_stream)
        self.rt.stream_alarm = alarm

    async def report_backlogs(self) -> None:
        """Every dispatching Workflow's ``mediaflow_backlog_messages`` from one
        paged listing of the consumers, instead of a request per Workflow."""
        js = await self.rt.jetstream()
        listed = [
            (
                c.name,
                (c.config.description or "") if c.config else "",
                int(c.num_pending or 0) + int(c.num_ack_pending or 0),
            )
            for c in await queue.list_consumers(js, self.rt.settings.nats_stream)
        ]
        found = backlogs(listed, self.rt.settings.namespaces)
        # Only Workflows dispatching here: a deleted one's series is gone for good
        # (metrics.forget_workflow), a standby replica sets none. No consumer
        # (suspended): nothing waits.
        for owner in list(self.rt.dispatching):
            metrics.BACKLOG.labels(*owner).set(found.get(owner, 0))

    async def delete_orphans(self) -> list[str]:
        """Delete our consumers whose Workflow is gone; their names."""
        stream = self.rt.settings.nats_stream
        js = await self.rt.jetstream()
        # Consumers first, then Workflows: see the module docstring.
        consumers = [
            (c.name, (c.config.description or "") if c.config else "")
            for c in await queue.list_consumers(js, stream)
        ]
        live = {consumer_of(w) for w in await self.rt.kube.list_workflows()}
        orphans = orphan_consumers(consumers, live, self.rt.settings.namespaces)
        for name in orphans:
            if await queue.delete_consumer(js, stream, name):
                metrics.ORPHAN_CONSUMERS_DELETED.inc()
                logger.warning(
                    "deleted orphan consumer %s on stream %s (no such Workflow)", name, stream
                )
        return orphans

    async def run(self) -> None:
        """Check forever; a failed round (NATS or the API away) is logged and retried."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream check failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.rt.settings.stream_check_seconds)
