"""Where the local stack finds its pinned binaries (built by scripts/tools.sh)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .processes import StackError


def cache_dir() -> Path:
    return Path(os.environ.get("MEDIAFLOW_CACHE", Path.home() / ".cache" / "mediaflow"))


def binary(name: str) -> str:
    """Absolute path of a stack binary: the project's cache first, then PATH."""
    candidate = cache_dir() / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise StackError(f"{name} not found in {candidate.parent} or on PATH; run `make tools` first")


def versions() -> dict[str, str]:
    """The pinned versions of scripts/versions.env."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "versions.env"
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}
