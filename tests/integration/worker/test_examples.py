"""Every manifest in examples/ is a valid Workflow and runs through
``mediaflow-worker run -f`` on a generated clip, with exactly the flags the
README shows (its watermark images come from the shipped ``examples/assets``),
so none can rot."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from mediaflow_api.workflow import WorkflowSpec

from .helpers import (
    REPO,
    checkout_view,
    documented_input,
    documented_run_commands,
    make_clip,
    run_documented,
)

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))


def test_there_is_an_example_per_task_type_and_a_combined_one() -> None:
    kinds = set()
    for path in MANIFESTS:
        for task in yaml.safe_load(path.read_text())["spec"]["tasks"]:
            kinds |= set(task) - {"name", "output"}
    assert kinds == {
        "transcode",
        "snapshot",
        "sprite",
        "animatedImage",
        "adaptiveStreaming",
        "analysis",
        "cover",
        "moderation",
        "ocr",
        "quality",
        "speech",
    }
    assert (EXAMPLES / "vod-pipeline.yaml") in MANIFESTS


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), "clip", size=(640, 360), duration=3).path


def _shipped_and_documented(bucket: str, key: str) -> Path:
    """The shipped file of an asset an example names: small, and its origin
    told in examples/assets/README.md."""
    path = EXAMPLES / "assets" / bucket / key
    assert path.is_file(), f"{path} is not shipped"
    assert path.stat().st_size < 16 * 1024, f"{path}: keep shipped assets small"
    readme = (EXAMPLES / "assets" / "README.md").read_text()
    assert f"{bucket}/{key}" in readme, (
        f"examples/assets/README.md does not say where {key} comes from"
    )
    return path


def _images(manifest: Path) -> list[tuple[str, str]]:
    """(bucket, key) of every watermark image the example names."""
    found = []
    for task in yaml.safe_load(manifest.read_text())["spec"]["tasks"]:
        body = next(value for key, value in task.items() if key != "name")
        for mark in body.get("watermarks") or []:
            if "image" in mark:
                found.append((mark["image"]["bucket"], mark["image"]["key"]))
    return found


def test_every_watermark_image_an_example_names_is_shipped_and_documented() -> None:
    named = {image for manifest in MANIFESTS for image in _images(manifest)}
    assert named, "no example shows an image watermark any more"
    for bucket, key in sorted(named):
        path = _shipped_and_documented(bucket, key)
        probed = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert probed.stdout.strip() == ("svg" if key.endswith(".svg") else "png")


def _sidecars(manifest: Path) -> list[tuple[str, str]]:
    """(bucket, key) of every subtitle sidecar the example names."""
    found = []
    for task in yaml.safe_load(manifest.read_text())["spec"]["tasks"]:
        for kind in ("transcode", "adaptiveStreaming"):
            file = ((task.get(kind) or {}).get("subtitles") or {}).get("file")
            if file:
                found.append((file["bucket"], file["key"]))
    return found


def _clips(manifest: Path) -> list[tuple[str, str]]:
    """(bucket, key) of every intro and outro clip the example names."""
    found = []
    for task in yaml.safe_load(manifest.read_text())["spec"]["tasks"]:
        transcode = task.get("transcode") or {}
        for part in ("intro", "outro"):
            if part in transcode:
                found.append((transcode[part]["bucket"], transcode[part]["key"]))
    return found


def test_every_intro_or_outro_an_example_names_is_shipped_documented_and_small() -> None:
    named = {clip for manifest in MANIFESTS for clip in _clips(manifest)}
    assert named, "no example shows an intro or outro any more"
    for bucket, key in sorted(named):
        path = _shipped_and_documented(bucket, key)
        probed = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
             str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )  # fmt: skip
        assert probed.stdout.split() == ["video", "audio"]


def test_every_subtitle_sidecar_an_example_names_is_shipped_and_documented() -> None:
    named = {sidecar for manifest in MANIFESTS for sidecar in _sidecars(manifest)}
    assert named, "no example shows a subtitle sidecar any more"
    for bucket, key in sorted(named):
        path = _shipped_and_documented(bucket, key)
        assert "-->" in path.read_text(encoding="utf-8")


def _documented_argv(manifest: Path, clip: Path) -> list[str]:
    """The README's command with only the Workflow file and the clip replaced."""
    command = documented_run_commands(REPO / "README.md")[0]
    argv = shlex.split(command)
    argv[argv.index(documented_input(argv))] = str(clip)
    argv[argv.index("-f") + 1] = manifest.relative_to(REPO).as_posix()
    return argv


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_example_runs_on_a_generated_clip(manifest: Path, clip: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(manifest.read_text())
    WorkflowSpec.model_validate(doc["spec"])
    cwd = checkout_view(tmp_path)
    argv = _documented_argv(manifest, clip)
    done = run_documented(argv, cwd)
    assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stderr}"
    out = cwd / argv[argv.index("-o") + 1]
    result = json.loads((out / "manifest.json").read_text())
    assert result["ok"] is True
    assert [t["name"] for t in result["tasks"]] == [t["name"] for t in doc["spec"]["tasks"]]
    for task in result["tasks"]:
        assert task["status"] == "succeeded", task
        assert task["outputs"], task["name"]
        for output in task["outputs"]:
            assert (out / output["path"]).stat().st_size == output["size"] > 0
