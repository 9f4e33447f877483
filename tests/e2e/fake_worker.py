"""A stand-in worker for operator tests: honours the Job contract without FFmpeg.

It reads ``MEDIAFLOW_JOB``, reaches MinIO with the secretKeyRef credentials,
writes one output file and ``manifest.json`` (both with the real worker's
user metadata: the mediaflow-output marker, the Workflow and the source ETag;
into the Workflow's own output directory, which by default lies inside the
trigger prefix) and a termination summary. Keys containing ``bad-input`` exit
2 (permanent failure); ``MEDIAFLOW_FAKE_WORKER_SLEEP`` (seconds, from the
``--sleep`` arg) keeps the Job running for a while. Like the real worker, a Job
whose input was overwritten meanwhile (the ETag differs after the sleep, or
right before the manifest) is superseded: it removes its output, writes no
manifest, and exits 0 with the reason ``Superseded``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

from minio import Minio

from mediaflow_api.job import EXIT_OK, REASON_SUPERSEDED, WorkerJob
from mediaflow_api.metadata import MANIFEST_NAME
from mediaflow_worker.storage import output_metadata


def _changed(client: Minio, job: WorkerJob) -> bool:
    """Whether the input is no longer the version the Job was made for."""
    current = client.stat_object(job.input.bucket, job.input.key).etag or ""
    return bool(job.input.etag) and current.strip('"') != job.input.etag.strip('"')


def _superseded(term_path: str) -> int:
    summary = {
        "ok": True,
        "exitCode": EXIT_OK,
        "reason": REASON_SUPERSEDED,
        "message": "the input was overwritten while the Job ran",
    }
    with open(term_path, "w") as fh:
        json.dump(summary, fh)
    return EXIT_OK


def main() -> int:
    sleep = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
    job = WorkerJob.model_validate_json(os.environ["MEDIAFLOW_JOB"])
    term_path = os.environ["MEDIAFLOW_TERMINATION_MESSAGE_PATH"]
    client = Minio(
        os.environ["MEDIAFLOW_S3_ENDPOINT"],
        access_key=os.environ["MEDIAFLOW_S3_ACCESS_KEY"],
        secret_key=os.environ["MEDIAFLOW_S3_SECRET_KEY"],
        secure=False,
    )
    time.sleep(sleep)
    if "bad-input" in job.input.key:
        summary = {"ok": False, "exitCode": 2, "reason": "BadInput", "message": "not a media file"}
        with open(term_path, "w") as fh:
            json.dump(summary, fh)
        return 2
    if _changed(client, job):
        return _superseded(term_path)
    stat = client.stat_object(job.input.bucket, job.input.key)
    task = job.tasks[0].name
    meta: dict[str, str | list[str] | tuple[str]] = dict(output_metadata(job, task))
    body = f"processed {job.input.key} ({stat.size} bytes)".encode()
    out_key = f"{job.output.dir}{task}/result.txt"
    client.put_object(job.output.bucket, out_key, io.BytesIO(body), len(body), metadata=meta)
    if _changed(client, job):
        client.remove_object(job.output.bucket, out_key)
        return _superseded(term_path)
    workflow = f"{job.workflow.namespace}/{job.workflow.name}"
    # The real worker's manifest shape (manifest.build), so what the operator
    # reads from it (notifications) is tested on the stand-in too.
    manifest = json.dumps(
        {
            "version": 1,
            "ok": True,
            "workflow": workflow,
            "input": {"bucket": job.input.bucket, "key": job.input.key, "etag": job.input.etag},
            "outputCount": 1,
            "tasks": [
                {
                    "name": task,
                    "type": job.tasks[0].kind,
                    "status": "succeeded",
                    "seconds": sleep,
                    "outputs": [{"key": out_key, "size": len(body), "contentType": "text/plain"}],
                }
            ],
            "outputs": [out_key],
        }
    ).encode()
    manifest_meta: dict[str, str | list[str] | tuple[str]] = dict(output_metadata(job, "manifest"))
    client.put_object(
        job.output.bucket,
        job.output.dir + MANIFEST_NAME,
        io.BytesIO(manifest),
        len(manifest),
        metadata=manifest_meta,
    )
    with open(term_path, "w") as fh:
        json.dump({"ok": True, "exitCode": 0, "manifest": job.output.dir + MANIFEST_NAME}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
