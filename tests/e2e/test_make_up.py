"""The README's first command, run literally: `make up` ends with the example's
outputs listed, and `make down` leaves nothing behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import REPO

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_make_up_processes_the_example_and_make_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    readme = (REPO / "README.md").read_text()
    assert "make up" in readme.split("\n## ")[0], "the README starts with `make up`"
    try:
        up = subprocess.run(
            ["make", "up", f"STATE_DIR={state}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        assert "[up] done" in up.stdout
        # The transcode's output and the manifest the worker wrote last.
        out_dir = "processed/sample.mp4.mediaflow/media/web-mp4/"  # Workflow media/web-mp4
        assert f"media/{out_dir}web-720p/web-720p.mp4" in up.stdout
        assert f"{out_dir}manifest.json" in up.stdout
        index = int((state / "stack.network").read_text())
    finally:
        down = subprocess.run(
            ["make", "down", f"STATE_DIR={state}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"mediaflow-{index}" not in netns.split()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/mediaflow-{index}"))
    assert not Path(f"/var/tmp/mediaflow/node-{index}").exists()
