"""The dispatcher's ordering rules, with a fake Kubernetes API and fake queue messages.

What makes counting exact is *order*: the status write carrying the ledger goes
before a skipped event is acked, and a kept Job whose UID leaves the bounded
ledger is marked counted before the write that drops it. These
tests record every call in one log and check that order, and what a restarted
dispatcher does with what it finds.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator import naming
from mediaflow_operator.dispatch import Dispatcher
from mediaflow_operator.doorbell import Doorbells
from mediaflow_operator.job_views import JobView, count_active, job_view
from mediaflow_operator.messages import QueueMessage
from mediaflow_operator.settings import Settings

from .samples import FakeMsg, spec

pytestmark = pytest.mark.unit


@dataclass
class FakeKube:
    log: list[tuple[str, Any]]
    status: dict[str, Any] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    fail_create: bool = False
    create_error: Exception | None = None
    create_delay: float = 0.0
    fail_status: bool = False

    async def get_workflow(self, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"uid": "wf-uid", "resourceVersion": "1"}, "status": dict(self.status)}

    async def patch_workflow_status(
        self, namespace: str, name: str, patch: dict[str, Any], *, resource_version: str = ""
    ) -> None:
        if self.fail_status:
            raise RuntimeError("API down")
        self.log.append(("status", dict(patch)))
        self.status.update(patch)

    async def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.log.append(("annotate", name))

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return []

    async def delete_job(self, namespace: str, name: str) -> None:
        self.log.append(("delete", name))

    async def create_job(self, namespace: str, manifest: dict[str, Any]) -> str:
        if self.fail_create:
            raise RuntimeError("API down")
        if self.create_error is not None:
            raise self.create_error
        await asyncio.sleep(self.create_delay)
        name = manifest["metadata"]["name"]
        self.log.append(("create", name))
        if name in self.existing:
            return ""
        self.existing.add(name)
        return f"uid-{name}"


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
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01),
        kube=kube,
        stream_id="",
    )
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


def test_a_result_is_counted_by_the_status_write_alone() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [_finished_job()])
    asyncio.run(dispatcher.load())
    asyncio.run(dispatcher.ledger.record_finished([_finished_job()]))
    assert [entry[0] for entry in log] == ["status"]  # no annotation patch on the Job
    assert log[0][1]["succeeded"] == 1
    assert log[0][1]["countedJobs"] == ["job-uid"]
    assert dispatcher.ledger.counted(_finished_job())  # may be deleted once expired


def test_a_restart_finds_the_result_in_the_ledger_and_writes_nothing() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, status={"succeeded": 1, "countedJobs": ["job-uid"]})
    restarted = _dispatcher(kube, [_finished_job()])
    asyncio.run(restarted.load())
    asyncio.run(restarted.ledger.record_finished([_finished_job()]))
    assert log == []
    assert restarted.ledger.tally.succeeded == 1
    assert restarted.ledger.counted(_finished_job())


def test_a_marked_job_is_never_counted_again() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [])
    asyncio.run(dispatcher.ledger.record_finished([_finished_job(counted=True)]))
    assert log == []


def test_skipped_events_are_acked_only_after_the_status_write() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])
    messages: list[QueueMessage] = [
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
    assert [e for e in log if e[0] != "status"] == [("ack", 7)]
    assert all(e[1]["skipped"] == 1 for e in log if e[0] == "status")
    assert dispatcher.ledger.tally.skipped == 1


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
    messages: list[QueueMessage] = [
        FakeMsg(log, 1, b"garbage"),
        FakeMsg(log, 2, _event("incoming/a.mp4")),
        FakeMsg(log, 3, _event("incoming/b.mp4")),
    ]
    asyncio.run(dispatcher.handle(spec_model, messages, capacity=1))
    # Matched first, in order (the one over capacity goes back at once), then created.
    assert [e[0] for e in log] == ["term", "nak", "create", "ack"]
    assert ("nak", 3) in log
    log.clear()
    kube.fail_create = True
    asyncio.run(
        dispatcher.handle(spec_model, [FakeMsg(log, 4, _event("incoming/c.mp4"))], capacity=1)
    )
    assert log == [("nak", 4)]


def test_a_result_whose_write_failed_is_not_deletable_until_written() -> None:
    """A step counts a Job, its status write fails: until a later write holds
    it, the Job must not count as counted (deleting it then, and a crash, would
    lose the result for good), nor be counted a second time."""
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, fail_status=True)
    dispatcher = _dispatcher(kube, [_finished_job()])
    asyncio.run(dispatcher.load())
    with pytest.raises(RuntimeError):
        asyncio.run(dispatcher.ledger.record_finished([_finished_job()]))
    assert log == []
    assert not dispatcher.ledger.counted(_finished_job())
    kube.fail_status = False
    asyncio.run(dispatcher.ledger.record_finished([_finished_job()]))
    assert [e[0] for e in log] == ["status"]
    assert log[0][1]["succeeded"] == 1
    assert log[0][1]["countedJobs"] == ["job-uid"]
    assert dispatcher.ledger.counted(_finished_job())


def test_a_skip_whose_write_failed_is_acked_only_after_a_later_write() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, fail_status=True)
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    with pytest.raises(RuntimeError):
        asyncio.run(
            dispatcher.handle(spec_model, [FakeMsg(log, 7, _event("incoming/notes.txt"))], 1)
        )
    assert log == []  # neither written nor acked: the event comes back
    kube.fail_status = False
    asyncio.run(dispatcher.handle(spec_model, [FakeMsg(log, 7, _event("incoming/notes.txt"))], 1))
    assert [e[0] for e in log] == ["status", "ack"]
    assert log[0][1]["skipped"] == 1
    assert log[0][1]["countedEvents"] == [7]


def _status_error(code: int, message: str) -> Exception:
    from kubernetes.client.exceptions import ApiException

    error = ApiException(status=code, reason="Refused")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


@pytest.mark.parametrize("code", [403, 422])
def test_a_refused_job_stops_the_batch_and_the_events_wait_in_order(code: int) -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, create_error=_status_error(code, "exceeded quota: q"))
    events: list[tuple[str, str, str]] = []
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01),
        kube=kube,
        stream_id="",
    )
    dispatcher = Dispatcher(rt, BODY, lambda: [], lambda *e: events.append(e))  # type: ignore[arg-type]
    spec_model = WorkflowSpec.model_validate(spec())
    batch: list[QueueMessage] = [
        FakeMsg(log, seq, _event(f"incoming/{seq}.mp4")) for seq in (5, 6, 7)
    ]
    asyncio.run(dispatcher.handle(spec_model, batch, 3))
    # Nothing terminated: the refused event and the ones behind it (untried) come back.
    assert log == [("nak", 5), ("nak", 6), ("nak", 7)]
    gate = dispatcher.launcher.gate
    assert gate.refused
    assert not gate.allows(datetime.now(UTC))
    # Reported once: the condition (Ready derived from it), one Event.
    asyncio.run(dispatcher._report_admission())
    [(_, written)] = [e for e in log if e[0] == "status"]
    by_type = {c["type"]: c for c in written["conditions"]}
    assert by_type["JobsAdmitted"]["status"] == "False"
    assert by_type["JobsAdmitted"]["reason"] == "JobCreationRefused"
    assert by_type["JobsAdmitted"]["message"] == "exceeded quota: q"
    assert by_type["Ready"]["status"] == "False"
    assert [(t, r) for t, r, _ in events] == [("Warning", "JobCreationRefused")]
    asyncio.run(dispatcher._report_admission())
    assert len(events) == 1
    # The cause is lifted: the next create succeeds and clears the condition.
    kube.create_error = None
    gate.next_try = None
    log.clear()
    asyncio.run(dispatcher.handle(spec_model, [FakeMsg(log, 5, _event("incoming/5.mp4"))], 1))
    asyncio.run(dispatcher._report_admission())
    assert [e[0] for e in log] == ["create", "ack", "status"]
    by_type = {c["type"]: c for c in log[-1][1]["conditions"]}
    assert by_type["JobsAdmitted"]["status"] == "True"
    assert by_type["Ready"]["status"] == "True"
    assert events[-1][:2] == ("Normal", "JobCreationAdmitted")


def test_only_an_object_that_cannot_be_described_is_poison_and_server_errors_are_transient() -> (
    None
):
    from kubernetes.client.exceptions import ApiException

    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, create_error=ApiException(status=500, reason="Internal Server Error"))
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    asyncio.run(dispatcher.handle(spec_model, [FakeMsg(log, 6, _event("incoming/a.mp4"))], 1))
    assert log == [("nak", 6)]
    assert not dispatcher.launcher.gate.refused
    log.clear()
    asyncio.run(dispatcher.handle(spec_model, [FakeMsg(log, 8, b"not json")], 1))
    assert log == [("term", 8)]


def test_messages_waiting_behind_a_slow_job_creation_are_kept_in_progress() -> None:
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log, create_delay=0.2)
    dispatcher = _dispatcher(kube, [])
    dispatcher.progress_interval = 0.02
    spec_model = WorkflowSpec.model_validate(spec())
    messages: list[QueueMessage] = [
        FakeMsg(log, 1, _event("incoming/a.mp4")),
        FakeMsg(log, 2, _event("incoming/b.mp4")),
    ]
    asyncio.run(dispatcher.handle(spec_model, messages, capacity=2))
    ack_1 = log.index(("ack", 1))
    assert ("in_progress", 2) in log[:ack_1], "message 2 waited without in_progress"
    assert ("in_progress", 1) in log[:ack_1]
    # Nothing is marked in progress once settled.
    assert ("in_progress", 1) not in log[ack_1:]
    assert log[-1] == ("ack", 2)


def _done_job(name: str, uid: str) -> JobView:
    return job_view(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": uid,
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
                "annotations": {naming.ANNOTATION_COUNTED: "succeeded"},
            },
            "status": {"conditions": COMPLETE},
        }
    )


def test_finished_jobs_are_kept_while_an_event_may_still_be_redelivered() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])
    backlog = {"value": (0, 1)}

    async def fake_backlog() -> tuple[int, int]:
        return backlog["value"]

    dispatcher.subscription.backlog = fake_backlog  # type: ignore[method-assign]
    spec_model = WorkflowSpec.model_validate(spec(execution={"finishedJobRetentionSeconds": 0}))
    jobs = [_done_job("mf-videos-1", "u1")]
    asyncio.run(dispatcher.delete_expired(jobs, spec_model))
    assert log == [], "deleted a Job whose event is still unacked"
    backlog["value"] = (5, 0)  # queued, never delivered: cannot be for an existing Job
    asyncio.run(dispatcher.delete_expired(jobs, spec_model))
    assert log == [("delete", "mf-videos-1")]


def test_the_sweep_waits_while_events_are_queued() -> None:
    log: list[tuple[str, Any]] = []
    body = {**BODY, "status": {**BODY["status"], "activeSince": "2020-01-01T00:00:00Z"}}
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01, sweep_grace_seconds=0),
        kube=FakeKube(log),
        minio=None,  # listing would fail: the sweep must not get that far
    )
    dispatcher = Dispatcher(rt, body, lambda: [], lambda *e: None)  # type: ignore[arg-type]

    async def queued() -> tuple[int, int]:
        return (3, 0)

    dispatcher.subscription.backlog = queued  # type: ignore[method-assign]
    spec_model = WorkflowSpec.model_validate(spec())
    assert asyncio.run(dispatcher.sweeper.advance(spec_model)) is False
    assert dispatcher.sweeper.swept_until is None, "a deferred sweep must not move sweptUntil"
    assert dispatcher.sweeper.current is not None, "the deferred pass waits, it is not dropped"


def _active_job(name: str, uid: str) -> JobView:
    return job_view(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": uid,
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
                "annotations": {},
            },
            "status": {},
        }
    )


def test_a_manual_trigger_waits_for_a_free_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    from mediaflow_operator import manual as manual_module

    created: list[str] = []

    async def fake_process(rt: Any, body: Any, key: str, request_id: str) -> str:
        created.append(key)
        return f"mf-manual-{request_id}"

    monkeypatch.setattr(manual_module, "process", fake_process)
    body = {
        **BODY,
        "metadata": {
            **BODY["metadata"],
            "annotations": {
                naming.ANNOTATION_PROCESS: "incoming/old.mp4",
                naming.ANNOTATION_PROCESS_REQUEST: "r1",
            },
        },
    }
    jobs = [_active_job("mf-videos-1", "u1")]
    events: list[tuple[str, str, str]] = []
    rt = SimpleNamespace(
        doorbells=Doorbells(),
        wakeups=Doorbells(),
        settings=Settings(status_flush_seconds=30, poll_seconds=0.01),
        kube=FakeKube([]),
    )
    dispatcher = Dispatcher(rt, body, lambda: list(jobs), lambda *e: events.append(e))  # type: ignore[arg-type]
    one_slot = WorkflowSpec.model_validate(spec(execution={"maxConcurrentJobs": 1}))
    for _ in range(3):
        asyncio.run(dispatcher.manual.serve(one_slot, list(jobs)))
    assert created == [], "the manual trigger bypassed maxConcurrentJobs"
    assert [e[1] for e in events] == ["ManualTriggerQueued"]  # said once, not per step
    jobs[0] = _done_job("mf-videos-1", "u1")  # the slot frees up
    asyncio.run(dispatcher.manual.serve(one_slot, list(jobs)))
    assert created == ["incoming/old.mp4"]
    assert "mf-manual-r1" in dispatcher.ctx.pending  # counts against the limit at once
    assert [e[1] for e in events] == ["ManualTriggerQueued", "ManualTrigger"]
    # The request now occupies the only slot: the dispatcher fetches nothing.
    assert count_active(jobs, dispatcher.ctx.pending) == 1


def test_a_kept_job_leaving_the_ledger_is_marked_before_the_write_that_drops_it() -> None:
    """More finished Jobs are kept than the bounded ledger holds (after an
    outage, or a long retention): at every moment each counted Job is in the
    written ledger or annotated, and a restart after the last write counts
    none of them again."""
    from mediaflow_api.workflow_status import LEDGER_MAX

    def finished(i: int) -> JobView:
        view = _finished_job(uid=f"u{i:04d}")
        return JobView(**{**view.__dict__, "name": f"mf-videos-{i}"})

    jobs = [finished(i) for i in range(LEDGER_MAX + 100)]
    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, jobs)
    asyncio.run(dispatcher.load())
    for _ in range(4):
        dispatcher.ledger.last_flush = datetime.min.replace(tzinfo=UTC)  # a flush interval later
        asyncio.run(dispatcher.ledger.record_finished(jobs))
    ledger: list[str] = []
    marked: set[str] = set()
    uid_of = {j.name: j.uid for j in jobs}
    for kind, value in log:
        if kind == "status":
            # Whatever this write drops is already marked.
            dropped = set(ledger) - set(value["countedJobs"])
            assert dropped <= marked, f"{sorted(dropped - marked)[:3]} dropped unmarked"
            ledger = value["countedJobs"]
        elif kind == "annotate":
            assert uid_of[value] in ledger, f"{value} marked but not in the written ledger"
            marked.add(uid_of[value])
    assert dispatcher.ledger.tally.succeeded == len(jobs)
    assert len(marked) == len(jobs) - LEDGER_MAX  # only those that left the ledger
    assert marked.isdisjoint(ledger)
    # A restart: every Job is counted (ledger or mark), none is counted again.
    restarted_jobs = [JobView(**{**j.__dict__, "counted": j.uid in marked}) for j in jobs]
    restarted = _dispatcher(FakeKube([], status=dict(kube.status)), restarted_jobs)
    asyncio.run(restarted.load())
    assert all(restarted.ledger.counted(j) for j in restarted_jobs)
    asyncio.run(restarted.ledger.record_finished(restarted_jobs))
    assert restarted.ledger.tally.succeeded == len(jobs)


def test_results_are_written_once_per_flush_interval_not_once_per_job() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])  # flush interval: 30 s
    asyncio.run(dispatcher.load())
    first = _finished_job(uid="u1")
    second = JobView(**{**_finished_job(uid="u2").__dict__, "name": "mf-videos-2"})
    asyncio.run(dispatcher.ledger.record_finished([first]))
    asyncio.run(dispatcher.ledger.record_finished([first, second]))
    assert [e[0] for e in log] == ["status"], "a second write inside the interval"
    assert dispatcher.ledger.tally.succeeded == 1  # the second result waits on its Job
    dispatcher.ledger.last_flush = datetime.min.replace(tzinfo=UTC)  # the interval has passed
    asyncio.run(dispatcher.ledger.record_finished([first, second]))
    assert [e[0] for e in log] == ["status", "status"]
    assert log[1][1]["succeeded"] == 2
    assert log[1][1]["countedJobs"] == ["u1", "u2"]


def test_skips_of_one_flush_interval_share_one_status_write() -> None:
    """maxConcurrentJobs 1 fetches one event at a time: a burst of skipped uploads
    must not turn into one status write per event."""
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])  # flush interval: 30 s
    spec_model = WorkflowSpec.model_validate(spec())
    for seq in range(1, 6):
        asyncio.run(
            dispatcher.handle(spec_model, [FakeMsg(log, seq, _event(f"incoming/{seq}.txt"))], 1)
        )
    # The first write went out at once; the next four wait, unacked, for the next one.
    assert [e[0] for e in log] == ["status", "ack"]
    assert dispatcher.ledger.tally.skipped == 5
    dispatcher.ledger.last_flush = datetime.min.replace(tzinfo=UTC)  # the interval has passed
    asyncio.run(dispatcher.ledger.release())
    assert [e[0] for e in log] == ["status", "ack", "status", "ack", "ack", "ack", "ack"]
    assert log[2][1]["countedEvents"] == [1, 2, 3, 4, 5]


def test_a_failed_job_is_remembered_for_the_sweep_before_it_is_deleted() -> None:
    log: list[tuple[str, Any]] = []
    dispatcher = _dispatcher(FakeKube(log), [])

    async def no_backlog() -> tuple[int, int]:
        return (0, 0)

    dispatcher.subscription.backlog = no_backlog  # type: ignore[method-assign]
    spec_model = WorkflowSpec.model_validate(spec(execution={"finishedJobRetentionSeconds": 0}))
    failed = job_view(
        {
            "metadata": {
                "name": "mf-videos-2",
                "namespace": "ns",
                "uid": "u2",
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
                "annotations": {naming.ANNOTATION_COUNTED: "failed"},
            },
            "status": {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
        }
    )
    asyncio.run(dispatcher.delete_expired([_done_job("mf-videos-1", "u1"), failed], spec_model))
    writes = [i for i, entry in enumerate(log) if entry[0] == "status"]
    assert writes, "the tried Job must be written before the deletion"
    assert [j["job"] for j in log[writes[0]][1]["triedJobs"]] == ["mf-videos-2"]
    assert log[writes[0] + 1 :] == [("delete", "mf-videos-1"), ("delete", "mf-videos-2")]
    assert "mf-videos-2" in dispatcher.sweeper.tried


def test_an_idle_dispatcher_pulls_only_when_the_router_rings() -> None:
    dispatcher = _dispatcher(FakeKube([]), [])
    pulls: list[int] = []

    async def fetch(batch: int) -> list[QueueMessage]:
        pulls.append(batch)
        return []

    async def nothing_swept(spec: WorkflowSpec, free: int) -> int:
        return 0

    dispatcher.subscription.fetch = fetch  # type: ignore[method-assign]
    dispatcher.sweeper.launch_ready = nothing_swept  # type: ignore[method-assign]
    # Idle, it would sleep up to the fallback (30 s) between these steps.
    dispatcher._wait_seconds = lambda: dispatcher.ctx.rt.settings.poll_seconds  # type: ignore[method-assign]

    async def scenario() -> None:
        await dispatcher.step()  # a new dispatcher looks once at what is queued
        assert len(pulls) == 1
        for _ in range(3):
            await dispatcher.step()  # idle: no request to NATS
        assert len(pulls) == 1
        dispatcher.ctx.rt.doorbells.ring("wf-uid")
        await dispatcher.step()
        assert len(pulls) == 2
        # A ring during the pause ends it at once (the poll interval here is
        # 0.01 s: made long, the step would otherwise wait it out).
        dispatcher.ctx.rt.settings = Settings(status_flush_seconds=30, poll_seconds=30)
        ringing = asyncio.get_running_loop().call_later(
            0.05, dispatcher.ctx.rt.doorbells.ring, "wf-uid"
        )
        await asyncio.wait_for(dispatcher.step(), 5)
        ringing.cancel()
        dispatcher.ctx.rt.settings = Settings(status_flush_seconds=30, poll_seconds=0.01)
        await dispatcher.step()  # the step after the ring pulls
        assert len(pulls) == 3

    asyncio.run(scenario())


def test_a_job_deleted_before_the_index_showed_it_frees_its_slot_at_once() -> None:
    """kopf merges the events of one object inside its batch window: a Job created
    and deleted at once (``kubectl delete jobs --all`` in a burst) may reach the
    index never. Its slot must not stay taken until PENDING_FORGET (2 min)."""
    from mediaflow_operator.job_views import forget_deleted_job

    log: list[tuple[str, Any]] = []
    kube = FakeKube(log)
    dispatcher = _dispatcher(kube, [])
    dispatcher.ctx.rt.pending_jobs = {"wf-uid": dispatcher.ctx.pending}  # as run() registers it
    dispatcher.ctx.pending.add("mf-videos-1")
    dispatcher.ctx.pending.add("mf-videos-2")
    assert count_active([], dispatcher.ctx.pending) == 2
    deleted = {
        "metadata": {
            "name": "mf-videos-1",
            "namespace": "ns",
            "uid": "job-uid",
            "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
        }
    }
    forget_deleted_job(dispatcher.ctx.rt.pending_jobs, "MODIFIED", deleted)
    assert count_active([], dispatcher.ctx.pending) == 2  # only a deletion frees it
    forget_deleted_job(dispatcher.ctx.rt.pending_jobs, "DELETED", deleted)
    assert count_active([], dispatcher.ctx.pending) == 1
    assert list(dispatcher.ctx.pending) == ["mf-videos-2"]


@dataclass
class ConcurrentKube(FakeKube):
    """Counts the creates in flight at once; refuses the Jobs of keys in ``refuse``."""

    in_flight: int = 0
    most: int = 0
    refuse: set[str] = field(default_factory=set)

    async def create_job(self, namespace: str, manifest: dict[str, Any]) -> str:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            key = manifest["metadata"]["annotations"][naming.ANNOTATION_KEY]
            if key in self.refuse:
                raise _status_error(403, "exceeded quota: q")
            return await super().create_job(namespace, manifest)
        finally:
            self.in_flight -= 1


def test_the_jobs_of_one_batch_are_created_concurrently() -> None:
    """One create at a time capped a Workflow at one Job per API round trip."""
    from mediaflow_operator.dispatch import LAUNCH_PARALLEL

    log: list[tuple[str, Any]] = []
    kube = ConcurrentKube(log)
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    messages: list[QueueMessage] = [
        FakeMsg(log, seq, _event(f"incoming/{seq}.mp4")) for seq in range(1, 13)
    ]
    asyncio.run(dispatcher.handle(spec_model, messages, capacity=12))
    assert kube.most == LAUNCH_PARALLEL
    assert sorted(seq for kind, seq in log if kind == "ack") == list(range(1, 13))
    assert len([e for e in log if e[0] == "create"]) == 12


def test_a_refusal_among_concurrent_creates_is_one_refusal_and_the_rest_wait_in_order() -> None:
    log: list[tuple[str, Any]] = []
    kube = ConcurrentKube(log, refuse={"incoming/3.mp4", "incoming/4.mp4"})
    dispatcher = _dispatcher(kube, [])
    spec_model = WorkflowSpec.model_validate(spec())
    messages: list[QueueMessage] = [
        FakeMsg(log, seq, _event(f"incoming/{seq}.mp4")) for seq in range(1, 13)
    ]
    asyncio.run(dispatcher.handle(spec_model, messages, capacity=12))
    gate = dispatcher.launcher.gate
    # One refusal episode, one backoff step: not one per create refused in flight,
    # and not cleared by a create of the same batch that was admitted after it.
    assert gate.refused
    assert gate.failures == 1
    assert not gate.allows(datetime.now(UTC))
    acked = sorted(seq for kind, seq in log if kind == "ack")
    naked = [seq for kind, seq in log if kind == "nak"]
    assert {3, 4} <= set(naked)
    assert naked == sorted(naked), "put back out of order"
    assert set(acked) | set(naked) == set(range(1, 13))
    assert not set(acked) & set(naked)
    assert set(range(9, 13)) <= set(naked), "tried after the refusal"
    # While the episode is open a batch is one create at a time (the probe first).
    kube.refuse, kube.most = set(), 0
    gate.next_try = None
    log.clear()
    asyncio.run(
        dispatcher.handle(
            spec_model, [FakeMsg(log, seq, _event(f"incoming/{seq}.mp4")) for seq in naked], 12
        )
    )
    assert kube.most == 1
    assert not gate.refused


def test_an_idle_dispatcher_sleeps_until_something_happens() -> None:
    """1,000 idle Workflows must not step every second each: an idle dispatcher
    waits up to the fallback, and a change of one of its Jobs wakes it at once."""
    from mediaflow_operator.doorbell import idle_wait

    assert idle_wait(at=100.0, poll=1.0, fallback=30.0, deadlines=[]) == 30.0
    assert idle_wait(at=100.0, poll=1.0, fallback=30.0, deadlines=[112.0, 140.0]) == 12.0
    assert idle_wait(at=100.0, poll=1.0, fallback=30.0, deadlines=[90.0]) == 1.0  # past: no spin

    jobs: list[JobView] = []
    dispatcher = _dispatcher(FakeKube([]), jobs)
    dispatcher.ctx.rt.settings = Settings(status_flush_seconds=30, poll_seconds=1.0)
    asyncio.run(dispatcher.load())
    dispatcher.pacer.fetched(time.monotonic(), 4, 0, None)  # looked at its queue just now
    assert dispatcher._wait_seconds() > 25.0
    # A running Job: back to one poll interval (its result is awaited).
    running = job_view(
        {
            "metadata": {
                "name": "mf-videos-9",
                "namespace": "ns",
                "uid": "u9",
                "labels": {naming.LABEL_WORKFLOW_UID: "wf-uid"},
            },
            "status": {},
        }
    )
    jobs.append(running)
    assert dispatcher._wait_seconds() == 1.0
    jobs.clear()
    # A kept, counted Job whose retention (600 s) ends soon: woken for its deletion.
    done = JobView(**{**_finished_job(uid="u1").__dict__, "finished_at": datetime.now(UTC)})
    dispatcher.ledger.written.add("u1")
    jobs.append(done)
    assert dispatcher._wait_seconds() > 25.0  # 600 s away: the fallback decides
    jobs[0] = JobView(
        **{**done.__dict__, "finished_at": datetime.now(UTC) - timedelta(seconds=590)}
    )
    assert 1.0 <= dispatcher._wait_seconds() <= 10.5
    jobs.clear()

    async def woken() -> float:
        started = time.monotonic()
        asyncio.get_running_loop().call_later(0.05, dispatcher.ctx.rt.wakeups.ring, "wf-uid")
        await asyncio.wait_for(dispatcher._pause(None), 5)
        return time.monotonic() - started

    assert asyncio.run(woken()) < 2.0
