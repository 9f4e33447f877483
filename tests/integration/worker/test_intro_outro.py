"""Intro and outro clips on real output: the joined file lasts as long as
its parts, starts with the intro's pictures and ends with the outro's, at
the main part's size; unusable clips end with exit 2 and a reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import ffprobe, make_clip, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration


def _colour_clip(
    path: Path, colour: str, size: tuple[int, int], fps: int, seconds: float, audio: bool
) -> Path:
    """A one-colour clip, with a tone when ``audio``."""
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    args += ["-i", f"color=c={colour}:s={size[0]}x{size[1]}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=880:d={seconds}:sample_rate=44100"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac"]
    subprocess.run([*args, str(path)], check=True, timeout=60)
    return path


def _rgb(path: Path, at: float, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """Mean colour of the area ``box`` (x, y, w, h) of the frame at ``at`` s."""
    x, y, w, h = box
    data = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
            "-vf", f"crop={w}:{h}:{x}:{y}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout  # fmt: skip
    n = len(data) // 3
    r, g, b = (sum(data[i::3]) // n for i in range(3))
    return r, g, b


def _loudness(path: Path, start: float, duration: float) -> float:
    """Peak sample (0..1) of the output's audio in a time window."""
    data = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-ss", f"{start}", "-t", f"{duration}", "-i", str(path),
            "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout  # fmt: skip
    samples = [
        int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)
    ]
    return max(abs(s) for s in samples) / 32768


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``clips/intro.mp4``: red, 1 s, with a tone, smaller and of another
    rate than the main part; ``clips/outro.mp4``: blue, 1.5 s, wider, silent."""
    root = tmp_path_factory.mktemp("assets")
    (root / "clips").mkdir()
    _colour_clip(root / "clips" / "intro.mp4", "red", (160, 120), 30, 1.0, audio=True)
    _colour_clip(root / "clips" / "outro.mp4", "blue", (640, 240), 24, 1.5, audio=False)
    return root


def _run(
    tmp_path: Path, assets: Path, clip: Path, transcode: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    workflow = write_workflow(tmp_path, [{"name": "joined", "transcode": transcode}])
    out = tmp_path / "out"
    return run_local(workflow, clip, out, "--assets", str(assets)), out


def test_intro_and_outro_are_joined_around_the_main_part(tmp_path: Path, assets: Path) -> None:
    main = make_clip(tmp_path, "main", size=(320, 240), duration=2, audio=False)
    done, out = _run(
        tmp_path,
        assets,
        main.path,
        {
            "video": {"preset": "ultrafast"},
            "intro": {"bucket": "clips", "key": "intro.mp4"},
            "outro": {"bucket": "clips", "key": "outro.mp4"},
        },
    )
    assert done.returncode == 0, done.stderr
    video = out / "joined" / "joined.mp4"
    info = ffprobe(video)
    stream = video_stream(info)
    assert stream is not None
    assert (stream["width"], stream["height"]) == (320, 240)
    assert abs(float(info["format"]["duration"]) - (1.0 + 2.0 + 1.5)) < 0.15
    red, blue = (255, 0, 0), (0, 0, 255)
    centre = (140, 100, 40, 40)

    def near(colour: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
        return all(abs(a - b) < 30 for a, b in zip(colour, want, strict=True))

    assert near(_rgb(video, 0.0, centre), red)
    assert near(_rgb(video, 0.9, centre), red)
    assert not near(_rgb(video, 1.5, centre), red)
    assert not near(_rgb(video, 1.5, centre), blue)
    assert near(_rgb(video, 3.2, centre), blue)
    assert near(_rgb(video, 4.4, centre), blue)
    # The wide outro is letterboxed: black bars above and below it.
    assert max(_rgb(video, 4.0, (0, 0, 320, 40))) < 20
    # The main part has no audio: so has the output (no stream to join into).
    assert [s for s in info["streams"] if s["codec_type"] == "audio"] == []
    entry = json.loads((out / "manifest.json").read_text())["tasks"][0]["outputs"][0]
    assert entry["intro"] == {"seconds": 1.0, "audio": True}
    assert entry["outro"] == {"seconds": 1.5, "audio": False}


def test_a_silent_part_joins_as_silence_and_trim_cuts_the_main_part(
    tmp_path: Path, assets: Path
) -> None:
    main = make_clip(tmp_path, "main", size=(320, 240), duration=3, audio=True)
    done, out = _run(
        tmp_path,
        assets,
        main.path,
        {
            "video": {"preset": "ultrafast"},
            "trim": {"start": 0.5, "duration": 1.5},
            "intro": {"bucket": "clips", "key": "intro.mp4"},
            "outro": {"bucket": "clips", "key": "outro.mp4"},
        },
    )
    assert done.returncode == 0, done.stderr
    video = out / "joined" / "joined.mp4"
    info = ffprobe(video)
    assert abs(float(info["format"]["duration"]) - (1.0 + 1.5 + 1.5)) < 0.15
    [audio] = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert audio["codec_name"] == "aac"
    assert _loudness(video, 0.2, 0.6) > 0.1  # the intro's tone
    assert _loudness(video, 1.2, 1.0) > 0.1  # the main part's tone
    assert _loudness(video, 2.7, 1.0) < 0.01  # the silent outro


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://example.com/a.ts\n", "playlist"),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, "intro s3://clips/bad.mp4"),
    ],
    ids=["playlist", "broken"],
)
def test_an_unusable_clip_ends_with_exit_2_and_a_reason(
    tmp_path: Path, assets: Path, content: bytes, words: str
) -> None:
    (assets / "clips" / "bad.mp4").write_bytes(content)
    main = make_clip(tmp_path, "main", size=(160, 120), duration=1, audio=False)
    done, _ = _run(
        tmp_path,
        assets,
        main.path,
        {"video": {"preset": "ultrafast"}, "intro": {"bucket": "clips", "key": "bad.mp4"}},
    )
    assert done.returncode == 2, done.stderr
    assert "mediaflow-worker: AssetUnusable:" in done.stderr
    assert words in done.stderr


def test_an_audio_only_clip_or_a_missing_one_ends_with_exit_2(tmp_path: Path, assets: Path) -> None:
    song = make_clip(assets / "clips", "song", video=False, duration=1, container="m4a")
    main = make_clip(tmp_path, "main", size=(160, 120), duration=1, audio=False)
    done, _ = _run(
        tmp_path,
        assets,
        main.path,
        {"video": {"preset": "ultrafast"}, "outro": {"bucket": "clips", "key": song.path.name}},
    )
    assert done.returncode == 2, done.stderr
    assert "has no video stream" in done.stderr
    done, out = _run(
        tmp_path,
        assets,
        main.path,
        {"video": {"preset": "ultrafast"}, "outro": {"bucket": "clips", "key": "gone.mp4"}},
    )
    assert done.returncode == 2, done.stderr
    assert "AssetNotFound" in done.stderr
    assert "intro/outro clips/gone.mp4" in done.stderr
    assert not (out / "manifest.json").exists()
