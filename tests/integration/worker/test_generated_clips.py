"""The real ffmpeg on generated clips: sizes, rotations, frame rates,
containers, with and without audio. Every output is checked with ffprobe."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from .helpers import (
    Clip,
    count_frames,
    ffprobe,
    hls_segments,
    make_clip,
    run_local,
    video_stream,
    write_workflow,
)

pytestmark = pytest.mark.integration

TASKS = [
    {
        "name": "web",
        "transcode": {
            "preset": "h264-360p",
            "video": {"preset": "ultrafast"},
            "watermarks": [{"text": "mediaflow", "opacity": 0.7}],
        },
    },
    {"name": "thumbs", "snapshot": {"count": 3, "width": 96}},
    {"name": "sheet", "sprite": {"columns": 3, "rows": 2, "width": 64}},
    {"name": "preview", "animatedImage": {"duration": 1, "fps": 6, "width": 96}},
    {
        "name": "hls",
        "adaptiveStreaming": {
            "ladder": "mobile-ladder",
            "segmentSeconds": 1,
            "preset": "ultrafast",
        },
    },
    {
        "name": "dash",
        "adaptiveStreaming": {
            "format": "dash",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": [{"height": 120, "videoBitrate": "150k"}],
        },
    },
    {"name": "sound", "transcode": {"preset": "audio-opus-96k"}},
    {"name": "facts", "analysis": {"sceneChanges": True, "silence": True, "loudness": True}},
]

VARIANTS = {
    "landscape-mp4": {},
    "odd-size": {"size": (161, 121)},
    "portrait-rotated-90": {"rotate": 90},
    "rotated-180": {"rotate": 180, "audio": False},
    "ntsc-fps-mkv": {"fps": "30000/1001", "container": "mkv"},
    "vp9-webm": {"container": "webm", "size": (256, 144)},
    "60fps-ts": {"fps": "60", "container": "ts"},
    "mov-no-audio": {"container": "mov", "audio": False},
    "audio-only-m4a": {"video": False, "container": "m4a"},
}


def _expected_even(display: tuple[int, int], short: int) -> tuple[int, int]:
    w, h = display
    scale = min(1.0, short / min(w, h))

    def near(v: float, src: int) -> int:
        n = max(2, 2 * round(v / 2))
        return n - 2 if n > src else n

    return near(w * scale, w), near(h * scale, h)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workflow(tmp_path_factory.mktemp("wf"), TASKS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_task_type_produces_correct_outputs(
    variant: str, workflow: Path, logo_png: Path, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path, variant, **VARIANTS[variant])  # type: ignore[arg-type]
    out = tmp_path / "out"
    done = run_local(workflow, clip.path, out)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ok"] is True
    statuses = {t["name"]: t["status"] for t in manifest["tasks"]}
    listed = {o["path"] for t in manifest["tasks"] for o in t["outputs"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == listed
    _check_transcode(clip, out)
    _check_audio(clip, out, statuses["sound"])
    _check_analysis(clip, out)
    if clip.display is None:
        for name in ("thumbs", "sheet", "preview"):
            assert statuses[name] == "skipped", name
        _check_audio_only_streaming(clip, out)
        return
    audio_tasks = {"sound"}
    for name, status in statuses.items():
        wanted = "skipped" if (name in audio_tasks and not clip.has_audio) else "succeeded"
        assert status == wanted, (name, status)
    _check_snapshots(clip, out)
    _check_sprite(clip, out)
    _check_gif(clip, out)
    _check_hls(clip, out)
    _check_dash(clip, out)


def _check_transcode(clip: Clip, out: Path) -> None:
    info = ffprobe(out / "web" / "web.mp4")
    assert float(info["format"]["duration"]) == pytest.approx(clip.duration, abs=0.15)
    video = video_stream(info)
    if clip.display is None:
        assert video is None
    else:
        assert video is not None
        assert video["codec_name"] == "h264"
        assert video["pix_fmt"] == "yuv420p"
        assert (video["width"], video["height"]) == _expected_even(clip.display, 360)
        # Rotation is applied to the pixels, so no player rotates it again.
        rotations = [s.get("rotation", 0) for s in video.get("side_data_list", [])]
        assert all(r == 0 for r in rotations)
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert [s["codec_name"] for s in audio] == (["aac"] if clip.has_audio else [])


def _check_audio(clip: Clip, out: Path, status: str) -> None:
    if not clip.has_audio:
        assert status == "skipped"
        return
    info = ffprobe(out / "sound" / "sound.ogg")
    assert [s["codec_name"] for s in info["streams"]] == ["opus"]
    assert float(info["format"]["duration"]) == pytest.approx(clip.duration, abs=0.1)


def _check_analysis(clip: Clip, out: Path) -> None:
    facts = json.loads((out / "facts" / "analysis.json").read_text())
    assert facts["summary"]["duration"] == pytest.approx(clip.duration, abs=0.1)
    assert ("scenes" in facts) == (clip.display is not None)
    if clip.has_audio:
        # A steady sine: no silence, a finite integrated loudness.
        assert facts["silence"] == []
        assert -40 < facts["loudness"]["integrated"] < 0


def _check_snapshots(clip: Clip, out: Path) -> None:
    assert clip.display is not None
    shots = sorted((out / "thumbs").glob("snapshot-*.jpg"))
    assert len(shots) == 3
    w, h = clip.display
    for shot in shots:
        stream = ffprobe(shot)["streams"][0]
        assert stream["codec_name"] == "mjpeg"
        assert stream["width"] == 96
        assert stream["height"] == pytest.approx(96 * h / w, abs=2)


def _check_sprite(clip: Clip, out: Path) -> None:
    assert clip.display is not None
    sheets = sorted((out / "sheet").glob("sprite-*.jpg"))
    assert len(sheets) == 1
    stream = ffprobe(sheets[0])["streams"][0]
    w, h = clip.display
    thumb_h = round(64 * h / w / 2) * 2
    assert (stream["width"], stream["height"]) == (3 * 64, pytest.approx(2 * thumb_h, abs=4))
    vtt = (out / "sheet" / "sprite.vtt").read_text()
    assert vtt.startswith("WEBVTT")
    assert 5 <= vtt.count("-->") <= 6
    assert "sprite-001.jpg#xywh=128,0,64," in vtt


def _check_gif(clip: Clip, out: Path) -> None:
    gif = out / "preview" / "preview.gif"
    assert ffprobe(gif)["streams"][0]["codec_name"] == "gif"
    assert count_frames(gif) in (5, 6, 7)  # 1 s at 6 fps


def _check_hls(clip: Clip, out: Path) -> None:
    assert clip.display is not None
    master = (out / "hls" / "master.m3u8").read_text()
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    short = min(clip.display)
    expected = [h for h in (720, 480, 360, 240) if h <= short] or [240]
    assert len(variants) == len(expected)
    expected_segments = math.ceil(clip.duration / 1)
    for i in range(len(variants)):
        playlist = out / "hls" / f"stream_{i}" / "index.m3u8"
        assert "#EXT-X-ENDLIST" in playlist.read_text()
        assert hls_segments(playlist) in (expected_segments, expected_segments + 1)
    first = ffprobe(out / "hls" / "stream_0" / "segment_00000.ts")
    assert video_stream(first)["codec_name"] == "h264"


def _check_dash(clip: Clip, out: Path) -> None:
    mpd = ET.fromstring((out / "dash" / "manifest.mpd").read_text())  # noqa: S314 - our own file
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    reps = mpd.findall(".//m:Representation", ns)
    kinds = sorted(
        r.get("mimeType") or r.getparent() if False else r.get("mimeType") or "" for r in reps
    )
    assert len(reps) == (2 if clip.has_audio else 1), kinds
    chunks = list((out / "dash").glob("chunk-0-*.m4s"))
    assert len(chunks) in (math.ceil(clip.duration), math.ceil(clip.duration) + 1)


def _check_audio_only_streaming(clip: Clip, out: Path) -> None:
    master = (out / "hls" / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 1
    assert "mp4a.40.2" in master
    playlist = out / "hls" / "stream_0" / "index.m3u8"
    assert hls_segments(playlist) in (math.ceil(clip.duration), math.ceil(clip.duration) + 1)
    mpd = ET.fromstring((out / "dash" / "manifest.mpd").read_text())  # noqa: S314 - our own file
    reps = mpd.findall(".//{urn:mpeg:dash:schema:mpd:2011}Representation")
    assert [r.get("codecs") for r in reps] == ["mp4a.40.2"]


def test_analysis_reports_every_segment_of_a_long_choppy_track(tmp_path: Path) -> None:
    # 120 s of tone with 0.15 s of silence every 0.3 s: 400 silent segments,
    # 800 detector lines plus the loudness summary, twice the log tail kept.
    audio = tmp_path / "choppy.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=120:sample_rate=16000,volume=eval=frame:volume='lt(mod(t,0.3),0.15)'",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            str(audio),
        ],
        check=True,
        timeout=120,
    )
    workflow = write_workflow(
        tmp_path,
        [{"name": "qc", "analysis": {"silence": True, "silenceMinSeconds": 0.1, "loudness": True}}],
    )
    out = tmp_path / "out"
    done = run_local(workflow, audio, out)
    assert done.returncode == 0, done.stderr
    facts = json.loads((out / "qc" / "analysis.json").read_text())
    assert 390 <= len(facts["silence"]) <= 401
    # (AAC priming shifts the track by a few tens of milliseconds.)
    assert facts["silence"][0]["start"] == pytest.approx(0.15, abs=0.08)
    assert facts["loudness"]["integrated"] is not None
