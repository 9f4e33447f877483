"""Which encoders the tasks need, and whether this ffmpeg build has them."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from mediaflow_worker.errors import EncoderUnavailableError
from mediaflow_worker.tasks.registry import PreparedTask

ENCODERS_TIMEOUT_SECONDS = 30


def parse_encoders(text: str) -> frozenset[str]:
    """Encoder names in the output of ``ffmpeg -encoders`` (pure)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the legend
        # above them has "=" in the second column.
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def list_encoders() -> frozenset[str]:
    """Encoder names of the ffmpeg on PATH (runs ``ffmpeg -encoders``)."""
    # No input file is opened, so this is the one run outside ``process``.
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        timeout=ENCODERS_TIMEOUT_SECONDS,
        check=False,
    )
    return parse_encoders(done.stdout)


class EncoderListing:
    """``list_encoders`` run once per process, started ahead of need.

    ``ffmpeg -encoders`` costs a process start (about 70 ms, most of it
    loading FFmpeg's libraries); started when a run begins, it overlaps the
    download or the input probe instead of adding to the time before the
    first task. The answer never changes while the process lives."""

    def __init__(self, lister: Callable[[], frozenset[str]] = list_encoders) -> None:
        self._lister = lister
        self._lock = threading.Lock()
        self._future: Future[frozenset[str]] | None = None

    def start(self) -> Future[frozenset[str]]:
        """Start listing in a background thread unless already started."""
        with self._lock:
            if self._future is None:
                future: Future[frozenset[str]] = Future()
                self._future = future
                threading.Thread(
                    target=self._fill, args=(future,), name="encoder-listing", daemon=True
                ).start()
            return self._future

    def _fill(self, future: Future[frozenset[str]]) -> None:
        try:
            future.set_result(self._lister())
        except BaseException as exc:  # handed to whoever waits for the answer
            future.set_exception(exc)

    def get(self) -> frozenset[str]:
        """The encoder names (waits for the listing; its error, if any, raises here)."""
        return self.start().result()


_LISTING = EncoderListing()


def prefetch_encoders() -> None:
    """Start listing this ffmpeg's encoders in the background (see ``EncoderListing``)."""
    _LISTING.start()


def available_encoders() -> frozenset[str]:
    """Encoder names of the ffmpeg on PATH (listed once per process)."""
    return _LISTING.get()


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
