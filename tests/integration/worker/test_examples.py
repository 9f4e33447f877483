"""Every manifest in examples/ is a valid Workflow and runs through
``mediaflow-worker run -f`` on a generated clip, so none can rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mediaflow_api.workflow import WorkflowSpec

from .helpers import make_clip, make_png, run_local

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))


def test_there_is_an_example_per_task_type_and_a_combined_one() -> None:
    kinds = set()
    for path in MANIFESTS:
        for task in yaml.safe_load(path.read_text())["spec"]["tasks"]:
            kinds |= set(task) - {"name"}
    assert kinds == {
        "transcode",
        "snapshot",
        "sprite",
        "animatedImage",
        "adaptiveStreaming",
        "analysis",
    }
    assert (EXAMPLES / "vod-pipeline.yaml") in MANIFESTS


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), "clip", size=(640, 360), duration=3).path


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assets")
    logo = root / "media-assets" / "brand" / "logo.png"
    logo.parent.mkdir(parents=True)
    make_png(logo, "white@0.5", (120, 40))
    return root


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_example_runs_on_a_generated_clip(
    manifest: Path, clip: Path, assets: Path, tmp_path: Path
) -> None:
    doc = yaml.safe_load(manifest.read_text())
    WorkflowSpec.model_validate(doc["spec"])
    out = tmp_path / "out"
    done = run_local(manifest, clip, out, "--assets", str(assets))
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "manifest.json").read_text())
    assert result["ok"] is True
    assert [t["name"] for t in result["tasks"]] == [t["name"] for t in doc["spec"]["tasks"]]
    for task in result["tasks"]:
        assert task["status"] == "succeeded", task
        assert task["outputs"], task["name"]
        for output in task["outputs"]:
            assert (out / output["path"]).stat().st_size == output["size"] > 0
