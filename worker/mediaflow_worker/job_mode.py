"""``mediaflow-worker job``: one input object in, outputs and a manifest out.

Order matters: outputs are built completely in scratch space, uploaded, and
``manifest.json`` goes last, so a manifest with ``ok: true`` means every
output listed in it exists. When anything fails, what was uploaded is deleted
again and a manifest with ``ok: false`` and the error takes its place.

The output directory is this Workflow's own (``metadata.output_dir_for``), and
every output and the manifest carry the stamp ``mediaflow-workflow`` +
``mediaflow-source-etag``. Cleanup deletes only keys with this Job's stamp, so
it can touch neither another Workflow's results nor a newer version's.

**The newest version wins.** The input's current ETag is checked again before
each upload and right before ``manifest.json`` (and before a failure is
recorded). When the object was overwritten or deleted meanwhile, the Job is
*superseded* (``SupersededError``): it deletes what it uploaded that still
carries its own stamp, writes no manifest at all, and ends with exit 0 and the
reason ``Superseded``; the newer version's Job writes the results. What is
left is the time between the last check and the manifest write (one request),
and an output upload already in flight when the object changes: the newer
Job starts only after the overwrite and needs far longer than that.

**Custom output names** (``tasks[].output``, ``output_names``) put a task's
files outside the output directory, into keys other inputs' Jobs may render
too. So: an upload to a custom key that already holds an object not stamped
as this Workflow's output of this input (another input, another Workflow, or
no stamp at all) fails the Job with ``OutputCollision`` (exit 2) and
overwrites nothing; stale custom outputs of an earlier run are found in the
previous manifest's ``customOutputs`` (never by listing a shared prefix) and
deleted only when stamped as this Workflow's output of this input; a failure
manifest carries the previous ``customOutputs`` on, so a later success still
finds them. Failure and supersede cleanup cover custom keys like the others
(``delete_own``). The stat before an upload and the upload are two requests:
two inputs rendering one key in the same moment can still race.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaflow_api import metadata as md
from mediaflow_api.job import WorkerJob
from mediaflow_worker import encoders, manifest, output_names, preflight, runner
from mediaflow_worker.config import font_file, scratch_root
from mediaflow_worker.errors import (
    AssetNotFoundError,
    InputNotFoundError,
    OutputCollisionError,
    SupersededError,
    WorkerError,
)
from mediaflow_worker.storage import OutputStamp, Storage, output_metadata, stamp_of
from mediaflow_worker.uploader import BackgroundUploader

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

    def __init__(
        self,
        manifest_key: str,
        outputs: int,
        skipped: bool,
        superseded: SupersededError | None = None,
    ) -> None:
        self.manifest_key = manifest_key
        self.outputs = outputs
        self.skipped = skipped
        # Set when the input changed while the Job ran: nothing was written.
        self.superseded = superseded


def check_still_current(storage: Storage, job: WorkerJob) -> None:
    """Raise ``SupersededError`` when the input is no longer the version
    ``job`` was made for (overwritten, or deleted)."""
    ref = job.input
    current = storage.current_etag(ref.bucket, ref.key)
    if current is None:
        raise SupersededError(
            f"s3://{ref.bucket}/{ref.key} was deleted while the Job ran; nothing was kept"
        )
    if ref.etag and current != ref.etag.strip('"'):
        raise SupersededError(
            f"s3://{ref.bucket}/{ref.key} was overwritten while the Job ran "
            f"(ETag {ref.etag} is now {current}); the newer version's Job writes the results"
        )


def delete_own(storage: Storage, bucket: str, keys: list[str], stamp: OutputStamp) -> None:
    """Delete those of ``keys`` that carry ``stamp``: never an object a newer
    version's Job (same key, other source ETag) or another Workflow wrote."""
    mine = []
    for key in keys:
        try:
            found = storage.output_stamp(bucket, key)
        except WorkerError as exc:
            log.error("cleanup: cannot check %s: %s", key, exc.message)
            continue
        if found is not None and found.same_as(stamp):
            mine.append(key)
        elif found is not None:
            log.info("cleanup: %s was rewritten by another run; left alone", key)
    failed = storage.delete(bucket, mine)
    if failed:
        log.error("could not delete %d partial output(s)", len(failed))


# An upload target as the uploader carries it: "<bucket>/<key>" (bucket names
# hold no '/').
def _target(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


def _split(target: str) -> tuple[str, str]:
    bucket, _, key = target.partition("/")
    return bucket, key


def delete_own_targets(storage: Storage, targets: list[str], stamp: OutputStamp) -> None:
    """``delete_own`` for uploads that may lie in several buckets."""
    by_bucket: dict[str, list[str]] = {}
    for target in targets:
        bucket, key = _split(target)
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, keys in by_bucket.items():
        delete_own(storage, bucket, keys, stamp)


def check_custom_key(storage: Storage, bucket: str, key: str, stamp: OutputStamp) -> None:
    """``OutputCollisionError`` when custom output key ``bucket``/``key``
    holds an object that is not this Workflow's output of this input: it is
    never overwritten."""
    found = storage.output_stamp(bucket, key)
    if found is None or found.same_source(stamp):
        return
    owner = (
        f"an output of s3://{found.source_bucket}/{found.source_key} by Workflow {found.workflow}"
        if found.workflow
        else "an object mediaflow did not write"
    )
    raise OutputCollisionError(
        f"custom output s3://{bucket}/{key} already holds {owner}; it was not overwritten "
        "(make tasks[].output.fileName unique per input, e.g. with {inputDir} or {inputExt})"
    )


def previous_custom_outputs(previous: dict[str, Any] | None) -> list[str]:
    """The custom-named outputs an earlier run recorded (``customOutputs`` of
    its manifest), as upload targets."""
    found = (previous or {}).get("customOutputs")
    if not isinstance(found, list):
        return []
    return [
        _target(str(o["bucket"]), str(o["key"]))
        for o in found
        if isinstance(o, dict) and o.get("bucket") and o.get("key")
    ]


def _custom_doc(targets: list[str]) -> list[dict[str, str]]:
    return [{"bucket": b, "key": k} for b, k in map(_split, sorted(targets))]


def run_job(
    job: WorkerJob, storage: Storage, on_manifest: Callable[[str], None] | None = None
) -> JobOutcome:
    """Process ``job`` end to end; raises ``WorkerError`` on failure (after cleanup).

    Each task's outputs are uploaded in the background as soon as the task
    is done (``BackgroundUploader``), while the next tasks run; the manifest
    waits for every upload."""
    started_wall, started = _now(), time.monotonic()
    # The operator sets the Job's activeDeadlineSeconds to the same limit:
    # ffmpeg must stop early enough to leave time for uploads or cleanup.
    deadline, upload_deadline = deadlines(started, job.limits.timeout_seconds)
    out_bucket, out_dir = job.output.bucket, job.output.dir
    manifest_key = out_dir + md.MANIFEST_NAME
    hash_ = manifest.spec_hash(job.tasks)
    where = f"{job.workflow.namespace}/{job.workflow.name} s3://{job.input.bucket}/{job.input.key}"
    if not job.input.etag:
        # Only the ETag tells a newer version apart: take the current one as
        # this Job's (outputs are stamped with it, later checks compare to it).
        seen = storage.current_etag(job.input.bucket, job.input.key) or ""
        job = job.model_copy(update={"input": job.input.model_copy(update={"etag": seen})})
    stamp = stamp_of(job)
    previous = storage.read_json(out_bucket, manifest_key)
    # Custom-named outputs of earlier runs: only the manifest knows them.
    earlier_custom = previous_custom_outputs(previous)
    if not job.force and manifest.is_up_to_date(previous, job.input.etag, hash_):
        log.info("%s: outputs are up to date (same ETag and tasks); nothing to do", where)
        count = int((previous or {}).get("outputCount", 0))
        return JobOutcome(manifest_key, count, skipped=True)
    scratch = Path(tempfile.mkdtemp(prefix="mediaflow-", dir=scratch_root()))

    specs = {t.name: t for t in job.tasks}
    # Local output file -> its upload target; the custom-named ones.
    targets: dict[Path, str] = {}
    taken: set[str] = {_target(out_bucket, manifest_key)}
    custom: set[str] = set()

    def upload_output(target: str, path: Path, meta: dict[str, str], stop: threading.Event) -> None:
        # One stat per output: an overwrite stops the uploads before they
        # replace a newer version's outputs of the same name.
        check_still_current(storage, job)
        bucket, key = _split(target)
        if target in custom:
            check_custom_key(storage, bucket, key, stamp)
        storage.upload(bucket, key, path, meta, deadline=upload_deadline, stop=stop)

    uploader = BackgroundUploader(upload_output)
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

        def fetch_sibling(name: str) -> Path | None:
            # A subtitle sidecar next to the input: same bucket, same "directory".
            prefix = job.input.key.rpartition("/")[0]
            key = f"{prefix}/{name}" if prefix else name
            try:
                return download_asset(job.input.bucket, key)
            except AssetNotFoundError:
                return None

        # Watermark images and the font first: a bad one fails the Job
        # before the (possibly large) input is downloaded.
        font = font_file()
        fetch_asset = preflight.check(job.tasks, download_asset, font)
        source = scratch / "input"
        encoders.prefetch_encoders()  # overlaps the download (checked before the first task)
        log.info("%s: downloading", where)
        input_doc["size"] = storage.download_input(
            job.input, source, job.limits.max_input_bytes, deadline=deadline
        )
        probed = runner.vet_input(source, job.limits)
        probe_summary = probed.summary()
        out_root = scratch / "out"

        def upload_task_outputs(result: runner.TaskResult) -> None:
            meta = output_metadata(job, result.name)
            placed = output_names.place(
                specs[result.name],
                result.outputs,
                out_root / result.name,
                default_prefix=out_dir,
                input_key=job.input.key,
                trigger_prefix=job.output.trigger_prefix,
            )
            for p in placed:
                target = _target(p.bucket or out_bucket, p.key)
                if target in taken:
                    raise OutputCollisionError(
                        f"task {result.name!r}: its output s3://{target} is also another "
                        "task's output (give the tasks distinct output names)"
                    )
                targets[p.output.path] = target
                taken.add(target)
                if p.custom:
                    custom.add(target)
            for p in placed:
                uploader.submit(targets[p.output.path], p.output.path, meta)

        def locate(path: Path) -> dict[str, Any]:
            bucket, key = _split(targets[path])
            return {"bucket": bucket, "key": key}

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
            on_task_done=upload_task_outputs,
            fetch_sibling=fetch_sibling,
            input_name=job.input.key.rpartition("/")[2],
        )
        uploaded = uploader.finish()
        log.info("%s: uploaded %d output(s)", where, len(uploaded))
        check_still_current(storage, job)  # before the cleanup may delete anything
        # Outputs of an earlier run with other tasks would otherwise linger
        # next to the new ones and contradict the manifest. Only this
        # Workflow's own outputs count as stale (a Job of an older operator
        # may have an output dir that holds other Workflows' directories).
        mine = {_split(t)[1] for t in uploaded if _split(t)[0] == out_bucket}
        stale = set(storage.list_keys(out_bucket, out_dir)) - mine - {manifest_key}
        _delete_stale(storage, out_bucket, sorted(stale), stamp)
        _delete_stale_custom(storage, sorted(set(earlier_custom) - set(uploaded)), stamp)
        doc = manifest.build(
            workflow=workflow_doc,
            input_=input_doc,
            spec_hash_=hash_,
            probe=probe_summary,
            tasks=runner.task_entries(results, out_root, out_dir, locate),
            started_at=started_wall,
            finished_at=_now(),
            seconds=time.monotonic() - started,
            ok=True,
            custom_outputs=_custom_doc(sorted(custom & set(uploaded))),
        )
        # Last check right before the manifest: the window left for a newer
        # version's Job is this one request.
        check_still_current(storage, job)
        storage.upload_bytes(
            out_bucket, manifest_key, manifest.dumps(doc), output_metadata(job, "manifest")
        )
        if on_manifest:
            on_manifest(manifest_key)
        return JobOutcome(manifest_key, len(uploaded), skipped=False)
    except SupersededError as exc:
        uploaded = uploader.stop()
        return _supersede(storage, job, uploaded, stamp, exc, where)
    except WorkerError as exc:
        # Nothing may land after the cleanup: wait for the uploads in flight.
        uploaded = uploader.stop()
        superseded = (
            None if isinstance(exc, InputNotFoundError) else _superseded_meanwhile(storage, job)
        )
        if superseded is not None:
            # A failure of an old version must not replace the newer
            # version's manifest (a retry of an overwritten object).
            log.info("%s: failed (%s), but the input changed meanwhile", where, exc.reason)
            return _supersede(storage, job, uploaded, stamp, superseded, where)
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
            earlier_custom,
        )
        raise
    except BaseException:
        # Anything unexpected (a bug, Ctrl-C): still leave no partial output.
        uploaded = uploader.stop()
        delete_own_targets(storage, uploaded, stamp)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _delete_stale(storage: Storage, bucket: str, keys: list[str], stamp: OutputStamp) -> None:
    """Delete leftovers of this Workflow's earlier runs on this input (any
    source ETag); keys another Workflow wrote are left alone."""
    ours = []
    for key in keys:
        found = storage.output_stamp(bucket, key)
        if found is not None and found.workflow == stamp.workflow:
            ours.append(key)
    failed = storage.delete(bucket, ours)
    if failed:
        log.warning("could not delete %d stale output(s)", len(failed))


def _delete_stale_custom(storage: Storage, targets: list[str], stamp: OutputStamp) -> None:
    """Delete custom-named outputs an earlier run of this Workflow made from
    this input (any source ETag) that this run did not write again; a key
    another input or Workflow has written since is left alone."""
    for target in targets:
        bucket, key = _split(target)
        try:
            found = storage.output_stamp(bucket, key)
        except WorkerError as exc:
            log.warning("cannot check stale output s3://%s: %s", target, exc.message)
            continue
        ours = found is not None and found.same_source(stamp)
        if ours and storage.delete(bucket, [key]):
            log.warning("could not delete stale output s3://%s", target)


def _superseded_meanwhile(storage: Storage, job: WorkerJob) -> SupersededError | None:
    """The reason a failing Job is superseded after all, or None (also when
    storage cannot tell: then the failure is recorded as usual). An input
    missing already at download stays ``InputNotFound`` (the event named an
    object that is not there); one deleted after that supersedes the Job."""
    try:
        check_still_current(storage, job)
    except SupersededError as exc:
        return exc
    except WorkerError:
        return None
    return None


def _supersede(
    storage: Storage,
    job: WorkerJob,
    uploaded: list[str],
    stamp: OutputStamp,
    exc: SupersededError,
    where: str,
) -> JobOutcome:
    """Leave no trace: delete this Job's own uploads, write no manifest."""
    log.info("%s: superseded: %s", where, exc.message)
    delete_own_targets(storage, uploaded, stamp)
    return JobOutcome(job.output.dir + md.MANIFEST_NAME, 0, skipped=False, superseded=exc)


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
    earlier_custom: list[str],
) -> None:
    """Delete partial outputs and record the failure in the manifest (with
    the earlier run's custom-named outputs, which are still there)."""
    delete_own_targets(storage, uploaded, stamp_of(job))
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
        custom_outputs=_custom_doc(earlier_custom),
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
