"""Understanding benchmark: accuracy and speed of the content-understanding
tasks (quality, cover, ocr, speech, moderation), and the models they load.

Each ``bench/understanding_<type>.py`` beside this file (written with its task)
has ``measure(work: Path) -> list[dict]``: rows of
``{"task", "measure", "value", "unit", "material", "seconds", "mediaSeconds",
"realTimeFactor"}`` (real-time factor = processing seconds / media seconds;
below 1 is faster than real time) measured on media with known content in the
scratch directory ``work``. This runs every one present, prints one table and
writes ``--json`` (default ``bench/understanding.json``) with the machine, the
ONNX Runtime execution provider that ran and the rows.

CPU is the default and the tested path. ``MEDIAFLOW_ML_PROVIDERS`` (e.g.
``CUDAExecutionProvider,CPUExecutionProvider``) asks for another provider;
the report says which one the sessions actually got (a provider this
onnxruntime lacks falls back to CPU). ``MEDIAFLOW_ML_THREADS`` bounds the
threads of a session.

``--models`` prints instead the table of every packaged model (package,
version, file, size, licence) as docs/understanding.md shows it. Usage::

    python bench/understanding_bench.py [--only ocr,speech] [--json PATH]
    python bench/understanding_bench.py --models
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
PREFIX = "understanding_"
ROW_KEYS = (
    "task",
    "measure",
    "value",
    "unit",
    "material",
    "seconds",
    "mediaSeconds",
    "realTimeFactor",
)

Measure = Callable[[Path], list[dict[str, Any]]]


def task_modules(directory: Path = HERE) -> dict[str, Path]:
    """Task type -> its ``understanding_<type>.py`` in ``directory`` (this
    runner excluded), sorted by type."""
    found = {}
    for path in sorted(directory.glob(f"{PREFIX}*.py")):
        kind = path.stem.removeprefix(PREFIX)
        if kind != "bench":
            found[kind] = path
    return found


def load(kind: str, path: Path) -> Measure:
    """The ``measure`` function of one task's benchmark module."""
    spec = importlib.util.spec_from_file_location(f"bench_{PREFIX}{kind}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in it resolve their module
    spec.loader.exec_module(module)
    measure = getattr(module, "measure", None)
    if not callable(measure):
        raise RuntimeError(f"{path} has no measure(work) function")
    return measure  # type: ignore[no-any-return]


def check_row(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with exactly the documented keys; ValueError naming the module."""
    missing = [k for k in ROW_KEYS if k not in row]
    if missing:
        raise ValueError(f"understanding_{kind}.py: a row lacks {missing}: {row}")
    return {k: row[k] for k in ROW_KEYS}


def provider_report() -> dict[str, Any]:
    """The execution providers asked for, available and actually given to a
    session (one opened on the voice-activity model, the smallest)."""
    import onnxruntime

    from mediaflow_worker.understanding import onnx, packages

    report: dict[str, Any] = {
        "asked": os.environ.get(onnx.PROVIDERS_ENV) or "CPUExecutionProvider (default)",
        "available": onnxruntime.get_available_providers(),
        "onnxruntime": onnxruntime.__version__,
        "threads": os.environ.get(onnx.THREADS_ENV) or "onnxruntime's default",
    }
    session = onnx.session(packages.VOICE_ACTIVITY.path())
    report["ran"] = session.get_providers()[0]
    return report


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    """A Markdown table of ``rows`` (the columns ``keys``)."""
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def models_table() -> str:
    """Every packaged model: the table docs/understanding.md shows."""
    from mediaflow_worker.understanding.selfcheck import model_facts

    rows = [
        {
            "model": f.name,
            "package": f.distribution,
            "version": f.version,
            "file": f.file,
            "size (MB)": f.size_mb,
            "licence": f.licence,
        }
        for f in model_facts()
    ]
    return table(rows, ("model", "package", "version", "file", "size (MB)", "licence"))


def run(kinds: dict[str, Path], work: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every module's rows, and each module's total wall seconds."""
    rows: list[dict[str, Any]] = []
    totals: dict[str, float] = {}
    for kind, path in kinds.items():
        measure = load(kind, path)
        scratch = work / kind
        scratch.mkdir()
        start = time.monotonic()
        print(f"[understanding] {kind}: measuring ({path.name})", file=sys.stderr, flush=True)
        rows += [check_row(kind, row) for row in measure(scratch)]
        totals[kind] = round(time.monotonic() - start, 1)
    return rows, totals


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (or print the models); 1 when nothing was measured."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", action="store_true", help="print the packaged models")
    parser.add_argument("--only", default="", help="comma-separated task types to run")
    parser.add_argument("--json", type=Path, default=HERE / "understanding.json")
    args = parser.parse_args(argv)
    if args.models:
        print(models_table())
        return 0
    kinds = task_modules()
    wanted = {k.strip() for k in args.only.split(",") if k.strip()}
    if wanted:
        unknown = wanted - set(kinds)
        if unknown:
            parser.error(f"no bench/{PREFIX}<type>.py for {sorted(unknown)}; have {sorted(kinds)}")
        kinds = {k: p for k, p in kinds.items() if k in wanted}
    if not kinds:
        print(f"no bench/{PREFIX}<type>.py to run", file=sys.stderr)
        return 1
    providers = provider_report()
    with tempfile.TemporaryDirectory(prefix="mediaflow-understanding-") as tmp:
        rows, totals = run(kinds, Path(tmp))
    print(table(rows, ROW_KEYS))
    print(
        f"\nexecution provider: {providers['ran']} (asked: {providers['asked']}; "
        f"available: {', '.join(providers['available'])})"
    )
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "providers": providers,
        "moduleSeconds": totals,
        "rows": rows,
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
