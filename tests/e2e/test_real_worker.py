"""The whole flow with the real worker: upload -> Job -> FFmpeg -> outputs + manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mediaflow_api.metadata import output_dir_for
from tests.e2e.harness import Stack, counters, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]


def _tiny_video(path: Path) -> bytes:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=2",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-y",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def test_upload_is_processed_by_the_real_worker(real_worker_stack: Stack, tmp_path: Path) -> None:
    stack = real_worker_stack
    bucket = stack.bucket("real")
    stack.create_workflow(
        "real",
        {
            "trigger": {"bucket": bucket, "prefix": "in/", "suffixes": [".mp4"]},
            "tasks": [
                {"name": "thumbs", "snapshot": {"times": ["1"]}},
                {"name": "probe", "analysis": {}},
            ],
            "execution": {"finishedJobRetentionSeconds": 3600},
        },
    )
    stack.wait_ready("real")
    stack.upload(bucket, "in/clip one.mp4", _tiny_video(tmp_path / "clip.mp4"))
    stack.upload(bucket, "in/broken.mp4", os.urandom(4096))

    def settled() -> dict[str, int] | None:
        c = counters(stack.status("real"))
        return c if c["succeeded"] + c["failed"] == 2 and c["running"] == 0 else None

    final = wait_for(settled, 240, lambda: f"both processed\n{stack.operator.diagnose()}")
    assert final == {"received": 2, "skipped": 0, "running": 0, "succeeded": 1, "failed": 1}
    directory = output_dir_for("in/clip one.mp4", "in/", "in/", stack.namespace, "real")
    manifest = json.loads(stack.minio.get_object(bucket, directory + "manifest.json").read())
    assert manifest
    outputs = [o.object_name for o in stack.minio.list_objects(bucket, directory, recursive=True)]
    assert any(name.startswith(directory + "thumbs/") for name in outputs), outputs
    failure = stack.status("real")["lastFailures"][0]
    assert failure["object"] == f"{bucket}/in/broken.mp4"
    assert failure["reason"]
    assert failure["message"]
    # Bad input is permanent: the podFailurePolicy failed the Job without retries.
    [broken] = [
        j for j in stack.jobs() if j.metadata.annotations["mediaflow.dev/key"] == "in/broken.mp4"
    ]
    assert broken.status.failed == 1
    assert any(c.reason == "PodFailurePolicy" for c in broken.status.conditions or [])
    # Outputs landed inside the trigger prefix and started nothing.
    assert counters(stack.status("real"))["received"] == 2
