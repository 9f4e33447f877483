"""``mediaflow-operator`` as a user runs it: --help and --version answer and
exit instead of starting the operator."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mediaflow_api import __version__
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # No cluster around: an operator that started anyway would not exit by itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    env["KUBECONFIG"] = os.devnull
    return subprocess.run(
        [sys.executable, "-m", "mediaflow_operator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_help_prints_usage_and_every_setting() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mediaflow-operator")
    for name in Settings.model_fields:
        assert f"MEDIAFLOW_{name.upper()}" in result.stdout


def test_version_prints_the_release() -> None:
    result = _run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mediaflow-operator {__version__}"
