"""What the parts of one Workflow's dispatcher share.

The dispatcher (``dispatch``) is split by job: counting and status writes
(``ledger``), pulling events (``subscription``), creating Jobs (``launch``),
the sweep (``sweep``) and manual requests (``manual``). They all act for the
same Workflow with the same clients, Job index, Event poster and logger, and
they share the Jobs created but not yet seen by the watch (``pending``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediaflow_api.job import WorkflowRef
from mediaflow_operator import workflows
from mediaflow_operator.job_views import JobView, PendingJobs
from mediaflow_operator.logs import WorkflowLogger
from mediaflow_operator.runtime import Runtime

PostEvent = Callable[[str, str, str], None]  # (type, reason, message) -> a Kubernetes Event


@dataclass(frozen=True)
class DispatchContext:
    rt: Runtime
    body: Mapping[str, Any]  # kopf's live view: always the latest Workflow
    jobs: Callable[[], list[JobView]]  # the Workflow's Jobs from the watch-fed index
    post_event: PostEvent
    log: WorkflowLogger
    pending: PendingJobs = field(default_factory=PendingJobs)

    def workflow(self) -> WorkflowRef:
        """The Workflow's identity, with its current generation."""
        return workflows.ref(self.body)

    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    def wake(self) -> None:
        """Wake the Workflow's dispatcher for a step now (it may sleep long when idle)."""
        self.rt.wakeups.ring(self.workflow().uid)
