"""One logging style for everything done on behalf of one Workflow.

Every line starts with ``[namespace/name]`` (kopf's own prefix style) and
carries ``workflow: namespace/name`` as an extra field for JSON logs
(``MEDIAFLOW_LOG_FORMAT=json``); a line about one object adds ``bucket``,
``key`` and, once there is one, ``job`` (``object_fields``). The adapter
deliberately does not set kopf's ``k8s_ref``: kopf would post every such line
as a Kubernetes Event.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from mediaflow_api.job import WorkflowRef


class WorkflowLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every line names its Workflow."""

    def __init__(self, logger: logging.Logger, workflow: WorkflowRef) -> None:
        self.workflow = f"{workflow.namespace}/{workflow.name}"
        super().__init__(logger, {"workflow": self.workflow})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return f"[{self.workflow}] {msg}", kwargs


def object_fields(bucket: str, key: str, job: str = "") -> dict[str, str]:
    """The ``extra=`` of a log line about one object (and its Job, when known)."""
    fields = {"bucket": bucket, "key": key}
    if job:
        fields["job"] = job
    return fields


class QuietSuccesses(logging.Filter):
    """Drops kopf's "Handler 'x' succeeded." line for the handlers named: the
    watch-event handlers that only wake a dispatcher run on every change of
    every Job and Workflow, and one line each would drown the log."""

    def __init__(self, handlers: tuple[str, ...]) -> None:
        super().__init__()
        self._lines = {f"Handler {name!r} succeeded." for name in handlers}

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._lines
