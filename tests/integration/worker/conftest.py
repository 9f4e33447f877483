"""Fixtures for the worker's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_png


@pytest.fixture(scope="session")
def logo_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small semi-transparent PNG, stored as assets/<bucket>/<key> for local runs."""
    root = tmp_path_factory.mktemp("assets")
    path = root / "assets" / "logo.png"
    path.parent.mkdir(parents=True)
    make_png(path, "red@0.6", (64, 32))
    return path
