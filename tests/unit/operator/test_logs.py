from __future__ import annotations

import logging

import pytest

from mediaflow_api.job import WorkflowRef
from mediaflow_operator.logs import WorkflowLogger, object_fields

pytestmark = pytest.mark.unit


def test_every_line_names_its_workflow(caplog: pytest.LogCaptureFixture) -> None:
    log = WorkflowLogger(
        logging.getLogger("mediaflow_operator.test"), WorkflowRef(namespace="media", name="videos")
    )
    with caplog.at_level(logging.INFO):
        log.info("created Job %s for %s", "mf-videos-1", "uploads/a.mp4")
    [record] = caplog.records
    assert record.getMessage() == "[media/videos] created Job mf-videos-1 for uploads/a.mp4"
    assert record.workflow == "media/videos"  # type: ignore[attr-defined]
    assert not hasattr(record, "k8s_ref"), "kopf would post the line as a Kubernetes Event"


def test_a_json_line_about_an_object_carries_workflow_bucket_key_and_job() -> None:
    """With MEDIAFLOW_LOG_FORMAT=json (kopf's JSON formatter, as __main__ sets it up)."""
    import io
    import json

    import kopf

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        kopf.configure(log_format=kopf.LogFormat.JSON)
        handler = root.handlers[-1]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        log = WorkflowLogger(
            logging.getLogger("mediaflow_operator.test"),
            WorkflowRef(namespace="media", name="videos"),
        )
        log.info(
            "created Job %s for %s/%s",
            "mf-videos-1",
            "uploads",
            "incoming/a b.mp4",
            extra=object_fields("uploads", "incoming/a b.mp4", "mf-videos-1"),
        )
        log.info("reconciled")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["workflow"] == "media/videos"
    assert (first["bucket"], first["key"], first["job"]) == (
        "uploads",
        "incoming/a b.mp4",
        "mf-videos-1",
    )
    assert first["message"].endswith("created Job mf-videos-1 for uploads/incoming/a b.mp4")
    assert second["workflow"] == "media/videos"
    assert "bucket" not in second
    assert "job" not in second


def test_object_fields_name_the_job_only_when_there_is_one() -> None:
    assert object_fields("b", "k") == {"bucket": "b", "key": "k"}
    assert object_fields("b", "k", "j") == {"bucket": "b", "key": "k", "job": "j"}


def test_the_wake_up_handlers_successes_are_not_logged() -> None:
    from mediaflow_operator.logs import QuietSuccesses

    quiet = QuietSuccesses(("job_changed",))

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, "", 0, message, None, None)

    assert not quiet.filter(record("Handler 'job_changed' succeeded."))
    assert quiet.filter(record("Handler 'reconcile_workflow' succeeded."))
    assert quiet.filter(record("Handler 'job_changed' failed temporarily: boom"))
