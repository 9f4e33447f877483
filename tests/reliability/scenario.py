"""What every fault scenario shares: a Workflow, bursts of uploads, a watch that sees
every Job ever created, and the exactly-once verdict.

The verdict is the suite's definition of "nothing lost, nothing run twice, nothing
silent" (docs/reliability.md): every accepted upload has exactly one Job (for its
object version) and one manifest naming it, the Workflow's counters are exactly the
uploads, nothing is running and the Workflow's queue consumer has nothing pending.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from mediaflow_api.metadata import MANIFEST_NAME, output_dir_for
from mediaflow_operator.naming import ANNOTATION_ETAG, ANNOTATION_KEY
from tests.e2e.harness import Stack, counters
from tests.support.waiting import wait_for

PREFIX = "in/"
JOB_SELECTOR = "app.kubernetes.io/managed-by=mediaflow-operator"
# Jobs stay for a day: the test counts every Job the operator ever created.
RETENTION_SECONDS = 86_400


def manifest_key(stack: Stack, workflow: str, key: str) -> str:
    """Where the manifest of ``key`` processed by ``workflow`` lives."""
    return output_dir_for(key, PREFIX, PREFIX, stack.namespace, workflow) + MANIFEST_NAME


class JobRecorder:
    """Every Job created in a namespace, from a watch of its own (a thread).

    Like a reflector it resumes a broken watch from the last resourceVersion it
    saw, and lists again when told 410 Gone; ``gone`` counts those answers (the
    proof that an API-server fault expired watches)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.jobs: dict[str, tuple[str, str]] = {}  # uid -> (key, etag)
        self.gone = 0
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-recorder", daemon=True)

    def __enter__(self) -> JobRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def count(self) -> int:
        with self._lock:
            return len(self.jobs)

    def by_key(self) -> dict[str, list[str]]:
        """Key -> the uids of its Jobs."""
        with self._lock:
            out: dict[str, list[str]] = {}
            for uid, (key, _) in self.jobs.items():
                out.setdefault(key, []).append(uid)
            return out

    def _see(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        notes = meta.get("annotations") or {}
        with self._lock:
            self.jobs[meta["uid"]] = (notes.get(ANNOTATION_KEY, ""), notes.get(ANNOTATION_ETAG, ""))

    def _list(self) -> str:
        listed = self.batch.list_namespaced_job(self.namespace, label_selector=JOB_SELECTOR)
        for job in listed.items:
            self._see(self.batch.api_client.sanitize_for_serialization(job))
        return str(listed.metadata.resource_version)

    def _watch(self, since: str) -> str | None:
        """Watch from ``since``; returns where to resume, None to list again."""
        response: Any = self.batch.list_namespaced_job(  # an HTTP response: not preloaded
            self.namespace,
            label_selector=JOB_SELECTOR,
            watch=True,
            resource_version=since,
            allow_watch_bookmarks=True,
            timeout_seconds=10,
            _preload_content=False,
            _request_timeout=(3, 20),
        )
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    if obj.get("code") == 410:
                        self.gone += 1
                        return None
                    raise RuntimeError(f"watch error: {obj}")
                since = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    self._see(obj)
        finally:
            response.release_conn()
        return since

    def _run(self) -> None:
        since: str | None = None
        while not self._stop.is_set():
            try:
                since = self._list() if since is None else self._watch(since)
            except ApiException as exc:
                if exc.status == 410:
                    self.gone += 1
                    since = None
                else:
                    self.reconnects += 1
                    self._stop.wait(0.5)  # back off before resuming; not synchronisation
            except Exception:  # the API server is down: resume from `since`
                self.reconnects += 1
                self._stop.wait(0.5)

    def final(self) -> dict[str, list[str]]:
        """Every Job seen, after one last list (nothing the watch missed)."""
        wait_for(lambda: self._list() or True, 60, "a final list of the Jobs")
        return self.by_key()


@dataclass
class Uploads:
    """Uploads of one scenario: what was tried, what MinIO accepted, when."""

    stack: Stack
    bucket: str
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    first_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, key: str) -> bool:
        """One upload; an error means MinIO did not accept it (no retry here)."""
        if self.first_at is None:
            self.first_at = time.monotonic()
        try:
            self.stack.upload(self.bucket, key, f"media bytes of {key}".encode())
        except Exception:  # refused during a fault: recorded, not accepted
            with self._lock:
                self.refused.append(key)
            return False
        with self._lock:
            self.accepted.append(key)
        return True

    def burst(self, keys: Iterable[str], pace: float = 0.0) -> None:
        """Upload ``keys`` one after another (``pace`` seconds apart: the load's shape)."""
        for key in keys:
            self.put(key)
            if pace:
                time.sleep(pace)

    def burst_in_background(self, keys: Iterable[str], pace: float = 0.0) -> threading.Thread:
        keys = list(keys)
        thread = threading.Thread(target=self.burst, args=(keys, pace), daemon=True)
        thread.start()
        return thread


def keys(label: str, count: int) -> list[str]:
    return [f"{PREFIX}{label}-{i:03d}.mp4" for i in range(count)]


def create_workflow(
    stack: Stack, name: str, bucket: str, *, concurrency: int = 6, backoff_limit: int = 2
) -> str:
    """A Workflow on ``bucket/in/`` whose Jobs are kept (so each can be counted);
    returns its uid once it is Ready."""
    wf = stack.create_workflow(
        name,
        {
            "trigger": {"bucket": bucket, "prefix": PREFIX},
            "tasks": [{"name": "probe", "analysis": {}}],
            "execution": {
                "maxConcurrentJobs": concurrency,
                "backoffLimit": backoff_limit,
                "finishedJobRetentionSeconds": RETENTION_SECONDS,
            },
        },
    )
    stack.wait_ready(name)
    return str(wf["metadata"]["uid"])


def consumer_pending(nats_url: str, stream: str, durable: str) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acked) of a durable consumer."""
    import nats

    async def ask() -> tuple[int, int]:
        nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            info = await nc.jetstream().consumer_info(stream, durable)
            return int(info.num_pending or 0), int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return asyncio.run(ask())


def input_objects(stack: Stack, bucket: str) -> list[str]:
    """The uploads present in the bucket (outputs and folder markers aside)."""
    return sorted(
        str(o.object_name)
        for o in stack.minio.list_objects(bucket, prefix=PREFIX, recursive=True)
        if ".mediaflow/" not in str(o.object_name) and not str(o.object_name).endswith("/")
    )


def settle(
    stack: Stack,
    workflow: str,
    nats_url: str,
    stream: str,
    *,
    expected: int,
    timeout: float,
    since: float,
) -> tuple[dict[str, int], float]:
    """Wait until ``expected`` results are counted, nothing runs and the consumer is
    drained; returns the counters and the seconds since ``since``."""

    def done() -> dict[str, int] | None:
        status = stack.status(workflow)
        c = counters(status)
        if c["succeeded"] + c["failed"] + c["skipped"] < expected or c["running"]:
            return None
        pending, unacked = consumer_pending(nats_url, stream, str(status["consumer"]))
        return c if pending == 0 and unacked == 0 else None

    final = wait_for(
        done,
        timeout,
        f"{expected} results of {workflow}, consumer drained\n{stack.operator.log_tail(80)}",
        interval=0.5,
    )
    return final, time.monotonic() - since


def check_exactly_once(
    stack: Stack,
    workflow: str,
    bucket: str,
    uploads: Uploads,
    recorder: JobRecorder,
    final: dict[str, int],
    *,
    gone: Iterable[str] = (),
) -> dict[str, Any]:
    """Assert the exactly-once verdict; returns the figures for the results table.

    ``gone``: keys of events for objects that do not exist (deleted): each may get
    at most one Job and is counted once, as failed or skipped."""
    gone = sorted(gone)
    present = input_objects(stack, bucket)
    missing = sorted(set(uploads.accepted) - set(present))
    assert not missing, f"accepted uploads missing from MinIO: {missing}"
    jobs = recorder.final()
    stray = sorted(set(jobs) - set(present) - set(gone))
    assert not stray, f"Jobs for objects nobody uploaded: {stray}"
    twice = {k: v for k, v in jobs.items() if len(v) > 1}
    assert not twice, f"objects with more than one Job: {twice}"
    lost = sorted(set(present) - set(jobs))
    assert not lost, f"uploads never given a Job (lost): {lost}"
    assert final["received"] == len(present) + len(gone), (
        f"counters {final}: received must be {len(present)} uploads + {len(gone)} deleted"
    )
    assert final["succeeded"] == len(present), (
        f"counters {final}: {len(present)} uploads must have succeeded"
    )
    assert final["running"] == 0, f"counters {final}: nothing may be running"
    assert final["failed"] + final["skipped"] == len(gone), (
        f"counters {final}: only the {len(gone)} deleted objects may fail or be skipped"
    )
    without = [k for k in present if not has_manifest_for(stack, workflow, bucket, k)]
    assert not without, f"processed uploads without a manifest naming them: {without}"
    return {
        "accepted": len(uploads.accepted),
        "refused": len(uploads.refused),
        "Jobs": sum(len(v) for v in jobs.values()),
        "max Jobs/object": max((len(v) for v in jobs.values()), default=0),
        "manifests": len(present),
        "counters": final,
    }


def has_manifest_for(stack: Stack, workflow: str, bucket: str, key: str) -> bool:
    """The manifest of ``key`` exists and names ``key`` as its input."""
    try:
        response = stack.minio.get_object(bucket, manifest_key(stack, workflow, key))
    except Exception:  # no such manifest
        return False
    try:
        doc = json.loads(response.read())
        # Manifests name their input as {"bucket", "key", "etag"} (the worker's and the
        # stand-in worker's alike).
        return bool((doc.get("input") or {}).get("key") == key)
    finally:
        response.close()
        response.release_conn()
