"""The ``ocr`` task measured: character accuracy (1 - CER) on clips with
known burned-in text, and the real-time factor of ``mediaflow-worker run -f``.

For each material (tests/support/understanding/ocr.py: English on a plain
background, English on the busy testsrc2 pattern, Chinese) every known
string is matched with the span that reads most like it among those that
start within one sampling step of its start; its accuracy is
1 - edit distance / length. The row's value is the mean over the strings
(the worst one is in its ``material``). The time is the whole worker run
(start-up, probe, model load, decode, OCR), so the RTF of a short clip
includes the fixed cost of loading the models (about a second).

ONNX Runtime uses its own thread count unless ``MEDIAFLOW_ML_THREADS`` is
set. ``measure(work)`` is what ``bench/understanding_bench.py`` calls; run
alone::

    python -m bench.understanding_ocr
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench.worker_runs import run_worker, task_result, workflow_file
from tests.support.understanding.ocr import (
    CHINESE,
    SMALL,
    TextClip,
    character_accuracy,
    make_text_clip,
)

INTERVAL = 0.5


def _run(work: Path, clip: TextClip) -> tuple[dict[str, Any], float]:
    workflow = workflow_file(work / "ocr.yaml", "text", {"intervalSeconds": INTERVAL}, kind="ocr")
    out = work / f"{clip.path.stem}-out"
    seconds = run_worker(workflow, clip.path, out, timeout=600)
    return task_result(out, "text", "ocr.json"), seconds


def accuracies(doc: dict[str, Any], clip: TextClip) -> list[float]:
    """Per known string: the accuracy of the best span near its start (0
    when nothing was read there)."""
    found = []
    for caption in clip.captions:
        near = [s["text"] for s in doc["spans"] if abs(s["start"] - caption.start) <= INTERVAL]
        found.append(max((character_accuracy(caption.text, t) for t in near), default=0.0))
    return found


def measure(work: Path) -> list[dict[str, object]]:
    """One row per material: mean character accuracy and the run's RTF."""
    materials = [
        ("English, plain background", make_text_clip(work, "ocr-plain")),
        ("English, busy testsrc2 background", make_text_clip(work, "ocr-busy", busy=True)),
        (
            "English small print (14-18 px), busy testsrc2 background",
            make_text_clip(work, "ocr-small", captions=SMALL, duration=3.0, busy=True),
        ),
        (
            "Chinese (Noto Sans CJK), plain background",
            make_text_clip(work, "ocr-chinese", captions=CHINESE, duration=4.0),
        ),
    ]
    rows: list[dict[str, object]] = []
    for label, clip in materials:
        doc, seconds = _run(work, clip)
        scores = accuracies(doc, clip)
        rows.append(
            {
                "task": "ocr",
                "measure": "character accuracy (1 - CER)",
                "value": round(sum(scores) / len(scores), 4),
                "unit": "fraction",
                "material": (
                    f"{label}: {len(clip.captions)} known strings, 640x360, "
                    f"{clip.duration:g} s, a frame every {INTERVAL:g} s; worst string "
                    f"{min(scores):.3f}"
                ),
                "seconds": round(seconds, 3),
                "mediaSeconds": clip.duration,
                "realTimeFactor": round(seconds / clip.duration, 3),
            }
        )
    return rows


def main() -> None:
    """Print the rows as JSON."""
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        for row in measure(Path(tmp)):
            print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
