"""Run one ffmpeg process: progress in the log, a wall-clock deadline, and
nothing left running when it is over."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import resource
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mediaflow_worker import safety
from mediaflow_worker.config import ffmpeg_memory_limit
from mediaflow_worker.errors import ProcessingError, ProcessTimeoutError

log = logging.getLogger(__name__)

STDERR_KEEP_LINES = 400
# Bounds the memory a hostile input can make the detectors' reports take.
KEEP_MAX_LINES = 200_000
PROGRESS_STEP_PERCENT = 10


def parse_progress_line(line: str) -> float | None:
    """Seconds of output written, from one ``-progress`` line (pure).

    ffmpeg 5.1 prints ``out_time_us`` (and a misnamed ``out_time_ms`` that is
    also in microseconds); "N/A" appears before the first frame."""
    key, _, value = line.strip().partition("=")
    if key != "out_time_us":
        return None
    try:
        return int(value) / 1_000_000
    except ValueError:
        return None


class _Reader(threading.Thread):
    """Read a text stream without blocking the main loop: keep its tail (for
    error messages) and, separately, every line ``keep`` selects (detector
    reports, which can be far more than the tail holds)."""

    def __init__(self, stream: object, keep: Callable[[str], bool] | None) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._keep = keep
        self.lines: deque[str] = deque(maxlen=STDERR_KEEP_LINES)
        self.kept: list[str] = []

    def run(self) -> None:
        for raw in self._stream:  # type: ignore[attr-defined]
            line = raw.rstrip("\n")
            self.lines.append(line)
            if self._keep is not None and len(self.kept) < KEEP_MAX_LINES and self._keep(line):
                self.kept.append(line)


def limit_memory(max_bytes: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` setting RLIMIT_AS in the child, or None for no limit."""
    if max_bytes is None:
        return None

    def apply() -> None:  # runs in the forked child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


def run_restricted(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short ffmpeg/ffprobe command to completion: checked against the
    input restrictions, no stdin, text output (undecodable bytes replaced),
    and the ffmpeg memory limit. ``TimeoutExpired`` is the caller's to handle."""
    safety.check_restricted(args)
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        preexec_fn=limit_memory(ffmpeg_memory_limit()),
    )


class _Deferral:
    """While a process is being started, a stop signal only takes note: the
    child's id is not known yet, so raising then would leave it running."""

    active = False
    pending = False


def handle_stop_signal(signum: int, frame: object) -> None:
    """The SIGTERM/SIGINT handler (installed by the CLI): unwind like Ctrl-C,
    except while ffmpeg is being started (see ``_Deferral``)."""
    if _Deferral.active:
        _Deferral.pending = True
        return
    raise KeyboardInterrupt


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class _Supervised:
    """One ffmpeg started under the worker's rules: checked against the input
    restrictions, memory-limited, in a session of its own that a timer kills
    at ``deadline``, its stderr read by a ``_Reader``. ``close`` leaves
    nothing running; ``check`` raises what the run came to."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        label: str,
        deadline: float,
        text: bool,
        env: dict[str, str] | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        safety.check_restricted(args)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProcessTimeoutError(f"{label}: no time left before the wall-time limit")
        log.debug("running %s", " ".join(args))
        self.label = label
        self.timed_out = threading.Event()
        self._timer: threading.Timer | None = None
        self.reader: _Reader | None = None
        self.proc: subprocess.Popen[Any] | None = None
        try:
            _Deferral.active = True
            try:
                # A new session: the deadline kills ffmpeg and anything it started.
                self.proc = subprocess.Popen(
                    list(args),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=text,
                    errors="replace" if text else None,
                    start_new_session=True,
                    env=env,
                    preexec_fn=limit_memory(ffmpeg_memory_limit()),
                )
            finally:
                _Deferral.active = False
            started = self.proc

            def on_deadline() -> None:
                self.timed_out.set()
                _kill_group(started)

            self._timer = threading.Timer(remaining, on_deadline)
            self._timer.daemon = True
            self._timer.start()
            assert self.proc.stderr is not None
            stderr = (
                self.proc.stderr if text else io.TextIOWrapper(self.proc.stderr, errors="replace")
            )
            self.reader = _Reader(stderr, keep)
            self.reader.start()
            if _Deferral.pending:
                _Deferral.pending = False
                raise KeyboardInterrupt
        except BaseException:
            self.close()
            raise

    @property
    def stdout(self) -> Any:
        """ffmpeg's stdout (text or bytes, as started)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        return self.proc.stdout

    def close(self) -> None:
        """Stop the timer, kill the process group if it still runs, and close
        our ends of the pipes (stderr only once the reader is done with it)."""
        if self._timer is not None:
            self._timer.cancel()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)
        if proc is not None:
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stderr is not None and (self.reader is None or not self.reader.is_alive()):
                proc.stderr.close()

    def check(self) -> None:
        """``ProcessTimeoutError`` when the deadline killed it,
        ``ProcessingError`` (with the stderr tail) on a non-zero exit."""
        if self.timed_out.is_set():
            raise ProcessTimeoutError(f"{self.label}: stopped at the wall-time limit")
        assert self.proc is not None
        assert self.reader is not None
        if self.proc.returncode != 0:
            tail = [line for line in self.reader.lines if line.strip()][-3:]
            detail = " | ".join(tail)[-500:] or f"exit status {self.proc.returncode}"
            raise ProcessingError(f"{self.label}: ffmpeg failed: {detail}")


def run_ffmpeg(
    args: Sequence[str],
    *,
    label: str,
    expected_seconds: float | None,
    deadline: float,
    env: dict[str, str] | None = None,
    keep: Callable[[str], bool] | None = None,
) -> list[str]:
    """Run ``args`` until done or until ``deadline`` (``time.monotonic()``).

    Logs progress every ``PROGRESS_STEP_PERCENT`` percent. Returns every
    stderr line ``keep`` selects (detectors report there), or the stderr
    tail without ``keep``. Raises ``ProcessTimeoutError`` when the
    deadline kills the process group, ``ProcessingError`` on a non-zero exit.
    """
    running = _Supervised(args, label=label, deadline=deadline, text=True, env=env, keep=keep)
    next_report = PROGRESS_STEP_PERCENT
    try:
        for line in running.stdout:
            done = parse_progress_line(line)
            if done is None or not expected_seconds:
                continue
            percent = min(100.0, 100.0 * done / expected_seconds)
            if percent >= next_report:
                log.info("%s: %d%% done", label, int(percent))
                next_report = (int(percent) // PROGRESS_STEP_PERCENT + 1) * PROGRESS_STEP_PERCENT
        assert running.proc is not None
        running.proc.wait()
    finally:
        running.close()
    running.check()
    if expected_seconds and next_report <= 100:
        log.info("%s: 100%% done", label)
    assert running.reader is not None
    return running.reader.kept if keep is not None else list(running.reader.lines)


def stream_ffmpeg(
    args: Sequence[str],
    *,
    label: str,
    deadline: float,
    chunk_bytes: int,
    keep: Callable[[str], bool] | None = None,
) -> Iterator[bytes]:
    """Run ``args`` (an ffmpeg writing raw data to ``pipe:1``) and yield its
    output in chunks of exactly ``chunk_bytes`` (a video frame, a block of
    samples); a shorter last chunk is dropped.

    The same rules as ``run_ffmpeg``: checked against the input restrictions,
    memory-limited, killed with everything it started at ``deadline`` or when
    the consumer stops early (``ProcessTimeoutError`` for the deadline,
    ``ProcessingError`` on a non-zero exit). Stderr lines ``keep`` selects are
    logged at debug level once the stream ends."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
    running = _Supervised(args, label=label, deadline=deadline, text=False, keep=keep)
    try:
        while True:
            chunk = running.stdout.read(chunk_bytes)
            if len(chunk) < chunk_bytes:
                break
            yield chunk
        assert running.proc is not None
        running.proc.wait()
    finally:
        running.close()
    running.check()
    assert running.reader is not None
    for line in running.reader.kept:
        log.debug("%s: %s", label, line)
