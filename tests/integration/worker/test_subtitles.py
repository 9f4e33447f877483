"""Subtitles on real output: burned-in text found by pixels, soft streams
found by ffprobe and extracted back, the naming rule, and sidecars that
cannot be used (exit 2 with a reason)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import ffprobe, run_local, write_workflow

pytestmark = pytest.mark.integration

SRT = "1\n00:00:01,000 --> 00:00:02,000\nHello subtitles\n\n"
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nBonjour\n"
ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 640
PlayResY: 480

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, \
Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,DejaVu Sans,48,&H0000FFFF,&H0000FFFF,&H00000000,&H00000000,0,0,0,0,100,100,\
0,0,1,2,0,8,10,10,20,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,Top line
"""


def _flat_clip(directory: Path, name: str = "clip", duration: float = 3.0) -> Path:
    """A one-colour clip with audio: any pixel change is the worker's doing."""
    path = directory / f"{name}.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=0x336699:s=320x240:r=25:d={duration}",
            "-f", "lavfi", "-i", f"sine=d={duration}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def _gray(path: Path, at: float, crop: tuple[int, int, int, int]) -> bytes:
    """The gray pixels of the area ``crop`` (w, h, x, y) of the frame at ``at`` s."""
    w, h, x, y = crop
    done = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
            "-vf", f"crop={w}:{h}:{x}:{y}", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    return done.stdout


def _spread(pixels: bytes) -> int:
    return max(pixels) - min(pixels)


def _run(
    tmp_path: Path, clip: Path, transcode: dict[str, Any], *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    workflow = write_workflow(tmp_path, [{"name": "subs", "transcode": transcode}])
    out = tmp_path / "out"
    return run_local(workflow, clip, out, *extra), out


def _manifest_subtitles(out: Path) -> dict[str, Any]:
    doc = json.loads((out / "manifest.json").read_text())
    info: dict[str, Any] = doc["tasks"][0]["outputs"][0]["subtitles"]
    return info


def _subtitle_streams(path: Path) -> list[dict[str, Any]]:
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == "subtitle"]


def _extract(path: Path) -> str:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_burned_in_subtitles_show_in_the_bottom_area_during_the_cue_only(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path)
    (tmp_path / "clip.srt").write_text(SRT)
    done, out = _run(
        tmp_path,
        clip,
        {"video": {"preset": "ultrafast"}, "subtitles": {"style": {"fontSize": "10%"}}},
    )
    assert done.returncode == 0, done.stderr
    video = out / "subs" / "subs.mp4"
    bottom = (320, 60, 0, 180)
    top = (320, 120, 0, 0)
    # Outside the cue the frame is flat (only coding noise) ...
    assert _spread(_gray(video, 0.5, bottom)) < 12
    assert _spread(_gray(video, 2.5, bottom)) < 12
    # ... during it, white text with a black outline sits at the bottom ...
    during = _gray(video, 1.5, bottom)
    assert max(during) > 200
    assert min(during) < 40
    # ... and nowhere else.
    assert _spread(_gray(video, 1.5, top)) < 12
    assert not _subtitle_streams(video)
    info = _manifest_subtitles(out)
    assert info["burnedIn"] is True
    assert info["source"] == "clip.srt"
    assert info["cues"] == 1


def test_an_ass_sidecar_keeps_its_own_style_when_burned_in(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path)
    sidecar = tmp_path / "styled.ass"
    sidecar.write_text(ASS)
    done, out = _run(
        tmp_path,
        clip,
        {
            "video": {"preset": "ultrafast"},
            "subtitles": {"file": {"bucket": "subs", "key": "styled.ass"}},
        },
        "--asset",
        f"subs/styled.ass={sidecar}",
    )
    assert done.returncode == 0, done.stderr
    video = out / "subs" / "subs.mp4"
    # The file's own alignment (8: top) and yellow colour are kept.
    top = _gray(video, 1.0, (320, 80, 0, 0))
    assert max(top) > 180
    assert _spread(_gray(video, 1.0, (320, 80, 0, 160))) < 12
    assert _spread(_gray(video, 2.5, (320, 80, 0, 0))) < 12


def test_soft_subtitles_in_mp4_are_mov_text_tagged_and_extract_back(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path)
    (tmp_path / "clip.eng.vtt").write_text(VTT)
    done, out = _run(
        tmp_path,
        clip,
        {"video": {"preset": "ultrafast"}, "subtitles": {"mode": "soft", "language": "eng"}},
    )
    assert done.returncode == 0, done.stderr
    video = out / "subs" / "subs.mp4"
    [stream] = _subtitle_streams(video)
    assert stream["codec_name"] == "mov_text"
    assert stream["tags"]["language"] == "eng"
    text = _extract(video)
    assert "Bonjour" in text
    assert "00:00:00,500 --> 00:00:01,500" in text
    assert _manifest_subtitles(out)["source"] == "clip.eng.vtt"


def test_soft_subtitles_in_mkv_keep_ass_and_in_webm_are_webvtt(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path, duration=2)
    (tmp_path / "clip.ass").write_text(ASS)
    mkv, out = _run(
        tmp_path,
        clip,
        {
            "container": "mkv",
            "video": {"codec": "copy"},
            "audio": {"codec": "copy"},
            "subtitles": {"mode": "soft", "language": "fra"},
        },
    )
    assert mkv.returncode == 0, mkv.stderr
    [stream] = _subtitle_streams(out / "subs" / "subs.mkv")
    assert (stream["codec_name"], stream["tags"]["language"]) == ("ass", "fra")
    assert "Top line" in _extract(out / "subs" / "subs.mkv")
    webm, out = _run(
        tmp_path,
        clip,
        {
            "container": "webm",
            "video": {"codec": "vp9", "preset": "ultrafast", "width": 160},
            "subtitles": {"mode": "soft"},
        },
    )
    assert webm.returncode == 0, webm.stderr
    [stream] = _subtitle_streams(out / "subs" / "subs.webm")
    assert stream["codec_name"] == "webvtt"
    assert "Top line" in _extract(out / "subs" / "subs.webm")


def test_trimmed_output_moves_the_cues_to_output_time(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path)
    (tmp_path / "clip.srt").write_text(SRT)
    done, out = _run(
        tmp_path,
        clip,
        {
            "container": "mkv",
            "video": {"preset": "ultrafast"},
            "trim": {"start": 0.5},
            "subtitles": {"mode": "soft"},
        },
    )
    assert done.returncode == 0, done.stderr
    # 1.0 s in the source is 0.5 s in the output (give or take the audio
    # encoder's priming, which the muxer shifts every stream by).
    match = re.search(r"00:00:00,(\d{3}) --> 00:00:01,(\d{3})", _extract(out / "subs" / "subs.mkv"))
    assert match is not None
    assert abs(int(match.group(1)) - 500) <= 50


def test_no_sidecar_next_to_the_input_means_no_subtitles_recorded(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path, duration=1)
    done, out = _run(tmp_path, clip, {"video": {"preset": "ultrafast"}, "subtitles": {}})
    assert done.returncode == 0, done.stderr
    assert not _subtitle_streams(out / "subs" / "subs.mp4")
    info = _manifest_subtitles(out)
    assert info["found"] is False
    assert info["tried"] == ["clip.srt", "clip.vtt", "clip.ass"]


@pytest.mark.parametrize(
    ("content", "reason", "words"),
    [
        (b"this is not a subtitle file\n", "AssetUnusable", "holds no cue"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfe\n", "AssetUnusable", "not UTF-8"),
        (b"\x00\x00\x00\x18ftypmp42", "AssetUnusable", "not a text file"),
    ],
    ids=["no-cues", "not-utf8", "binary"],
)
def test_an_unusable_sidecar_ends_with_exit_2_and_a_reason(
    tmp_path: Path, content: bytes, reason: str, words: str
) -> None:
    clip = _flat_clip(tmp_path, duration=1)
    (tmp_path / "clip.srt").write_bytes(content)
    done, _ = _run(tmp_path, clip, {"video": {"preset": "ultrafast"}, "subtitles": {}})
    assert done.returncode == 2, done.stderr
    assert f"mediaflow-worker: {reason}:" in done.stderr
    assert words in done.stderr


def test_a_missing_named_sidecar_ends_with_exit_2_before_any_task(tmp_path: Path) -> None:
    clip = _flat_clip(tmp_path, duration=1)
    done, out = _run(
        tmp_path,
        clip,
        {"subtitles": {"mode": "soft", "file": {"bucket": "subs", "key": "film.srt"}}},
    )
    assert done.returncode == 2, done.stderr
    assert "AssetNotFound" in done.stderr
    assert "subtitles subs/film.srt" in done.stderr
    assert not (out / "manifest.json").exists()
