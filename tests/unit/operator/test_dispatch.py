"""The dispatcher's ordering rules, with a fake Kubernetes API and fake queue messages.

What makes counting exact is *order*: the status write carrying the ledger goes
before the Job is marked counted, and before a skipped event is acked. These
tests record every call in one log and check that order, and what a restarted
dispatcher does with what it finds.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_operator import naming
from mediaflow_operator.dispatch import Dispatcher
from mediaflow_operator.settings import Settings
from mediaflow_operator.status import JobView, job_view
from mediaflow_spec.workflow import WorkflowSpec

from .samples import spec

pytestmark = pytest.mark.unit


@dataclass
class FakeKube:
    log: list[tuple[str, Any]]
    status: dict[str, Any] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    fail_create: bool = False

    async def get_workflow(self, namespace: str, name: str) -> dict[str, Any]:
        return {"status": dict(self.status)}

    async def patch_workflow_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.log.append(("status", dict(patch)))
        self.status.update(patch)

    async def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.log.append(("annotate", name))

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return []

    async def delete_job(self, namespace: str, name: str) -> None:
        self.log.append(("delete", name))

    async def create_job(self, namespace: str, manifest: dict[str, Any]) -> bool:
        if self.fail_create:
            raise RuntimeError("API down")
        name = manifest["metadata"]["name"]
        self.log.append(("create", name))
        if name in self.existing:
            return False
        self.existing.add(name)
        return True


class FakeMsg:
    def __init__(self, log: list[tuple[str, Any]], seq: int, data: bytes) -> None:
        self.log, self.data = log, data
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))

    async def ack(self) -> None:
        self.log.append(("ack", self.metadata.sequence.stream))

    async def nak(self, delay: float | None = None) -> None:
        self.log.append(("nak", self.metadata.sequence.stream))

    async def term(self) -> None:
        self.log.append(("term", self.metadata.sequence.stream))


def _event(key: str, bucket: str = "uploads") -> bytes:
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": "e", "size": 3}},
    }
    return json.dumps({"Records": [record]}).encode()


BODY = {
    "metadata": {"namespace": "ns", "name": "videos", "uid": "wf-uid", "generation": 1},
    "spec": spec(),
    "status": {"consumer": "c", "conditions": [{"type": "StorageReady", "status": "True"}]},
}
COMPLETE = [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]


def _dispatcher(kube: FakeKube, jobs: list[JobView]) -> Dispatcher:
    rt = SimpleNamespace(settings=Settings(status_flush_seconds=3600, poll_seconds=0.01), kube=kube)
    events: list[tuple[str, str, str]] = []
    return Dispatcher(rt, BODY, lambda: list(jobs), lambda *e: events.append(e))  # type: ignore[arg-type]


def _finished_job(uid: str = "job-uid", counted: bool = False) -> JobView:
    annotations = {naming.ANNOTATION_KEY: "incoming/a.mp4", naming.ANNOTATION_BUCKET: "uploads"}
    if counted:
        annotations[naming.ANNOTATION_COUNTED] = "succeeded"
    return job_view(
        {
            "metadata": {
                "name": "mf-videos-1",
                "namespace": "ns",
                "uid": uid,
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
                "annotations": annotations,
            },
            "status": {"conditions": COMPLETE},
        }
    )


def test_the_ledger_is_written_before_the_job_is_marked() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [_finished_job()])
    asyncio.run(dispatcher.load())
    asyncio.run(dispatcher.record_finished([_finished_job()]))
    kinds = [entry[0] for entry in log]
    assert kinds == ["status", "annotate"]
    assert log[0][1]["succeeded"] == 1
    assert log[0][1]["countedJobs"] == ["job-uid"]


def test_a_restart_between_ledger_and_mark_only_marks() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, status={"succeeded": 1, "countedJobs": ["job-uid"]})
    restarted = _dispatcher(kube, [_finished_job()])
    asyncio.run(restarted.load())
    asyncio.run(restarted.record_finished([_finished_job()]))
    assert log == [("annotate", "mf-videos-1")]
    assert restarted.tally.succeeded == 1


def test_a_marked_job_is_never_counted_again() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [])
    asyncio.run(dispatcher.record_finished([_finished_job(counted=True)]))
    assert log == []


def test_skipped_events_are_acked_only_after_the_status_write() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])
    messages = [
        FakeMsg(log, 7, _event("incoming/notes.txt")),
        FakeMsg(log, 8, _event("other/x.mp4")),
    ]
    asyncio.run(dispatcher.handle(WorkflowSpec.model_validate(spec()), messages, capacity=2))
    assert [e[0] for e in log] == ["ack", "status", "ack"]
    assert log[0] == ("ack", 8)  # ignored: acked at once
    assert log[1][1]["skipped"] == 1
    assert log[1][1]["countedEvents"] == [7]
    assert log[2] == ("ack", 7)


def test_a_redelivered_skip_is_not_counted_twice() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log, status={"skipped": 1, "countedEvents": [7]}), [])
    asyncio.run(dispatcher.load())
    asyncio.run(
        dispatcher.handle(
            WorkflowSpec.model_validate(spec()),
            [FakeMsg(log, 7, _event("incoming/notes.txt"))],
            capacity=1,
        )
    )
    assert log == [("ack", 7)]
    assert dispatcher.tally.skipped == 1


def test_jobs_are_created_before_the_ack_and_redelivery_hits_already_exists() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    asyncio.run(
        dispatcher.handle(spec_model, [FakeMsg(log, 1, _event("incoming/a.mp4"))], capacity=1)
    )
    asyncio.run(
        dispatcher.handle(spec_model, [FakeMsg(log, 2, _event("incoming/a.mp4"))], capacity=1)
    )
    assert [e[0] for e in log] == ["create", "ack", "create", "ack"]
    assert log[0][1] == log[2][1]
    assert len(kube.existing) == 1


def test_poison_is_terminated_api_trouble_is_redelivered_and_capacity_holds() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    messages = [
        FakeMsg(log, 1, b"garbage"),
        FakeMsg(log, 2, _event("incoming/a.mp4")),
        FakeMsg(log, 3, _event("incoming/b.mp4")),
    ]
    asyncio.run(dispatcher.handle(spec_model, messages, capacity=1))
    assert [e[0] for e in log] == ["term", "create", "ack", "nak"]
    log.clear()
    kube.fail_create = True
    asyncio.run(
        dispatcher.handle(spec_model, [FakeMsg(log, 4, _event("incoming/c.mp4"))], capacity=1)
    )
    assert log == [("nak", 4)]
