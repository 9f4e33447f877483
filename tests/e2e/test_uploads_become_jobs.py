"""Uploads become Jobs exactly once; everything else is counted or ignored."""

from __future__ import annotations

import pytest

from mediaflow_api.metadata import output_dir_for
from tests.e2e.harness import Stack, counters, wait_for

pytestmark = pytest.mark.e2e

TASKS = [{"name": "thumbs", "snapshot": {"times": ["1"]}}]

MATCHING = [
    *[f"incoming/clip-{i:02d}.mp4" for i in range(12)],
    "incoming/with space.mp4",
    "incoming/two  spaces and+plus.MP4",
    "incoming/ünïcødé-视频.mov",
    "incoming/UPPER.MOV",
    "incoming/nested/deeper/x.Mp4",
    "incoming/%41-percent.mp4",
    "incoming/emoji-🎬.mp4",
    "incoming/a'quote&amp.mp4",
]
SKIPPED = ["incoming/notes.txt", "incoming/clip.mp4.part", "incoming/folder/"]
OUTSIDE = ["other/clip.mp4", "incomingclip.mp4", "Incoming/clip.mp4"]


def test_twenty_uploads_make_exactly_one_job_each_and_exact_counters(stack: Stack) -> None:
    assert len(MATCHING) == 20
    bucket = stack.bucket("up")
    wf = stack.create_workflow(
        "videos",
        {
            "trigger": {"bucket": bucket, "prefix": "incoming/", "suffixes": [".mp4", ".mov"]},
            "tasks": TASKS,
        },
    )
    stack.wait_ready("videos")
    uid = wf["metadata"]["uid"]
    for key in MATCHING + OUTSIDE:
        stack.upload(bucket, key)
    for key in SKIPPED:
        stack.upload(bucket, key, b"" if key.endswith("/") else b"text")

    def finished() -> dict[str, int] | None:
        c = counters(stack.status("videos"))
        return c if c["succeeded"] + c["failed"] >= 20 and c["skipped"] >= 3 else None

    wait_for(finished, 120, lambda: f"20 results\n{stack.operator.diagnose()}")
    # Outputs (written into the trigger prefix) must not start anything new.
    for key in MATCHING:
        directory = output_dir_for(key, "incoming/", "incoming/", stack.namespace, "videos")
        assert stack.has_manifest(bucket, directory), key

    def settled() -> dict[str, int] | None:
        c = counters(stack.status("videos"))
        return c if c["running"] == 0 else None

    final = wait_for(settled, 60, "running == 0")
    assert final == {"received": 23, "skipped": 3, "running": 0, "succeeded": 20, "failed": 0}
    log = stack.operator.log_text()
    created = [line for line in log.splitlines() if "created Job" in line]
    assert len(created) == 20, "\n".join(created)
    keys = {line.split(" for ", 1)[1].split("/", 1)[1] for line in created}
    assert keys == set(MATCHING)
    # The API agrees: one Job per matching object, none for the rest (Jobs are kept
    # for the default retention of 10 minutes).
    job_keys = sorted(j.metadata.annotations["mediaflow.dev/key"] for j in stack.jobs(uid))
    assert job_keys == sorted(MATCHING)
    # The same totals reach Prometheus.
    text = stack.operator.metrics_text()
    ns = stack.namespace
    created_series = (
        f'mediaflow_jobs_created_total{{namespace="{ns}",trigger="event",workflow="videos"}}'
    )
    results = (
        f'mediaflow_job_results_total{{namespace="{ns}",outcome="succeeded",reason="Succeeded",'
        f'workflow="videos"}}'
    )
    assert f"{created_series} 20.0" in text
    assert f"{results} 20.0" in text
