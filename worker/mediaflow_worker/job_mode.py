"""``mediaflow-worker job``: one input object in, outputs and a manifest out.

Order matters: outputs are built completely in scratch space, uploaded, and
``manifest.json`` goes last, so a manifest with ``ok: true`` means every
output listed in it exists. When anything fails, what was uploaded is deleted
again and a manifest with ``ok: false`` and the error takes its place.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaflow_api import metadata as md
from mediaflow_api.job import WorkerJob
from mediaflow_worker import manifest, preflight, runner
from mediaflow_worker.config import font_file, scratch_root
from mediaflow_worker.errors import WorkerError
from mediaflow_worker.storage import Storage, output_metadata

log = logging.getLogger(__name__)

UPLOAD_RESERVE_SHARE = 0.1
UPLOAD_RESERVE_MAX_SECONDS = 120.0
# After the uploads' own deadline, time to delete what was uploaded and
# write the failure manifest before the Job's activeDeadlineSeconds.
CLEANUP_RESERVE_SHARE = 0.03
CLEANUP_RESERVE_MAX_SECONDS = 30.0


def deadlines(started: float, timeout: float) -> tuple[float, float]:
    """(processing deadline, upload deadline) for a run started at ``started``
    (``time.monotonic()``) with ``timeout`` seconds in all: download and ffmpeg
    stop at the first, uploads at the second, and what is left is for cleanup."""
    processing = started + timeout - min(UPLOAD_RESERVE_MAX_SECONDS, UPLOAD_RESERVE_SHARE * timeout)
    uploads = started + timeout - min(CLEANUP_RESERVE_MAX_SECONDS, CLEANUP_RESERVE_SHARE * timeout)
    return processing, uploads


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobOutcome:
    """What ``run_job`` reports to the CLI."""

    def __init__(self, manifest_key: str, outputs: int, skipped: bool) -> None:
        self.manifest_key = manifest_key
        self.outputs = outputs
        self.skipped = skipped


def run_job(
    job: WorkerJob, storage: Storage, on_manifest: Callable[[str], None] | None = None
) -> JobOutcome:
    """Process ``job`` end to end; raises ``WorkerError`` on failure (after cleanup)."""
    started_wall, started = _now(), time.monotonic()
    # The operator sets the Job's activeDeadlineSeconds to the same limit:
    # ffmpeg must stop early enough to leave time for uploads or cleanup.
    deadline, upload_deadline = deadlines(started, job.limits.timeout_seconds)
    out_bucket, out_dir = job.output.bucket, job.output.dir
    manifest_key = out_dir + md.MANIFEST_NAME
    hash_ = manifest.spec_hash(job.tasks)
    where = f"{job.workflow.namespace}/{job.workflow.name} s3://{job.input.bucket}/{job.input.key}"
    if not job.force:
        previous = storage.read_json(out_bucket, manifest_key)
        if manifest.is_up_to_date(previous, job.input.etag, hash_):
            log.info("%s: outputs are up to date (same ETag and tasks); nothing to do", where)
            count = int((previous or {}).get("outputCount", 0))
            return JobOutcome(manifest_key, count, skipped=True)
    scratch = Path(tempfile.mkdtemp(prefix="mediaflow-", dir=scratch_root()))
    uploaded: list[str] = []
    probe_summary: dict[str, Any] | None = None
    input_doc: dict[str, Any] = {
        "bucket": job.input.bucket,
        "key": job.input.key,
        "etag": job.input.etag,
    }
    if job.input.version_id:
        input_doc["versionId"] = job.input.version_id
    workflow_doc = {"namespace": job.workflow.namespace, "name": job.workflow.name}
    try:
        assets = scratch / "assets"
        assets.mkdir()

        def download_asset(bucket: str, key: str) -> Path:
            dest = assets / f"{len(list(assets.iterdir()))}-{Path(key).name or 'asset'}"
            return storage.download_asset(bucket, key, dest)

        # Watermark images and the font first: a bad one fails the Job
        # before the (possibly large) input is downloaded.
        font = font_file()
        fetch_asset = preflight.check(job.tasks, download_asset, font)
        source = scratch / "input"
        log.info("%s: downloading", where)
        input_doc["size"] = storage.download_input(
            job.input, source, job.limits.max_input_bytes, deadline=deadline
        )
        probed = runner.vet_input(source, job.limits)
        probe_summary = probed.summary()
        out_root = scratch / "out"
        results = runner.run_tasks(
            source,
            probed,
            job.tasks,
            limits=job.limits,
            out_root=out_root,
            scratch=scratch,
            deadline=deadline,
            fetch_asset=fetch_asset,
            font=font,
        )
        for result in results:
            meta = output_metadata(job, result.name)
            for output in result.outputs:
                key = out_dir + output.path.relative_to(out_root).as_posix()
                storage.upload(out_bucket, key, output.path, meta, deadline=upload_deadline)
                uploaded.append(key)
        log.info("%s: uploaded %d output(s)", where, len(uploaded))
        # Outputs of an earlier run with other tasks would otherwise linger
        # next to the new ones and contradict the manifest.
        stale = set(storage.list_keys(out_bucket, out_dir)) - set(uploaded) - {manifest_key}
        storage.delete(out_bucket, sorted(stale))
        doc = manifest.build(
            workflow=workflow_doc,
            input_=input_doc,
            spec_hash_=hash_,
            probe=probe_summary,
            tasks=runner.task_entries(results, out_root, out_dir),
            started_at=started_wall,
            finished_at=_now(),
            seconds=time.monotonic() - started,
            ok=True,
        )
        storage.upload_bytes(
            out_bucket, manifest_key, manifest.dumps(doc), output_metadata(job, "manifest")
        )
        if on_manifest:
            on_manifest(manifest_key)
        return JobOutcome(manifest_key, len(uploaded), skipped=False)
    except WorkerError as exc:
        _fail(
            storage,
            job,
            uploaded,
            exc,
            workflow_doc,
            input_doc,
            hash_,
            probe_summary,
            started_wall,
            started,
        )
        raise
    except BaseException:
        # Anything unexpected (a bug, Ctrl-C): still leave no partial output.
        failed = storage.delete(out_bucket, uploaded)
        if failed:
            log.error("could not delete %d partial output(s)", len(failed))
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fail(
    storage: Storage,
    job: WorkerJob,
    uploaded: list[str],
    exc: WorkerError,
    workflow_doc: dict[str, str],
    input_doc: dict[str, Any],
    hash_: str,
    probe_summary: dict[str, Any] | None,
    started_wall: str,
    started: float,
) -> None:
    """Delete partial outputs and record the failure in the manifest."""
    failed = storage.delete(job.output.bucket, uploaded)
    if failed:
        log.error("could not delete %d partial output(s)", len(failed))
    doc = manifest.build(
        workflow=workflow_doc,
        input_=input_doc,
        spec_hash_=hash_,
        probe=probe_summary,
        tasks=[],
        started_at=started_wall,
        finished_at=_now(),
        seconds=time.monotonic() - started,
        ok=False,
        error={"reason": exc.reason, "message": exc.message},
    )
    try:
        storage.upload_bytes(
            job.output.bucket,
            job.output.dir + md.MANIFEST_NAME,
            manifest.dumps(doc),
            output_metadata(job, "manifest"),
        )
    except WorkerError as upload_error:
        log.warning("could not record the failure in the manifest: %s", upload_error.message)
