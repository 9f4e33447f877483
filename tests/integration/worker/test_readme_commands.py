"""The ``mediaflow-worker run`` commands in README.md and docs/worker.md work
as printed: taken from the documents literally, only the clip path replaced
by a generated clip, run by ``mediaflow-worker`` from PATH in a directory laid
out like the repository root."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from .helpers import (
    REPO,
    checkout_view,
    documented_input,
    documented_run_commands,
    make_clip,
    run_documented,
)

pytestmark = pytest.mark.integration

DOCS = [REPO / "README.md", REPO / "docs" / "worker.md"]
COMMANDS = [(doc, cmd) for doc in DOCS for cmd in documented_run_commands(doc)]


def test_the_readme_and_the_worker_docs_show_a_run_command() -> None:
    assert {doc.name for doc, _ in COMMANDS} == {"README.md", "worker.md"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), "clip", size=(640, 360), duration=3).path


def _printed_after(doc: Path, command: str) -> list[str]:
    """The lines a console block shows right after ``$ command`` (up to the
    next prompt or the end of the block); none for an inline command."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    if f"$ {command}" not in lines:
        return []
    shown = []
    for line in lines[lines.index(f"$ {command}") + 1 :]:
        if line.startswith("```") or (line.startswith("$ ") and not line.startswith("$ ls ")):
            break
        shown.append(line)
    return shown


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d.name}:{c}" for d, c in COMMANDS])
def test_documented_command_does_what_the_docs_show(
    doc: Path, command: str, clip: Path, tmp_path: Path
) -> None:
    argv = shlex.split(command)
    original = documented_input(argv)
    argv[argv.index(original)] = str(clip)
    cwd = checkout_view(tmp_path)
    done = run_documented(argv, cwd)
    out = cwd / argv[argv.index("-o") + 1]
    shown = _printed_after(doc, command)
    if shown and shown[0].startswith("mediaflow-worker: "):
        # The docs show a failure: it is exactly this one, and nothing is written.
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines()[-1] == shown[0]
        assert not out.exists()
        return
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    result = json.loads((out / "manifest.json").read_text())
    assert result["ok"] is True
    for task in result["tasks"]:
        assert task["status"] == "succeeded", task
        assert task["outputs"], task["name"]
        for output in task["outputs"]:
            assert (out / output["path"]).stat().st_size == output["size"] > 0
    if shown and shown[0].startswith("$ ls "):  # the docs show what `ls out/` prints
        assert sorted(p.name for p in out.iterdir()) == sorted(shown[1].split())
    # What the logs promise is what happened.
    assert re.search(rf"wrote {result['outputCount']} output\(s\)", done.stdout), done.stdout
