"""The ``quality`` task end to end (``mediaflow-worker run -f``) on clips
with defects injected at known times (``tests/support/understanding/quality``):
each defect is found, at the right time (±0.5 s), and nothing else is; a clean
clip passes; ``failOn`` rejects the input with exit code 2 and one line; and a
few real files from the corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.understanding.quality import (
    BARCODE_TEXT,
    QR_TEXT,
    Defect,
    DefectClip,
    barcode_clip,
    clean_clip,
    defects_clip,
    dropped_clip,
    interlaced_clip,
    letterbox_clip,
    level_clip,
    spliced_clip,
)

from .helpers import run_local, write_workflow

pytestmark = pytest.mark.integration

TOLERANCE = 0.5


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV on one thread: the test machine is shared.
    monkeypatch.setenv("MEDIAFLOW_ML_THREADS", "1")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quality-clips")


def _run(
    tmp_path: Path, clip: Path, settings: dict[str, Any] | None = None, *, network: bool = True
) -> tuple[int, str, dict[str, Any] | None]:
    workflow = write_workflow(tmp_path, [{"name": "qc", "quality": settings or {}}])
    out = tmp_path / "out"
    done = run_local(workflow, clip, out, network=network, timeout=240)
    report = out / "qc" / "quality.json"
    doc = json.loads(report.read_text()) if done.returncode == 0 else None
    return done.returncode, done.stderr, doc


def _matches(finding: dict[str, Any], defect: Defect) -> bool:
    return bool(
        finding["type"] == defect.type
        and abs(finding["start"] - defect.start) <= TOLERANCE
        and abs(finding["end"] - defect.end) <= TOLERANCE
    )


def _check(doc: dict[str, Any], clip: DefectClip) -> None:
    """Every injected defect found at its time, and no other finding."""
    findings = doc["findings"]
    for defect in clip.defects:
        assert any(_matches(f, defect) for f in findings), (defect, findings)
    extra = [f for f in findings if not any(_matches(f, d) for d in clip.defects)]
    assert extra == [], extra
    assert doc["summary"] == {
        kind: sum(1 for f in findings if f["type"] == kind) for kind in doc["summary"]
    }


def test_injected_defects_are_found_at_their_times_without_network(
    clips: Path, tmp_path: Path
) -> None:
    clip = defects_clip(clips)
    code, stderr, doc = _run(tmp_path, clip.path, network=False)
    assert code == 0, stderr
    assert doc is not None
    _check(doc, clip)
    assert doc["verdict"] == "warn"
    assert doc["version"] == 1
    assert doc["settings"]["blackMinSeconds"] == 1.0
    qr = next(f for f in doc["findings"] if f["type"] == "qrCode")
    assert qr["detail"]["text"] == QR_TEXT
    # The image was drawn at x=80, y=40, 160 pixels square, in 320x240; the
    # code is inside its white quiet zone (2 of its 33 modules on each side).
    area = qr["area"]
    inner = 160 * 29 / 33
    assert area["x"] == pytest.approx((80 + (160 - inner) / 2) / 320, abs=0.02)
    assert area["y"] == pytest.approx((40 + (160 - inner) / 2) / 240, abs=0.02)
    assert area["w"] == pytest.approx(inner / 320, abs=0.02)
    assert area["h"] == pytest.approx(inner / 240, abs=0.02)
    # The manifest (and so the notification) carries the verdict and counts.
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (output,) = manifest["tasks"][0]["outputs"]
    assert output["verdict"] == "warn"
    assert output["counts"] == doc["summary"]


def test_a_barcode_is_read_with_its_format_and_place(clips: Path, tmp_path: Path) -> None:
    clip = barcode_clip(clips)
    code, stderr, doc = _run(tmp_path, clip.path)
    assert code == 0, stderr
    assert doc is not None
    _check(doc, clip)
    (found,) = doc["findings"]
    assert found["detail"] == {"text": BARCODE_TEXT, "format": "EAN_13"}
    # Bars drawn from x=65 to 255 and y=80 to 160 in 320x240.
    area = found["area"]
    assert area["x"] + area["w"] / 2 == pytest.approx(160 / 320, abs=0.05)
    assert area["y"] + area["h"] / 2 == pytest.approx(120 / 240, abs=0.05)
    # What is shown is not a defect: the verdict stays "pass".
    assert doc["verdict"] == "pass"


def test_a_clean_clip_passes_with_no_finding(clips: Path, tmp_path: Path) -> None:
    code, stderr, doc = _run(tmp_path, clean_clip(clips).path)
    assert code == 0, stderr
    assert doc is not None
    assert doc["findings"] == []
    assert doc["verdict"] == "pass"


@pytest.mark.parametrize(
    "make",
    [
        interlaced_clip,
        letterbox_clip,
        dropped_clip,
        lambda d: level_clip(d, -25),
        lambda d: level_clip(d, 15),
    ],
    ids=["interlaced", "letterbox", "dropped", "quiet", "loud"],
)
def test_one_defect_per_clip(make: Any, clips: Path, tmp_path: Path) -> None:
    clip: DefectClip = make(clips)
    code, stderr, doc = _run(tmp_path, clip.path)
    assert code == 0, stderr
    assert doc is not None
    _check(doc, clip)


def test_letterbox_area_is_the_picture_between_the_bars(clips: Path, tmp_path: Path) -> None:
    code, stderr, doc = _run(tmp_path, letterbox_clip(clips).path, {"checks": ["blackEdges"]})
    assert code == 0, stderr
    assert doc is not None
    (edges,) = doc["findings"]
    assert edges["area"] == {"x": 0.0, "y": 0.125, "w": 1.0, "h": 0.75}


def test_format_changes_and_a_timestamp_jump_mid_stream(clips: Path, tmp_path: Path) -> None:
    clip = spliced_clip(clips, jump=5.0)
    kinds = ["resolutionChange", "sampleRateChange", "channelLayoutChange", "timestamps"]
    code, stderr, doc = _run(tmp_path, clip.path, {"checks": kinds})
    assert code == 0, stderr
    assert doc is not None
    _check(doc, clip)
    change = next(f for f in doc["findings"] if f["type"] == "resolutionChange")
    assert change["detail"] == {"from": "320x240", "to": "240x180"}
    rate = next(f for f in doc["findings"] if f["type"] == "sampleRateChange")
    assert rate["detail"] == {"from": 48000, "to": 44100}


def test_fail_on_rejects_the_input_with_the_findings(clips: Path, tmp_path: Path) -> None:
    clip = defects_clip(clips)
    code, stderr, _ = _run(tmp_path, clip.path, {"failOn": ["black", "silence"]})
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0] == (
        "mediaflow-worker: QualityRejected: task 'qc': quality check failed (failOn): "
        "black@2.0-3.0, silence@9.0-10.5"
    )


def test_fail_on_lets_a_clean_input_through(clips: Path, tmp_path: Path) -> None:
    code, stderr, doc = _run(tmp_path, clean_clip(clips).path, {"failOn": ["black", "freeze"]})
    assert code == 0, stderr
    assert doc is not None
    assert doc["verdict"] == "pass"


@pytest.mark.corpus
def test_corpus_video_without_audio(corpus_dir: Path, tmp_path: Path) -> None:
    code, stderr, doc = _run(tmp_path, corpus_dir / "vfr_screen_recording_no_audio.mp4")
    assert code == 0, stderr
    assert doc is not None
    types = {f["type"] for f in doc["findings"]}
    assert "noAudio" in types
    # Strongly variable frame rate: long frames are not dropped ones.
    assert "droppedFrames" not in types
    assert "silence" not in doc["checked"]


@pytest.mark.corpus
def test_corpus_audio_only_file_gets_the_audio_checks(corpus_dir: Path, tmp_path: Path) -> None:
    code, stderr, doc = _run(tmp_path, corpus_dir / "audio_aac_lc_mono.m4a")
    assert code == 0, stderr
    assert doc is not None
    assert "black" not in doc["checked"]
    assert "noAudio" not in doc["checked"]
    assert {"silence", "quiet", "loud", "timestamps"} <= set(doc["checked"])
    # Mono: there is no phase between channels to judge.
    assert all(f["type"] != "outOfPhase" for f in doc["findings"])


@pytest.mark.corpus
def test_corpus_camera_footage_passes(corpus_dir: Path, tmp_path: Path) -> None:
    name = "landscape_720p_h264_aac_camera.mp4"
    assert os.path.exists(corpus_dir / name)
    code, stderr, doc = _run(tmp_path, corpus_dir / name)
    assert code == 0, stderr
    assert doc is not None
    assert doc["verdict"] == "pass", doc["findings"]
