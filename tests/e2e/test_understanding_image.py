"""The understanding tasks on the real node: a Workflow with ML tasks runs as a
Job of the worker-ml image (the project's image, imported into the node's
containerd, under the Job's read-only root filesystem and without network
to any model hub), succeeds, and its outputs hold the known content of the
clip; a lean Workflow beside it keeps the lean worker image.

The clip: a burned-in caption (drawtext, DejaVu Sans) over a plain
background; as its audio the speech tests' clip (an espeak-ng sentence, music,
a real recording with a known transcript)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from mediaflow_api.metadata import output_dir_for
from mediaflow_api.tasks import ML_TASK_TYPES
from tests.e2e.harness import WORKER_IMAGE, WORKER_ML_IMAGE, Stack, counters, wait_for
from tests.support.understanding.speech import (
    SENTENCES,
    SpokenClip,
    real_recordings,
    spoken_clip,
    word_error_rate,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

CAPTION = "MEDIAFLOW 2026"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
# The smallest settings of each ML task type this test knows; it runs those
# that exist in this checkout (ML_TASK_TYPES).
ML_TASKS: dict[str, dict[str, Any]] = {
    "quality": {},
    "cover": {},
    "ocr": {},
    "speech": {},
    "moderation": {
        # The caption is on screen (OCR), "forward" is said by the real recording.
        "block": [{"name": "brand", "words": ["mediaflow"]}],
        "review": [{"name": "moves", "words": ["forward"]}],
        # The stand-in classifier of examples/moderation.yaml (mean colour), from a
        # bucket: the dark blue card is "blue".
        "classifier": {
            "model": {"bucket": "BUCKET", "key": "models/mean-colour.onnx"},
            "labels": ["red", "green", "blue"],
            "inputSize": [32, 32],
            "thresholds": [{"label": "blue", "review": 0.5}],
            "intervalSeconds": 1,
        },
    },
}
MODEL = Path(__file__).parents[2] / "examples/assets/media-assets/models/mean-colour.onnx"


def _clip(directory: Path) -> tuple[Path, SpokenClip]:
    """The speech tests' clip (tests/support/understanding/speech.py: an
    espeak-ng sentence, music, then a real recording, "go forward ten
    meters") with CAPTION burned in white on dark blue over its whole length."""
    [goforward, *_] = real_recordings(directory / "recordings")
    spoken = spoken_clip(
        directory / "spoken", video=False, sentences=SENTENCES[:1], recording=goforward
    )
    clip = directory / "known.mp4"
    drawtext = (
        f"drawtext=fontfile={FONT}:text='{CAPTION}':fontsize=28:fontcolor=white:"
        "x=(w-text_w)/2:y=(h-text_h)/2"
    )
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=0x102040:s=320x180:r=10:d={spoken.duration}",
            "-i", str(spoken.path),
            "-filter_complex", f"[0:v]{drawtext}[v]", "-map", "[v]", "-map", "1:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "copy", "-t", str(spoken.duration), str(clip),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return clip, spoken


def _pod_image(stack: Stack, job_name: str) -> str:
    core = client.CoreV1Api(stack.api)
    pods = core.list_namespaced_pod(stack.namespace, label_selector=f"job-name={job_name}").items
    assert pods, f"no pod of Job {job_name}"
    image: str = pods[0].spec.containers[0].image
    return image


def _json_object(stack: Stack, bucket: str, name: str) -> Any:
    return json.loads(stack.minio.get_object(bucket, name).read())


def test_ml_tasks_run_on_the_worker_ml_image_and_find_the_known_content(
    real_worker_stack: Stack, tmp_path: Path
) -> None:
    kinds = [k for k in ML_TASKS if k in ML_TASK_TYPES]
    if not kinds:
        pytest.skip("no understanding task type in this checkout yet")
    stack = real_worker_stack
    bucket = stack.bucket("understand")
    stack.upload(bucket, "models/mean-colour.onnx", MODEL.read_bytes())
    settings = copy.deepcopy(ML_TASKS)
    settings["moderation"]["classifier"]["model"]["bucket"] = bucket
    ml = stack.create_workflow(
        "understand",
        {
            "trigger": {"bucket": bucket, "prefix": "ml/", "suffixes": [".mp4"]},
            "tasks": [{"name": kind, kind: settings[kind]} for kind in kinds],
            "execution": {"finishedJobRetentionSeconds": 3600, "activeDeadlineSeconds": 600},
        },
    )
    lean = stack.create_workflow(
        "lean",
        {
            "trigger": {"bucket": bucket, "prefix": "lean/", "suffixes": [".mp4"]},
            "tasks": [{"name": "thumbs", "snapshot": {"times": ["1"]}}],
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("understand")
    stack.wait_ready("lean")
    clip, spoken = _clip(tmp_path)
    data = clip.read_bytes()
    stack.upload(bucket, "ml/known.mp4", data)
    stack.upload(bucket, "lean/known.mp4", data)

    def settled(name: str) -> dict[str, int] | None:
        c = counters(stack.status(name))
        return c if c["succeeded"] + c["failed"] == 1 and c["running"] == 0 else None

    for name in ("understand", "lean"):
        final = wait_for(partial(settled, name), 420, lambda: stack.operator.diagnose())
        assert final["succeeded"] == 1, (name, stack.status(name).get("lastFailures"))

    [ml_job] = stack.jobs(ml["metadata"]["uid"])
    [lean_job] = stack.jobs(lean["metadata"]["uid"])
    assert _pod_image(stack, ml_job.metadata.name) == WORKER_ML_IMAGE
    assert _pod_image(stack, lean_job.metadata.name) == WORKER_IMAGE

    directory = output_dir_for("ml/known.mp4", "ml/", "ml/", stack.namespace, "understand")
    manifest = _json_object(stack, bucket, directory + "manifest.json")
    listed = json.dumps(manifest)
    stored = [o.object_name for o in stack.minio.list_objects(bucket, directory, recursive=True)]
    for kind in kinds:
        # Each task wrote its <type>.json, and the manifest lists it.
        [result_name] = [n for n in stored if n.endswith(f"/{kind}.json")]
        assert result_name.removeprefix(directory) in listed, (kind, manifest)
        result = _json_object(stack, bucket, result_name)
        assert result["version"] >= 1, result
        if kind == "ocr":
            # The caption, whole, over (nearly) the whole clip.
            [span] = [x for x in result["spans"] if x["text"].lower() == CAPTION.lower()]
            assert span["start"] <= 1.0, span
            assert span["end"] >= spoken.duration - 1.0, span
        elif kind == "speech":
            # Every sentence is found where it was placed (voice activity
            # within 0.5 s), and the real recording's words are recognised
            # (PocketSphinx gets espeak-ng's voice mostly wrong: its WER is
            # in docs/understanding.md, so only its timing is checked).
            starts = [v["start"] for v in result["voiceActivity"]]
            for sentence in spoken.sentences:
                assert any(abs(t - sentence.start) <= 0.5 for t in starts), (sentence, starts)
            real = next(x for x in spoken.sentences if not x.synthetic)
            said = " ".join(seg["text"] for seg in result["segments"] if seg["end"] >= real.start)
            assert word_error_rate(real.text, said) <= 0.25, (real.text, said)
        elif kind == "cover":
            # A still caption card: one representative frame at least.
            assert result["covers"], result
        elif kind == "quality":
            # A clean generated clip: nothing fails it.
            assert result["verdict"] != "fail", result
        elif kind == "moderation":
            # The brand on screen blocks it; the spoken word and the blue card
            # are each a segment for review, at their times.
            assert result["suggestion"] == "block", result
            labels = {label["label"]: label for label in result["labels"]}
            [brand] = labels["brand"]["segments"]
            assert (brand["source"], brand["suggestion"]) == ("ocr", "block"), brand
            assert brand["start"] <= 1.0, brand
            real = next(x for x in spoken.sentences if not x.synthetic)
            # (Where PocketSphinx also hears it in the synthetic sentence, that is a
            # second segment: the real one must be there.)
            moves = labels["moves"]["segments"]
            assert {seg["source"] for seg in moves} == {"speech"}, moves
            assert any(real.start - 0.5 <= seg["start"] <= real.end for seg in moves), (moves, real)
            [blue] = labels["blue"]["segments"]
            assert (blue["source"], blue["suggestion"]) == ("image", "review"), blue
            assert blue["end"] - blue["start"] >= spoken.duration - 2.0, blue
