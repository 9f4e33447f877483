"""Manual trigger: process one existing object on request (the reference
service's "process media" call).

A user (or ``mediaflow process``) sets two annotations on the Workflow:
``mediaflow.dev/process: <key>`` and ``mediaflow.dev/process-request: <id>``.
The operator creates a forced Job for the object's current version, named from
the request id (so repeating a request is idempotent, a new request re-runs),
then removes both annotations and records an Event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from minio.error import S3Error

from mediaflow_api.job import ObjectRef
from mediaflow_operator import job_render, naming, workflows
from mediaflow_operator.runtime import Runtime


class ManualTriggerError(Exception):
    """The request cannot be served (no such object, key outside the trigger)."""


async def process(rt: Runtime, body: Mapping[str, Any], key: str, request_id: str) -> str:
    """Create the Job; returns its name."""
    spec = workflows.parse_spec(body)
    ident = workflows.identity(body)
    bucket = spec.trigger.bucket
    if not key.startswith(spec.trigger.prefix):
        raise ManualTriggerError(f"{key!r} is outside the trigger prefix {spec.trigger.prefix!r}")
    try:
        stat = await asyncio.to_thread(rt.minio.stat_object, bucket, key)
    except S3Error as exc:
        raise ManualTriggerError(f"{bucket}/{key}: {exc.code}") from None
    etag = (stat.etag or "").strip('"')
    name = naming.job_name(
        ident.namespace,
        ident.name,
        bucket,
        key,
        etag,
        stat.version_id or "",
        workflow_uid=ident.uid,
        nonce=request_id,
    )
    manifest = job_render.render_job(
        workflow=ident,
        spec=spec,
        obj=ObjectRef(
            bucket=bucket, key=key, etag=etag, versionId=stat.version_id or "", size=stat.size
        ),
        job_name=name,
        storage_secret=workflows.storage_secret_name(spec),
        image=rt.settings.worker_image,
        command=rt.settings.worker_command,
        trigger="manual",
        force=True,
    )
    await rt.kube.create_job(ident.namespace, manifest)
    await clear(rt, body)
    return name


async def clear(rt: Runtime, body: Mapping[str, Any]) -> None:
    """Remove the request annotations (the request is served)."""
    ident = workflows.identity(body)
    await rt.kube.patch_workflow_metadata(
        ident.namespace,
        ident.name,
        {"annotations": {naming.ANNOTATION_PROCESS: None, naming.ANNOTATION_PROCESS_REQUEST: None}},
    )
