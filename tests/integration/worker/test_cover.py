"""The ``cover`` task end to end (``mediaflow-worker run -f``): on a clip whose
good and bad stretches are known, the covers come from the good ones only
and every kind of bad frame is counted as rejected; the images have the asked
format and size; real files from the corpus get upright, spaced covers; no
network is needed."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.understanding.cover import KnownSegments, segments_clip

from .helpers import ffprobe, make_clip, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two cores shared by many test runs: OpenCV may use one.
    monkeypatch.setenv("MEDIAFLOW_ML_THREADS", "1")


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownSegments:
    return segments_clip(tmp_path_factory.mktemp("cover"))


def _run(
    tmp_path: Path, media: Path, spec: dict[str, Any], *, network: bool = True
) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """cover.json, the manifest's task entry and the task's output directory."""
    workflow = write_workflow(tmp_path, [{"name": "covers", "cover": spec}])
    out = tmp_path / "out"
    done = run_local(workflow, media, out, network=network)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    (task,) = manifest["tasks"]
    assert task["status"] == "succeeded", task
    return json.loads((out / "covers" / "cover.json").read_text()), task, out / "covers"


def test_covers_come_from_the_sharp_segments_only_without_network(
    known: KnownSegments, tmp_path: Path
) -> None:
    doc, task, out = _run(
        tmp_path, known.path, {"count": 3, "images": {"width": 160}}, network=False
    )
    covers = doc["covers"]
    assert len(covers) == 3
    for c in covers:
        assert known.kind_at(c["time"]) == "good", (c, known.segments)
        assert 0.5 < c["score"] <= 1.0
        assert set(c["scores"]) >= {"sharpness", "exposure", "contrast", "colorfulness"}
        assert "fallback" not in c
    # Diverse: the three covers show the three different sharp scenes.
    starts = {next(s.start for s in known.good() if s.start <= c["time"] < s.end) for c in covers}
    assert len(starts) == 3
    # Every defect of the clip was seen and counted.
    rejected = doc["rejected"]
    for reason in ("black", "blurred", "dark", "bright", "transition"):
        assert rejected[reason] > 0, rejected
    # 17 s at the shortest interval (0.25 s): 68 candidates, a third of them good.
    assert doc["candidates"] == 68
    assert 20 < doc["candidates"] - sum(rejected.values()) < 34
    assert doc["settings"]["count"] == 3
    # Every candidate is listed with its verdict, agreeing with the counts.
    frames = doc["frames"]
    assert len(frames) == doc["candidates"]
    for reason, n in rejected.items():
        assert sum(f["rejected"] == reason for f in frames) == n
    for f in frames:
        if f["rejected"] is None:  # what was kept lies in a good stretch or by a cut
            assert known.kind_at(f["time"]) in ("good", "transition"), f
    # The images: JPEG, 160 wide (16:9 source: 90 high), named in cover.json.
    for i, c in enumerate(covers, start=1):
        assert c["file"] == f"cover-{i:02d}.jpg"
        stream = video_stream(ffprobe(out / c["file"]))
        assert stream is not None
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 160, 90)
    # The manifest's summary (merged into the output's entry): the count and the best cover.
    info = task["outputs"][0]
    assert info["count"] == 3
    best = max(covers, key=lambda c: c["score"])
    assert (info["bestTime"], info["bestScore"]) == (best["time"], best["score"])
    assert len(task["outputs"]) == 4


@pytest.mark.parametrize(
    ("images", "codec", "size", "ext"),
    [
        (
            {"format": "webp", "width": 200, "height": 200, "fillType": "pad"},
            "webp",
            (200, 200),
            "webp",
        ),
        ({"format": "png", "height": 72}, "png", (128, 72), "png"),
    ],
)
def test_images_have_the_asked_format_and_size(
    known: KnownSegments,
    tmp_path: Path,
    images: dict[str, Any],
    codec: str,
    size: tuple[int, int],
    ext: str,
) -> None:
    doc, _, out = _run(tmp_path, known.path, {"count": 2, "images": images})
    files = sorted(out.glob(f"cover-*.{ext}"))
    assert [f.name for f in files] == [c["file"] for c in doc["covers"]]
    assert len(files) == 2
    for f in files:
        stream = video_stream(ffprobe(f))
        assert stream is not None
        assert (stream["codec_name"], stream["width"], stream["height"]) == (codec, *size)


def test_a_rotated_phone_clip_gets_upright_covers(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "phone", size=(320, 180), duration=3.0, rotate=90)
    assert clip.display == (180, 320)
    doc, _, out = _run(tmp_path, clip.path, {"count": 2, "images": {}})
    assert len(doc["covers"]) == 2
    for c in doc["covers"]:
        stream = video_stream(ffprobe(out / c["file"]))
        assert stream is not None
        assert (stream["width"], stream["height"]) == (180, 320)


def test_a_single_frame_gives_one_cover_and_audio_alone_is_skipped(tmp_path: Path) -> None:
    still = tmp_path / "still.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:d=0.04:r=25"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", str(still)),
        ],
        check=True,
        timeout=60,
    )
    (tmp_path / "a").mkdir()
    doc, _, _ = _run(tmp_path / "a", still, {"count": 3})
    assert len(doc["covers"]) == 1
    assert doc["candidates"] == 1

    audio = make_clip(tmp_path, "audio", video=False, container="m4a")
    workflow = write_workflow(tmp_path, [{"name": "covers", "cover": {}}])
    done = run_local(workflow, audio.path, tmp_path / "b")
    assert done.returncode == 0, done.stderr
    (task,) = json.loads((tmp_path / "b" / "manifest.json").read_text())["tasks"]
    assert task["status"] == "skipped"
    assert "video" in task["reason"]


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "portrait"),
    [
        ("landscape_720p_h264_aac_camera.mp4", False),
        ("webm_vp8_vorbis.webm", False),
        ("vfr_screen_recording_no_audio.mp4", False),
        ("portrait_rotated_phone_4k_h264_aac.mp4", True),
    ],
)
def test_corpus_files_get_spaced_upright_covers(
    corpus_dir: Path, tmp_path: Path, name: str, portrait: bool
) -> None:
    media = corpus_dir / name
    duration = float(ffprobe(media)["format"]["duration"])
    doc, _, out = _run(tmp_path, media, {"count": 3, "images": {"width": 240}})
    covers = doc["covers"]
    assert covers
    times = [c["time"] for c in covers]
    assert times == sorted(times)
    assert all(0 <= t <= duration for t in times)
    spacing = doc["settings"]["minSpacingSeconds"]
    assert all(b - a >= spacing for a, b in itertools.pairwise(times))
    if duration > 3:  # long enough for three distinct, spaced covers
        assert len(covers) == 3
        assert not any("fallback" in c for c in covers)
    for c in covers:
        stream = video_stream(ffprobe(out / c["file"]))
        assert stream is not None
        assert stream["width"] == 240
        assert (stream["height"] > stream["width"]) is portrait
