"""What a change of a template or of a Workflow's references sets off
(called by the watch handlers in ``handlers.py``).

- A template created, edited or deleted: each Workflow that uses it (the users
  index) has TemplatesResolved and JobTemplateValid judged again
  (``reconcile.recheck_templates``) and its dispatcher woken, so a Workflow
  waiting for a template becomes Ready and dispatches the uploads that waited.
  The start's listing re-judges nothing: every Workflow is reconciled at resume.
- A Workflow that starts or stops referring to a template (or is deleted):
  those templates' ``status.usedBy``/``workflowCount`` are written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mediaflow_api.templates import key_of, template_keys_of_raw
from mediaflow_operator import reconcile, workflows
from mediaflow_operator.runtime import Runtime
from mediaflow_operator.template_refs import changed_references, write_usage

logger = logging.getLogger(__name__)


async def on_template_event(rt: Runtime, type_: str | None, body: Mapping[str, Any]) -> None:
    """A watch event of a MediaTemplate or ClusterMediaTemplate (``type_`` None:
    the listing at start)."""
    catalog = rt.templates
    key = key_of(body)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    deleted = type_ == "DELETED"
    previous = catalog.generations.get(key)
    if deleted:
        catalog.generations.pop(key, None)
        catalog.written_usage.pop(key, None)
    else:
        catalog.generations[key] = generation
        status = dict(body.get("status") or {})
        await write_usage(rt.kube, catalog, [key], stored={key: status})
    if type_ is None or (not deleted and previous == generation):
        return  # the start's listing, or only the status changed
    for user in catalog.users_of(key):
        fresh = await rt.kube.get_workflow(user.namespace, user.name)
        if fresh is None or workflows.ref(fresh).uid != user.uid:
            continue
        resolved = await reconcile.recheck_templates(rt, fresh)
        logger.info(
            "%s %s: Workflow %s/%s templates %s",
            key,
            "deleted" if deleted else "changed",
            user.namespace,
            user.name,
            "resolved" if resolved else "not resolved",
        )
        rt.wakeups.ring(user.uid)


async def on_workflow_event(rt: Runtime, type_: str | None, body: Mapping[str, Any]) -> None:
    """A watch event of a Workflow: update the usage of the templates it started
    or stopped referring to."""
    ident = workflows.ref(body)
    keys = template_keys_of_raw(body.get("spec") or {}, ident.namespace)
    changed = changed_references(rt.templates, ident.uid, keys, deleted=type_ == "DELETED")
    if changed:
        await write_usage(rt.kube, rt.templates, changed)
