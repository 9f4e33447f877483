"""Task implementations: one module per task type, one ``run`` each.

A task turns the (already probed, already vetted) local input into files under
its own output directory and returns them with what it knows about each. It
raises ``TaskNotApplicable`` when the input lacks what it needs (a snapshot of
an audio-only file): the task is then *skipped*, not failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow_api.job import Limits
from mediaflow_worker.probe import ProbeResult


class TaskNotApplicable(Exception):
    """The input does not have what this task works on."""


# (bucket, key) -> local path of a fetched asset (watermark images).
AssetFetcher = Callable[[str, str], Path]


@dataclass
class TaskContext:
    """Everything a task needs besides its own spec."""

    input_path: Path
    probe: ProbeResult
    limits: Limits
    scratch: Path
    out_dir: Path
    deadline: float
    fetch_asset: AssetFetcher
    font: str
    task_name: str

    @property
    def duration(self) -> float:
        """Input duration in seconds (0 when unknown, e.g. a single image)."""
        return self.probe.duration or 0.0

    def display_size(self) -> tuple[int, int]:
        """The video's display size; ``TaskNotApplicable`` without video."""
        video = self.probe.video
        if video is None:
            raise TaskNotApplicable("the input has no video stream")
        return video.display_width, video.display_height


@dataclass
class OutputFile:
    """One file a task produced."""

    path: Path
    info: dict[str, Any] = field(default_factory=dict)
