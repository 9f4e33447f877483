"""Which encoders the tasks need, and whether this ffmpeg build has them."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Sequence

from mediaflow_worker.errors import EncoderUnavailableError
from mediaflow_worker.tasks.registry import PreparedTask


@functools.cache
def available_encoders() -> frozenset[str]:
    """Encoder names of the ffmpeg on PATH (``ffmpeg -encoders``)."""
    # No input file is opened, so this is the one run outside ``process``.
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    names = set()
    for line in done.stdout.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the legend
        # above them has "=" in the second column.
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def check_encoders(tasks: Sequence[PreparedTask], available: frozenset[str] | None = None) -> None:
    """``EncoderUnavailableError`` naming the task and encoder that is missing."""
    have = available if available is not None else available_encoders()
    for prepared in tasks:
        missing = sorted(prepared.required_encoders() - have)
        if missing:
            raise EncoderUnavailableError(
                f"task {prepared.task.name!r} needs encoder {', '.join(missing)}, "
                "which this ffmpeg build does not have"
            )
