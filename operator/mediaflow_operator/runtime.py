"""Long-lived clients shared by all handlers of one operator process (kopf memo)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import certifi
import nats
import urllib3
from minio import Minio
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from mediaflow_operator import queue, routing
from mediaflow_operator.bucket_index import BucketShare
from mediaflow_operator.doorbell import Doorbells
from mediaflow_operator.job_views import PendingJobs
from mediaflow_operator.kube import Kube, load_config
from mediaflow_operator.notify import outbox
from mediaflow_operator.notify.egress import EgressPolicy
from mediaflow_operator.notify.webhook import WebhookSender
from mediaflow_operator.pools import Pool
from mediaflow_operator.settings import Settings
from mediaflow_operator.template_refs import TemplateCatalog

if TYPE_CHECKING:
    from mediaflow_operator.notify.nats_sink import NatsPublisher

logger = logging.getLogger(__name__)
T = TypeVar("T")


# minio-py waits up to 5 minutes for a connect and for each read, and retries
# 5 times: one stuck request then holds a dispatcher step (the sweep's manifest
# check, a listing) for minutes. The operator's requests are small; a stuck one
# fails fast and the step is tried again.
MINIO_CONNECT_SECONDS = 5.0
MINIO_READ_SECONDS = 30.0


def minio_http_client(connections: int) -> urllib3.PoolManager:
    """The operator's MinIO connection pool: bounded waits, few retries, one
    connection per thread of the storage pool."""
    return urllib3.PoolManager(
        timeout=urllib3.util.Timeout(connect=MINIO_CONNECT_SECONDS, read=MINIO_READ_SECONDS),
        maxsize=connections,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.util.Retry(
            total=3, read=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


@dataclass
class Runtime:
    """The clients, and the thread pool of each kind of blocking call: Kubernetes
    calls run in ``kube.pool``, MinIO calls in ``storage_pool`` (``pools``)."""

    settings: Settings
    kube: Kube
    minio: Minio
    storage_pool: Pool
    _nc: NATS | None = None
    _js: JetStreamContext | None = None
    _stream_ready: bool = False
    stream_id: str = ""  # identity of the stream last ensured (queue.stream_identity)
    stream_alarm: str = ""  # why the stream is nearly full ("" when it is not; stream_watch)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    api_server_addresses: tuple[str, ...] = ()  # refused as notification targets (egress)
    _notify: tuple[WebhookSender, NatsPublisher] | None = None
    # With MEDIAFLOW_NAMESPACES: the trigger buckets of Workflows in the namespaces
    # this operator does not watch (so not in its index), whose prefixes a shared
    # bucket's rule must keep; refreshed by stream_watch from a slow cluster-wide list.
    outside_shares: dict[str, list[BucketShare]] = field(default_factory=dict)
    # The router rings a Workflow's dispatcher when it stored events for it.
    doorbells: Doorbells = field(default_factory=Doorbells)
    # Rung when one of a Workflow's Jobs or the Workflow itself changed, or its
    # sweep found work: an idle dispatcher sleeps until then (dispatch._pause).
    wakeups: Doorbells = field(default_factory=Doorbells)
    # (namespace, name) of the Workflows whose dispatcher runs in this process:
    # the backlog gauges are set for these only (stream_watch).
    dispatching: set[tuple[str, str]] = field(default_factory=set)
    # Workflow UID -> the Jobs its dispatcher created and the index does not show
    # yet; the Job watch's DELETED events clear them (handlers.job_deleted).
    pending_jobs: dict[str, PendingJobs] = field(default_factory=dict)
    # The templates and who uses them (kopf's indices, bound by handlers.py).
    templates: TemplateCatalog = field(default_factory=TemplateCatalog)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        minio = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region or None,
            http_client=minio_http_client(settings.storage_threads),
        )
        api_client = load_config(settings.kube_threads)
        return cls(
            settings=settings,
            kube=Kube(api_client, Pool("kube", settings.kube_threads)),
            minio=minio,
            storage_pool=Pool("storage", settings.storage_threads),
        )

    async def storage(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking MinIO call, ``fn(*args, **kwargs)``, in the storage pool."""
        return await self.storage_pool.run(fn, *args, **kwargs)

    async def jetstream(self, *, check_stream: bool = False) -> JetStreamContext:
        """The JetStream context, connecting (and ensuring the stream and the
        router's consumer) on first use; ``check_stream`` re-checks both (a NATS
        without persistence may lose them)."""
        async with self._lock:
            if check_stream:
                self._stream_ready = False
            if self._nc is None or self._nc.is_closed:
                self._nc = await nats.connect(
                    self.settings.nats_url,
                    name="mediaflow-operator",
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                )
                self._js = self._nc.jetstream(timeout=10)
                self._stream_ready = False
            assert self._js is not None
            if not self._stream_ready:
                settings = self.settings
                subjects = [
                    settings.nats_subject,
                    routing.work_subjects(settings.nats_work_subject_prefix),
                ]
                info = await queue.ensure_stream(
                    self._js, settings.nats_stream, subjects, self.limits
                )
                self.stream_id = queue.stream_identity(info)
                # Before any bucket rule makes MinIO publish: with interest
                # retention an event no consumer filters for is dropped at once.
                if await queue.ensure_router_consumer(
                    self._js,
                    settings.nats_stream,
                    self.router_durable,
                    settings.nats_subject,
                    settings.nats_stream_max_age_seconds,
                ):
                    logger.info(
                        "created router consumer %s on stream %s",
                        self.router_durable,
                        settings.nats_stream,
                    )
                await outbox.ensure_stream(self._js, self.settings)
                self._stream_ready = True
            return self._js

    async def nats(self) -> NATS:
        """The operator's NATS connection (connected, the streams ensured)."""
        await self.jetstream()
        assert self._nc is not None
        return self._nc

    @property
    def router_durable(self) -> str:
        """This operator's router consumer (``queue.router_durable``)."""
        return queue.router_durable(self.settings.namespaces)

    @property
    def limits(self) -> queue.StreamLimits:
        return queue.StreamLimits(
            max_age_seconds=self.settings.nats_stream_max_age_seconds,
            max_bytes=self.settings.nats_stream_max_bytes,
            max_msgs=self.settings.nats_stream_max_msgs,
            max_consumers=self.settings.nats_stream_max_consumers,
        )

    def notify_clients(self) -> tuple[WebhookSender, NatsPublisher]:
        """The process's webhook sender and NATS publisher (one connection pool,
        one egress policy for every Workflow), made on first use."""
        if self._notify is None:
            # nats_sink publishes through this Runtime: imported here, not at the top.
            from mediaflow_operator.notify.nats_sink import NatsPublisher

            policy = EgressPolicy.from_settings(
                allowed_cidrs=self.settings.notify_allowed_cidrs,
                denied_cidrs=self.settings.notify_denied_cidrs,
                api_server_addresses=self.api_server_addresses,
            )
            self._notify = (WebhookSender(policy), NatsPublisher(self, policy))
        return self._notify

    async def close(self) -> None:
        if self._notify is not None:
            sender, publisher = self._notify
            self._notify = None
            for closing in (sender.close(), publisher.close()):
                try:
                    await closing
                except Exception:  # closing anyway
                    logger.debug("notification client close failed", exc_info=True)
        if self._nc is not None and not self._nc.is_closed:
            # close, not drain: unacked messages are redelivered anyway, and a
            # drain waits for every pull subscription (up to 30 s on shutdown).
            try:
                await self._nc.close()
            except Exception:  # closing anyway
                logger.debug("NATS close failed", exc_info=True)
        self._nc = None
        self._js = None
        # Last: the closings above may still have needed a thread.
        self.kube.pool.shutdown()
        self.storage_pool.shutdown()
