"""The one way ``status.conditions`` is written, by reconcile and by the dispatcher.

``conditions`` is one list in the status, and a merge patch replaces a list
whole. Two writers (reconcile owns StorageReady, QueueReady, NotificationReady
and JobTemplateValid; the dispatcher owns JobsAdmitted) would each write back
the other's conditions from a stale copy. So every write is a read-modify-write
of the *fresh* object guarded by its ``resourceVersion`` (a conflict re-reads
and tries again): each writer sets only its own types and keeps the rest.

``Ready`` is derived from the fresh list on every write (``derive_ready``):
False when any other condition is False (JobsAdmitted only while the Workflow
is active: a suspended Workflow creates no Jobs), else True. Unknown (e.g. a
dry run the API server's admission refused, so the template was not judged)
does not make a Workflow unready.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mediaflow_api.job import WorkflowRef
from mediaflow_api.workflow_status import CONDITION_JOBS_ADMITTED, CONDITION_READY
from mediaflow_operator.kube import Kube, status_of
from mediaflow_operator.status import set_condition

CONFLICT_RETRIES = 5


@dataclass
class Step:
    """One condition's verdict: ok True/False, or None for Unknown."""

    ok: bool | None
    reason: str
    message: str


def derive_ready(
    conditions: list[dict[str, Any]], *, active: bool, generation: int, at: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with Ready set from the others (see the module doc)."""
    failing = [
        f"{c['type']}: {c.get('message', '')}"
        for c in conditions
        if c.get("type") != CONDITION_READY
        and c.get("status") == "False"
        and (active or c.get("type") != CONDITION_JOBS_ADMITTED)
    ]
    if failing:
        ready = Step(False, "NotReady", "; ".join(failing))
    elif active:
        ready = Step(True, "Ready", "processing new uploads")
    else:
        ready = Step(True, "Suspended", "suspended: no new work")
    return set_condition(
        conditions, CONDITION_READY, ready.ok, ready.reason, ready.message, generation, at
    )


def apply_steps(
    conditions: list[dict[str, Any]],
    steps: Mapping[str, Step],
    *,
    active: bool,
    generation: int,
    at: datetime,
) -> list[dict[str, Any]]:
    """Pure: ``conditions`` with each of ``steps`` set and Ready derived."""
    for type_, step in steps.items():
        conditions = set_condition(
            conditions, type_, step.ok, step.reason, step.message, generation, at
        )
    return derive_ready(conditions, active=active, generation=generation, at=at)


async def write(
    kube: Kube,
    ident: WorkflowRef,
    steps: Mapping[str, Step],
    *,
    active: bool,
    at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Set ``steps`` (and ``extra`` status fields) on the fresh Workflow, keeping
    the conditions other writers own; False when the Workflow is gone."""
    for attempt in range(CONFLICT_RETRIES):
        fresh = await kube.get_workflow(ident.namespace, ident.name)
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != ident.uid:
            return False
        current = list((fresh.get("status") or {}).get("conditions") or [])
        patch = {
            **(extra or {}),
            "conditions": apply_steps(
                current, steps, active=active, generation=ident.generation, at=at
            ),
        }
        version = str((fresh.get("metadata") or {}).get("resourceVersion") or "")
        try:
            await kube.patch_workflow_status(
                ident.namespace, ident.name, patch, resource_version=version
            )
            return True
        except Exception as exc:
            if status_of(exc) != 409 or attempt == CONFLICT_RETRIES - 1:
                raise
    return False
