"""Upload finished outputs in the background while later tasks run.

``job`` used to upload every output only after the last task: a Job with an
HLS ladder and a sprite sheet spent the uploads of the ladder's segments
waiting for the sprites to be drawn, and then uploaded one file at a time.
``BackgroundUploader`` takes each output as its task finishes and uploads
it on a small, bounded pool of threads (uploads are network waits; the CPU
stays with ffmpeg).

The contract ``job_mode`` builds on:

- ``finish`` returns only when every output submitted is uploaded; the
  manifest is written after it, so it never lists an output that is not
  there. The first upload error is raised by ``finish`` (or by the next
  ``submit``/``raise_if_failed``), with the output's key in its message.
- After an error no further upload starts.
- ``stop`` (on any failure) cancels what has not started, asks the uploads
  in flight to stop at their next part, waits for them and returns the keys
  that did get uploaded: cleanup deletes exactly those, and nothing can
  land after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mediaflow_worker.errors import WorkerError

log = logging.getLogger(__name__)

UPLOAD_THREADS = 2

# upload(key, path, metadata, stop): store one file; stop is set when the
# uploads are being abandoned (the callee may give up between parts).
UploadFunction = Callable[[str, Path, dict[str, str], threading.Event], None]


class BackgroundUploader:
    """A bounded pool of upload threads with one shared fate: the first
    failure stops the rest (see the module docstring)."""

    def __init__(self, upload: UploadFunction, threads: int = UPLOAD_THREADS) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self._upload = upload
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="upload")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._futures: list[Future[None]] = []
        self._uploaded: list[str] = []
        self._error: BaseException | None = None
        self._closed = False

    def submit(self, key: str, path: Path, meta: dict[str, str]) -> None:
        """Queue one output; raises the first earlier upload error instead."""
        self.raise_if_failed()
        if self._closed:
            raise RuntimeError("the uploader is finished; nothing more can be submitted")
        self._futures.append(self._pool.submit(self._run, key, path, meta))

    def _run(self, key: str, path: Path, meta: dict[str, str]) -> None:
        if self._stop.is_set():
            return  # an earlier upload failed, or the run is being abandoned
        try:
            self._upload(key, path, meta, self._stop)
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
            # Nothing more starts; those in flight may stop at their next part.
            self._stop.set()
            return
        with self._lock:
            self._uploaded.append(key)

    def raise_if_failed(self) -> None:
        """Raise the first upload error, if there has been one."""
        with self._lock:
            error = self._error
        if error is not None:
            if isinstance(error, WorkerError):
                raise error
            raise RuntimeError(f"an output upload failed: {error!r}") from error

    def uploaded(self) -> list[str]:
        """Keys uploaded so far (a copy, in the order they completed)."""
        with self._lock:
            return list(self._uploaded)

    def finish(self) -> list[str]:
        """Wait for every submitted upload; the keys uploaded, or the first error."""
        self._closed = True
        for future in self._futures:
            future.result()  # _run never raises: errors are kept in self._error
        self._pool.shutdown(wait=True)
        self.raise_if_failed()
        return self.uploaded()

    def stop(self) -> list[str]:
        """Abandon the uploads: cancel those not started, ask those in flight
        to stop, wait for them. Returns the keys that were uploaded (for
        cleanup); raises nothing."""
        self._closed = True
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._error is not None and not isinstance(self._error, WorkerError):
                log.error("an output upload failed: %r", self._error)
        return self.uploaded()
