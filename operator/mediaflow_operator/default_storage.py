"""The default storage Secret: which namespaces may get a copy, making it, removing it.

Workers read their MinIO credentials through ``secretKeyRef``, which only reaches
Secrets of the pod's own namespace, so a Workflow without
``spec.storage.secretRef`` needs the operator's default Secret copied into its
namespace. Those are the operator's own credentials: whoever may run a pod in
that namespace (a Workflow author can set ``execution.image``) can read them.
So a copy goes only to namespaces the administrator listed
(``MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES``, chart value
``storage.shareWithNamespaces``; ``*`` shares with every namespace), and it is
deleted again once no Workflow of the namespace uses it, or the namespace is no
longer listed. The Secret's own namespace needs no copy. See docs/security.md.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mediaflow_operator import naming, workflows
from mediaflow_operator.runtime import Runtime

logger = logging.getLogger(__name__)

# namespace -> UIDs of its Workflows that use the default Secret: a kopf index
# fed by the Workflow watch (``user_of``), so releasing a copy lists nothing.
StorageUsers = Mapping[str, Iterable[str]]

EVERY_NAMESPACE = "*"
COPIED_FROM = "mediaflow.dev/copied-from"
SETTING = "MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES"
CHART_VALUE = "storage.shareWithNamespaces"


@dataclass(frozen=True)
class Provided:
    """The outcome of asking for the default Secret in a namespace: the Secret's
    content when it may be used there, else a reason and a message for the
    StorageReady condition."""

    secret: Mapping[str, Any] | None
    reason: str = ""
    message: str = ""


def may_share(namespace: str, secret_namespace: str, allowed: Collection[str]) -> bool:
    """Whether Workflows in ``namespace`` may use the default Secret that lives
    in ``secret_namespace``, given the administrator's list ``allowed``."""
    return namespace == secret_namespace or EVERY_NAMESPACE in allowed or namespace in allowed


def uses_default_storage(body: Mapping[str, Any]) -> bool:
    """A live Workflow without its own ``spec.storage.secretRef``."""
    meta = body.get("metadata") or {}
    storage = (body.get("spec") or {}).get("storage") or {}
    return not meta.get("deletionTimestamp") and not storage.get("secretRef")


def user_of(body: Mapping[str, Any]) -> dict[str, str]:
    """The index entry of one Workflow: ``{namespace: uid}`` while it uses the
    default Secret, else empty (not None: kopf would keep the old entry)."""
    if not uses_default_storage(body):
        return {}
    ref = workflows.ref(body)
    return {ref.namespace: ref.uid}


def copy_of(source: Mapping[str, Any], namespace: str, origin: tuple[str, str]) -> dict[str, Any]:
    """The manifest of the copy of ``source`` in ``namespace`` (labelled as ours,
    annotated with where it came from, so only such copies are ever deleted)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": workflows.DEFAULT_STORAGE_SECRET_NAME,
            "namespace": namespace,
            "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY},
            "annotations": {COPIED_FROM: f"{origin[0]}/{origin[1]}"},
        },
        "type": source.get("type") or "Opaque",
        "data": dict(source.get("data") or {}),
    }


def is_our_copy(secret: Mapping[str, Any] | None) -> bool:
    meta = (secret or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return labels.get(naming.LABEL_MANAGED_BY) == naming.MANAGED_BY and COPIED_FROM in annotations


async def provide(rt: Runtime, namespace: str) -> Provided:
    """The default Secret for a Workflow in ``namespace``: copied there when the
    administrator shares it with the namespace, refused (and any old copy
    removed) when not."""
    ref = rt.settings.default_storage_secret_ref
    if ref is None:
        return Provided(
            None,
            "NoDefaultStorage",
            "spec.storage.secretRef is unset and the operator has no "
            "MEDIAFLOW_DEFAULT_STORAGE_SECRET",
        )
    if not may_share(namespace, ref[0], rt.settings.default_storage_namespaces):
        await remove_copy(rt, namespace, "the namespace is not shared with")
        return Provided(
            None,
            "DefaultStorageNotShared",
            f"spec.storage.secretRef is unset, and the operator's default storage Secret "
            f"is not shared with namespace {namespace!r}: set spec.storage.secretRef to a "
            f"Secret of this namespace, or ask the administrator to add {namespace!r} to "
            f"{SETTING} (chart value {CHART_VALUE})",
        )
    source = await rt.kube.read_secret(*ref)
    if source is None:
        return Provided(
            None, "SecretNotFound", f"default storage Secret {ref[0]}/{ref[1]} not found"
        )
    if namespace != ref[0]:
        await rt.kube.apply_secret(namespace, copy_of(source, namespace, ref))
    return Provided(source)


async def remove_copy(rt: Runtime, namespace: str, why: str) -> bool:
    """Delete the copy in ``namespace`` if there is one of ours; True if deleted."""
    name = workflows.DEFAULT_STORAGE_SECRET_NAME
    ref = rt.settings.default_storage_secret_ref
    if ref is not None and ref == (namespace, name):
        return False  # the original, not a copy
    if not is_our_copy(await rt.kube.read_secret(namespace, name)):
        return False
    await rt.kube.delete_secret(namespace, name)
    logger.info("deleted the default storage copy %s/%s: %s", namespace, name, why)
    return True


async def release_unused(
    rt: Runtime, namespace: str, users: StorageUsers, *, leaving_uid: str
) -> bool:
    """Delete the namespace's copy when no Workflow there uses it any more
    (``users``: the watch-fed index; ``leaving_uid``: the Workflow being deleted
    or switching to its own Secret, which the index may still show as it was).
    A Workflow is indexed before its own reconcile runs, and that reconcile
    copies the Secret again (``provide``), so a copy released a moment too early
    comes back at the latest with that Workflow's next reconcile."""
    if any(uid != leaving_uid for uid in users.get(namespace, ())):
        return False
    return await remove_copy(rt, namespace, "no Workflow of the namespace uses it")
