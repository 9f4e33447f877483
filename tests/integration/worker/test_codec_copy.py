"""``codec: copy``: what fits the container is remuxed, what cannot fit fails
permanently (exit 2, IncompatibleCopy) instead of being retried, and the
table the worker decides by agrees with ffmpeg's muxers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mediaflow_worker.ffmpeg import codecs
from mediaflow_worker.tasks.transcode import _MUXER_REFUSED

from .helpers import ffprobe, make_clip, run_local, write_workflow

pytestmark = pytest.mark.integration

# Streams ffmpeg can make here: ffprobe name -> encoder options.
VIDEO = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
    "vp8": ["-c:v", "libvpx", "-deadline", "realtime"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
    "mpeg4": ["-c:v", "mpeg4"],
}
AUDIO = {
    "aac": ["-c:a", "aac"],
    "mp3": ["-c:a", "libmp3lame"],
    "opus": ["-c:a", "libopus"],
    "vorbis": ["-c:a", "libvorbis"],
    "flac": ["-c:a", "flac"],
    "pcm_s16le": ["-c:a", "pcm_s16le"],
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("streams")
    made = {}
    for name, opts in VIDEO.items():
        path = root / f"v-{name}.mkv"
        source = ["-f", "lavfi", "-i", "testsrc2=s=128x96:r=10:d=0.5"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", *source, *opts, str(path)], check=True, timeout=60
        )
        made[name] = path
    for name, opts in AUDIO.items():
        path = root / f"a-{name}.mkv"
        source = ["-f", "lavfi", "-i", "sine=d=0.5:sample_rate=48000"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", *source, *opts, str(path)], check=True, timeout=60
        )
        made[name] = path
    return made


def _copy(source: Path, container: str, out_dir: Path) -> subprocess.CompletedProcess[str]:
    muxer, ext = codecs.CONTAINERS[container]
    return subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(source)),
            *("-c", "copy", "-f", muxer, str(out_dir / f"out.{ext}")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("container", list(codecs.CONTAINERS))
def test_copy_table_agrees_with_ffmpegs_muxers(
    container: str, streams: dict[str, Path], tmp_path: Path
) -> None:
    # Audio-only containers take no video at all (the spec says codec none).
    kinds = [("video", VIDEO)] if container in codecs.COPY_VIDEO_CODECS else []
    for kind, names in [*kinds, ("audio", AUDIO)]:
        for codec in names:
            fits = codecs.copy_fits(kind, codec, container)
            done = _copy(streams[codec], container, tmp_path)
            if fits:
                # Everything the table lets through really muxes.
                assert done.returncode == 0, (kind, codec, container, done.stderr)
            elif done.returncode != 0:
                # What the muxer refuses, the fallback recognises as permanent.
                assert _MUXER_REFUSED.search(done.stderr), (codec, container, done.stderr)


def test_vp8_copied_into_mp4_fails_permanently_naming_task_codec_and_container(
    tmp_path: Path, streams: dict[str, Path]
) -> None:
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "facts", "analysis": {}},
            {"name": "remux", "transcode": {"container": "mp4", "video": {"codec": "copy"}}},
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, streams["vp8"], out, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "IncompatibleCopy" in lines[0]
    assert "'remux'" in lines[0]
    assert "vp8" in lines[0]
    assert "mp4" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_opus_audio_copied_into_mov_fails_permanently(
    tmp_path: Path, streams: dict[str, Path]
) -> None:
    workflow = write_workflow(
        tmp_path, [{"name": "mov", "transcode": {"container": "mov", "audio": {"codec": "copy"}}}]
    )
    done = run_local(workflow, streams["opus"], tmp_path / "out", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "IncompatibleCopy" in done.stderr
    assert "opus" in done.stderr


def test_copy_that_fits_remuxes_without_reencoding(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", duration=1)
    workflow = write_workflow(
        tmp_path,
        [
            {
                "name": "remux",
                "transcode": {
                    "container": "mkv",
                    "video": {"codec": "copy"},
                    "audio": {"codec": "copy"},
                },
            }
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, clip.path, out, timeout=60)
    assert done.returncode == 0, done.stderr
    info = ffprobe(out / "remux" / "remux.mkv")
    assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]
    source = ffprobe(clip.path)
    assert info["streams"][0]["profile"] == source["streams"][0]["profile"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"][0]["outputs"][0]["videoCodec"] == "h264"
