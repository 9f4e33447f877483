"""Measure the ``quality`` task: precision and recall of its findings at
±0.5 s on clips with injected defects, and its real-time factor.

The clips come from ``tests/support/understanding/quality`` (black, freeze,
blur, silence, out-of-phase audio, a QR code, interlacing, letterbox bars,
dropped frames, quiet and loud audio, an EAN-13 barcode, and a clean clip). Every clip runs
through ``mediaflow-worker run -f`` like a user's would, with the default
settings; a finding matches a defect of its type when both its start and its
end lie within ``TOLERANCE`` of the defect's.

``python -m bench.understanding_quality`` prints the rows as JSON; the
understanding benchmark calls ``measure``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.worker_runs import run_worker, task_result, workflow_file
from tests.support.understanding import quality as clips

TOLERANCE = 0.5
# The types the issue asks precision and recall for, then all of them.
MEASURED = ("black", "freeze", "blur", "silence")
MATERIAL = (
    "generated 320x240 25 fps clips with injected defects (tests/support/understanding/quality.py)"
)
# A real file for the speed of a larger picture, when the corpus is there.
CORPUS_FILE = "landscape_1080p_h264_aac.mp4"

MAKERS: list[Callable[[Path], clips.DefectClip]] = [
    *(lambda d, n=n: clips.defects_clip(d, n) for n in range(len(clips.LAYOUTS))),
    clips.clean_clip,
    clips.interlaced_clip,
    clips.letterbox_clip,
    clips.dropped_clip,
    lambda d: clips.level_clip(d, -25),
    lambda d: clips.level_clip(d, 15),
    clips.barcode_clip,
]


def _workflow(directory: Path) -> Path:
    return workflow_file(directory / "quality.yaml", "qc", {}, kind="quality")


def _run(workflow: Path, media: Path, out: Path) -> tuple[dict[str, Any], float]:
    """``mediaflow-worker run -f``: the report and the wall seconds."""
    seconds = run_worker(workflow, media, out, timeout=600)
    return task_result(out, "qc", "quality.json"), seconds


def _task_seconds(out: Path) -> float:
    """The quality task's own time, from the manifest of a run."""
    manifest = json.loads((out / "manifest.json").read_text())
    return float(manifest["tasks"][0]["seconds"])


def _matches(finding: dict[str, Any], defect: clips.Defect) -> bool:
    return bool(
        finding["type"] == defect.type
        and abs(finding["start"] - defect.start) <= TOLERANCE
        and abs(finding["end"] - defect.end) <= TOLERANCE
    )


def score(
    results: list[tuple[clips.DefectClip, list[dict[str, Any]]]], kinds: set[str] | None
) -> tuple[float, float, int, int]:
    """(precision, recall, findings, defects) over ``results`` for ``kinds``
    (every type when None); informational QR and barcode findings count like
    the others (pure)."""
    found = matched_found = defects = matched_defects = 0
    for clip, findings in results:
        chosen = [f for f in findings if kinds is None or f["type"] in kinds]
        wanted = [d for d in clip.defects if kinds is None or d.type in kinds]
        found += len(chosen)
        matched_found += sum(1 for f in chosen if any(_matches(f, d) for d in wanted))
        defects += len(wanted)
        matched_defects += sum(1 for d in wanted if any(_matches(f, d) for f in chosen))
    precision = matched_found / found if found else 1.0
    recall = matched_defects / defects if defects else 1.0
    return precision, recall, found, defects


def measure(work: Path) -> list[dict[str, object]]:
    """Rows of the understanding benchmark (see the module docstring)."""
    media_dir = work / "quality-media"
    media_dir.mkdir(parents=True, exist_ok=True)
    workflow = _workflow(work)
    made = [make(media_dir) for make in MAKERS]
    results: list[tuple[clips.DefectClip, list[dict[str, Any]]]] = []
    seconds = task_seconds = 0.0
    for index, clip in enumerate(made):
        out = work / f"quality-out-{index}"
        report, took = _run(workflow, clip.path, out)
        results.append((clip, report["findings"]))
        seconds += took
        task_seconds += _task_seconds(out)
    media = sum(clip.duration for clip in made)
    common = {"material": MATERIAL, "seconds": round(seconds, 2), "mediaSeconds": media,
              "realTimeFactor": round(seconds / media, 3)}  # fmt: skip
    rows: list[dict[str, object]] = []
    for kind in (*MEASURED, None):
        precision, recall, _, defects = score(results, {kind} if kind else None)
        name = kind or "all types"
        rows.append({"task": "quality", "measure": f"precision {name} (±{TOLERANCE} s)",
                     "value": round(precision, 3), "unit": "fraction", **common})  # fmt: skip
        rows.append({"task": "quality", "measure": f"recall {name} (±{TOLERANCE} s, "
                     f"{defects} defects)", "value": round(recall, 3), "unit": "fraction",
                     **common})  # fmt: skip
    rows.append({"task": "quality", "measure": "real-time factor", "value": common[
        "realTimeFactor"], "unit": "x", **common})  # fmt: skip
    rows.append({"task": "quality", "measure": "real-time factor (the task alone, without "
                 "the worker's start and probe)", "value": round(task_seconds / media, 3),
                 "unit": "x", **common, "seconds": round(task_seconds, 2),
                 "realTimeFactor": round(task_seconds / media, 3)})  # fmt: skip
    corpus = os.environ.get("MEDIAFLOW_MEDIA_CORPUS")
    if corpus and (Path(corpus) / CORPUS_FILE).is_file():
        source = Path(corpus) / CORPUS_FILE
        _, took = _run(workflow, source, work / "quality-out-corpus")
        alone = _task_seconds(work / "quality-out-corpus")
        duration = 5.056  # shared/media/SOURCES.md
        rows.append({"task": "quality", "measure": "real-time factor", "value": round(
            took / duration, 3), "unit": "x", "material": f"{CORPUS_FILE} (1920x1080 25 fps "
            "H.264 + AAC, corpus)", "seconds": round(took, 2), "mediaSeconds": duration,
            "realTimeFactor": round(took / duration, 3)})  # fmt: skip
        rows.append({**rows[-1], "measure": "real-time factor (the task alone)", "value": round(
            alone / duration, 3), "seconds": round(alone, 2), "realTimeFactor": round(
            alone / duration, 3)})  # fmt: skip
    return rows


def main() -> None:
    """Print the rows as JSON."""
    with tempfile.TemporaryDirectory(prefix="mediaflow-bench-quality-") as work:
        print(json.dumps(measure(Path(work)), indent=2))


if __name__ == "__main__":
    main()
