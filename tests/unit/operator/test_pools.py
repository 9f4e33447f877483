"""Each kind of blocking call has its own bounded pool: a MinIO call stuck in
the storage pool does not delay a Kubernetes call (real threads, no sleeps)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from mediaflow_operator.kube import Kube
from mediaflow_operator.pools import Pool
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit

DEADLINE = 10.0  # seconds; only reached when the behaviour under test is broken


class StuckMinio:
    """``bucket_exists`` blocks its thread until released (a MinIO that hangs)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def bucket_exists(self, bucket: str) -> bool:
        self.entered.set()
        return self.release.wait(DEADLINE)


def _runtime(minio: StuckMinio, *, kube_threads: int, storage_threads: int) -> Runtime:
    kube = Kube(client.ApiClient(client.Configuration()), Pool("kube", kube_threads))

    def create_namespaced_job(namespace: str, body: dict[str, Any], **_: Any) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(uid=f"uid-{body['metadata']['name']}"))

    kube.batch.create_namespaced_job = create_namespaced_job  # type: ignore[method-assign,assignment]
    return Runtime(
        settings=Settings(),
        kube=kube,
        minio=minio,  # type: ignore[arg-type]
        storage_pool=Pool("storage", storage_threads),
    )


def test_a_stuck_storage_call_does_not_delay_a_kubernetes_call() -> None:
    minio = StuckMinio()
    rt = _runtime(minio, kube_threads=1, storage_threads=1)

    async def scenario() -> None:
        stuck = asyncio.create_task(rt.storage(minio.bucket_exists, "media"))
        queued = asyncio.create_task(rt.storage(minio.bucket_exists, "other"))
        assert await asyncio.to_thread(minio.entered.wait, DEADLINE), "storage call started"
        # The storage pool's only thread is held; a Job create still goes through.
        uid = await asyncio.wait_for(
            rt.kube.create_job("ns", {"metadata": {"name": "mf-a"}}), DEADLINE
        )
        assert uid == "uid-mf-a"
        assert not stuck.done(), "the storage call waits for MinIO"
        assert not queued.done(), "the next one waits for the storage pool"
        minio.release.set()
        done = await asyncio.wait_for(asyncio.gather(stuck, queued), DEADLINE)
        assert list(done) == [True, True]
        await rt.close()

    asyncio.run(scenario())


def test_close_shuts_the_pools_down() -> None:
    rt = _runtime(StuckMinio(), kube_threads=2, storage_threads=2)

    async def scenario() -> None:
        await rt.close()
        with pytest.raises(RuntimeError, match="shutdown"):
            await rt.storage(len, "abc")
        with pytest.raises(RuntimeError, match="shutdown"):
            await rt.kube.create_job("ns", {"metadata": {"name": "mf-a"}})

    asyncio.run(scenario())


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="")


def test_a_call_runs_in_a_named_thread_of_its_pool_with_the_callers_context() -> None:
    """As asyncio.to_thread did: context variables reach the call; the thread's
    name says which pool it belongs to (the SIGUSR1 dump shows it)."""
    pool = Pool("storage", 1)

    def seen() -> tuple[str, str]:
        return threading.current_thread().name, REQUEST.get()

    async def scenario() -> tuple[str, str]:
        REQUEST.set("r-1")
        return await pool.run(seen)

    try:
        name, request = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert name.startswith("storage")
    assert request == "r-1"


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        Pool("empty", 0)
