"""Workflows sharing an input, and inputs overwritten while their Job runs,
against the real MinIO of the local stack.

Defect 1: two Workflows on one object each keep their own outputs and
manifest; a stale-output cleanup never leaves its own Workflow's directory.
Defect 6: the newest version of an input always wins; a Job for an older
version is *superseded*: it leaves nothing and writes no manifest.

The overwrite has to land at a precise moment of a Job's run, so these tests
drive ``run_job`` in-process with the real ``Storage`` and step in at one of
its calls (the storage boundary is the only thing wrapped; ffmpeg and MinIO
are real). The CLI's exit code and termination summary are checked through
``Env.run`` (a subprocess, as in the Job's container).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api import metadata as md
from mediaflow_api.job import ObjectRef, WorkerJob
from mediaflow_worker.job_mode import JobOutcome, run_job
from mediaflow_worker.storage import Storage

from .helpers import make_clip, make_png
from .test_job_minio import Env

pytestmark = pytest.mark.integration

FACTS: dict[str, Any] = {"name": "facts", "analysis": {}}
THUMBS: dict[str, Any] = {"name": "thumbs", "snapshot": {"count": 2, "width": 64}}
KEY = "incoming/show.mp4"


@pytest.fixture
def env(minio_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    logo = tmp_path / "logo.png"
    make_png(logo, "blue@0.5", (48, 48))
    return Env(minio_server, tmp_path, logo)


class Hooked(Storage):
    """The real Storage, with ``hook`` run once right after the named call."""

    def __init__(self, base: Storage, after: str, hook: Callable[[], None]) -> None:
        super().__init__(base.client)
        self._after, self._hook, self._fired = after, hook, False

    def _maybe_fire(self, name: str) -> None:
        if name == self._after and not self._fired:
            self._fired = True
            self._hook()

    def download_input(
        self, ref: ObjectRef, dest: Path, max_bytes: int, deadline: float | None = None
    ) -> int:
        size = super().download_input(ref, dest, max_bytes, deadline)
        self._maybe_fire("download_input")
        return size

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        meta: Any,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().upload(bucket, key, path, meta, deadline, stop)
        self._maybe_fire("upload")


def _job(env: Env, etag: str, tasks: list[dict[str, Any]], workflow: str = "vod") -> WorkerJob:
    return WorkerJob.model_validate(env.job(KEY, etag, tasks=tasks, workflow=workflow))


def _manifest(env: Env, workflow: str = "vod") -> dict[str, Any]:
    data = env.client.get_object(env.media, env.out_dir(KEY, workflow) + md.MANIFEST_NAME).read()
    doc: dict[str, Any] = json.loads(data)
    return doc


def _source_etag(env: Env, key: str) -> str:
    meta = env.client.stat_object(env.media, key).metadata
    return md.user_metadata_value(dict(meta or {}), md.SOURCE_ETAG) or ""


def _listed(manifest: dict[str, Any]) -> set[str]:
    return {o["key"] for t in manifest["tasks"] for o in t["outputs"]}


def _two_versions(env: Env) -> tuple[Path, Path]:
    first = make_clip(env.tmp, "v1", duration=1).path
    second = make_clip(env.tmp, "v2", duration=2, audio=False).path
    return first, second


def test_two_workflows_on_one_object_keep_both_results(env: Env) -> None:
    clip = make_clip(env.tmp, "c", duration=1).path
    etag = env.upload(KEY, clip)
    storage = Storage(env.client)
    first = run_job(_job(env, etag, [THUMBS], workflow="thumbs"), storage)
    second = run_job(_job(env, etag, [FACTS], workflow="facts"), storage)
    thumbs, facts = _manifest(env, "thumbs"), _manifest(env, "facts")
    assert (thumbs["ok"], facts["ok"]) == (True, True)
    assert thumbs["workflow"]["name"] == "thumbs"
    assert facts["workflow"]["name"] == "facts"
    # Every output each manifest lists is still there: the second Job's
    # stale-output cleanup did not take the first one's outputs for its own.
    for name, manifest in (("thumbs", thumbs), ("facts", facts)):
        out_dir = env.out_dir(KEY, name)
        assert set(env.keys(out_dir)) == _listed(manifest) | {out_dir + md.MANIFEST_NAME}
    assert first.manifest_key != second.manifest_key
    assert first.superseded is None
    assert second.superseded is None


def test_stale_cleanup_stays_in_its_own_workflows_directory(env: Env) -> None:
    clip = make_clip(env.tmp, "c", duration=1).path
    etag = env.upload(KEY, clip)
    storage = Storage(env.client)
    run_job(_job(env, etag, [THUMBS, FACTS], workflow="vod"), storage)
    run_job(_job(env, etag, [THUMBS], workflow="other"), storage)
    other = set(env.keys(env.out_dir(KEY, "other")))
    # vod drops a task: its own leftover goes, the other Workflow's outputs stay.
    run_job(_job(env, etag, [FACTS], workflow="vod"), storage)
    vod_dir = env.out_dir(KEY, "vod")
    assert env.keys(vod_dir) == [vod_dir + "facts/analysis.json", vod_dir + md.MANIFEST_NAME]
    assert set(env.keys(env.out_dir(KEY, "other"))) == other
    # A Job rendered by an operator from before per-Workflow directories has the
    # shared "<key>.mediaflow/" dir, which holds every Workflow's directory: its
    # cleanup still deletes only outputs stamped with its own Workflow.
    legacy = _job(env, etag, [FACTS], workflow="vod")
    shared = "out/show.mp4" + md.OUTPUT_DIR_SUFFIX + "/"
    legacy = legacy.model_copy(update={"output": legacy.output.model_copy(update={"dir": shared})})
    run_job(legacy, storage)
    assert set(env.keys(env.out_dir(KEY, "other"))) == other


def test_an_older_version_finishing_last_is_superseded_and_the_newer_results_stay(
    env: Env,
) -> None:
    """The old Job downloads v1; while it transcodes, v2 is uploaded and its
    Job runs to the end. The old Job must then upload nothing."""
    v1, v2 = _two_versions(env)
    etag1 = env.upload(KEY, v1)
    newer: dict[str, JobOutcome] = {}

    def overwrite_and_process_v2() -> None:
        etag2 = env.upload(KEY, v2)
        newer["v2"] = run_job(_job(env, etag2, [THUMBS, FACTS]), Storage(env.client))

    storage = Hooked(Storage(env.client), "download_input", overwrite_and_process_v2)
    older = run_job(_job(env, etag1, [THUMBS, FACTS]), storage)

    manifest = _manifest(env)
    etag2 = env.client.stat_object(env.uploads, KEY).etag.strip('"')
    assert manifest["ok"] is True
    assert manifest["input"]["etag"] == etag2
    out_dir = env.out_dir(KEY)
    assert set(env.keys(out_dir)) == _listed(manifest) | {out_dir + md.MANIFEST_NAME}
    for key in env.keys(out_dir):
        assert _source_etag(env, key) == etag2, key
    assert older.superseded is not None
    assert older.superseded.reason == "Superseded"
    assert newer["v2"].superseded is None


def test_an_older_version_overwritten_during_its_uploads_keeps_no_output_and_no_manifest(
    env: Env,
) -> None:
    """The overwrite lands after the old Job's last upload, before its manifest:
    the old Job deletes what it uploaded that still carries its own source
    ETag, never the newer version's output of the same name."""
    v1, v2 = _two_versions(env)
    etag1 = env.upload(KEY, v1)

    def overwrite_and_process_v2() -> None:
        etag2 = env.upload(KEY, v2)
        run_job(_job(env, etag2, [FACTS]), Storage(env.client))

    storage = Hooked(Storage(env.client), "upload", overwrite_and_process_v2)
    older = run_job(_job(env, etag1, [FACTS]), storage)

    etag2 = env.client.stat_object(env.uploads, KEY).etag.strip('"')
    manifest = _manifest(env)
    assert (manifest["ok"], manifest["input"]["etag"]) == (True, etag2)
    out_dir = env.out_dir(KEY)
    assert env.keys(out_dir) == [out_dir + "facts/analysis.json", out_dir + md.MANIFEST_NAME]
    assert _source_etag(env, out_dir + "facts/analysis.json") == etag2
    assert _source_etag(env, out_dir + md.MANIFEST_NAME) == etag2
    assert older.superseded is not None


@pytest.mark.parametrize("failing", ["changed at download", "failing preflight"])
def test_a_failing_retry_of_an_overwritten_object_does_not_replace_a_good_manifest(
    env: Env, failing: str
) -> None:
    v1, v2 = _two_versions(env)
    etag1 = env.upload(KEY, v1)
    etag2 = env.upload(KEY, v2)
    done, good = env.run(env.job(KEY, etag2, tasks=[FACTS]))
    assert (done.returncode, good.reason) == (0, "Succeeded"), done.stderr
    before = env.client.stat_object(env.media, good.manifest)

    tasks = [FACTS]
    if failing == "failing preflight":
        # A retry that fails before it even looks at the input.
        missing = {"image": {"bucket": "assets", "key": "nope.png"}}
        tasks = [FACTS, {"name": "web", "transcode": {"watermarks": [missing]}}]
    done, retry = env.run(env.job(KEY, etag1, tasks=tasks))

    manifest = _manifest(env)
    assert (manifest["ok"], manifest["input"]["etag"]) == (True, etag2)
    after = env.client.stat_object(env.media, good.manifest)
    assert (after.etag, after.last_modified) == (before.etag, before.last_modified)
    # Superseded, not failed: exit 0 (no retry) and its own reason.
    assert (done.returncode, retry.reason, retry.ok) == (0, "Superseded", True), done.stderr
