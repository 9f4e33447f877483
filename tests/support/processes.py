"""Start, watch and stop the local stack's server processes.

Every process is started in its own session (process group) and stopped by
its own pid, never by a name pattern, so nothing else on the machine is
touched. Output goes to a log file that is printed when a start fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A stack component failed to start or stay up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(content[-lines:])


def log_tails(workdir: Path, lines: int = 25) -> str:
    """The tail of every component log under ``workdir/logs``, for failure reports."""
    return "\n".join(
        f"===== {log.name} =====\n{tail(log, lines)}"
        for log in sorted((workdir / "logs").glob("*.log"))
    )


@dataclass
class ManagedProcess:
    """One server process of the stack with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``check`` until it returns true; fail with the log tail if the
        process exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(
                    f"{self.name} exited with code {self.popen and self.popen.returncode} "
                    f"before {what}; log {self.log_path}:\n{tail(self.log_path)}"
                )
            try:
                if check():
                    return
            except Exception:  # noqa: S110 - any error just means "not ready yet"
                pass
            time.sleep(0.2)
        raise StackError(
            f"{self.name} not {what} after {timeout:.0f}s; log {self.log_path}:\n"
            f"{tail(self.log_path)}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL after ``grace`` seconds."""
        if self.popen is None or self.popen.poll() is not None:
            return
        stop_pid(self.popen.pid, grace, wait=self.popen.wait)


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_pid(pid: int, grace: float = 10.0, wait: Callable[..., object] | None = None) -> None:
    """Stop the process group led by ``pid`` (our servers are session leaders)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if wait is not None:
                try:
                    wait(timeout=0.1)
                    return
                except subprocess.TimeoutExpired:
                    continue
            if not pid_alive(pid):
                return
            time.sleep(0.1)
