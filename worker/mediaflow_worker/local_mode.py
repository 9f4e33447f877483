"""``mediaflow-worker run -f workflow.yaml INPUT -o OUTDIR``: the Workflow's
tasks on a local file, without a cluster or object storage.

Watermark images name an object (``image: {bucket, key}``); locally it is the
file ``<assets dir>/<bucket>/<key>`` (``--assets DIR``, default: the Workflow
file's directory) unless ``--asset BUCKET/KEY=FILE`` names one file for it.
Every one is checked before the first task runs (``preflight``)."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mediaflow_api.job import Limits
from mediaflow_api.tasks import TaskSpec, check_unique_task_names
from mediaflow_worker import encoders, manifest, output_names, preflight, runner
from mediaflow_worker.config import font_file, scratch_root
from mediaflow_worker.errors import (
    AssetNotFoundError,
    InputNotFoundError,
    OutputCollisionError,
    SpecError,
)
from mediaflow_worker.tasks import AssetFetcher


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_workflow(path: Path) -> tuple[str, list[TaskSpec]]:
    """``metadata.name`` and ``spec.tasks`` of the first Workflow document."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    doc = next((d for d in docs if isinstance(d, dict) and d.get("kind") == "Workflow"), None)
    if doc is None:
        raise SpecError(f"{path} holds no document of kind Workflow")
    name = str((doc.get("metadata") or {}).get("name") or path.stem)
    raw_tasks = (doc.get("spec") or {}).get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SpecError(f"{path}: spec.tasks must be a non-empty list")
    try:
        tasks = [TaskSpec.model_validate(t) for t in raw_tasks]
        check_unique_task_names(tasks)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{path}: spec.tasks: {loc}: {first['msg']}") from exc
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return name, tasks


def local_assets(
    assets_root: Path, mapping: dict[tuple[str, str], Path] | None = None
) -> AssetFetcher:
    """The local stand-in for the bucket: ``mapping`` first, then
    ``<assets_root>/<bucket>/<key>`` (never outside ``assets_root``)."""
    mapping = mapping or {}

    def fetch_asset(bucket: str, key: str) -> Path:
        if (bucket, key) in mapping:
            path = mapping[(bucket, key)]
            if not path.is_file():
                raise AssetNotFoundError(
                    f"watermark image {bucket}/{key}: --asset names {path}, which does not exist"
                )
            return path
        candidate = (assets_root / bucket / key).resolve()
        if not candidate.is_relative_to(assets_root.resolve()) or not candidate.is_file():
            raise AssetNotFoundError(
                f"watermark image {bucket}/{key} not found: no file {assets_root / bucket / key} "
                "(local mode reads <assets dir>/<bucket>/<key>: --assets DIR, default the "
                "Workflow file's directory; or --asset BUCKET/KEY=FILE)"
            )
        return candidate

    return fetch_asset


def run_local(
    workflow_file: Path,
    input_file: Path,
    out_dir: Path,
    *,
    assets_dir: Path | None = None,
    assets: dict[tuple[str, str], Path] | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Run the tasks; write outputs and ``manifest.json`` into ``out_dir``.

    Watermark images and the text font are checked first (``preflight``):
    a missing or broken one fails before any task starts."""
    encoders.prefetch_encoders()  # overlaps reading the spec and probing the input
    name, tasks = load_workflow(workflow_file)
    limits = limits or Limits()
    if not input_file.is_file():
        raise InputNotFoundError(f"input file {input_file} does not exist")
    font = font_file()
    fetch_asset = preflight.check(
        tasks, local_assets(assets_dir or workflow_file.parent, assets), font
    )

    started_wall, started = _now(), time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="mediaflow-", dir=scratch_root()))
    try:
        probed = runner.vet_input(input_file, limits)
        out_root = scratch / "out"
        results = runner.run_tasks(
            input_file,
            probed,
            tasks,
            limits=limits,
            out_root=out_root,
            scratch=scratch,
            deadline=started + limits.timeout_seconds,
            fetch_asset=fetch_asset,
            font=font,
        )
        # Custom names (tasks[].output) become paths under out_dir: <key>, or
        # <bucket>/<key> where the task names a bucket; the input's file name
        # stands for its key ({inputDir} is empty).
        paths: dict[Path, str] = {}
        taken: set[str] = {"manifest.json"}
        by_name = {t.name: t for t in tasks}
        for result in results:
            for p in output_names.place(
                by_name[result.name],
                result.outputs,
                out_root / result.name,
                default_prefix="",
                input_key=input_file.name,
                trigger_prefix="",
            ):
                rel = f"{p.bucket}/{p.key}" if p.bucket else p.key
                if rel in taken:
                    raise OutputCollisionError(
                        f"task {result.name!r}: its output {rel} is also another task's output"
                    )
                paths[p.output.path] = rel
                taken.add(rel)
        entries = runner.task_entries(results, out_root, None, lambda path: {"path": paths[path]})
        out_dir.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            target = out_dir / task.name
            if target.exists():
                shutil.rmtree(target)
        for local, rel in paths.items():
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(local), str(dest))
        doc = manifest.build(
            workflow={"name": name},
            input_={"path": str(input_file), "size": input_file.stat().st_size},
            spec_hash_=manifest.spec_hash(tasks),
            probe=probed.summary(),
            tasks=entries,
            started_at=started_wall,
            finished_at=_now(),
            seconds=time.monotonic() - started,
            ok=True,
        )
        (out_dir / "manifest.json").write_bytes(manifest.dumps(doc))
        return doc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
