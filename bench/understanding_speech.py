"""``speech`` task measurements: word error rate on known speech and the
real-time factor.

- Synthetic: sentences spoken by espeak-ng's US English voice
  (``tests.support.understanding.speech``), recognised one by one.
- Real: the recordings with transcripts of the PocketSphinx source
  distribution (goforward.raw, CMU; five LibriVox sentences of *Sense and
  Sensibility*), fetched once into ``~/.cache/mediaflow/``.
- End to end: ``mediaflow-worker run -f`` with a speech task on the test clip
  (ffmpeg decode, model loading, VAD, decoding, files).

WER is pooled: all edits over all reference words. RTF = processing seconds /
media seconds (voice activity + decoding for the first two; the whole worker
run for the last). ``python -m bench.understanding_speech`` prints the rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.support.understanding.speech import (
    real_recordings,
    spoken_clip,
    synthesise,
    word_error_rate,
)

# Everyday sentences (the language model's kind of English).
SYNTHETIC = (
    "please go forward ten meters and then turn left",
    "the weather today is cold and windy",
    "we will meet at the station at nine tomorrow morning",
    "she bought three apples and a loaf of bread",
    "open the door and close the window",
    "the children are playing in the park",
)


def _pcm(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout


def _wer_rows(items: list[tuple[Path, str]], measure: str, material: str) -> dict[str, object]:
    import numpy as np

    from mediaflow_worker.understanding.speech import recognise

    edits = 0.0
    words = 0
    seconds = 0.0
    media = 0.0
    for path, reference in items:
        samples = np.frombuffer(_pcm(path), dtype="<i2")
        started = time.monotonic()
        found = recognise(samples)
        seconds += time.monotonic() - started
        media += len(samples) / 16_000
        hypothesis = " ".join(segment.text for segment in found.segments)
        count = len(reference.split())
        edits += word_error_rate(reference, hypothesis) * count
        words += count
    return {
        "task": "speech",
        "measure": measure,
        "value": round(edits / words, 3),
        "unit": "WER (0 = every word right)",
        "material": material,
        "seconds": round(seconds, 3),
        "mediaSeconds": round(media, 3),
        "realTimeFactor": round(seconds / media, 3),
    }


def measure(work: Path) -> list[dict[str, object]]:
    """The speech rows of ``make bench`` (files made under ``work``)."""
    work.mkdir(parents=True, exist_ok=True)
    synthetic: list[tuple[Path, str]] = []
    for index, text in enumerate(SYNTHETIC):
        wav = work / f"espeak-{index}.wav"
        synthesise(text, wav)
        synthetic.append((wav, text))
    real = [(r.path, r.transcript) for r in real_recordings(work / "real")]
    rows = [
        _wer_rows(
            synthetic,
            "word error rate, synthetic speech",
            f"{len(SYNTHETIC)} sentences, espeak-ng en-us voice",
        ),
        _wer_rows(
            real,
            "word error rate, real recordings",
            "pocketsphinx 5 source test/data: goforward.raw + 5 LibriVox sentences",
        ),
    ]
    clip = spoken_clip(work / "clip", recording=real_recordings(work / "real")[0])
    workflow = work / "speech.yaml"
    workflow.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "mediaflow.dev/v1alpha1",
                "kind": "Workflow",
                "metadata": {"name": "bench", "namespace": "default"},
                "spec": {
                    "trigger": {"bucket": "uploads"},
                    "output": {"bucket": "media"},
                    "tasks": [{"name": "speech", "speech": {}}],
                },
            }
        )
    )
    out = work / "out"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "mediaflow_worker", "run", "-f", str(workflow), str(clip.path),
         "-o", str(out)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    result = json.loads((out / "speech" / "speech.json").read_text())
    heard = " ".join(s["text"] for s in result["segments"])
    said = " ".join(s.text for s in clip.sentences)
    rows.append(
        {
            "task": "speech",
            "measure": "word error rate, end to end (mediaflow-worker run -f)",
            "value": round(word_error_rate(said, heard), 3),
            "unit": "WER (0 = every word right)",
            "material": f"{clip.duration:.1f} s clip: 2 espeak-ng sentences, goforward, music",
            "seconds": round(seconds, 3),
            "mediaSeconds": clip.duration,
            "realTimeFactor": round(seconds / clip.duration, 3),
        }
    )
    return rows


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for row in measure(Path(tmp)):
            print(json.dumps(row))
