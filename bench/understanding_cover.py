"""Measured quality and speed of the ``cover`` task (issue 14, item 7).

On clips whose good and bad stretches are known
(``tests/support/understanding/cover.py``), run ``mediaflow-worker run -f``
with a ``cover`` task and report:

- ``cover precision``: the share of chosen covers that lie in a good (sharp,
  well exposed, away from cuts) stretch;
- ``bad-frame rejection``: the share of candidates in black, blurred, dark,
  bright or transitional stretches that were rejected;
- ``good-frame acceptance``: the share of candidates in good stretches that
  were kept (what the rejection costs);
- the real-time factor (wall seconds of the whole run / media seconds), also
  on the corpus's longest video when ``MEDIAFLOW_MEDIA_CORPUS`` is set.

Usage: ``python bench/understanding_cover.py [WORKDIR]`` prints the rows as
JSON; ``bench/understanding_bench.py`` calls ``measure``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from bench.worker_runs import result_row, run_worker, task_result, workflow_file  # noqa: E402
from tests.support.understanding.cover import (  # noqa: E402
    PLAN,
    KnownSegments,
    segments_clip,
)

# The same kinds of stretch in another order, larger, shorter good stretches.
REORDERED: tuple[tuple[str, str, float], ...] = (
    ("good", PLAN[5][1], 2.5),  # mandelbrot
    ("transition", "", 1.0),
    ("good", PLAN[7][1], 2.0),  # bars with a grid
    ("black", PLAN[0][1], 0.5),
    ("bright", PLAN[4][1], 1.0),
    ("good", PLAN[1][1], 3.0),  # testsrc2
    ("blurred", PLAN[2][1], 2.0),
    ("dark", PLAN[3][1], 2.0),
)
CORPUS_FILE = "webm_vp8_vorbis.webm"  # 44.7 s music video: the longest


def _run(media: Path, work: Path, count: int) -> tuple[dict[str, Any], float]:
    """cover.json of one worker run and its wall seconds."""
    workflow = workflow_file(
        work / f"cover-{count}.yaml",
        "covers",
        {"count": count, "images": {"width": 320}},
        kind="cover",
    )
    out = work / f"out-{media.stem}-{count}"
    seconds = run_worker(workflow, media, out, timeout=600)
    return task_result(out, "covers", "cover.json"), seconds


def _row(
    measure: str, value: float, unit: str, material: str, seconds: float, media: float
) -> dict[str, object]:
    return result_row("cover", measure, value, unit, material, seconds, media)


def _known_rows(known: KnownSegments, work: Path, label: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for count in (3, 5):
        doc, seconds = _run(known.path, work, count)
        covers = doc["covers"]
        in_good = sum(known.kind_at(c["time"]) == "good" for c in covers)
        material = f"{label}, count {count}"
        rows.append(
            _row(
                "cover precision",
                in_good / len(covers),
                f"fraction of {len(covers)} covers",
                material,
                seconds,
                known.duration,
            )
        )
    # Per candidate, from the frames list of the last run.
    frames = doc["frames"]
    bad = [f for f in frames if known.kind_at(f["time"]) != "good"]
    good = [f for f in frames if known.kind_at(f["time"]) == "good"]
    rows.append(
        _row(
            "bad-frame rejection",
            sum(f["rejected"] is not None for f in bad) / len(bad),
            f"fraction of {len(bad)} bad candidates",
            label,
            seconds,
            known.duration,
        )
    )
    rows.append(
        _row(
            "good-frame acceptance",
            sum(f["rejected"] is None for f in good) / len(good),
            f"fraction of {len(good)} good candidates",
            label,
            seconds,
            known.duration,
        )
    )
    return rows


def measure(work: Path) -> list[dict[str, object]]:
    """Every row of the cover benchmark, made under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    first = segments_clip(work, "cover-known-320")
    rows += _known_rows(first, work, "known segments 320x180 17 s")
    second = segments_clip(work, "cover-reordered-640", size=(640, 360), plan=REORDERED)
    rows += _known_rows(second, work, "known segments reordered 640x360 14 s")
    corpus = os.environ.get("MEDIAFLOW_MEDIA_CORPUS")
    if corpus and (Path(corpus) / CORPUS_FILE).is_file():
        media = Path(corpus) / CORPUS_FILE
        doc, seconds = _run(media, work, 3)
        duration = float(
            subprocess.run(
                [
                    *("ffprobe", "-v", "error", "-show_entries", "format=duration"),
                    *("-of", "csv=p=0", str(media)),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        rows.append(
            _row(
                "real-time factor",
                seconds / duration,
                "wall seconds per media second",
                f"corpus {CORPUS_FILE} (480x270, {doc['candidates']} candidates)",
                seconds,
                duration,
            )
        )
    return rows


def main() -> None:
    """Print the rows as JSON (a work directory may be given)."""
    if len(sys.argv) > 1:
        rows = measure(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-cover-") as tmp:
            rows = measure(Path(tmp))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
