"""The container termination message: a short JSON summary (< 4 KiB)."""

from __future__ import annotations

import logging
from pathlib import Path

from mediaflow_api.job import TERMINATION_MESSAGE_LIMIT, TerminationSummary

log = logging.getLogger(__name__)


def render(summary: TerminationSummary, limit: int = TERMINATION_MESSAGE_LIMIT) -> bytes:
    """JSON for ``summary``, with the message cut so the whole fits ``limit``."""
    data = summary.model_dump_json(by_alias=True).encode()
    if len(data) < limit:
        return data
    overflow = len(data) - limit + 16
    message = summary.message.encode()[: max(0, len(summary.message.encode()) - overflow)]
    cut = summary.model_copy(
        update={"message": message.decode(errors="ignore") + "...", "reason": summary.reason[:64]}
    )
    data = cut.model_dump_json(by_alias=True).encode()
    if len(data) >= limit:  # only a pathological manifest key could get here
        cut = cut.model_copy(update={"message": "", "manifest": ""})
        data = cut.model_dump_json(by_alias=True).encode()
    return data


def write(path: Path, summary: TerminationSummary) -> None:
    """Write the summary; a missing or read-only path (outside a Pod) is fine."""
    try:
        path.write_bytes(render(summary))
    except OSError as exc:
        log.debug("no termination message written to %s: %s", path, exc)
