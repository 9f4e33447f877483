"""The ``moderation`` task end to end with ``mediaflow-worker run``: the
classifier hook with a model of our own (tests/support/understanding/
moderation.py) from the models directory and from a bucket, its segments at
the known times, shapes or files that do not fit as exit 2; keyword lists
over burned-in text and espeak-ng speech; ``failOn``; a run without network."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.understanding.moderation import (
    Span,
    colour_classifier,
    colour_clip,
    text_clip,
)
from tests.support.understanding.speech import real_recordings, spoken_clip

from .helpers import REPO, make_clip, make_png, run_local
from .test_job_minio import Env

pytestmark = pytest.mark.integration

# Two cores shared by many: one ONNX Runtime thread per session.
os.environ.setdefault("MEDIAFLOW_ML_THREADS", "1")


def workflow(directory: Path, moderation: dict[str, Any], name: str = "wf") -> Path:
    doc = {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "trigger": {"bucket": "uploads"},
            "output": {"bucket": "media"},
            "tasks": [{"name": "mod", "moderation": moderation}],
        },
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def classifier(model: dict[str, str], **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": model,
        "labels": ["red", "green", "blue"],
        "inputSize": [32, 32],
        "thresholds": [
            {"label": "red", "review": 0.5, "block": 0.9},
            {"label": "blue", "review": 0.5},
        ],
        "intervalSeconds": 0.5,
    }
    doc.update(overrides)
    return doc


def result(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "mod" / "moderation.json").read_text())
    return doc


def by_label(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["label"]: entry for entry in doc["labels"]}


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clip red 0-2 s, blue 2-4 s, and the directory with our classifier."""
    root = tmp_path_factory.mktemp("colours")
    clip, _ = colour_clip(root / "colours.mp4", [("red", 2.0), ("blue", 2.0)])
    colour_classifier(root / "models" / "colours" / "rgb.onnx")
    return clip, root / "models"


def test_classifier_from_the_models_dir_finds_red_then_blue_without_network(
    tmp_path: Path, colours: tuple[Path, Path]
) -> None:
    clip, models = colours
    wf = workflow(tmp_path, {"classifier": classifier({"path": "colours/rgb.onnx"})})
    done = run_local(wf, clip, tmp_path / "out", "--models-dir", str(models), network=False)
    assert done.returncode == 0, done.stderr
    doc = result(tmp_path / "out")
    assert doc["version"] == 1
    assert doc["suggestion"] == "block"
    assert doc["sources"]["image"] == {"status": "done", "frames": 8}
    labels = by_label(doc)
    assert set(labels) == {"red", "blue"}
    (red,) = labels["red"]["segments"]
    assert (red["start"], red["end"], red["source"], red["suggestion"]) == (0, 2, "image", "block")
    assert red["score"] > 0.99
    (blue,) = labels["blue"]["segments"]
    assert (blue["start"], blue["end"], blue["suggestion"]) == (2, 4, "review")
    assert labels["red"]["suggestion"] == "block"
    assert labels["blue"]["suggestion"] == "review"
    assert doc["labels"][0]["label"] == "red"  # block first
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (task,) = manifest["tasks"]
    (output,) = task["outputs"]
    assert output["suggestion"] == "block"
    assert output["labels"] == {"red": 1, "blue": 1}


def test_classifier_from_a_bucket_nhwc_bgr(tmp_path: Path, colours: tuple[Path, Path]) -> None:
    clip, _ = colours
    assets = tmp_path / "assets"
    colour_classifier(assets / "models" / "nhwc.onnx", layout="NHWC")
    # The model reads RGB; fed BGR, red frames look blue: proves the order is applied.
    spec = classifier(
        {"bucket": "models", "key": "nhwc.onnx"},
        layout="NHWC",
        channelOrder="BGR",
        thresholds=[{"label": "blue", "review": 0.5}],
        intervalSeconds=1,
    )
    wf = workflow(tmp_path, {"classifier": spec})
    done = run_local(wf, clip, tmp_path / "out", "--assets", str(assets))
    assert done.returncode == 0, done.stderr
    doc = result(tmp_path / "out")
    (blue,) = by_label(doc)["blue"]["segments"]
    assert (blue["start"], blue["end"]) == (0, 2)
    assert doc["suggestion"] == "review"


def test_fail_on_block_exits_2_with_the_reason(tmp_path: Path, colours: tuple[Path, Path]) -> None:
    clip, models = colours
    wf = workflow(
        tmp_path, {"classifier": classifier({"path": "colours/rgb.onnx"}), "failOn": "block"}
    )
    done = run_local(wf, clip, tmp_path / "out", "--models-dir", str(models))
    assert done.returncode == 2, done.stderr
    assert "ModerationBlocked" in done.stderr
    assert "red (block: image at 0-2 s)" in done.stderr


def test_a_clean_clip_passes_and_fail_on_review_does_not_fire(
    tmp_path: Path, colours: tuple[Path, Path]
) -> None:
    _, models = colours
    clip, _ = colour_clip(tmp_path / "green.mp4", [("green", 2.0)])
    wf = workflow(
        tmp_path, {"classifier": classifier({"path": "colours/rgb.onnx"}), "failOn": "review"}
    )
    done = run_local(wf, clip, tmp_path / "out", "--models-dir", str(models))
    assert done.returncode == 0, done.stderr
    doc = result(tmp_path / "out")
    assert doc["suggestion"] == "pass"
    assert doc["labels"] == []


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"inputSize": [64, 48]}, "needs 1x3x48x64"),
        ({"layout": "NHWC"}, "needs 1x32x32x3"),
        ({"labels": ["red", "green", "blue", "pink"]}, "holds 3 scores per image"),
    ],
)
def test_a_model_that_does_not_fit_the_spec_is_exit_2(
    tmp_path: Path, colours: tuple[Path, Path], overrides: dict[str, Any], words: str
) -> None:
    clip, models = colours
    wf = workflow(tmp_path, {"classifier": classifier({"path": "colours/rgb.onnx"}, **overrides)})
    done = run_local(wf, clip, tmp_path / "out", "--models-dir", str(models))
    assert done.returncode == 2, done.stderr
    assert "AssetUnusable" in done.stderr
    assert words in done.stderr
    assert "task 'mod': classifier model colours/rgb.onnx" in done.stderr


def test_a_missing_or_broken_model_is_exit_2(tmp_path: Path, colours: tuple[Path, Path]) -> None:
    clip, models = colours
    wf = workflow(tmp_path, {"classifier": classifier({"path": "colours/none.onnx"})})
    done = run_local(wf, clip, tmp_path / "out", "--models-dir", str(models))
    assert done.returncode == 2, done.stderr
    assert "AssetNotFound" in done.stderr
    assert "colours/none.onnx" in done.stderr
    wf = workflow(tmp_path, {"classifier": classifier({"bucket": "models", "key": "x.onnx"})})
    done = run_local(wf, clip, tmp_path / "out2", "--assets", str(tmp_path / "assets"))
    assert done.returncode == 2, done.stderr
    assert "AssetNotFound" in done.stderr
    assert "classifier model models/x.onnx" in done.stderr
    broken = tmp_path / "assets" / "models" / "broken.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a model at all")
    wf = workflow(tmp_path, {"classifier": classifier({"bucket": "models", "key": "broken.onnx"})})
    done = run_local(wf, clip, tmp_path / "out3", "--assets", str(tmp_path / "assets"))
    assert done.returncode == 2, done.stderr
    assert "AssetUnusable" in done.stderr
    assert "not an ONNX model ONNX Runtime can load" in done.stderr


def test_audio_only_input_skips_a_classifier_only_task(
    tmp_path: Path, colours: tuple[Path, Path]
) -> None:
    _, models = colours
    clip = make_clip(tmp_path, "audio", video=False, container="m4a", duration=1.0)
    wf = workflow(tmp_path, {"classifier": classifier({"path": "colours/rgb.onnx"})})
    done = run_local(wf, clip.path, tmp_path / "out", "--models-dir", str(models))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (task,) = manifest["tasks"]
    assert task.get("skipped") or task.get("status") == "skipped", task
    assert not (tmp_path / "out" / "mod" / "moderation.json").exists()


# ------------------------------------------------------------ keyword lists

LISTS: dict[str, Any] = {
    "block": [{"name": "banned", "words": ["forbidden"]}],
    "review": [{"name": "gambling", "words": ["casino", "jackpot"]}],
}


def near(value: float, expected: float, tolerance: float = 0.6) -> bool:
    return abs(value - expected) <= tolerance


def test_keywords_in_burned_in_text(tmp_path: Path) -> None:
    clip, spans = text_clip(
        tmp_path / "text.mp4",
        [Span(0.5, 2.5, "FORBIDDEN WORD"), Span(3.0, 5.0, "casino night")],
        duration=6.0,
    )
    spec = {**LISTS, "sources": {"speech": {"enabled": False}}}
    done = run_local(workflow(tmp_path, spec), clip, tmp_path / "out", network=False)
    assert done.returncode == 0, done.stderr
    doc = result(tmp_path / "out")
    assert doc["sources"]["speech"] == {"status": "off"}
    assert doc["suggestion"] == "block"
    labels = by_label(doc)
    assert set(labels) == {"banned", "gambling"}
    (banned,) = labels["banned"]["segments"]
    assert banned["source"] == "ocr"
    assert banned["keyword"] == "forbidden"
    assert near(banned["start"], spans[0].start)
    assert near(banned["end"], spans[0].end)
    (gambling,) = labels["gambling"]["segments"]
    assert gambling["keyword"] == "casino"
    assert near(gambling["start"], spans[1].start)
    assert labels["gambling"]["suggestion"] == "review"


def test_keywords_in_speech(tmp_path: Path) -> None:
    # PocketSphinx hears espeak-ng's voice badly (see the speech task's
    # WER); the real recording of "go forward ten meters" it hears well.
    recording = real_recordings(tmp_path / "recordings")[0]
    clip = spoken_clip(tmp_path / "clip", video=False, recording=recording)
    (real,) = [s for s in clip.sentences if not s.synthetic]
    lists = {
        "block": [{"name": "banned", "words": ["meters"]}],
        "review": [{"name": "moves", "words": ["go forward"]}],
    }
    spec = {**lists, "failOn": "block"}
    done = run_local(workflow(tmp_path, spec), clip.path, tmp_path / "out", network=False)
    assert done.returncode == 2, done.stderr
    assert "ModerationBlocked" in done.stderr
    assert "banned (block: speech 'meters'" in done.stderr
    done = run_local(workflow(tmp_path, lists), clip.path, tmp_path / "out2", network=False)
    assert done.returncode == 0, done.stderr
    doc = result(tmp_path / "out2")
    assert doc["sources"]["ocr"]["status"] == "skipped"  # no video
    assert doc["sources"]["speech"]["status"] == "done"
    assert doc["suggestion"] == "block"
    labels = by_label(doc)
    (banned,) = labels["banned"]["segments"]
    assert banned["source"] == "speech"
    assert banned["keyword"] == "meters"
    # The last word of the recording: its own time, not the sentence's.
    assert real.start + 0.5 < banned["start"] < banned["end"]
    assert near(banned["end"], real.end, 0.5)
    # The phrase is in the real recording (and in the first, synthetic
    # sentence, where the recogniser hears it too).
    moves = labels["moves"]["segments"]
    assert any(near(m["start"], real.start, 0.5) and m["end"] < real.end - 0.5 for m in moves), (
        moves
    )
    assert labels["moves"]["suggestion"] == "review"


def test_the_example_model_is_what_the_generator_writes(tmp_path: Path) -> None:
    shipped = REPO / "examples" / "assets" / "media-assets" / "models" / "mean-colour.onnx"
    assert shipped.read_bytes() == colour_classifier(tmp_path / "m.onnx").read_bytes()


# ------------------------------------------------------------ in a Job (MinIO)


@pytest.fixture
def job_env(minio_server: Any, tmp_path: Path) -> Env:
    logo = make_png(tmp_path / "logo.png", "blue@0.5", (48, 48))
    return Env(minio_server, tmp_path, logo)


def test_job_fetches_the_model_from_a_bucket_and_a_missing_one_fails_before_the_download(
    job_env: Env, colours: tuple[Path, Path]
) -> None:
    clip, models = colours
    key = "incoming/colours.mp4"
    etag = job_env.upload(key, clip)
    model_key = f"models/rgb-{uuid.uuid4().hex[:6]}.onnx"
    job_env.client.fput_object("assets", model_key, str(models / "colours" / "rgb.onnx"))
    spec = classifier({"bucket": "assets", "key": model_key})
    tasks = [{"name": "mod", "moderation": {"classifier": spec}}]
    done, summary = job_env.run(job_env.job(key, etag, tasks=tasks, workflow="mod"))
    assert done.returncode == 0, done.stderr
    assert summary.ok
    out_dir = job_env.out_dir(key, "mod")
    response = job_env.client.get_object(job_env.media, out_dir + "mod/moderation.json")
    doc = json.loads(response.read())
    response.close()
    assert doc["suggestion"] == "block"
    (red,) = by_label(doc)["red"]["segments"]
    assert (red["start"], red["end"]) == (0, 2)

    tasks = [{"name": "mod", "moderation": {"classifier": spec, "failOn": "block"}}]
    done, summary = job_env.run(job_env.job(key, etag, tasks=tasks, workflow="strict"))
    assert done.returncode == 2
    assert summary.reason == "ModerationBlocked"
    assert "red (block: image at 0-2 s)" in summary.message
    strict_dir = job_env.out_dir(key, "strict")
    assert job_env.keys(strict_dir) == [strict_dir + "manifest.json"]  # the failure's only

    spec = classifier({"bucket": "assets", "key": "models/none.onnx"})
    tasks = [{"name": "mod", "moderation": {"classifier": spec}}]
    done, summary = job_env.run(job_env.job(key, etag, tasks=tasks, workflow="gone", force=True))
    assert done.returncode == 2
    assert summary.reason == "AssetNotFound"
    assert "task 'mod': classifier model s3://assets/models/none.onnx" in summary.message
    assert "downloading" not in done.stdout
