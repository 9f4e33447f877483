"""Time as the Workflow status writes it: UTC, whole seconds, RFC 3339 with ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time in UTC, truncated to whole seconds (what the status can hold)."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """``moment`` as the API server writes times (``2026-01-01T00:00:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """The inverse of ``iso`` (None for an empty value)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
