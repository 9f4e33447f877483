"""Outputs go up while later tasks run (``uploader``, ``job_mode``), and the
fixed costs around ffmpeg are paid once (``encoders``, ``InputFacts``),
with fakes in place of storage and ffmpeg.

The tasks are a stand-in for ``runner.run_tasks`` that writes small files
and, between tasks, waits for what the test needs to have happened (an
upload, a failure): events, never sleeps."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from mediaflow_api.job import Limits, ObjectRef, WorkerJob
from mediaflow_api.tasks import TaskSpec
from mediaflow_worker import encoders, job_mode, runner
from mediaflow_worker.encoders import EncoderListing, parse_encoders
from mediaflow_worker.errors import (
    OutputTooLargeError,
    ProcessingError,
    StorageError,
    WorkerError,
)
from mediaflow_worker.probe import ProbeResult, parse_probe
from mediaflow_worker.runner import TaskResult
from mediaflow_worker.storage import OutputStamp, Storage
from mediaflow_worker.tasks import InputFacts, OutputFile, TaskContext
from mediaflow_worker.uploader import BackgroundUploader

pytestmark = pytest.mark.unit

# Generous: only a broken implementation ever waits this long.
WAIT_SECONDS = 10.0
OUT_DIR = "vod/a.mp4.mediaflow/media/vod/"
MANIFEST = OUT_DIR + "manifest.json"


# --- BackgroundUploader on its own -----------------------------------------


def test_finish_returns_every_key_once_all_uploads_are_done(tmp_path: Path) -> None:
    done: list[str] = []
    lock = threading.Lock()

    def upload(key: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        with lock:
            done.append(key)

    uploader = BackgroundUploader(upload, threads=2)
    for i in range(5):
        uploader.submit(f"k{i}", tmp_path / f"f{i}", {})
    assert sorted(uploader.finish()) == [f"k{i}" for i in range(5)]
    assert sorted(done) == [f"k{i}" for i in range(5)]


def test_the_first_upload_error_stops_the_rest_and_is_raised(tmp_path: Path) -> None:
    started: list[str] = []

    def upload(key: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        started.append(key)
        if key == "bad":
            raise StorageError(f"upload of {key} failed: InternalError")

    # One thread: "later" is queued behind "bad" and must never start.
    uploader = BackgroundUploader(upload, threads=1)
    uploader.submit("good", tmp_path / "g", {})
    uploader.submit("bad", tmp_path / "b", {})
    uploader.submit("later", tmp_path / "l", {})
    with pytest.raises(StorageError, match="upload of bad failed"):
        uploader.finish()
    assert started == ["good", "bad"]
    assert uploader.stop() == ["good"]


def test_submit_after_a_failure_raises_that_failure(tmp_path: Path) -> None:
    failed = threading.Event()

    def upload(key: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        failed.set()
        raise StorageError(f"upload of {key} failed: AccessDenied")

    uploader = BackgroundUploader(upload, threads=1)
    uploader.submit("first", tmp_path / "f", {})
    assert failed.wait(WAIT_SECONDS)
    uploader.stop()  # waits for the failing upload to have recorded its error
    with pytest.raises(StorageError, match="upload of first failed: AccessDenied"):
        uploader.submit("second", tmp_path / "s", {})


def test_a_bug_in_an_upload_is_reported_with_its_cause(tmp_path: Path) -> None:
    def upload(key: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        raise KeyError("missing")

    uploader = BackgroundUploader(upload, threads=1)
    uploader.submit("k", tmp_path / "f", {})
    with pytest.raises(RuntimeError, match="an output upload failed") as caught:
        uploader.finish()
    assert isinstance(caught.value.__cause__, KeyError)
    assert not isinstance(caught.value, WorkerError)


def test_stop_asks_uploads_in_flight_to_stop_and_waits_for_them(tmp_path: Path) -> None:
    in_flight = threading.Event()
    finished: list[str] = []

    def upload(key: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        in_flight.set()
        # A real upload checks ``stop`` between parts; this one lands anyway,
        # as a last part already on the wire would.
        assert stop.wait(WAIT_SECONDS)
        finished.append(key)

    uploader = BackgroundUploader(upload, threads=1)
    uploader.submit("slow", tmp_path / "s", {})
    uploader.submit("queued", tmp_path / "q", {})
    assert in_flight.wait(WAIT_SECONDS)
    assert uploader.stop() == ["slow"]  # returned only after it landed
    assert finished == ["slow"]  # and "queued" never started


def test_an_uploader_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BackgroundUploader(lambda *_: None, threads=0)


# --- run_job: uploads overlap the tasks -------------------------------------


class FakeStorage:
    """Objects in a dict; every call logged in order. ``on_upload`` runs in
    the upload thread before an output is stored (it may raise or block)."""

    def __init__(self, on_upload: Callable[[str, threading.Event | None], None]) -> None:
        self.on_upload = on_upload
        self.objects: dict[str, bytes] = {}
        self.stamps: dict[str, OutputStamp] = {}
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.etag = "e"
        self.uploaded = threading.Event()

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        return None

    def download_input(
        self, ref: ObjectRef, dest: Path, max_bytes: int, deadline: float | None = None
    ) -> int:
        dest.write_bytes(b"\x00\x00\x00\x18ftypisom")
        return dest.stat().st_size

    def download_asset(self, bucket: str, key: str, dest: Path) -> Path:
        raise AssertionError("no assets here")

    def current_etag(self, bucket: str, key: str) -> str | None:
        return self.etag

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        meta: Mapping[str, str],
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.on_upload(key, stop)
        with self.lock:
            self.objects[key] = path.read_bytes()
            self.stamps[key] = OutputStamp(
                workflow=meta["mediaflow-workflow"], source_etag=meta["mediaflow-source-etag"]
            )
            self.log.append(f"upload {key}")
        self.uploaded.set()

    def upload_bytes(self, bucket: str, key: str, data: bytes, meta: Mapping[str, str]) -> None:
        with self.lock:
            self.objects[key] = data
            self.stamps[key] = OutputStamp(
                workflow=meta["mediaflow-workflow"], source_etag=meta["mediaflow-source-etag"]
            )
            self.log.append(f"upload {key}")

    def output_stamp(self, bucket: str, key: str) -> OutputStamp | None:
        with self.lock:
            return self.stamps.get(key) if key in self.objects else None

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        with self.lock:
            return [k for k in self.objects if k.startswith(prefix)]

    def delete(self, bucket: str, keys: Iterable[str]) -> list[str]:
        with self.lock:
            for key in keys:
                self.objects.pop(key, None)
                self.log.append(f"delete {key}")
        return []

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.objects[MANIFEST])
        return doc


# What the fake tasks do between two tasks: wait for something, or fail.
Between = Callable[[], None]


def _probe() -> ProbeResult:
    return parse_probe(
        {
            "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "1.0"},
            "streams": [{"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000"}],
        },
        12,
    )


def _job() -> WorkerJob:
    return WorkerJob.model_validate(
        {
            "workflow": {"namespace": "media", "name": "vod", "uid": "u", "generation": 1},
            "input": {"bucket": "uploads", "key": "incoming/a.mp4", "etag": "e"},
            "output": {"bucket": "media", "dir": OUT_DIR},
            "tasks": [
                {"name": "one", "transcode": {"preset": "audio-aac-128k"}},
                {"name": "two", "transcode": {"preset": "audio-aac-128k"}},
            ],
        }
    )


def _fake_tasks(between: Between) -> Callable[..., list[TaskResult]]:
    """``run_tasks`` for the two tasks of ``_job``: each writes one file and
    hands it on at once; ``between`` runs after the first."""

    def run_tasks(
        input_path: Path,
        probe_result: ProbeResult,
        tasks: list[TaskSpec],
        *,
        out_root: Path,
        on_task_done: Callable[[TaskResult], None] | None = None,
        **_: Any,
    ) -> list[TaskResult]:
        results = []
        for i, task in enumerate(tasks):
            if i > 0:
                between()
            out = out_root / task.name / f"{task.name}.m4a"
            out.parent.mkdir(parents=True)
            out.write_bytes(task.name.encode())
            result = TaskResult(task.name, task.kind, "succeeded", 0.1, [OutputFile(out)])
            results.append(result)
            if on_task_done is not None:
                on_task_done(result)
        return results

    return run_tasks


@pytest.fixture
def no_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_job without ffmpeg: probing and the encoder listing stubbed."""
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    monkeypatch.setattr(encoders, "prefetch_encoders", lambda: None)
    monkeypatch.setattr(runner, "vet_input", lambda path, limits: _probe())


def _run(storage: FakeStorage) -> job_mode.JobOutcome:
    return job_mode.run_job(_job(), cast(Storage, storage))


@pytest.mark.usefixtures("no_ffmpeg")
def test_a_finished_tasks_outputs_upload_while_the_next_task_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = FakeStorage(lambda key, stop: None)

    def second_task_waits_for_the_first_upload() -> None:
        # Before the fix every upload came after the last task: this waited in vain.
        assert storage.uploaded.wait(WAIT_SECONDS), "no upload while the tasks ran"
        assert storage.log == [f"upload {OUT_DIR}one/one.m4a"]

    monkeypatch.setattr(runner, "run_tasks", _fake_tasks(second_task_waits_for_the_first_upload))
    outcome = _run(storage)
    assert outcome.outputs == 2
    assert outcome.superseded is None
    # The manifest comes last and lists exactly what was uploaded.
    assert storage.log[-1] == f"upload {MANIFEST}"
    listed = {o["key"] for t in storage.manifest()["tasks"] for o in t["outputs"]}
    assert listed == {f"{OUT_DIR}one/one.m4a", f"{OUT_DIR}two/two.m4a"}
    assert listed <= set(storage.objects)


@pytest.mark.usefixtures("no_ffmpeg")
def test_an_upload_failure_stops_the_later_tasks_and_leaves_no_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed = threading.Event()

    def fail_first(key: str, stop: threading.Event | None) -> None:
        failed.set()
        raise StorageError(f"upload of {key} failed: InternalError")

    storage = FakeStorage(fail_first)

    def after_the_failure() -> None:
        assert failed.wait(WAIT_SECONDS)

    monkeypatch.setattr(runner, "run_tasks", _fake_tasks(after_the_failure))
    with pytest.raises(StorageError, match=r"upload of vod/.*/one/one\.m4a failed"):
        _run(storage)
    # Only the failure manifest: the second task's output never went up.
    assert list(storage.objects) == [MANIFEST]
    failure = storage.manifest()
    assert failure["ok"] is False
    assert failure["error"]["reason"] == StorageError.reason
    assert failure["tasks"] == []


@pytest.mark.usefixtures("no_ffmpeg")
def test_a_failing_task_waits_for_uploads_in_flight_before_the_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_flight = threading.Event()

    def slow_first(key: str, stop: threading.Event | None) -> None:
        in_flight.set()
        # Lands only once the Job gives the uploads up: after the failure.
        assert stop is not None
        assert stop.wait(WAIT_SECONDS)

    storage = FakeStorage(slow_first)

    def second_task_fails() -> None:
        assert in_flight.wait(WAIT_SECONDS)
        raise ProcessingError("two: ffmpeg failed: boom")

    monkeypatch.setattr(runner, "run_tasks", _fake_tasks(second_task_fails))
    with pytest.raises(ProcessingError, match="boom"):
        _run(storage)
    # The first output landed after the failure and was still deleted.
    first = f"{OUT_DIR}one/one.m4a"
    assert storage.log.index(f"upload {first}") < storage.log.index(f"delete {first}")
    assert list(storage.objects) == [MANIFEST]
    assert storage.manifest()["ok"] is False


@pytest.mark.usefixtures("no_ffmpeg")
def test_an_overwrite_noticed_by_an_upload_supersedes_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = FakeStorage(lambda key, stop: None)

    def overwrite_after_the_first_upload() -> None:
        assert storage.uploaded.wait(WAIT_SECONDS)
        storage.etag = "newer"

    monkeypatch.setattr(runner, "run_tasks", _fake_tasks(overwrite_after_the_first_upload))
    outcome = _run(storage)
    assert outcome.superseded is not None
    assert "overwritten" in outcome.superseded.message
    assert storage.objects == {}  # its own upload deleted, no manifest


@pytest.mark.usefixtures("no_ffmpeg")
def test_a_superseded_job_deletes_its_custom_named_uploads_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = FakeStorage(lambda key, stop: None)

    def overwrite_after_the_first_upload() -> None:
        assert storage.uploaded.wait(WAIT_SECONDS)
        storage.etag = "newer"

    monkeypatch.setattr(runner, "run_tasks", _fake_tasks(overwrite_after_the_first_upload))
    job = _job().model_dump(by_alias=True)
    job["tasks"][0]["output"] = {"prefix": "pub/", "fileName": "{inputName}-{taskName}.{format}"}
    outcome = job_mode.run_job(WorkerJob.model_validate(job), cast(Storage, storage))
    assert outcome.superseded is not None
    assert "upload pub/a-one.m4a" in storage.log  # it did land at its custom key
    assert storage.objects == {}  # and was deleted again; no manifest


# --- fixed costs paid once --------------------------------------------------


def test_the_encoder_listing_runs_once_and_hands_on_its_error() -> None:
    calls: list[int] = []

    def lister() -> frozenset[str]:
        calls.append(1)
        return frozenset({"libx264"})

    listing = EncoderListing(lister)
    listing.start()
    listing.start()
    assert listing.get() == frozenset({"libx264"})
    assert listing.get() == frozenset({"libx264"})
    assert calls == [1]

    def broken() -> frozenset[str]:
        raise FileNotFoundError("ffmpeg")

    with pytest.raises(FileNotFoundError):
        EncoderListing(broken).get()


def test_encoder_names_come_from_the_listing_not_its_legend() -> None:
    text = (
        "Encoders:\n V..... = Video\n A..... = Audio\n ------\n"
        " V....D libx264              libx264 H.264\n A....D aac                  AAC\n"
    )
    assert parse_encoders(text) == frozenset({"libx264", "aac"})


def test_the_last_frame_is_probed_once_for_every_task() -> None:
    calls: list[int] = []

    def find() -> tuple[float, float] | None:
        calls.append(1)
        return None  # "cannot tell" is an answer too, and is kept

    facts = InputFacts()
    assert facts.last_frame(find) is None
    assert facts.last_frame(find) is None
    assert calls == [1]


class _WritesBytes:
    """A prepared task that writes ``size`` bytes (stands in for ffmpeg)."""

    needs_ml = False

    def __init__(self, name: str, size: int) -> None:
        self.task = TaskSpec.model_validate({"name": name, "analysis": {}})
        self.size = size

    def required_encoders(self) -> set[str]:
        return set()

    def run(self, ctx: TaskContext) -> list[OutputFile]:
        out = ctx.out_dir / "data.bin"
        out.write_bytes(b"x" * self.size)
        return [OutputFile(out)]


def test_outputs_past_the_limit_are_never_handed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = {"a": _WritesBytes("a", 600), "b": _WritesBytes("b", 600)}
    monkeypatch.setattr(runner, "prepare", lambda task: tasks[task.name])
    monkeypatch.setattr(encoders, "available_encoders", frozenset)  # nothing needed
    handed_on: list[str] = []
    with pytest.raises(OutputTooLargeError, match="outputs total 1200 bytes; the limit is 1000"):
        runner.run_tasks(
            tmp_path / "input",
            _probe(),
            [t.task for t in tasks.values()],
            limits=Limits(maxOutputBytes=1000),
            out_root=tmp_path / "out",
            scratch=tmp_path,
            deadline=float("inf"),
            fetch_asset=lambda bucket, key: tmp_path,
            font="",
            on_task_done=lambda result: handed_on.append(result.name),
        )
    assert handed_on == ["a"]  # "b" took the total past the limit


class _PartsClient:
    """A minio-py stand-in whose ``fput_object`` reports parts to ``progress``
    the way minio-py does (``set_meta``, then ``update`` per part)."""

    def __init__(self, parts: int, stop_after: threading.Event | None = None) -> None:
        self.parts = parts
        self.sent = 0
        self.stop_after = stop_after

    def fput_object(self, bucket: str, key: str, path: str, **kwargs: Any) -> None:
        progress = kwargs["progress"]
        progress.set_meta(key, self.parts)
        for _ in range(self.parts):
            progress.update(1)
            self.sent += 1
            if self.stop_after is not None:
                self.stop_after.set()  # the run gives the upload up after one part


def test_a_given_up_upload_stops_at_its_next_part(tmp_path: Path) -> None:
    stop = threading.Event()
    client = _PartsClient(parts=3, stop_after=stop)
    storage = Storage(cast(Any, client))
    with pytest.raises(StorageError, match="the upload of k was given up"):
        storage.upload("b", "k", tmp_path / "f", {}, stop=stop)
    assert client.sent == 1


def test_an_upload_nobody_gives_up_sends_every_part(tmp_path: Path) -> None:
    client = _PartsClient(parts=3)
    Storage(cast(Any, client)).upload("b", "k", tmp_path / "f", {}, stop=threading.Event())
    assert client.sent == 3
