"""Deterministic names: Jobs, consumers, notification rule ids, labels.

A Job's name is a pure function of (namespace, workflow, bucket, key, etag or
version id): a redelivered event or a sweep of the same object hits
``AlreadyExists`` instead of creating a second Job.
"""

from __future__ import annotations

import hashlib
import re

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mediaflow-operator"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_WORKFLOW = "mediaflow.dev/workflow"
LABEL_WORKFLOW_UID = "mediaflow.dev/workflow-uid"
LABEL_TRIGGER = "mediaflow.dev/trigger"  # event | sweep | manual
ANNOTATION_BUCKET = "mediaflow.dev/bucket"
ANNOTATION_KEY = "mediaflow.dev/key"
ANNOTATION_ETAG = "mediaflow.dev/etag"
ANNOTATION_GENERATION = "mediaflow.dev/workflow-generation"
ANNOTATION_COUNTED = "mediaflow.dev/counted"
# The upload's facts on its Job (object_facts): trace context, pass-through context,
# correlation id.
ANNOTATION_TRACEPARENT = "mediaflow.dev/traceparent"
ANNOTATION_CONTEXT = "mediaflow.dev/context"
ANNOTATION_CORRELATION_ID = "mediaflow.dev/correlation-id"
ANNOTATION_PROCESS = "mediaflow.dev/process"
ANNOTATION_PROCESS_REQUEST = "mediaflow.dev/process-request"

RULE_ID_PREFIX = "mediaflow-"
JOB_NAME_MAX = 63


def _digest(*parts: str, length: int = 16) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\x00")
    return hasher.hexdigest()[:length]


def _label_safe(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned


def job_name(
    namespace: str,
    workflow: str,
    bucket: str,
    key: str,
    etag: str,
    version_id: str = "",
    *,
    workflow_uid: str = "",
    nonce: str = "",
) -> str:
    """``mf-<workflow>-<hash>``, at most 63 characters, a valid DNS label.

    The etag identifies the content; the version id is used only when the etag
    is unknown. The Workflow's UID keeps a re-created Workflow of the same name
    from colliding with Jobs of its predecessor that are still being
    garbage-collected. ``nonce`` makes a forced re-run (manual trigger) distinct.
    """
    identity = etag.strip('"') or version_id
    digest = _digest(namespace, workflow, workflow_uid, bucket, key, identity, nonce)
    stem = _label_safe(workflow)[: JOB_NAME_MAX - len("mf--") - len(digest)].strip("-")
    return f"mf-{stem}-{digest}" if stem else f"mf-{digest}"


def consumer_name(namespace: str, workflow: str, uid: str) -> str:
    """Durable JetStream consumer name of one Workflow (stable for its lifetime)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{namespace}_{workflow}")[:48]
    return f"wf_{stem}_{uid.replace('-', '')[:12]}"


# Suffix of the rule ids of the fast target (bucket_rules): the durable target's
# ids stay what they were before the fast target existed, so an upgrade only adds rules.
FAST_RULE_SUFFIX = "-fast"


def rule_id(prefix: str, *, fast: bool = False) -> str:
    """Id of mediaflow's bucket notification rule for one key prefix, on the
    durable target or (``fast``) on the fast one."""
    return RULE_ID_PREFIX + _digest(prefix, length=12) + (FAST_RULE_SUFFIX if fast else "")


def is_our_rule(config_id: str | None) -> bool:
    return bool(config_id) and str(config_id).startswith(RULE_ID_PREFIX)


def label_value(text: str) -> str:
    """A string made safe for a label value (<= 63, alnum at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-._")
    return cleaned
