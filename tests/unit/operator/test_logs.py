from __future__ import annotations

import logging

import pytest

from mediaflow_api.job import WorkflowRef
from mediaflow_operator.logs import WorkflowLogger

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
