"""One version source: ``mediaflow_api.__version__``.

setuptools reads the distribution's version from it, the worker re-exports it, and the
operator derives its default worker image tag from it. Manifests and docs spell the
image tag out; these tests fail when one of them disagrees with the version source.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import mediaflow_worker
from mediaflow_api import __version__
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Where image references are written out for people and manifests (scripts/ build the
# tag from the version source instead).
SCANNED = [
    "README.md",
    "CONTRIBUTING.md",
    "docs",
    "config",
    "examples",
    "charts",
    "operator",
    "worker",
]
SUFFIXES = {".md", ".yaml", ".yml", ".tpl", ".txt"}
# A literal tag; "$version" or "{{ .Chart.AppVersion }}" are not literals and are not matched.
IMAGE_REF = re.compile(r"ghcr\.io/mediaflow/([a-z0-9-]+):(v?[0-9][0-9A-Za-z.+-]*)")


def _scanned_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and (p.suffix in SUFFIXES or p.name == "Dockerfile")
            ]
    return files


def test_the_version_is_a_release_number() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_setuptools_reads_the_version_from_the_contract_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"], "the version lives in mediaflow_api only"
    assert "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "mediaflow_api.__version__"}


def test_the_worker_and_the_operator_use_the_version_source() -> None:
    assert mediaflow_worker.__version__ == __version__
    default_image = Settings.model_fields["worker_image"].default
    assert default_image == f"ghcr.io/mediaflow/worker:{__version__}"


def test_every_image_tag_in_manifests_and_docs_is_the_version() -> None:
    found: list[tuple[str, str]] = []
    for path in _scanned_files():
        for match in IMAGE_REF.finditer(path.read_text(errors="replace")):
            found.append((str(path.relative_to(ROOT)), match.group(0)))
    assert found, "no image reference found: the scan is looking in the wrong place"
    wrong = [(where, ref) for where, ref in found if not ref.endswith(f":{__version__}")]
    assert not wrong, f"image tags that are not {__version__} (mediaflow_api.__version__): {wrong}"


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(__version__)}\]", changelog, re.MULTILINE)
