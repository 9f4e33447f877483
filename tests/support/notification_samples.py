"""Realistic inputs for the notification builders, and the examples made from them.

``examples/notifications/*.json`` are exactly what ``mediaflow_operator.notify.events``
builds from these facts and manifests (a unit test checks it), so the
documented examples never drift from the code. Rewrite them with
``python -m tests.support.notification_samples``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mediaflow_api.job import WorkflowRef
from mediaflow_api.notification import DATA_SCHEMA_FILE, DATA_SCHEMA_URL, EVENT_SCHEMA_FILE
from mediaflow_operator.notify.events import (
    Notification,
    ObjectFacts,
    accepted_event,
    finished_events,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "notifications"
OUT_DIR = "processed/2026/launch.mp4.mediaflow/media/vod/"
MANIFEST_LOCATION = ("media", OUT_DIR + "manifest.json")
FINISHED_AT = datetime(2026, 11, 26, 21, 4, 40, tzinfo=UTC)

FACTS = ObjectFacts(
    workflow=WorkflowRef(
        namespace="media", name="vod", uid="0b6f2d7e-5c1a-4c47-9d0e-2f4a8e1b7c33", generation=4
    ),
    bucket="uploads",
    key="incoming/2026/launch.mp4",
    etag="9b2cf535f27731c974343645a3985328",
    version_id="",
    size=48_213_877,
    job_name="mf-vod-7c2d1e9a4b6f0358",
    job_uid="5d1c2b8e-0f4a-4e3b-8a2d-6c7e9f1a2b3c",
    context='{"tenant":"acme","asset":"A-1042"}',
    correlation_id="upload-7f3e-2026-11-26",
    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    accepted_at=datetime(2026, 11, 26, 21, 3, 12, tzinfo=UTC),
    uploaded_at=datetime(2026, 11, 26, 21, 3, 11, 482000, tzinfo=UTC),
)


def _snapshot(i: int, at: float, size: int) -> dict[str, Any]:
    return {
        "key": f"{OUT_DIR}posters/snapshot-{i:04d}.jpg",
        "size": size,
        "contentType": "image/jpeg",
        "time": at,
        "width": 640,
        "height": 360,
    }


# A manifest as the worker writes it (worker/mediaflow_worker/manifest.py and
# runner.task_entries): a 720p transcode and three poster snapshots.
MANIFEST: dict[str, Any] = {
    "version": 1,
    "ok": True,
    "workflow": {"namespace": "media", "name": "vod"},
    "input": {
        "bucket": "uploads",
        "key": "incoming/2026/launch.mp4",
        "etag": "9b2cf535f27731c974343645a3985328",
        "size": 48_213_877,
    },
    "specHash": "sha256:3f1d0c6e9a7b2f4e8d5c1a0b9e8f7d6c5b4a39281706f5e4d3c2b1a098f7e6d5",
    "startedAt": "2026-11-26T21:03:15+00:00",
    "finishedAt": "2026-11-26T21:04:37+00:00",
    "seconds": 81.942,
    "probe": {"format": "mov,mp4,m4a,3gp,3g2,mj2", "duration": 94.08, "size": 48_213_877},
    "outputCount": 4,
    "tasks": [
        {
            "name": "web-720p",
            "type": "transcode",
            "status": "succeeded",
            "seconds": 71.305,
            "outputs": [
                {
                    "key": f"{OUT_DIR}web-720p/web-720p.mp4",
                    "size": 21_904_611,
                    "contentType": "video/mp4",
                    "duration": 94.08,
                    "videoCodec": "h264",
                    "width": 1280,
                    "height": 720,
                    "audioCodec": "aac",
                }
            ],
        },
        {
            "name": "posters",
            "type": "snapshot",
            "status": "succeeded",
            "seconds": 2.118,
            "outputs": [
                _snapshot(1, 9.408, 41_877),
                _snapshot(2, 47.04, 52_310),
                _snapshot(3, 84.672, 38_954),
            ],
        },
    ],
}
# The manifest of a failed run: no tasks (a Job delivers everything or nothing).
FAILED_MANIFEST: dict[str, Any] = {
    **{k: v for k, v in MANIFEST.items() if k not in ("tasks", "outputCount")},
    "ok": False,
    "seconds": 1.204,
    "finishedAt": "2026-11-26T21:03:16+00:00",
    "probe": None,
    "outputCount": 0,
    "tasks": [],
    "error": {
        "reason": "BadInput",
        "message": "ffprobe: moov atom not found (the upload is truncated or not an MP4)",
    },
}


def succeeded() -> list[Notification]:
    """Task events, then the object's succeeded event."""
    return finished_events(
        FACTS,
        outcome="succeeded",
        reason="Succeeded",
        message="",
        finished_at=FINISHED_AT,
        manifest=MANIFEST,
        manifest_location=MANIFEST_LOCATION,
    )


def failed() -> list[Notification]:
    """A corrupt upload: the worker's reason and message."""
    return finished_events(
        FACTS,
        outcome="failed",
        reason="BadInput",
        message=FAILED_MANIFEST["error"]["message"],
        finished_at=datetime(2026, 11, 26, 21, 3, 18, tzinfo=UTC),
        manifest=FAILED_MANIFEST,
        manifest_location=MANIFEST_LOCATION,
    )


def superseded() -> list[Notification]:
    """The upload was overwritten while its Job ran: no manifest."""
    return finished_events(
        FACTS,
        outcome="superseded",
        reason="Superseded",
        message="the input was overwritten while the Job ran (ETag changed)",
        finished_at=datetime(2026, 11, 26, 21, 3, 40, tzinfo=UTC),
        manifest=None,
        manifest_location=None,
    )


def examples() -> dict[str, dict[str, Any]]:
    """File name -> event, one per event type."""
    done = succeeded()
    return {
        "accepted.json": accepted_event(FACTS).event,
        "task-finished.json": done[0].event,
        "succeeded.json": done[-1].event,
        "failed.json": failed()[-1].event,
        "superseded.json": superseded()[-1].event,
    }


def render(event: dict[str, Any]) -> str:
    """An example file's text."""
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for name, event in examples().items():
        (EXAMPLES_DIR / name).write_text(render(event))
        print(f"wrote {EXAMPLES_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def event_validator() -> jsonschema.Draft202012Validator:
    """A validator of whole events against the committed schemas (the data
    schema is found by its URL, as a consumer's registry would)."""
    schemas = EXAMPLES_DIR.parents[1] / "schemas"
    data = json.loads((schemas / DATA_SCHEMA_FILE).read_text())
    event = json.loads((schemas / EVENT_SCHEMA_FILE).read_text())
    registry: Registry[Any] = Registry().with_resource(
        DATA_SCHEMA_URL, Resource.from_contents(data, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        event, registry=registry, format_checker=jsonschema.FormatChecker()
    )
