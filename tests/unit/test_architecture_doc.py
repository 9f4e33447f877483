"""docs/architecture.md names every module of the three packages, so its maps
stay true as modules come and go."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("api/mediaflow_api", "operator/mediaflow_operator", "worker/mediaflow_worker")


def _modules() -> list[tuple[str, str]]:
    found = []
    for package in PACKAGES:
        root = REPO / package
        for path in sorted(root.rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            found.append((package, str(path.relative_to(root))))
    return found


@pytest.mark.parametrize(("package", "module"), _modules(), ids=lambda v: str(v))
def test_every_module_is_in_the_architecture_map(package: str, module: str) -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    assert f"`{module}`" in doc, f"{package}/{module} is missing from docs/architecture.md"
