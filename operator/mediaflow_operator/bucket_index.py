"""Which Workflows share each trigger bucket: what a bucket's notification rule
is computed from, without listing Workflows (pure).

``handlers.py`` registers ``share_of`` as a kopf index on Workflows: kopf calls
it for every watch event of a Workflow (before that event's handlers) and keeps
the result in memory, so the index is ``{bucket: [BucketShare of each Workflow
on it]}`` as of the last event seen, and a reconcile reads it in O(1) instead
of listing every Workflow in the cluster. The races this leaves and why the
rule still ends right are in docs/architecture.md ("The bucket's notification
configuration is shared").

``periodic_delay`` spreads the periodic reconciles of many Workflows over the
interval, so that N Workflows started together do not reconcile in the same
second every interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mediaflow_operator import workflows


@dataclass(frozen=True)
class BucketShare:
    """One Workflow's part in its trigger bucket's rule. Only fields whose change
    also starts a reconcile of that Workflow (spec, deletion): a change of the
    index is then always followed by a rule write that reads it."""

    uid: str
    prefix: str
    active: bool


# What reconcile reads: kopf's index (a live view, updated in place) is one.
BucketIndex = Mapping[str, Iterable[BucketShare]]


def share_of(body: Mapping[str, Any]) -> dict[str, BucketShare]:
    """The index entry of one Workflow: ``{trigger bucket: its share}``, empty
    when it names no bucket (an empty dict, not None: kopf keeps an object's old
    entry when its index function returns None)."""
    trigger = (body.get("spec") or {}).get("trigger") or {}
    bucket = trigger.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        return {}
    return {
        bucket: BucketShare(
            uid=workflows.ref(body).uid,
            prefix=str(trigger.get("prefix") or ""),
            active=workflows.is_active(body),
        )
    }


def rule_prefixes(
    shares: Iterable[BucketShare], *, current_uid: str = "", current: BucketShare | None = None
) -> list[str]:
    """The trigger prefixes of the active Workflows among ``shares`` (one
    bucket's), sorted. The Workflow being reconciled or deleted (``current_uid``)
    counts only as ``current`` says (its fresh body; None: not on this bucket,
    or deleted), whatever the index holds for it."""
    prefixes = [s.prefix for s in shares if s.active and s.uid != current_uid]
    if current is not None and current.active:
        prefixes.append(current.prefix)
    return sorted(prefixes)


def outside_shares(
    items: Iterable[Mapping[str, Any]], namespaces: tuple[str, ...]
) -> dict[str, list[BucketShare]]:
    """The shares of the Workflows among ``items`` outside ``namespaces`` (the
    ones this operator watches, so has in its index); none when it watches all."""
    found: dict[str, list[BucketShare]] = {}
    if not namespaces:
        return found
    for body in items:
        if workflows.ref(body).namespace in namespaces:
            continue
        for bucket, share in share_of(body).items():
            found.setdefault(bucket, []).append(share)
    return found


def periodic_delay(uid: str, interval: float) -> float:
    """Seconds until a Workflow's first periodic reconcile: one interval (its
    create or resume reconcile has just run), plus an offset in [0, interval)
    derived from its UID. Later runs follow every interval after the previous
    one, so the offsets stay spread: N Workflows make N/interval reconciles per
    second, not N at once. Stable for a UID, so a restart keeps the spread."""
    digest = hashlib.sha256(uid.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return interval + fraction * interval
