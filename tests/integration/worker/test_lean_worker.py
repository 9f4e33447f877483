"""The lean worker (the worker image, without the ``mediaflow[ml]`` extra) still
loads and runs every other task, and refuses an ML task clearly.

``mediaflow-worker run -f`` runs in a subprocess where the ML packages cannot
be imported: a ``sitecustomize`` on ``PYTHONPATH`` hides them from every
import finder, as if they were not installed (``importlib.util.find_spec``
answers None, ``import numpy`` raises ModuleNotFoundError). A task module
that imported one of them at the top would break the transcode run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api.tasks import ML_TASK_TYPES
from mediaflow_worker.errors import ModelUnavailableError
from mediaflow_worker.understanding.packages import INSTALL_HINT, MODULES

from .helpers import ffprobe, make_clip, run_local, write_workflow

pytestmark = pytest.mark.integration

HIDDEN = sorted({*MODULES, "silero_vad"})
# Runs before the worker's own code: every finder on sys.meta_path answers
# "not here" for the hidden packages, so they look uninstalled.
SITECUSTOMIZE = f"""
import sys

HIDDEN = frozenset({HIDDEN!r})


class _Hide:
    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find = getattr(self.inner, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attr):
        return getattr(self.inner, attr)


sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
"""

# The smallest settings of each ML task type that this checkout knows; the
# test runs every type that exists (ML_TASK_TYPES) and fails for one missing here.
MINIMAL: dict[str, dict[str, Any]] = {
    "quality": {},
    "cover": {},
    "ocr": {},
    "speech": {},
    "moderation": {"block": [{"name": "banned", "words": ["forbidden"]}]},
}


@pytest.fixture
def lean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's subprocesses see no ML package."""
    hide = tmp_path / "lean-site"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(SITECUSTOMIZE)
    paths = [str(hide), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("MEDIAFLOW_ML_THREADS", "1")


@pytest.mark.usefixtures("lean")
def test_the_ml_packages_are_really_hidden() -> None:
    # The premise of the tests below, checked in a subprocess like theirs.
    probe = "import importlib.util, sys; " + "; ".join(
        f"assert importlib.util.find_spec({m!r}) is None, {m!r}" for m in HIDDEN
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    done = subprocess.run(
        [sys.executable, "-c", "import numpy"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr


@pytest.mark.usefixtures("lean")
def test_the_lean_worker_transcodes(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "in", duration=1.0, size=(160, 120))
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "small", "transcode": {"video": {"codec": "h264", "height": 96}}},
            {"name": "thumbs", "snapshot": {"times": ["0.5"]}},
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, clip.path, out, timeout=120)
    assert done.returncode == 0, done.stderr
    [video] = sorted(out.rglob("*.mp4"))
    streams = ffprobe(video)["streams"]
    assert any(s["codec_type"] == "video" and s["height"] == 96 for s in streams)


@pytest.mark.parametrize("kind", sorted(ML_TASK_TYPES))
@pytest.mark.usefixtures("lean")
def test_an_ml_task_on_the_lean_worker_fails_naming_the_image(tmp_path: Path, kind: str) -> None:
    assert kind in MINIMAL, f"no minimal settings for the ML task type {kind!r} in this test"
    clip = make_clip(tmp_path, "in", duration=1.0, size=(160, 120))
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "small", "transcode": {"video": {"codec": "h264", "height": 96}}},
            {"name": "understand", kind: MINIMAL[kind]},
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, clip.path, out, timeout=120)
    # One line naming the task, the reason and what to run instead, with the
    # exit code of a spec this worker cannot run (errors.SpecError's).
    # Exit 2: retrying on the same image cannot help.
    assert done.returncode == ModelUnavailableError.exit_code == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "ModelUnavailable" in done.stderr
    assert "'understand'" in done.stderr
    assert INSTALL_HINT in done.stderr
    # Refused before any task ran: no half-done outputs of the other task.
    assert not list(out.rglob("*.mp4"))


def test_every_ml_task_type_is_covered_here() -> None:
    # Until the understanding task types land, ML_TASK_TYPES is empty and the
    # refusal test has no case: say so instead of passing silently.
    if not ML_TASK_TYPES:
        pytest.skip("no task type needs the ML packages in this checkout yet")
    assert set(ML_TASK_TYPES) <= set(MINIMAL)
