"""Templates in the operator: what its watches index, how a Workflow's spec is
resolved against them, and which Workflows use each template.

Three kopf indices (``handlers.py``) feed ``TemplateCatalog``: the
MediaTemplates, the ClusterMediaTemplates (key -> ``TemplateEntry``) and the
Workflows' references (template key -> ``TemplateUser``). kopf runs no handler
before every object listed at start is indexed, so a Workflow is never judged
against a half-read set of templates.

Resolution itself is ``mediaflow_api.templates.resolve_tasks`` (the one
implementation, shared with ``mediaflow-worker run``); ``resolve_spec`` applies
it to a Workflow spec. The Job carries the result, a snapshot.

A template's ``status.usedBy``/``workflowCount`` are written from the users
index when a Workflow's references change (``UsageWriter``) and when the
template is created. Deleting a template in use is allowed (no finalizer, the
Kubernetes way): its Workflows turn not Ready (TemplatesResolved=False, naming
it) and their uploads wait in the queue until it is back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediaflow_api.templates import (
    CLUSTER_PLURAL,
    GROUP,
    PLURAL,
    USED_BY_MAX,
    VERSION,
    TemplateKey,
    key_of,
    resolve_tasks,
    template_keys,
    template_keys_of_raw,
)
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.kube import Kube

MEDIA_TEMPLATES = (GROUP, VERSION, PLURAL)
CLUSTER_MEDIA_TEMPLATES = (GROUP, VERSION, CLUSTER_PLURAL)


@dataclass(frozen=True)
class TemplateEntry:
    """A template as indexed: its resourceVersion (to notice edits) and spec."""

    resource_version: str
    spec: Mapping[str, Any]


@dataclass(frozen=True, order=True)
class TemplateUser:
    """A Workflow that refers to a template."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def entry_of(body: Mapping[str, Any]) -> dict[TemplateKey, TemplateEntry]:
    """Index function of both template kinds: the template under its key."""
    meta = body.get("metadata") or {}
    entry = TemplateEntry(str(meta.get("resourceVersion") or ""), dict(body.get("spec") or {}))
    return {key_of(body): entry}


def users_of(body: Mapping[str, Any]) -> dict[TemplateKey, TemplateUser]:
    """Index function of Workflows: each template it refers to -> the Workflow."""
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    user = TemplateUser(namespace, str(meta.get("name") or ""), str(meta.get("uid") or ""))
    return {key: user for key in template_keys_of_raw(body.get("spec") or {}, namespace)}


Index = Mapping[TemplateKey, Collection[Any]]


@dataclass
class TemplateCatalog:
    """Live views of the three indices (kopf's, bound by the handlers; empty
    ones until then) and what was last written to each template's status."""

    templates: Index = field(default_factory=dict)
    cluster_templates: Index = field(default_factory=dict)
    users: Index = field(default_factory=dict)
    written_usage: dict[TemplateKey, dict[str, Any]] = field(default_factory=dict)
    # Workflow UID -> the template keys it referred to when last seen.
    references: dict[str, tuple[TemplateKey, ...]] = field(default_factory=dict)
    # Template key -> its generation when last seen (edits of the spec, not the status).
    generations: dict[TemplateKey, int] = field(default_factory=dict)

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        """Take the indices from a kopf handler's keyword arguments."""
        self.templates = kwargs.get("mediaflow_templates", self.templates)
        self.cluster_templates = kwargs.get("mediaflow_cluster_templates", self.cluster_templates)
        self.users = kwargs.get("mediaflow_template_users", self.users)

    def entry(self, key: TemplateKey) -> TemplateEntry | None:
        index = self.cluster_templates if not key.namespace else self.templates
        found = list(index.get(key, ()))
        return found[0] if found else None

    def lookup(self, key: TemplateKey) -> Mapping[str, Any] | None:
        """The stored spec of the template ``key`` (None when absent)."""
        entry = self.entry(key)
        return entry.spec if entry is not None else None

    def fingerprint(self, spec: WorkflowSpec, namespace: str) -> tuple[str, ...]:
        """The resourceVersions of the templates ``spec`` refers to ('' when absent):
        a resolved spec stays valid while this is unchanged."""
        keys = [k for t in spec.tasks for k in template_keys(t, namespace)]
        return tuple((e.resource_version if (e := self.entry(k)) else "") for k in keys)

    def users_of(self, key: TemplateKey) -> list[TemplateUser]:
        return sorted(set(self.users.get(key, ())))

    def usage(self, key: TemplateKey) -> dict[str, Any]:
        """The template's status fields from the users index."""
        users = [str(u) for u in self.users_of(key)]
        return {"usedBy": users[:USED_BY_MAX], "workflowCount": len(users)}


def resolve_spec(spec: WorkflowSpec, namespace: str, catalog: TemplateCatalog) -> WorkflowSpec:
    """``spec`` with every template reference resolved (unchanged without any).
    Raises ``mediaflow_api.templates.TemplateError``."""
    if not any(t.refers_to_templates for t in spec.tasks):
        return spec
    return spec.model_copy(update={"tasks": resolve_tasks(spec.tasks, namespace, catalog.lookup)})


def changed_references(
    catalog: TemplateCatalog, uid: str, keys: Iterable[TemplateKey], *, deleted: bool
) -> set[TemplateKey]:
    """Record the templates Workflow ``uid`` refers to now; return those it started
    or stopped referring to (their usage changed)."""
    before = set(catalog.references.get(uid, ()))
    now = set() if deleted else set(keys)
    if now:
        catalog.references[uid] = tuple(sorted(now))
    else:
        catalog.references.pop(uid, None)
    return before ^ now


async def write_usage(
    kube: Kube,
    catalog: TemplateCatalog,
    keys: Iterable[TemplateKey],
    *,
    stored: Mapping[TemplateKey, Mapping[str, Any]] | None = None,
) -> None:
    """Patch ``status.usedBy``/``workflowCount`` of each template in ``keys`` that
    exists, unless it already says so (``stored``: the status a watch event just
    showed; else what this process last wrote)."""
    for key in sorted(keys):
        if catalog.entry(key) is None:
            catalog.written_usage.pop(key, None)
            continue
        usage = catalog.usage(key)
        known = (stored or {}).get(key, catalog.written_usage.get(key))
        if known is not None and {k: known.get(k) for k in usage} == usage:
            catalog.written_usage[key] = usage
            continue
        await kube.patch_template_status(key.kind, key.namespace, key.name, usage)
        catalog.written_usage[key] = usage
