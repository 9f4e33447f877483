"""The pipeline shared by ``job`` and ``run``: vet, probe, run every task.

Input in, local files out; storage is someone else's job (``job_mode``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow_api.job import Limits
from mediaflow_api.tasks import TaskSpec
from mediaflow_worker import encoders, safety
from mediaflow_worker.content_types import content_type
from mediaflow_worker.errors import OutputTooLargeError, WorkerError
from mediaflow_worker.probe import ProbeResult, probe
from mediaflow_worker.tasks import (
    AssetFetcher,
    InputFacts,
    OutputFile,
    SiblingFetcher,
    TaskContext,
    TaskNotApplicable,
    no_siblings,
)
from mediaflow_worker.tasks.registry import prepare
from mediaflow_worker.understanding import packages

log = logging.getLogger(__name__)


@dataclass
class TaskResult:
    """What one task produced, for the manifest."""

    name: str
    kind: str
    status: str  # succeeded | skipped | failed
    seconds: float
    outputs: list[OutputFile] = field(default_factory=list)
    reason: str = ""


def vet_input(path: Path, limits: Limits) -> ProbeResult:
    """Sniff, probe and check an input against the safety rules."""
    safety.sniff(path)
    result = probe(path, limits.max_pixels)
    safety.check_demuxer(result.format_name)
    safety.check_limits(
        duration=result.duration,
        pixels=result.pixels,
        size=result.size,
        max_duration=limits.max_duration_seconds,
        max_pixels=limits.max_pixels,
        max_size=limits.max_input_bytes,
    )
    return result


def run_tasks(
    input_path: Path,
    probe_result: ProbeResult,
    tasks: list[TaskSpec],
    *,
    limits: Limits,
    out_root: Path,
    scratch: Path,
    deadline: float,
    fetch_asset: AssetFetcher,
    font: str,
    on_task_done: Callable[[TaskResult], None] | None = None,
    fetch_sibling: SiblingFetcher = no_siblings,
    input_name: str = "",
    secret_dir: Path | None = None,
) -> list[TaskResult]:
    """Run ``tasks`` in order; outputs land in ``out_root/<task name>/``.

    The first failing task stops the run (its ``WorkerError`` propagates):
    a Job either delivers everything or nothing. ``on_task_done`` gets each
    succeeded task as soon as its outputs are complete and the outputs so
    far are within ``limits.max_output_bytes`` (``job`` uploads them while
    the next tasks run). ``fetch_sibling``/``input_name``: files next to the
    input (subtitle sidecars found by their naming rule). ``secret_dir``: where
    Secret keys lie (default ``SECRETS_DIR``, the Job's mounts)."""
    prepared = [prepare(task) for task in tasks]  # presets resolved once, here
    encoders.check_encoders(prepared)
    packages.check_ml_tasks(prepared)
    facts = InputFacts()  # shared: what one task probes, the next reuses
    results: list[TaskResult] = []
    output_bytes = 0
    for job in prepared:
        task = job.task
        out_dir = out_root / task.name
        out_dir.mkdir(parents=True, exist_ok=True)
        ctx = TaskContext(
            input_path=input_path,
            probe=probe_result,
            limits=limits,
            scratch=scratch,
            out_dir=out_dir,
            deadline=deadline,
            fetch_asset=fetch_asset,
            font=font,
            task_name=task.name,
            facts=facts,
            fetch_sibling=fetch_sibling,
            input_name=input_name or input_path.name,
        )
        if secret_dir is not None:
            ctx.secret_dir = secret_dir
        started = time.monotonic()
        log.info("task %s (%s): started", task.name, task.kind)
        try:
            outputs = job.run(ctx)
        except TaskNotApplicable as exc:
            log.info("task %s: skipped: %s", task.name, exc)
            results.append(
                TaskResult(
                    task.name, task.kind, "skipped", time.monotonic() - started, [], str(exc)
                )
            )
            continue
        except WorkerError as exc:
            exc.message = f"task {task.name!r}: {exc.message}"
            raise
        elapsed = time.monotonic() - started
        log.info("task %s: %d output(s) in %.1f s", task.name, len(outputs), elapsed)
        result = TaskResult(task.name, task.kind, "succeeded", elapsed, outputs)
        results.append(result)
        # Checked after every task, not once at the end: outputs handed on
        # (uploaded) before a later task passes the limit would be wasted work.
        output_bytes = check_output_size([result], limits.max_output_bytes, output_bytes)
        if on_task_done is not None:
            on_task_done(result)
    return results


def check_output_size(results: list[TaskResult], max_bytes: int, before: int = 0) -> int:
    """The bytes of ``results``' outputs plus ``before`` (outputs counted
    earlier); ``OutputTooLargeError`` when that total passes the limit."""
    total = before + sum(o.path.stat().st_size for r in results for o in r.outputs)
    if total > max_bytes:
        raise OutputTooLargeError(f"outputs total {total} bytes; the limit is {max_bytes}")
    return total


def task_entries(
    results: list[TaskResult],
    out_root: Path,
    key_prefix: str | None,
    locate: Callable[[Path], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Manifest entries: one per task, every output with its key (or path):
    ``locate(local path)`` gives the location fields where outputs may have
    custom names (``{"bucket", "key"}`` or ``{"path"}``), else ``key_prefix``
    + the path under ``out_root`` (None: the path alone)."""
    entries = []
    for r in results:
        outputs = []
        for o in r.outputs:
            rel = o.path.relative_to(out_root).as_posix()
            item: dict[str, Any]
            if locate is not None:
                item = dict(locate(o.path))
            else:
                item = {"key": key_prefix + rel} if key_prefix is not None else {"path": rel}
            item["size"] = o.path.stat().st_size
            # What the upload is stored with; notifications pass it on.
            item["contentType"] = content_type(rel)
            item.update(o.info)
            outputs.append(item)
        entry: dict[str, Any] = {
            "name": r.name,
            "type": r.kind,
            "status": r.status,
            "seconds": round(r.seconds, 3),
            "outputs": outputs,
        }
        if r.reason:
            entry["reason"] = r.reason
        entries.append(entry)
    return entries
