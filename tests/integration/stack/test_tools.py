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


def _leftovers(index: int) -> list[str]:
    """What a stopped node could leave on the host: its network namespace, its
    veth, its cgroups, mounts of its directories."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if f"mediaflow-{index}" in netns.split():
        found.append(f"netns mediaflow-{index}")
    if Path(f"/sys/class/net/mfh{index}").exists():
        found.append(f"interface mfh{index}")
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/mediaflow-{index}")]
    state = Path(f"/var/tmp/mediaflow/node-{index}")
    if state.exists():
        found.append(str(state))
    mounts = Path("/proc/self/mounts").read_text()
    found += [
        line
        for line in mounts.splitlines()
        if f"mediaflow-{index} " in line or f"/var/tmp/mediaflow/node-{index}" in line
    ]
    return found


def test_stack_up_runs_a_ready_node_and_stack_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = [sys.executable, "-m", "tests.support.stack"]
    up = subprocess.run(
        [*run, "up", "--state-dir", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    pids: list[int] = []
    index = -1
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in (state / "stack.env").read_text().splitlines()
        )
        assert {"KUBECONFIG", "MEDIAFLOW_S3_ENDPOINT", "MEDIAFLOW_NATS_URL"} <= env.keys()
        kubectl = [binary("kubectl"), "--kubeconfig", env["KUBECONFIG"]]
        ready = subprocess.run(
            [*kubectl, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30
        )
        assert ready.stdout.strip() == "ok"
        nodes = subprocess.run(
            [
                *kubectl,
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert nodes.stdout.strip() == "True", nodes.stderr
        index = int((state / "stack.network").read_text())
        pids = [int(line.split()[1]) for line in (state / "stack.pids").read_text().splitlines()]
        pids.append(int((state / "supervisor.pid").read_text()))
        # etcd, apiserver, controller manager, NATS, MinIO, the node's namespace
        # holder, containerd, kubelet, kube-proxy, scheduler, CoreDNS, supervisor
        assert len(pids) == 12
        assert all(pid_alive(p) for p in pids)
    finally:
        down = subprocess.run(
            [*run, "down", "--state-dir", str(state)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if pid_alive(p)] == []
    assert _leftovers(index) == []
    mounts = Path("/proc/self/mounts").read_text()
    assert str(state) not in mounts
