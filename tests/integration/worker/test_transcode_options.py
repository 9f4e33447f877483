"""One transcode with most of its knobs set, every knob checked on the output:
trim, size, fps, GOP, audio rate/channels, faststart, and an image watermark's
place, size and time range (by reading pixels)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .helpers import ffprobe, run_local, write_workflow

pytestmark = pytest.mark.integration


def _black_clip(path: Path) -> Path:
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "color=c=black:s=640x360:r=25:d=4"),
            *("-f", "lavfi", "-i", "sine=f=440:d=4:sample_rate=48000", "-ac", "2"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"),
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _pixel(video: Path, at: float, x: int, y: int, size: tuple[int, int]) -> tuple[int, ...]:
    """RGB of pixel (x, y) of the frame on screen at ``at`` seconds."""
    raw = subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(video), "-vf", f"select=lte(t\\,{at})"),
            *("-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    w, h = size
    frame = raw[-w * h * 3 :]  # the last frame selected
    offset = (y * w + x) * 3
    return tuple(frame[offset : offset + 3])


def test_transcode_settings_all_show_in_the_output(logo_png: Path, tmp_path: Path) -> None:
    source = _black_clip(tmp_path / "black.mp4")
    workflow = write_workflow(
        tmp_path,
        [
            {
                "name": "web",
                "transcode": {
                    "container": "mp4",
                    "video": {"height": 180, "fps": 10, "gop": 10, "preset": "ultrafast"},
                    "audio": {"codec": "aac", "sampleRate": 44100, "channels": 1},
                    "trim": {"start": 1, "duration": 2},
                    "watermarks": [
                        {
                            "image": {"bucket": "assets", "key": "logo.png"},
                            "position": "bottom-right",
                            "offsetX": "10",
                            "offsetY": "10",
                            "width": "20%",
                            "start": 0.5,
                            "end": 1.5,
                        }
                    ],
                },
            }
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, source, out, "--assets", str(logo_png.parent.parent))
    assert done.returncode == 0, done.stderr
    result = out / "web" / "web.mp4"
    info = ffprobe(result)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert (video["width"], video["height"]) == (320, 180)
    assert video["r_frame_rate"] == "10/1"
    assert (int(audio["sample_rate"]), audio["channels"]) == (44100, 1)
    # GOP 10 at 10 fps: a keyframe every second, so 2 in 2 s.
    keyframes = ffprobe(result, "-skip_frame", "nokey", "-count_frames", "-select_streams", "v")
    assert int(keyframes["streams"][0]["nb_read_frames"]) == 2
    # faststart: the index (moov) comes before the media data (mdat).
    data = result.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    # The logo (64x32 red at 60 % alpha), scaled to 20 % of 320 px = 64 px wide,
    # sits 10 px from the bottom-right corner from 0.5 s to 1.5 s of the output.
    inside, outside = (320 - 10 - 32, 180 - 10 - 16), (100, 90)
    red = _pixel(result, 1.0, *inside, (320, 180))
    assert red[0] > 100, red
    assert max(red[1:]) < 40, red
    assert max(_pixel(result, 1.0, *outside, (320, 180))) < 30
    assert max(_pixel(result, 0.2, *inside, (320, 180))) < 30  # not yet shown
    assert max(_pixel(result, 1.8, *inside, (320, 180))) < 30  # gone again


def test_a_failing_held_frame_input_falls_back_to_a_plain_transcode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediaflow_api.job import Limits
    from mediaflow_worker.errors import ProcessingError
    from mediaflow_worker.local_mode import run_local as run_in_process
    from mediaflow_worker.process import run_ffmpeg
    from mediaflow_worker.tasks import transcode

    from .helpers import make_clip

    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    clip = make_clip(tmp_path, "c", duration=2)
    # Pretend the last frame (from 0.5 s) is held to the end, and make the
    # command that repeats it fail the way an odd file might.
    monkeypatch.setattr(transcode, "last_video_frame", lambda probe, path: (0.5, 2.0))
    commands: list[list[str]] = []
    real = run_ffmpeg  # what transcode calls, until patched below

    def flaky(args: list[str], **kwargs: object) -> list[str]:
        commands.append(list(args))
        if any("interleave" in a for a in args):
            raise ProcessingError("web: ffmpeg failed: Invalid data found when processing input")
        return real(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transcode, "run_ffmpeg", flaky)
    workflow = write_workflow(tmp_path, [{"name": "web", "transcode": {"preset": "h264-360p"}}])
    doc = run_in_process(workflow, clip.path, tmp_path / "out", limits=Limits())
    assert doc["ok"] is True
    assert [any("interleave" in a for a in c) for c in commands] == [True, False]
    info = ffprobe(tmp_path / "out" / "web" / "web.mp4")
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
