"""The worker-ml image's build-time proof (``understanding.selfcheck``), run
here on the development venv with no network: every package imports and every
packaged model loads, without fetching anything."""

from __future__ import annotations

import os
import subprocess

import pytest

from mediaflow_worker.understanding.packages import MODELS

from .helpers import NO_NETWORK, WORKER

pytestmark = pytest.mark.integration


def test_every_packaged_model_loads_without_network() -> None:
    python = WORKER[0]
    done = subprocess.run(
        [*NO_NETWORK, python, "-m", "mediaflow_worker.understanding.selfcheck"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MEDIAFLOW_ML_THREADS": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(MODELS) + 1, lines
    for model, line in zip(MODELS, lines, strict=False):
        assert model.path_in_distribution in line, line
        expected = (
            "ONNX on CPUExecutionProvider" if line.split()[2].endswith(".onnx") else "present"
        )
        assert line.endswith(expected), line
    assert lines[-1] == "pocketsphinx decoder: loaded"
