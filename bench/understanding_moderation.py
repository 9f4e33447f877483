"""Measured quality and speed of the ``moderation`` task (``make bench``,
run by ``bench/understanding_bench.py``).

Every clip is made here with known content (tests/support/understanding/
moderation.py) and run through ``mediaflow-worker run -f``:

- keyword moderation over burned-in text: lines shown at known times, some
  holding a listed word; precision and recall of the (label, time) hits at
  +-1 sampling interval;
- keyword moderation over speech: espeak-ng sentences (US English) at known
  times, and the real recordings with transcripts of the PocketSphinx source
  distribution (whole-file hits: label and keyword only);
- the classifier hook with our own mean-colour ONNX model on a clip of
  coloured segments: the share of segments found with the right label,
  suggestion and times (+-0.5 s).

Real-time factor = wall seconds of the whole run (worker start, model
loading, decoding included) / media seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.worker_runs import result_row, run_worker, task_result, workflow_file  # noqa: E402
from tests.support.understanding.moderation import (  # noqa: E402 (the repository on the path first)
    Span,
    colour_classifier,
    colour_clip,
    text_clip,
)
from tests.support.understanding.speech import real_recordings, spoken_clip  # noqa: E402

LISTS: dict[str, Any] = {
    "block": [{"name": "banned", "words": ["forbidden", "contraband"]}],
    "review": [{"name": "gambling", "words": ["casino", "jackpot", "poker"]}],
}
# word -> label, for scoring the hits
LABEL_OF = {w: k["name"] for k in LISTS["block"] + LISTS["review"] for w in k["words"]}

TEXT_LINES = [
    Span(0.5, 2.5, "FORBIDDEN ITEMS AHEAD"),
    Span(3.0, 5.0, "Fresh bread daily"),
    Span(5.5, 7.5, "Casino night tonight"),
    Span(8.0, 10.0, "Win the JACKPOT now"),
    Span(10.5, 12.5, "Contraband seized"),
    Span(13.0, 15.0, "Garden party at noon"),
    Span(15.5, 17.5, "Poker club meets Friday"),
]
SPEECH = (
    "this package holds forbidden goods",
    "the weather is sunny and warm today",
    "meet me at the casino tonight",
    "she won the jackpot last week",
    "we found contraband in the truck",
    "please close the door behind you",
)
# Words of the real recordings' transcripts.
REAL_LISTS: dict[str, Any] = {
    "block": [{"name": "banned", "words": ["selfish", "meters"]}],
    "review": [{"name": "watch", "words": ["married", "leisure", "amiable", "respectable"]}],
}
REAL_LABEL_OF = {
    w: k["name"] for k in REAL_LISTS["block"] + REAL_LISTS["review"] for w in k["words"]
}


def _workflow(path: Path, moderation: dict[str, Any]) -> Path:
    return workflow_file(path, "mod", moderation, kind="moderation")


def _run(workflow: Path, clip: Path, out: Path, *extra: str) -> tuple[dict[str, Any], float]:
    seconds = run_worker(workflow, clip, out, *extra)
    return task_result(out, "mod", "moderation.json"), seconds


def _expected_hits(
    spans: list[tuple[float, float, str]], label_of: dict[str, str] = LABEL_OF
) -> list[tuple[str, str, float, float]]:
    """(label, keyword, start, end) of every listed word in the known content."""
    hits = []
    for start, end, text in spans:
        for word in dict.fromkeys(text.lower().split()):
            if word in label_of:
                hits.append((label_of[word], word, start, end))
    return hits


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout.strip())


def precision_recall(
    doc: dict[str, Any], expected: list[tuple[str, str, float, float]], slack: float
) -> tuple[float, float]:
    """Precision and recall of the reported keyword segments against the
    known hits: a segment matches a hit of the same label and keyword that
    overlaps it (widened by ``slack`` seconds)."""
    found = [
        (label["label"], seg["keyword"], seg["start"], seg["end"])
        for label in doc["labels"]
        for seg in label["segments"]
        if "keyword" in seg
    ]

    def overlaps(a: tuple[str, str, float, float], b: tuple[str, str, float, float]) -> bool:
        return a[:2] == b[:2] and a[2] < b[3] + slack and b[2] < a[3] + slack

    true_found = sum(any(overlaps(f, e) for e in expected) for f in found)
    recalled = sum(any(overlaps(e, f) for f in found) for e in expected)
    precision = true_found / len(found) if found else (1.0 if not expected else 0.0)
    recall = recalled / len(expected) if expected else 1.0
    return precision, recall


def _row(
    measure: str, value: float, unit: str, material: str, seconds: float, media: float
) -> dict[str, object]:
    return result_row("moderation", measure, value, unit, material, seconds, media)


def measure(work: Path) -> list[dict[str, object]]:
    """The moderation rows: keyword precision/recall (OCR, speech), the
    classifier's segment accuracy, each with its real-time factor."""
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []

    text_duration = 18.0
    clip, lines = text_clip(work / "text.mp4", TEXT_LINES, duration=text_duration)
    spec = {**LISTS, "sources": {"speech": {"enabled": False}, "ocr": {"intervalSeconds": 0.5}}}
    doc, seconds = _run(_workflow(work / "text.yaml", spec), clip, work / "out-text")
    expected = _expected_hits([(s.start, s.end, s.content) for s in lines])
    precision, recall = precision_recall(doc, expected, slack=0.5)
    material = (
        f"{len(lines)} burned-in lines, {len(expected)} listed words, 640x360, {text_duration:g} s"
    )
    rows.append(
        _row("keyword precision (OCR)", precision, "ratio", material, seconds, text_duration)
    )
    rows.append(_row("keyword recall (OCR)", recall, "ratio", material, seconds, text_duration))

    # Speech: espeak-ng's voice (PocketSphinx hears it badly) and the real
    # recordings of the PocketSphinx source distribution (CMU, LibriVox).
    synthetic = spoken_clip(work / "espeak", video=False, sentences=SPEECH)
    spec = {**LISTS, "sources": {"ocr": {"enabled": False}}}
    doc, seconds = _run(_workflow(work / "speech.yaml", spec), synthetic.path, work / "out-speech")
    expected = _expected_hits([(s.start, s.end, s.text) for s in synthetic.sentences])
    precision, recall = precision_recall(doc, expected, slack=1.0)
    material = (
        f"{len(SPEECH)} espeak-ng en-us sentences, {len(expected)} listed words, "
        f"{synthetic.duration:g} s"
    )
    reported = any("keyword" in seg for label in doc["labels"] for seg in label["segments"])
    # Precision of no hits at all is undefined: only recall is reported then.
    measures = (("precision", precision), ("recall", recall)) if reported else (("recall", recall),)
    for what, value in measures:
        rows.append(
            _row(f"keyword {what} (speech, espeak-ng)", value, "ratio", material, seconds,
                 synthetic.duration)
        )  # fmt: skip
    spec = {**REAL_LISTS, "sources": {"ocr": {"enabled": False}}}
    workflow = _workflow(work / "real.yaml", spec)
    found_right = found_all = expected_all = expected_found = 0
    seconds = media = 0.0
    for index, recording in enumerate(real_recordings(work / "recordings")):
        doc, took = _run(workflow, recording.path, work / f"out-real-{index}")
        length = _duration(recording.path)
        seconds += took
        media += length
        expected = _expected_hits([(0.0, length, recording.transcript)], REAL_LABEL_OF)
        found = [
            (label["label"], seg["keyword"], seg["start"], seg["end"])
            for label in doc["labels"]
            for seg in label["segments"]
        ]
        found_all += len(found)
        found_right += sum(f[:2] in {e[:2] for e in expected} for f in found)
        expected_all += len(expected)
        expected_found += sum(e[:2] in {f[:2] for f in found} for e in expected)
    material = (
        f"6 real recordings with transcripts (pocketsphinx test/data: CMU goforward, LibriVox), "
        f"{expected_all} listed words, {media:.1f} s"
    )
    precision = found_right / found_all if found_all else 1.0
    recall = expected_found / expected_all if expected_all else 1.0
    for what, value in (("precision", precision), ("recall", recall)):
        rows.append(
            _row(f"keyword {what} (speech, real recordings)", value, "ratio", material, seconds,
                 round(media, 3))
        )  # fmt: skip

    colours = [("red", 3.0), ("green", 2.0), ("blue", 3.0), ("gray", 2.0), ("red", 2.0)]
    video, spans = colour_clip(work / "colours.mp4", colours, size=(640, 360))
    colour_classifier(work / "models" / "rgb.onnx")
    classifier = {
        "model": {"path": "rgb.onnx"},
        "labels": ["red", "green", "blue"],
        "inputSize": [32, 32],
        "thresholds": [
            {"label": "red", "review": 0.5, "block": 0.9},
            {"label": "blue", "review": 0.5},
        ],
        "intervalSeconds": 0.5,
    }
    duration = sum(s for _, s in colours)
    doc, seconds = _run(
        _workflow(work / "colours.yaml", {"classifier": classifier}),
        video,
        work / "out-colours",
        "--models-dir",
        str(work / "models"),
    )
    wanted = [
        (s.content, "block" if s.content == "red" else "review", s.start, s.end)
        for s in spans
        if s.content in ("red", "blue")
    ]
    got = [
        (label["label"], seg["suggestion"], seg["start"], seg["end"])
        for label in doc["labels"]
        for seg in label["segments"]
    ]
    right = sum(
        any(g[:2] == w[:2] and abs(g[2] - w[2]) <= 0.5 and abs(g[3] - w[3]) <= 0.5 for g in got)
        for w in wanted
    )
    extra = len(got) - right
    material = f"{len(colours)} one-colour segments, 640x360, our mean-colour ONNX classifier"
    value = right / len(wanted) if extra == 0 else right / (len(wanted) + extra)
    rows.append(
        _row(
            "classifier segments right (label, suggestion, +-0.5 s)",
            value,
            "ratio",
            material,
            seconds,
            duration,
        )
    )
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-moderation-") as tmp:
        for row in measure(Path(tmp)):
            print(json.dumps(row))
