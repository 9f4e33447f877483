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

from mediaflow_api.job import SECRETS_DIR, Limits
from mediaflow_worker.probe import ProbeResult


class TaskNotApplicable(Exception):
    """The input does not have what this task works on."""


# (bucket, key) -> local path of a fetched asset (watermark images).
AssetFetcher = Callable[[str, str], Path]
# A file name next to the input (subtitle sidecars) -> its local copy, or
# None when there is no such file or object.
SiblingFetcher = Callable[[str], Path | None]


def no_siblings(name: str) -> Path | None:
    """A ``SiblingFetcher`` that finds nothing."""
    return None


# (start, end) of the input's last video frame, or None (``probe.last_video_frame``).
LastFrame = tuple[float, float] | None


@dataclass
class InputFacts:
    """Facts about the input that more than one task may need, found at most
    once per run (one ``InputFacts`` is shared by every task's context)."""

    _last_frame: tuple[LastFrame] | None = None

    def last_frame(self, find: Callable[[], LastFrame]) -> LastFrame:
        """The input's last video frame: ``find()`` on the first call, the
        same answer after that (each call of ``find`` is an ffprobe run)."""
        if self._last_frame is None:
            self._last_frame = (find(),)
        return self._last_frame[0]


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
    facts: InputFacts = field(default_factory=InputFacts)
    fetch_sibling: SiblingFetcher = no_siblings
    # The input's own file name (the naming rule of sidecars starts from it).
    input_name: str = ""
    # Secret keys the tasks name, as SECRETS_DIR/<secret>/<key> (mounted by the
    # operator in a Job; ``run --secret-dir`` locally).
    secret_dir: Path = Path(SECRETS_DIR)

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
