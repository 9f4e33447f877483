"""A stand-in worker for operator tests: honours the Job contract without FFmpeg.

It reads ``MEDIAFLOW_JOB``, reaches MinIO with the secretKeyRef credentials,
writes one output file and ``manifest.json`` (both marked as mediaflow output,
into the output directory, which by default lies inside the trigger prefix)
and a termination summary. Keys containing ``bad-input`` exit 2 (permanent
failure); ``MEDIAFLOW_FAKE_WORKER_SLEEP`` (seconds, from the ``--sleep`` arg)
keeps the Job running for a while.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

from minio import Minio

from mediaflow_api.job import WorkerJob
from mediaflow_api.metadata import MANIFEST_NAME, OUTPUT_MARKER


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
    stat = client.stat_object(job.input.bucket, job.input.key)
    marker: dict[str, str | list[str] | tuple[str]] = {OUTPUT_MARKER: "true"}
    body = f"processed {job.input.key} ({stat.size} bytes)".encode()
    out_key = f"{job.output.dir}{job.tasks[0].name}/result.txt"
    client.put_object(job.output.bucket, out_key, io.BytesIO(body), len(body), metadata=marker)
    manifest = json.dumps({"input": job.input.key, "outputs": [out_key]}).encode()
    client.put_object(
        job.output.bucket,
        job.output.dir + MANIFEST_NAME,
        io.BytesIO(manifest),
        len(manifest),
        metadata=marker,
    )
    with open(term_path, "w") as fh:
        json.dump({"ok": True, "exitCode": 0, "manifest": job.output.dir + MANIFEST_NAME}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
