"""Fixtures for the worker's integration tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def logo_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small semi-transparent PNG, stored as assets/<bucket>/<key> for local runs."""
    root = tmp_path_factory.mktemp("assets")
    path = root / "assets" / "logo.png"
    path.parent.mkdir(parents=True)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red@0.6:s=64x32,format=rgba",
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path
