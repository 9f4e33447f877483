"""A Job's outputs go up to the real MinIO while its later tasks still run,
and the manifest still lists exactly what is there.

``run_job`` runs in-process with the real ``Storage`` and real ffmpeg; the
only thing wrapped is the hand-over of a finished task, which waits until
that task's first upload has started: with every upload after the last task
(the old order) that wait would end in failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api import metadata as md
from mediaflow_api.job import WorkerJob
from mediaflow_worker import job_mode, runner
from mediaflow_worker.runner import TaskResult
from mediaflow_worker.storage import Storage

from .helpers import make_clip, make_png
from .test_job_minio import Env

pytestmark = pytest.mark.integration

KEY = "incoming/overlap.mp4"
TASKS: list[dict[str, Any]] = [
    {"name": "thumbs", "snapshot": {"count": 2, "width": 64}},
    {"name": "web", "transcode": {"preset": "h264-360p", "video": {"preset": "ultrafast"}}},
]
WAIT_SECONDS = 60.0


@pytest.fixture
def env(minio_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    logo = tmp_path / "logo.png"
    make_png(logo, "blue@0.5", (48, 48))
    return Env(minio_server, tmp_path, logo)


class Recording(Storage):
    """The real Storage; ``started`` is set when the first output upload begins."""

    def __init__(self, base: Storage) -> None:
        super().__init__(base.client)
        self.started = threading.Event()

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        meta: Any,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.started.set()
        super().upload(bucket, key, path, meta, deadline, stop)


def test_outputs_upload_while_later_tasks_run(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(env.tmp, "c", duration=2)
    etag = env.upload(KEY, clip.path)
    storage = Recording(Storage(env.client))
    real_run_tasks = runner.run_tasks
    handed_on: list[str] = []

    def run_tasks(*args: Any, **kwargs: Any) -> list[TaskResult]:
        hand_on: Callable[[TaskResult], None] = kwargs["on_task_done"]

        def wait_for_the_upload(result: TaskResult) -> None:
            hand_on(result)
            handed_on.append(result.name)
            if len(handed_on) == 1:
                # The next task starts only once this one's outputs are going up.
                assert storage.started.wait(WAIT_SECONDS), "no upload while the tasks ran"

        kwargs["on_task_done"] = wait_for_the_upload
        return real_run_tasks(*args, **kwargs)

    monkeypatch.setattr(runner, "run_tasks", run_tasks)
    job = WorkerJob.model_validate(env.job(KEY, etag, tasks=TASKS))
    outcome = job_mode.run_job(job, storage)
    assert handed_on == ["thumbs", "web"]
    assert outcome.superseded is None
    out_dir = env.out_dir(KEY)
    manifest_key = out_dir + md.MANIFEST_NAME
    listed = {o["key"] for t in _manifest(env, manifest_key)["tasks"] for o in t["outputs"]}
    assert len(listed) == outcome.outputs == 3  # two stills and one MP4
    assert set(env.keys(out_dir)) == listed | {manifest_key}


def _manifest(env: Env, key: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(env.client.get_object(env.media, key).read())
    return doc
