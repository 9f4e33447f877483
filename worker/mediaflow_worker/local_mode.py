"""``mediaflow-worker run -f workflow.yaml INPUT -o OUTDIR``: the Workflow's
tasks on a local file, without a cluster or object storage.

Watermark images name an object (``image: {bucket, key}``); locally it is the
file ``<assets dir>/<bucket>/<key>`` (``--assets DIR``, default: the Workflow
file's directory) unless ``--asset BUCKET/KEY=FILE`` names one file for it.
Every one is checked before the first task runs (``preflight``).

Tasks that refer to a template (``template: {name, kind}``) take it from the
MediaTemplate/ClusterMediaTemplate documents of the Workflow file itself or of
``-t FILE`` (repeatable), resolved by ``mediaflow_api.templates.resolve_tasks``
exactly as the operator does. A MediaTemplate without ``metadata.namespace`` is
in the Workflow's namespace (``default`` when the Workflow names none)."""

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
from mediaflow_api.tasks import (
    CLUSTER_TEMPLATE_KIND,
    TEMPLATE_KIND,
    TaskSpec,
    check_unique_task_names,
)
from mediaflow_api.templates import MediaTemplateSpec, TemplateError, TemplateKey, resolve_tasks
from mediaflow_worker import encoders, manifest, preflight, runner
from mediaflow_worker.config import font_file, scratch_root
from mediaflow_worker.errors import AssetNotFoundError, InputNotFoundError, SpecError
from mediaflow_worker.tasks import AssetFetcher


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    return [d for d in docs if isinstance(d, dict)]


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc}: {first['msg']}"


def load_templates(
    docs: list[tuple[Path, dict[str, Any]]], namespace: str
) -> dict[TemplateKey, dict[str, Any]]:
    """The MediaTemplate/ClusterMediaTemplate documents among ``docs``, keyed like
    the operator's index; each spec is validated like the API server does."""
    found: dict[TemplateKey, dict[str, Any]] = {}
    for path, doc in docs:
        kind = doc.get("kind")
        if kind not in (TEMPLATE_KIND, CLUSTER_TEMPLATE_KIND):
            continue
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not name:
            raise SpecError(f"{path}: a {kind} without metadata.name")
        spec = doc.get("spec") or {}
        try:
            MediaTemplateSpec.model_validate(spec)
        except ValidationError as exc:
            raise SpecError(f"{path}: {kind} {name}: spec.{_first_error(exc)}") from exc
        ns = "" if kind == CLUSTER_TEMPLATE_KIND else str(meta.get("namespace") or namespace)
        found[TemplateKey(str(kind), ns, name)] = dict(spec)
    return found


def load_workflow(
    path: Path, template_files: list[Path] | None = None
) -> tuple[str, list[TaskSpec]]:
    """``metadata.name`` and ``spec.tasks`` of the first Workflow document, with the
    templates its tasks refer to resolved (from the same file and ``template_files``)."""
    docs = _documents(path)
    doc = next((d for d in docs if d.get("kind") == "Workflow"), None)
    if doc is None:
        raise SpecError(f"{path} holds no document of kind Workflow")
    meta = doc.get("metadata") or {}
    name = str(meta.get("name") or path.stem)
    namespace = str(meta.get("namespace") or "default")
    raw_tasks = (doc.get("spec") or {}).get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SpecError(f"{path}: spec.tasks must be a non-empty list")
    try:
        tasks = [TaskSpec.model_validate(t) for t in raw_tasks]
        check_unique_task_names(tasks)
    except ValidationError as exc:
        raise SpecError(f"{path}: spec.tasks: {_first_error(exc)}") from exc
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    if any(t.refers_to_templates for t in tasks):
        sources = [(path, d) for d in docs]
        for extra in template_files or []:
            sources += [(extra, d) for d in _documents(extra)]
        store = load_templates(sources, namespace)
        try:
            tasks = resolve_tasks(tasks, namespace, store.get)
        except TemplateError as exc:
            hint = " (pass its file with -t)" if exc.reason == "TemplateNotFound" else ""
            raise SpecError(f"{path}: {exc.message}{hint}") from exc
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
    template_files: list[Path] | None = None,
) -> dict[str, Any]:
    """Run the tasks; write outputs and ``manifest.json`` into ``out_dir``
    (``template_files``: YAML files with the templates the tasks refer to).

    Watermark images and the text font are checked first (``preflight``):
    a missing or broken one fails before any task starts."""
    encoders.prefetch_encoders()  # overlaps reading the spec and probing the input
    name, tasks = load_workflow(workflow_file, template_files)
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
        entries = runner.task_entries(results, out_root, None)
        out_dir.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            target = out_dir / task.name
            if target.exists():
                shutil.rmtree(target)
            if (out_root / task.name).exists():
                shutil.move(str(out_root / task.name), str(target))
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
