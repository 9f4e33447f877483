"""The worker on every file of the real-world media corpus.

The parameter list is the corpus directory listing, so a file added to the
corpus is tested without touching this module; a file missing from the
expectations below fails loudly instead of passing unchecked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import count_frames, ffprobe, hls_segments, run_local, video_stream, write_workflow

pytestmark = [pytest.mark.integration, pytest.mark.corpus]

# Display size (rotation applied) per corpus file, from SOURCES.md; None for
# audio-only; "bad" for files that must be refused with exit code 2.
EXPECTED: dict[str, tuple[int, int] | str | None] = {
    "animated_newtons_cradle.gif": (200, 150),
    "audio_aac_lc_mono.m4a": None,
    "audio_flac_with_cover_art.flac": None,
    "audio_music_vbr.mp3": None,
    "avi_mpeg4_mp3.avi": (960, 400),
    "broken_text_not_video.mp4": "bad",
    "broken_truncated_no_moov.mp4": "bad",
    "broken_zero_bytes.mp4": "bad",
    "flv_h264_aac.flv": (1080, 720),
    "iphone_hevc_10bit_rotated.mov": (720, 1280),
    "landscape_1080p_h264_aac.mp4": (1920, 1080),
    "landscape_720p_h264_aac_camera.mp4": (1280, 720),
    "logo_alpha_256.png": "bad",  # a still image is not a video input
    "mkv_h264_ac3.mkv": (1080, 720),
    "mkv_hevc_remux_bbb_480p.mkv": (854, 480),
    "mpegts_h264_aac_720x720.ts": (720, 720),
    "no_audio_phone_h264_vfr_rot180.mp4": (1920, 1080),
    "odd_dimensions_161x121_vp9.webm": (161, 121),
    "portrait_rotated_phone_4k_h264_aac.mp4": (2160, 3840),
    "quicktime_1080p50_h264_pcm.mov": (1920, 1080),
    "vertical_9x16_720x1280_av1_aac.mp4": (720, 1280),
    "vfr_screen_recording_no_audio.mp4": (3026, 1386),
    "webm_vp8_vorbis.webm": (480, 270),
}


def corpus_listing() -> list[str]:
    root = os.environ.get("MEDIAFLOW_MEDIA_CORPUS", "")
    if root and Path(root).is_dir():
        return sorted(p.name for p in Path(root).iterdir() if p.is_file() and p.suffix != ".md")
    # Without a corpus there is one parameter, and corpus_dir skips (or fails
    # under MEDIAFLOW_REQUIRE_CORPUS=1) with the reason.
    return ["<corpus not configured>"]


TASKS = [
    {
        "name": "web",
        "transcode": {
            "preset": "h264-360p",
            "video": {"preset": "ultrafast"},
            "watermarks": [
                {"image": {"bucket": "assets", "key": "logo.png"}, "width": "15%", "opacity": 0.8}
            ],
        },
    },
    {"name": "thumbs", "snapshot": {"count": 2, "width": 120}},
    {"name": "sheet", "sprite": {"columns": 4, "rows": 3, "width": 80}},
    {"name": "preview", "animatedImage": {"duration": 1, "fps": 5, "width": 120}},
    {
        "name": "hls",
        "adaptiveStreaming": {
            "renditions": [{"height": 240, "videoBitrate": "300k"}],
            "segmentSeconds": 2,
            "preset": "ultrafast",
        },
    },
    {"name": "facts", "analysis": {"black": True, "silence": True, "loudness": True}},
]


@pytest.fixture(scope="module")
def workflow_and_assets(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path
) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus-wf")
    assets = root / "assets"
    (assets / "assets").mkdir(parents=True)
    # The corpus logo (PNG with alpha) is the watermark; copied to tmp, never the repo.
    shutil.copy(corpus_dir / "logo_alpha_256.png", assets / "assets" / "logo.png")
    return write_workflow(root, TASKS, "corpus"), assets


@pytest.mark.parametrize("name", corpus_listing())
def test_corpus_file_is_processed_or_refused_cleanly(
    name: str, corpus_dir: Path, workflow_and_assets: tuple[Path, Path], tmp_path: Path
) -> None:
    assert name in EXPECTED, f"new corpus file {name}: add its expectation"
    expected = EXPECTED[name]
    source = corpus_dir / name
    workflow, assets = workflow_and_assets
    out = tmp_path / "out"
    done = run_local(workflow, source, out, "--assets", str(assets), timeout=240)
    if expected == "bad":
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir())
        return
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    statuses = {t["name"]: t["status"] for t in manifest["tasks"]}
    source_info = ffprobe(source)
    duration = float(source_info["format"]["duration"])

    web = ffprobe(out / "web" / "web.mp4")
    # Within 0.1 s: a held last frame (the VFR screen recording holds its
    # last one for 1.57 s) keeps its screen time. Audio-only files are
    # measured by what they decode to (the AAC file declares 0.256 s more).
    reference = duration if expected is not None else _decoded_audio_seconds(source)
    assert float(web["format"]["duration"]) == pytest.approx(reference, abs=0.1)
    audio_codecs = [s["codec_name"] for s in web["streams"] if s["codec_type"] == "audio"]
    has_audio = any(s["codec_type"] == "audio" for s in source_info["streams"])
    assert audio_codecs == (["aac"] if has_audio else [])
    facts = json.loads((out / "facts" / "analysis.json").read_text())
    assert facts["summary"]["duration"] == pytest.approx(duration, abs=0.01)
    assert ("loudness" in facts) == has_audio

    if expected is None:
        assert video_stream(web) is None
        for task in ("thumbs", "sheet", "preview"):
            assert statuses[task] == "skipped"
        # Audio-only inputs still stream: one AAC rendition.
        assert statuses["hls"] == "succeeded"
        assert "mp4a.40.2" in (out / "hls" / "master.m3u8").read_text()
        segments = hls_segments(out / "hls" / "stream_0" / "index.m3u8")
        assert 1 <= segments <= int(duration / 2) + 2
        return
    assert isinstance(expected, tuple)
    assert all(s == "succeeded" for s in statuses.values()), statuses
    w, h = expected
    video = video_stream(web)
    assert video is not None
    assert video["codec_name"] == "h264"
    assert video["pix_fmt"] == "yuv420p"
    # 360 on the short side, never upscaled, even, aspect within 2 px.
    short = min(360, w, h)
    assert min(video["width"], video["height"]) == short - short % 2
    assert video["width"] % 2 == 0
    assert video["height"] % 2 == 0
    assert video["width"] / video["height"] == pytest.approx(w / h, rel=0.02)

    shots = sorted((out / "thumbs").glob("snapshot-*.jpg"))
    assert len(shots) == 2
    shot = ffprobe(shots[0])["streams"][0]
    assert shot["width"] == min(120, w - w % 2)
    assert (shot["width"] > shot["height"]) == (w > h)

    sheet = ffprobe(out / "sheet" / "sprite-001.jpg")["streams"][0]
    assert sheet["width"] == 4 * 80
    vtt = (out / "sheet" / "sprite.vtt").read_text()
    assert vtt.startswith("WEBVTT")
    assert 1 <= vtt.count("-->") <= 12

    frames = count_frames(out / "preview" / "preview.gif")
    assert 1 <= frames <= 6

    master = (out / "hls" / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 1
    segments = hls_segments(out / "hls" / "stream_0" / "index.m3u8")
    assert 1 <= segments <= int(duration / 2) + 2


def test_snapshot_at_the_end_of_a_vfr_recording_is_its_last_frame(
    corpus_dir: Path, tmp_path: Path
) -> None:
    # The screen recording's last frame starts at 7.155 s and stays on screen
    # until 8.726 s: "100%" must show that frame, not the first one.
    source = corpus_dir / "vfr_screen_recording_no_audio.mp4"
    workflow = write_workflow(
        tmp_path, [{"name": "end", "snapshot": {"times": ["0", "100%"], "format": "png"}}]
    )
    out = tmp_path / "out"
    done = run_local(workflow, source, out)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "last.png"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-vf",
            "select=gte(t\\,7.1)",
            "-frames:v",
            "1",
            "-pix_fmt",
            "rgb24",
            str(reference),
        ],
        check=True,
        timeout=60,
    )
    first, last = sorted((out / "end").glob("snapshot-*.png"))
    assert _pixels(last) != _pixels(first)
    assert _pixels(last) == _pixels(reference)


def _decoded_audio_seconds(path: Path) -> float:
    pcm = subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(path)),
            *("-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return len(pcm) / 2 / 8000


def _pixels(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def test_a_transcoded_vfr_recording_keeps_its_held_last_frame(
    corpus_dir: Path, tmp_path: Path
) -> None:
    # The last frame starts at 7.155 s and stays until 8.726 s. ffmpeg 5.1 on
    # its own ends the output at 7.295 s; the worker repeats that frame so the
    # video lasts as long, in every frame-rate mode.
    source = corpus_dir / "vfr_screen_recording_no_audio.mp4"
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "vfr", "transcode": {"video": {"preset": "ultrafast", "height": 240}}},
            {
                "name": "cfr",
                "transcode": {"container": "mkv", "video": {"fps": 10, "height": 240}},
            },
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, source, out)
    assert done.returncode == 0, done.stderr
    vfr = out / "vfr" / "vfr.mp4"
    assert float(ffprobe(vfr)["format"]["duration"]) == pytest.approx(8.726, abs=0.02)
    # Still variable: the 63 source frames plus the repeated one, not a CFR storm.
    assert count_frames(vfr) == 64
    cfr = out / "cfr" / "cfr.mkv"
    assert float(ffprobe(cfr)["format"]["duration"]) == pytest.approx(8.726, abs=0.15)
    # What shows just before the end is the recording's last frame (on screen
    # from 7.155 s), not some other one: equal up to coding noise.
    end, last, earlier = (_frame_at(vfr, t, tmp_path) for t in (8.65, 7.2, 5.0))
    assert _mean_abs_diff(end, last) < 1.0
    assert _mean_abs_diff(end, earlier) > 5 * max(_mean_abs_diff(end, last), 0.1)


def _mean_abs_diff(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _frame_at(path: Path, at: float, tmp_path: Path) -> bytes:
    """The frame on screen at ``at`` seconds: the last one starting by then."""
    shot = tmp_path / f"at-{at}.png"
    subprocess.run(
        [
            # (fatal: the image2 muxer complains about the kept timestamps)
            *("ffmpeg", "-v", "fatal", "-y", "-i", str(path), "-vf", f"select=lte(t\\,{at})"),
            *("-fps_mode", "passthrough", "-update", "1", "-pix_fmt", "rgb24", str(shot)),
        ],
        check=True,
        timeout=60,
    )
    return _pixels(shot)
