"""``manifest.json``: what one run did, and whether a re-run can be skipped."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mediaflow_api.tasks import TaskSpec, task_json

MANIFEST_VERSION = 1


def spec_hash(tasks: list[TaskSpec]) -> str:
    """A stable hash of the task list (canonical JSON, defaults included)."""
    canonical = json.dumps([task_json(t) for t in tasks], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def is_up_to_date(previous: dict[str, Any] | None, etag: str, hash_: str) -> bool:
    """True when ``previous`` is a successful manifest for the same input
    version and the same tasks: the run would only redo the same work."""
    if not previous or previous.get("ok") is not True:
        return False
    source = previous.get("input") or {}
    return bool(etag) and source.get("etag") == etag and previous.get("specHash") == hash_


def build(
    *,
    workflow: dict[str, str],
    input_: dict[str, Any],
    spec_hash_: str,
    probe: dict[str, Any] | None,
    tasks: list[dict[str, Any]],
    started_at: str,
    finished_at: str,
    seconds: float,
    ok: bool,
    error: dict[str, str] | None = None,
    custom_outputs: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The manifest document (pure). ``custom_outputs`` (bucket + key of
    every custom-named output this Workflow keeps for the input, see
    ``job_mode``) is written only when there are some."""
    outputs = sum(len(t.get("outputs", [])) for t in tasks)
    doc: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "ok": ok,
        "workflow": workflow,
        "input": input_,
        "specHash": spec_hash_,
        "startedAt": started_at,
        "finishedAt": finished_at,
        "seconds": round(seconds, 3),
        "probe": probe,
        "outputCount": outputs,
        "tasks": tasks,
    }
    if error:
        doc["error"] = error
    if custom_outputs:
        doc["customOutputs"] = custom_outputs
    return doc


def dumps(doc: dict[str, Any]) -> bytes:
    """Serialised manifest."""
    return (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode()
