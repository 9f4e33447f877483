"""The ``speech`` task end to end with ``mediaflow-worker run -f``: a clip with
known speech at known times (espeak-ng sentences and a real recording with
its transcript, silence and music between them), run with the network cut
off; a music file of the corpus; an input without audio.

Word error rates asserted here are the ones measured (docs/understanding.md,
"speech"): the real recording is recognised word for word; espeak-ng's formant
voice is far from the human speech PocketSphinx's acoustic model was trained
on, so its sentences are found at the right times but their words are mostly
wrong (WER around 0.85)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.understanding.speech import (
    SpokenClip,
    real_recordings,
    spoken_clip,
    word_error_rate,
)

from .helpers import run_local, write_workflow

pytestmark = pytest.mark.integration

# Measured: 0.0 on goforward.raw in the clip; bound with room for one word.
REAL_WER = 0.25
# Measured: 0.8 to 1.0 per espeak-ng sentence (mean about 0.85); insertions
# could take it past 1.
SYNTHETIC_WER = 1.0
TIME_TOLERANCE = 0.5
KEYWORDS = {"name": "moves", "words": ["forward", "ten meters", "backward"]}


@dataclass(frozen=True)
class Run:
    clip: SpokenClip
    out: Path
    result: dict[str, Any]
    manifest: dict[str, Any]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One inference thread: the machine is shared."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIAFLOW_ML_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The worker's speech task on the known clip, without network."""
    work = tmp_path_factory.mktemp("speech")
    recording = real_recordings(work / "real")[0]  # goforward: "go forward ten meters"
    clip = spoken_clip(work / "clip", recording=recording)
    workflow = write_workflow(work, [{"name": "talk", "speech": {"keywords": [KEYWORDS]}}])
    out = work / "out"
    done = run_local(workflow, clip.path, out, network=False)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "talk" / "speech.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    return Run(clip, out, result, manifest)


def _words_between(result: dict[str, Any], start: float, end: float) -> list[dict[str, Any]]:
    return [
        word
        for segment in result["segments"]
        for word in segment["words"]
        if start - TIME_TOLERANCE <= word["start"] and word["end"] <= end + TIME_TOLERANCE
    ]


def test_the_outputs_and_the_manifest(spoken: Run) -> None:
    (task,) = spoken.manifest["tasks"]
    assert task["status"] == "succeeded", task
    names = sorted(Path(o["path"]).name for o in task["outputs"])
    assert names == ["speech.json", "speech.srt", "speech.vtt", "transcript.txt"]
    info = next(o for o in task["outputs"] if o["path"].endswith("speech.json"))
    assert info["segments"] == len(spoken.result["segments"]) >= len(spoken.clip.sentences)
    assert info["words"] == sum(len(s["words"]) for s in spoken.result["segments"])
    assert info["keywordHits"] == len(spoken.result["keywordHits"]) >= 2
    assert len(json.dumps(info)) < 1024  # the manifest entry, summary included
    result = spoken.result
    assert result["version"] == 1
    assert result["language"] == "en-US"
    assert result["settings"]["vadThreshold"] == 0.5


def test_voice_activity_is_where_the_sentences_are(spoken: Run) -> None:
    ranges = [(r["start"], r["end"]) for r in spoken.result["voiceActivity"]]
    assert len(ranges) == len(spoken.clip.sentences), ranges
    for sentence, (start, end) in zip(spoken.clip.sentences, ranges, strict=True):
        assert abs(start - sentence.start) <= TIME_TOLERANCE, (sentence, start)
        assert abs(end - sentence.end) <= TIME_TOLERANCE, (sentence, end)


def test_music_and_silence_are_not_words(spoken: Run) -> None:
    music_start, music_end = spoken.clip.music
    spoken_ranges = [(s.start, s.end) for s in spoken.clip.sentences]
    for segment in spoken.result["segments"]:
        for word in segment["words"]:
            assert any(
                start - TIME_TOLERANCE <= word["start"] and word["end"] <= end + TIME_TOLERANCE
                for start, end in spoken_ranges
            ), word
            assert not music_start < word["start"] < music_end, word


def test_the_real_recording_is_transcribed(spoken: Run) -> None:
    (real,) = [s for s in spoken.clip.sentences if not s.synthetic]
    words = _words_between(spoken.result, real.start, real.end)
    heard = " ".join(w["word"] for w in words)
    assert word_error_rate(real.text, heard) <= REAL_WER, heard
    assert abs(words[0]["start"] - real.start) <= TIME_TOLERANCE
    assert abs(words[-1]["end"] - real.end) <= TIME_TOLERANCE
    assert all(0 <= w["confidence"] <= 1 for w in words)


def test_the_synthetic_sentences_are_found(spoken: Run) -> None:
    for sentence in (s for s in spoken.clip.sentences if s.synthetic):
        words = _words_between(spoken.result, sentence.start, sentence.end)
        heard = " ".join(w["word"] for w in words)
        assert words, sentence
        assert word_error_rate(sentence.text, heard) <= SYNTHETIC_WER, (sentence.text, heard)


def test_keyword_hits_at_the_time_of_the_words(spoken: Run) -> None:
    (real,) = [s for s in spoken.clip.sentences if not s.synthetic]
    hits = {h["keyword"]: h for h in spoken.result["keywordHits"] if h["list"] == "moves"}
    assert {"forward", "ten meters"} <= set(hits), spoken.result["keywordHits"]
    for hit in (hits["forward"], hits["ten meters"]):
        assert real.start - TIME_TOLERANCE <= hit["start"] < hit["end"] <= real.end + 0.5
    assert hits["forward"]["start"] < hits["ten meters"]["start"]


def test_transcript_and_subtitles(spoken: Run) -> None:
    folder = spoken.out / "talk"
    lines = (folder / "transcript.txt").read_text().splitlines()
    assert lines == [s["text"] for s in spoken.result["segments"]]
    vtt = (folder / "speech.vtt").read_text()
    srt = (folder / "speech.srt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:")
    assert "go forward ten meters" in vtt.replace("\n", " ")
    assert srt.startswith("1\n00:00:")
    assert srt.count(" --> ") == vtt.count(" --> ")
    for line in vtt.splitlines():
        if " --> " not in line:
            assert len(line) <= 42, line


def test_music_file_of_the_corpus(corpus_dir: Path, tmp_path: Path) -> None:
    """38 s of music with no speech: no crash; what it finds is reported."""
    workflow = write_workflow(tmp_path, [{"name": "talk", "speech": {"subtitleFormats": []}}])
    out = tmp_path / "out"
    done = run_local(workflow, corpus_dir / "audio_music_vbr.mp3", out)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "talk" / "speech.json").read_text())
    words = sum(len(s["words"]) for s in result["segments"])
    voice = sum(r["end"] - r["start"] for r in result["voiceActivity"])
    print(f"music: {len(result['voiceActivity'])} voice ranges, {voice:.1f} s, {words} words")
    assert not (out / "talk" / "speech.vtt").exists()
    assert result["duration"] == pytest.approx(38.5, abs=0.5)


def test_no_audio_is_skipped(corpus_dir: Path, tmp_path: Path) -> None:
    workflow = write_workflow(tmp_path, [{"name": "talk", "speech": {}}])
    out = tmp_path / "out"
    done = run_local(workflow, corpus_dir / "odd_dimensions_161x121_vp9.webm", out)
    assert done.returncode == 0, done.stderr
    (task,) = json.loads((out / "manifest.json").read_text())["tasks"]
    assert task["status"] == "skipped", task
    assert "audio" in task["reason"], task


def test_threads_setting_is_honoured() -> None:
    assert os.environ["MEDIAFLOW_ML_THREADS"] == "1"


def test_the_subtitles_feed_a_transcode(spoken: Run, tmp_path: Path) -> None:
    """The recipe of docs/understanding.md: speech.srt put next to the input
    (the sidecar naming rule) becomes a soft subtitle stream of a transcode."""
    clip = tmp_path / "spoken.mp4"
    clip.write_bytes(spoken.clip.path.read_bytes())
    (tmp_path / "spoken.eng.srt").write_bytes((spoken.out / "talk" / "speech.srt").read_bytes())
    transcode = {
        "container": "mkv",
        "video": {"codec": "copy"},
        "audio": {"codec": "copy"},
        "subtitles": {"mode": "soft", "language": "eng"},
    }
    workflow = write_workflow(tmp_path, [{"name": "subs", "transcode": transcode}], name="subs")
    out = tmp_path / "out"
    done = run_local(workflow, clip, out)
    assert done.returncode == 0, done.stderr
    extracted = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out / "subs" / "subs.mkv"), "-map", "0:s:0",
         "-f", "srt", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "go forward ten meters" in " ".join(extracted.split())
    assert extracted.count(" --> ") == (spoken.out / "talk" / "speech.srt").read_text().count(
        " --> "
    )


def test_no_speech_writes_only_the_json(tmp_path: Path) -> None:
    tone = tmp_path / "tone.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=3", "-c:a", "aac", str(tone)],
        check=True,
        timeout=60,
    )
    workflow = write_workflow(tmp_path, [{"name": "talk", "speech": {}}])
    out = tmp_path / "out"
    done = run_local(workflow, tone, out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (out / "talk").iterdir()) == ["speech.json"]
    result = json.loads((out / "talk" / "speech.json").read_text())
    assert result["segments"] == []
    assert result["voiceActivity"] == []


def test_two_workflows_chained_through_a_prefix(spoken: Run, tmp_path: Path) -> None:
    """The cluster recipe of docs/understanding.md, run locally: the first
    Workflow writes clip.eng.srt and a copy of clip.mp4 under captioned/, the
    second (triggered there) burns the subtitles in by the naming rule."""
    first = [
        {
            "name": "speech",
            "speech": {"subtitleFormats": ["srt"]},
            "output": {"bucket": "uploads", "prefix": "captioned/",
                       "fileName": "{inputDir}{inputName}.eng.{format}"},
        },
        {
            "name": "original",
            "transcode": {"container": "mp4", "video": {"codec": "copy"},
                          "audio": {"codec": "copy"}},
            "output": {"bucket": "uploads", "prefix": "captioned/",
                       "fileName": "{inputDir}{inputName}.{inputExt}"},
        },
    ]  # fmt: skip
    second = [
        {
            "name": "burned",
            "transcode": {
                "preset": "h264-360p",
                "video": {"preset": "ultrafast"},
                "subtitles": {"mode": "burnIn", "language": "eng"},
            },
        }
    ]
    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    clip.write_bytes(spoken.clip.path.read_bytes())
    done = run_local(write_workflow(tmp_path, first, name="captions"), clip, tmp_path / "c1")
    assert done.returncode == 0, done.stderr
    captioned = tmp_path / "c1" / "uploads" / "captioned"
    assert sorted(p.name for p in captioned.iterdir()) == [
        "clip.eng.json", "clip.eng.srt", "clip.eng.txt", "clip.mp4",
    ]  # fmt: skip
    done = run_local(
        write_workflow(tmp_path, second, name="subtitled"), captioned / "clip.mp4", tmp_path / "c2"
    )
    assert done.returncode == 0, done.stderr
    (task,) = json.loads((tmp_path / "c2" / "manifest.json").read_text())["tasks"]
    subtitles = task["outputs"][0]["subtitles"]
    assert subtitles["source"] == "clip.eng.srt"
    assert subtitles["burnedIn"] is True
    assert subtitles["cues"] == (captioned / "clip.eng.srt").read_text().count(" --> ") > 0
