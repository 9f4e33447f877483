"""The pinned tools run, and the stack can be started and stopped for a person."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.binaries import binary
from tests.support.processes import pid_alive

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_ffmpeg_encodes_a_clip_that_ffprobe_reads_back(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            str(clip),
        ],
        check=True,
        timeout=120,
    )
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(clip)],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
    )
    codecs = sorted(s["codec_name"] for s in probe["streams"])
    assert codecs == ["aac", "h264"]
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert abs(float(probe["format"]["duration"]) - 1.0) < 0.2


def test_helm_is_the_pinned_version() -> None:
    from tests.support.binaries import versions

    out = subprocess.run(
        [binary("helm"), "version", "--short"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(versions()["HELM_VERSION"])


def test_stack_up_serves_readyz_and_stack_down_leaves_no_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = [sys.executable, "-m", "tests.support.stack"]
    up = subprocess.run(
        [*run, "up", "--state-dir", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    pids: list[int] = []
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in (state / "stack.env").read_text().splitlines()
        )
        assert {"KUBECONFIG", "MEDIAFLOW_S3_ENDPOINT", "MEDIAFLOW_NATS_URL"} <= env.keys()
        ready = subprocess.run(
            [binary("kubectl"), "--kubeconfig", env["KUBECONFIG"], "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ready.stdout.strip() == "ok"
        pids = [int(line.split()[1]) for line in (state / "stack.pids").read_text().splitlines()]
        pids.append(int((state / "supervisor.pid").read_text()))
        assert len(pids) == 6
        assert all(pid_alive(p) for p in pids)
    finally:
        down = subprocess.run(
            [*run, "down", "--state-dir", str(state)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if pid_alive(p)] == []
