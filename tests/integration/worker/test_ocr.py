"""The ``ocr`` task end to end (``mediaflow-worker run -f``) on clips with
known burned-in text (tests/support/understanding/ocr.py): every string is
found at its time and place with the character accuracy measured for the
packaged models, keyword lists hit, nothing is found where nothing is
written, and the task runs with no network and never writes next to its
models.

Runs use one ONNX Runtime thread (MEDIAFLOW_ML_THREADS=1): the machine is
shared; accuracy does not depend on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mediaflow_worker.understanding import packages
from tests.support.understanding.ocr import (
    CHINESE,
    NOTO_CJK,
    Caption,
    TextClip,
    character_accuracy,
    make_text_clip,
    make_text_image,
)

from .helpers import run_local, write_workflow

pytestmark = pytest.mark.integration

pytest.importorskip("rapidocr", reason="the ocr task needs the ml extra")

INTERVAL = 0.5
# Worst character accuracy (1 - CER) of one known string in the runs below,
# as measured (docs/understanding.md, ## ocr): every string read exactly on
# the plain and the busy background; a little room for ONNX Runtime builds.
MIN_ACCURACY = 0.9


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAFLOW_ML_THREADS", "1")


def _run(
    tmp: Path, clip: Path, settings: dict[str, Any], *, network: bool = True
) -> tuple[dict[str, Any], Path]:
    workflow = write_workflow(tmp, [{"name": "text", "ocr": settings}])
    out = tmp / "out"
    done = run_local(workflow, clip, out, network=network, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "text" / "ocr.json").read_text(encoding="utf-8")), out


def _best(doc: dict[str, Any], text: str, start: float) -> dict[str, Any]:
    """The span most like ``text`` starting within one step of ``start``."""
    near = [s for s in doc["spans"] if abs(s["start"] - start) <= INTERVAL + 0.001]
    assert near, f"nothing read near {start} s: {doc['spans']}"
    return max(near, key=lambda s: character_accuracy(text, s["text"]))


def _check_known_text(doc: dict[str, Any], clip: TextClip) -> None:
    for caption in clip.captions:
        span = _best(doc, caption.text, caption.start)
        assert character_accuracy(caption.text, span["text"]) >= MIN_ACCURACY, (caption, span)
        assert abs(span["end"] - caption.end) <= INTERVAL + 0.001, (caption, span)
        box = span["box"]
        width, height = clip.size
        # The box holds the caption's top-left corner, give or take the
        # detector's margin and the caption box's border (8 px).
        assert abs(box["x"] * width - caption.x) <= 16, (caption, box)
        assert abs(box["y"] * height - caption.y) <= 16, (caption, box)
        assert 0.6 <= span["confidence"] <= 1.0


@pytest.fixture(scope="module")
def english(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[TextClip, dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("ocr-english")
    clip = make_text_clip(tmp / "media", "english")
    os.environ["MEDIAFLOW_ML_THREADS"] = "1"
    try:
        doc, out = _run(
            tmp,
            clip.path,
            {
                "intervalSeconds": INTERVAL,
                "keywords": [
                    {"name": "news", "words": ["breaking news", "weather"]},
                    {"name": "brand", "words": ["MediaFlow"]},
                ],
            },
        )
    finally:
        del os.environ["MEDIAFLOW_ML_THREADS"]
    return clip, doc, out


def test_the_burned_in_strings_are_read_at_their_times_and_places(
    english: tuple[TextClip, dict[str, Any], Path],
) -> None:
    clip, doc, _ = english
    _check_known_text(doc, clip)
    # The plain background has nothing else to read: one span per caption
    # (the repeated headline is two spans, 2 s apart).
    assert len(doc["spans"]) == len(clip.captions), doc["spans"]
    assert doc["settings"]["intervalSeconds"] == INTERVAL


def test_keyword_hits_and_the_manifest_summary(
    english: tuple[TextClip, dict[str, Any], Path],
) -> None:
    _, doc, out = english
    hits = sorted((h["list"], h["word"], h["start"], h["end"]) for h in doc["keywordHits"])
    assert hits == [
        ("brand", "mediaflow", 1.0, 4.0),
        ("news", "breaking news", 0.0, 3.0),
        ("news", "breaking news", 5.0, 6.0),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    (task,) = manifest["tasks"]
    (entry,) = [o for o in task["outputs"] if o["path"] == "text/ocr.json"]
    assert {k: entry[k] for k in ("spans", "keywordHits", "words")} == {
        "spans": 4,
        "keywordHits": {"news": 2, "brand": 1},
        "words": ["breaking news", "mediaflow"],
    }


def test_the_webvtt_has_a_cue_per_span(english: tuple[TextClip, dict[str, Any], Path]) -> None:
    _, doc, out = english
    vtt = (out / "text" / "ocr.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n")
    assert vtt.count(" --> ") == len(doc["spans"])
    assert "00:00:01.000 --> 00:00:04.000\nWelcome to mediaflow" in vtt


def test_text_on_a_busy_background_is_read_too(tmp_path: Path) -> None:
    clip = make_text_clip(tmp_path / "media", "busy", busy=True)
    doc, _ = _run(tmp_path, clip.path, {"intervalSeconds": INTERVAL})
    # testsrc2 draws its own clock and frame number: more spans than captions.
    _check_known_text(doc, clip)


def test_chinese_text_is_read(tmp_path: Path) -> None:
    clip = make_text_clip(tmp_path / "media", "chinese", captions=CHINESE, duration=4.0)
    doc, _ = _run(
        tmp_path,
        clip.path,
        {"intervalSeconds": INTERVAL, "keywords": [{"name": "zh", "words": ["天气"]}]},
    )
    _check_known_text(doc, clip)
    assert [(h["word"], h["start"]) for h in doc["keywordHits"]] == [("天气", 2.0)]


def test_the_region_reads_only_its_part_with_boxes_of_the_whole_picture(tmp_path: Path) -> None:
    clip = make_text_clip(tmp_path / "media", "region", duration=4.0)
    lower_third = {"x": 0.0, "y": 0.67, "width": 1.0, "height": 0.33}
    doc, _ = _run(tmp_path, clip.path, {"intervalSeconds": 1, "region": lower_third})
    assert [s["text"] for s in doc["spans"]] == ["Welcome to mediaflow"]
    assert doc["spans"][0]["box"]["y"] == pytest.approx(270 / 360, abs=0.04)


def test_a_clip_without_text_gives_no_spans_and_no_noise_in_the_log(tmp_path: Path) -> None:
    clip = make_text_clip(tmp_path / "media", "blank", captions=(), duration=3.0)
    workflow = write_workflow(tmp_path, [{"name": "text", "ocr": {"intervalSeconds": 1}}])
    out = tmp_path / "out"
    done = run_local(workflow, clip.path, out, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((out / "text" / "ocr.json").read_text(encoding="utf-8"))
    assert doc["spans"] == []
    assert doc["keywordHits"] == []
    assert (out / "text" / "ocr.vtt").read_text() == "WEBVTT\n"
    # RapidOCR warns of every frame without text, in colour, on a handler of
    # its own: neither reaches the worker's log.
    assert "RapidOCR" not in done.stderr
    assert "\x1b[" not in done.stderr


def test_a_still_image_with_no_network_and_nothing_written_by_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = packages.TEXT_DETECTION.path().parent
    before = sorted(p.name for p in models.iterdir())
    # No home to write a cache or a download into.
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))
    still = make_text_image(tmp_path / "media")
    doc, _ = _run(
        tmp_path,
        still.path,
        {"keywords": [{"name": "offers", "words": ["sale"]}]},
        network=False,
    )
    (span,) = doc["spans"]
    assert (span["start"], span["end"]) == (0.0, 0.0)
    assert character_accuracy(still.captions[0].text, span["text"]) >= MIN_ACCURACY
    assert [h["word"] for h in doc["keywordHits"]] == ["sale"]
    assert sorted(p.name for p in models.iterdir()) == before
    assert not (tmp_path / "no-home").exists()


def test_an_input_without_video_is_skipped(tmp_path: Path) -> None:
    corpus = os.environ.get("MEDIAFLOW_MEDIA_CORPUS", "")
    audio = Path(corpus) / "audio_aac_lc_mono.m4a"
    if not audio.is_file():
        pytest.skip("needs the media corpus (MEDIAFLOW_MEDIA_CORPUS)")
    workflow = write_workflow(tmp_path, [{"name": "text", "ocr": {}}])
    done = run_local(workflow, audio, tmp_path / "out", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert not (tmp_path / "out" / "text" / "ocr.json").exists(), manifest


@pytest.mark.parametrize(
    "name", ["vfr_screen_recording_no_audio.mp4", "mkv_hevc_remux_bbb_480p.mkv"]
)
def test_corpus_files(tmp_path: Path, name: str) -> None:
    corpus = os.environ.get("MEDIAFLOW_MEDIA_CORPUS", "")
    path = Path(corpus) / name
    if not path.is_file():
        pytest.skip("needs the media corpus (MEDIAFLOW_MEDIA_CORPUS)")
    doc, out = _run(tmp_path, path, {"intervalSeconds": 2, "maxSide": 640})
    for span in doc["spans"]:
        assert 0 <= span["start"] <= span["end"]
        assert all(0 <= v <= 1 for v in span["box"].values())
        assert span["confidence"] >= 0.6
    assert (out / "text" / "ocr.vtt").read_text().startswith("WEBVTT")


def test_the_scripts_the_packaged_model_reads_and_those_it_does_not(tmp_path: Path) -> None:
    # What docs/understanding.md says about languages: Latin with accents and
    # Japanese are read; Cyrillic and Hangul are not in the model's alphabet.
    read = (
        Caption("Größe Straße café résumé", 0, 0, 20, 20, 32),
        Caption("こんにちは世界", 0, 0, 20, 100, 32, NOTO_CJK),
    )
    unread = (
        Caption("Привет мир", 0, 0, 20, 180, 32),
        Caption("안녕하세요", 0, 0, 20, 260, 32, NOTO_CJK),
    )
    still = make_text_image(tmp_path / "media", captions=read + unread)
    doc, _ = _run(tmp_path, still.path, {})
    texts = [s["text"] for s in doc["spans"]]
    for caption in read:
        assert max(character_accuracy(caption.text, t) for t in texts) >= MIN_ACCURACY, texts
    for caption in unread:
        assert max((character_accuracy(caption.text, t) for t in texts), default=0) < 0.5, texts
