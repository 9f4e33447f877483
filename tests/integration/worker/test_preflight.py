"""Preflight: every input a Workflow names besides the upload (watermark
images, the font of text watermarks) is checked before the first task runs,
so a bad spec fails at once with exit 2, naming the task and the input,
instead of after minutes of work."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mediaflow_worker.errors import WorkerError
from mediaflow_worker.local_mode import run_local as run_local_in_process

from .helpers import make_clip, make_png, run_local, write_workflow

pytestmark = pytest.mark.integration

# A slow task first: without a preflight it runs (and writes outputs) before
# the watermark task finds its image missing.
SLOW_FIRST = {
    "name": "hls",
    "adaptiveStreaming": {
        "format": "hls",
        "renditions": [
            {"height": 240, "videoBitrate": "400k"},
            {"height": 120, "videoBitrate": "150k"},
        ],
    },
}


def _watermarked(name: str, mark: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "transcode": {"preset": "h264-720p", "watermarks": [mark]}}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), "clip", size=(320, 240), duration=4).path


def test_missing_watermark_image_fails_before_any_task_runs(clip: Path, tmp_path: Path) -> None:
    image = {"image": {"bucket": "media-assets", "key": "brand/missing.png"}}
    workflow = write_workflow(tmp_path, [SLOW_FIRST, _watermarked("web", image)])
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(WorkerError) as caught:
        run_local_in_process(workflow, clip, out, assets_dir=tmp_path)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"preflight took {elapsed:.2f} s"
    assert caught.value.exit_code == 2
    assert caught.value.reason == "AssetNotFound"
    assert "task 'web'" in caught.value.message
    assert "media-assets/brand/missing.png" in caught.value.message
    assert not out.exists()
    # The command line says the same, with exit code 2 and nothing written.
    done = run_local(workflow, clip, out, "--assets", str(tmp_path))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mediaflow-worker: AssetNotFound: task 'web': "), last
    assert "media-assets/brand/missing.png" in last
    assert "task hls" not in done.stdout  # never started
    assert not out.exists()


def test_undecodable_watermark_image_fails_before_any_task_runs(clip: Path, tmp_path: Path) -> None:
    fake = tmp_path / "assets" / "media-assets" / "logo.png"
    fake.parent.mkdir(parents=True)
    fake.write_text("<html>not a picture</html>\n")
    image = {"image": {"bucket": "media-assets", "key": "logo.png"}}
    workflow = write_workflow(tmp_path, [SLOW_FIRST, _watermarked("web", image)])
    out = tmp_path / "out"
    done = run_local(workflow, clip, out, "--assets", str(tmp_path / "assets"))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mediaflow-worker: AssetUnusable: task 'web': "), last
    assert "media-assets/logo.png" in last
    assert "task hls" not in done.stdout
    assert not out.exists()


def test_missing_font_for_a_text_watermark_fails_before_any_task_runs(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_FONT_FILE", str(tmp_path / "no-such-font.ttf"))
    workflow = write_workflow(tmp_path, [SLOW_FIRST, _watermarked("credits", {"text": "(c)"})])
    out = tmp_path / "out"
    done = run_local(workflow, clip, out)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mediaflow-worker: AssetNotFound: task 'credits': "), last
    assert "no-such-font.ttf" in last
    assert "task hls" not in done.stdout
    assert not out.exists()


def test_asset_flag_maps_one_object_to_a_file(clip: Path, tmp_path: Path) -> None:
    logo = make_png(tmp_path / "my logo.png", "white@0.5", (60, 20))
    image = {"image": {"bucket": "media-assets", "key": "brand/logo.png"}}
    workflow = write_workflow(tmp_path, [_watermarked("web", image)])
    out = tmp_path / "out"
    done = run_local(workflow, clip, out, "--asset", f"media-assets/brand/logo.png={logo}")
    assert done.returncode == 0, done.stderr
    assert (out / "web" / "web.mp4").stat().st_size > 0
