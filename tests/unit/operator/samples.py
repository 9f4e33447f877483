"""Sample Workflow specs shared by the unit tests."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "trigger": {"bucket": "uploads", "prefix": "incoming/", "suffixes": [".mp4", ".mov"]},
    "tasks": [{"name": "thumbs", "snapshot": {"times": ["1"]}}],
}


def spec(**overrides: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced."""
    result = copy.deepcopy(BASE)
    result.update(copy.deepcopy(overrides))
    return result
