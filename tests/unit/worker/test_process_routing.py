"""Every ffmpeg/ffprobe process starts through ``mediaflow_worker.process``,
so the input rules and the memory limit apply to all of them."""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mediaflow_worker import process, safety
from mediaflow_worker.tasks._common import describe_media

pytestmark = pytest.mark.unit

PACKAGE = Path(process.__file__).resolve().parent
# process.py starts ffmpeg/ffprobe; encoders.py lists ffmpeg's encoders
# (``ffmpeg -encoders``: no input is opened).
ALLOWED = {"process.py", "encoders.py"}
SPAWNERS = {"run", "Popen", "call", "check_call", "check_output", "system", "execv", "execvp"}


def _spawn_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("subprocess", "os")
            and node.func.attr in SPAWNERS
        ):
            calls.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return calls


def test_no_module_but_process_starts_a_process() -> None:
    found = [
        call
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ALLOWED
        for call in _spawn_calls(path)
    ]
    assert found == []


def test_describing_an_output_runs_ffprobe_restricted_and_memory_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_FFMPEG_MAX_MEMORY_BYTES", str(4 << 30))
    runs: list[tuple[list[str], dict[str, Any]]] = []

    def fake_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        runs.append((list(args), kwargs))
        return subprocess.CompletedProcess(args, 0, '{"format": {"duration": "1.5"}}', "")

    # process calls subprocess.run and safety.check_restricted through their modules.
    monkeypatch.setattr(subprocess, "run", fake_run)
    checked: list[list[str]] = []
    real_check = safety.check_restricted

    def recording_check(args: Sequence[str]) -> None:
        checked.append(list(args))
        real_check(args)

    monkeypatch.setattr(safety, "check_restricted", recording_check)
    assert describe_media(tmp_path / "out.mp4") == {"duration": 1.5}
    [(args, kwargs)] = runs
    assert args[0] == "ffprobe"
    assert checked == [args]
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert kwargs["preexec_fn"] is not None  # RLIMIT_AS in the child
    assert kwargs["stdin"] is subprocess.DEVNULL
