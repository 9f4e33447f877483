"""One-task Workflow runs of the worker, as every
``bench/understanding_<type>.py`` makes them: write the Workflow file, time one
``mediaflow-worker run -f``, read the task's JSON result, and shape a result
row for ``bench/understanding_bench.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

WORKER = [sys.executable, "-m", "mediaflow_worker", "run"]


def workflow_file(path: Path, task: str, settings: dict[str, Any], *, kind: str) -> Path:
    """``path``: a Workflow with one task ``task`` of type ``kind``."""
    doc = {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": f"bench-{kind.lower()}", "namespace": "default"},
        "spec": {
            "trigger": {"bucket": "uploads", "prefix": "incoming/"},
            "output": {"bucket": "media", "prefix": "processed/"},
            "tasks": [{"name": task, kind: settings}],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run_worker(workflow: Path, media: Path, out: Path, *extra: str, timeout: float = 900) -> float:
    """``mediaflow-worker run -f workflow media -o out``: its wall seconds;
    ``RuntimeError`` with the worker's stderr when it does not exit 0."""
    started = time.perf_counter()
    done = subprocess.run(
        [*WORKER, "-f", str(workflow), str(media), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MEDIAFLOW_SCRATCH_DIR": str(out.parent)},
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{workflow.stem} on {media.name} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return seconds


def task_result(out: Path, task: str, file: str) -> dict[str, Any]:
    """The JSON result ``file`` that task ``task`` wrote under ``out``."""
    doc: dict[str, Any] = json.loads((out / task / file).read_text(encoding="utf-8"))
    return doc


def result_row(
    task: str,
    measure: str,
    value: float,
    unit: str,
    material: str,
    seconds: float,
    media_seconds: float,
) -> dict[str, object]:
    """One row of the benchmark table (RTF = seconds / media seconds)."""
    return {
        "task": task,
        "measure": measure,
        "value": round(value, 3),
        "unit": unit,
        "material": material,
        "seconds": round(seconds, 2),
        "mediaSeconds": round(media_seconds, 2),
        "realTimeFactor": round(seconds / media_seconds, 3) if media_seconds else 0.0,
    }
