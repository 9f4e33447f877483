"""Every ffmpeg/ffprobe command the worker builds opens its inputs under the
safety rules: ``file:`` paths only, ``-protocol_whitelist file``, and a forced
allow-listed demuxer or a ``-format_whitelist``. The same check guards every
process start at runtime (``safety.check_restricted``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api.job import Limits
from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import Rendition, TranscodeTask, Watermark
from mediaflow_worker import process, safety
from mediaflow_worker.ffmpeg import (
    adaptive_streaming,
    analysis,
    animated_image,
    common,
    quality,
    snapshot,
    sprite,
    watermark,
)
from mediaflow_worker.ffmpeg.ffprobe import describe_args, image_size_args, probe_args
from mediaflow_worker.probe import parse_probe
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks import _watermarks as watermarks_prep
from mediaflow_worker.tasks import transcode as transcode_task

pytestmark = pytest.mark.unit

SRC = Path("/scratch/in")
OUT = Path("/scratch/out")
MAXPX = 8192 * 8192
RUNGS = [
    adaptive_streaming.PlannedRendition(Rendition(height=360, videoBitrate="800k"), 640, 360),
    adaptive_streaming.PlannedRendition(Rendition(height=240, videoBitrate="400k"), 426, 240),
]
IMAGE_MARK = watermark.WatermarkInput(
    Watermark.model_validate({"image": {"bucket": "b12", "key": "k.png"}}),
    1,
    (32, 16),
    None,
    Path("/assets/k.png"),
)
PLAN = sprite.SpritePlan(interval=1, thumbs=4, columns=2, rows=2, sheets=1, thumb_w=64, thumb_h=36)

BUILDERS: dict[str, Callable[[], list[str]]] = {
    "probe": lambda: probe_args(SRC, MAXPX),
    "image-size": lambda: image_size_args(SRC),
    "describe-output": lambda: describe_args(OUT / "a.mp4"),
    "image-input": lambda: ["ffmpeg", *common.image_input_args(SRC)],
    "snapshot": lambda: snapshot.snapshot_args(SRC, "mov", MAXPX, 1.0, (64, 36), "jpeg", OUT),
    "snapshot-window": lambda: snapshot.snapshot_window_args(
        SRC, "mov", MAXPX, 9.0, 2.0, (64, 36), "png", OUT
    ),
    "snapshots-single-pass": lambda: snapshot.snapshots_single_pass_args(
        SRC, "matroska", MAXPX, [1.0, 2.0], (64, 36), "webp", [OUT, OUT]
    ),
    "sprite": lambda: sprite.sprite_args(SRC, "avi", MAXPX, PLAN, "jpeg", OUT, OUT),
    "sprite-watermarked": lambda: sprite.sprite_args(
        SRC, "avi", MAXPX, PLAN, "jpeg", OUT, OUT, marks=[IMAGE_MARK]
    ),
    "snapshot-watermarked": lambda: snapshot.snapshot_args(
        SRC, "mov", MAXPX, 1.0, (64, 36), "jpeg", OUT, marks=[IMAGE_MARK]
    ),
    "snapshots-single-pass-watermarked": lambda: snapshot.snapshots_single_pass_args(
        SRC, "matroska", MAXPX, [1.0, 2.0], (64, 36), "webp", [OUT, OUT], marks=[IMAGE_MARK]
    ),
    "gif-watermarked": lambda: animated_image.animated_args(
        SRC,
        "flv",
        MAXPX,
        start=1,
        duration=2,
        fps=10,
        size=(64, 36),
        fmt="gif",
        loop=0,
        out=OUT,
        marks=[IMAGE_MARK],
    ),
    "svg-raster": lambda: watermark.svg_raster_args(SRC, 64, OUT),
    "gif": lambda: animated_image.animated_args(
        SRC, "flv", MAXPX, start=1, duration=2, fps=10, size=(64, 36), fmt="gif", loop=0, out=OUT
    ),
    "webp": lambda: animated_image.animated_args(
        SRC, "gif", MAXPX, start=0, duration=2, fps=10, size=(64, 36), fmt="webp", loop=0, out=OUT
    ),
    "hls": lambda: adaptive_streaming.ladder_args(
        SRC,
        "mpegts",
        MAXPX,
        RUNGS,
        fmt="hls",
        codec="h264",
        preset="fast",
        segment_seconds=4,
        has_audio=True,
        out_dir=OUT,
    ),
    "dash-h265": lambda: adaptive_streaming.ladder_args(
        SRC,
        "mov",
        MAXPX,
        RUNGS,
        fmt="dash",
        codec="h265",
        preset="fast",
        segment_seconds=4,
        has_audio=False,
        out_dir=OUT,
    ),
    "audio-hls": lambda: adaptive_streaming.audio_stream_args(
        SRC, "mp3", MAXPX, fmt="hls", bitrate="128k", segment_seconds=6, out_dir=OUT
    ),
    "audio-dash": lambda: adaptive_streaming.audio_stream_args(
        SRC, "flac", MAXPX, fmt="dash", bitrate="128k", segment_seconds=6, out_dir=OUT
    ),
    "analysis": lambda: analysis.analysis_args(
        SRC,
        "ogg",
        MAXPX,
        has_video=True,
        has_audio=True,
        scenes=10,
        black=0.5,
        silence=(-50, 1),
        loudness=True,
    ),
    "quality": lambda: (
        quality.quality_args(
            SRC,
            "ogg",
            MAXPX,
            video=quality.VideoChecks((320, 240), (1, 0.1), (2, -60), True, True, 0.2),
            audio=quality.AudioChecks((-50, 1), True, 1.0),
        )
        or []
    ),
    "quality-packets": lambda: quality.packets_args(SRC, "ogg"),
}


def _inputs(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "-i"]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_builder_opens_its_inputs_under_the_rules(name: str) -> None:
    args = BUILDERS[name]()
    assert _inputs(args), "a command without input?"
    assert safety.unrestricted_inputs(args) == []
    assert "-protocol_whitelist" in args


def _context(tmp_path: Path, raw: dict[str, Any], task_name: str) -> TaskContext:
    """A task context for SRC described by the ffprobe output ``raw``."""
    return TaskContext(
        input_path=SRC,
        probe=parse_probe(raw, 1000),
        limits=Limits(),
        scratch=tmp_path,
        out_dir=tmp_path,
        deadline=0,
        fetch_asset=lambda bucket, key: tmp_path / key,
        font="/font.ttf",
        task_name=task_name,
    )


def _transcode_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(watermarks_prep, "image_size", lambda _path: (64, 32))
    raw = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10"},
        "streams": [
            {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720},
            {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2},
        ],
    }
    ctx = _context(tmp_path, raw, "web")
    spec = resolve_transcode(
        TranscodeTask.model_validate(
            {
                "preset": "h264-720p",
                "trim": {"start": 2, "duration": 3},
                "watermarks": [
                    {"image": {"bucket": "assets", "key": "a.png"}},
                    {"text": "hi"},
                    {"image": {"bucket": "assets", "key": "b.png"}},
                ],
            }
        )
    )
    return transcode_task.prepare_command(spec, ctx, tmp_path / "web.mp4")


def test_transcode_with_image_watermarks_opens_every_input_under_the_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _transcode_args(tmp_path, monkeypatch)
    assert _inputs(args) == [f"file:{SRC}", f"file:{tmp_path}/a.png", f"file:{tmp_path}/b.png"]
    assert safety.unrestricted_inputs(args) == []


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["ffmpeg", "-f", "mov", "-i", "file:/in"], "no protocol whitelist"),
        (["ffmpeg", "-protocol_whitelist", "file,http", "-f", "mov", "-i", "file:/in"], "http"),
        (["ffmpeg", "-protocol_whitelist", "file", "-f", "mov", "-i", "/in"], "not file:"),
        (["ffmpeg", "-protocol_whitelist", "file", "-f", "mov", "-i", "http://x/"], "url"),
        (["ffmpeg", "-protocol_whitelist", "file", "-i", "file:/in"], "no demuxer rule"),
        (["ffmpeg", "-protocol_whitelist", "file", "-f", "hls", "-i", "file:/in"], "hls"),
        (
            [
                "ffmpeg",
                "-protocol_whitelist",
                "file",
                "-format_whitelist",
                "mov,concat",
                "-i",
                "file:/in",
            ],
            "concat",
        ),
        (
            # The second input does not inherit the first one's options.
            [
                "ffmpeg",
                "-protocol_whitelist",
                "file",
                "-f",
                "mov",
                "-i",
                "file:/a",
                "-i",
                "file:/b",
            ],
            "second input",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_check_catches_inputs_outside_the_rules(args: list[str], why: str) -> None:
    assert safety.unrestricted_inputs(args), why
    with pytest.raises(AssertionError, match="unrestricted input"):
        safety.check_restricted(args)


def test_run_ffmpeg_refuses_an_unrestricted_command_before_starting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(AssertionError, match="unrestricted input"):
        process.run_ffmpeg(
            ["ffmpeg", "-i", "http://169.254.169.254/", "-f", "null", "-"],
            label="x",
            expected_seconds=None,
            deadline=float("inf"),
        )
    assert started == []


def test_av1_output_below_svtav1s_minimum_is_a_permanent_failure(tmp_path: Path) -> None:
    from mediaflow_worker.errors import BadInputError

    raw = {
        "format": {"format_name": "matroska,webm", "duration": "1"},
        "streams": [{"codec_type": "video", "codec_name": "vp9", "width": 161, "height": 121}],
    }
    ctx = _context(tmp_path, raw, "tiny")
    small = resolve_transcode(
        TranscodeTask.model_validate({"video": {"codec": "av1", "height": 48}})
    )
    with pytest.raises(BadInputError, match="at least 64x64 pixels; this input comes out at 64x48"):
        transcode_task.prepare_command(small, ctx, tmp_path / "tiny.mp4")
    # 64 px is enough: the command is built.
    fine = resolve_transcode(
        TranscodeTask.model_validate({"video": {"codec": "av1", "height": 64}})
    )
    assert "libsvtav1" in transcode_task.prepare_command(fine, ctx, tmp_path / "tiny.mp4")
