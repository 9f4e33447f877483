"""The worker-ml image and the development venv install the same silero-vad:
its one version source is scripts/versions.env, which the Makefile reads and
scripts/images.sh passes to worker/Dockerfile.ml (which has no default)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from tests.support.binaries import versions

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_pinned_once() -> None:
    pinned = versions()["SILERO_VAD_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    for path in ("Makefile", "scripts/images.sh", "worker/Dockerfile.ml"):
        assert pinned not in (ROOT / path).read_text(), f"{path} repeats {pinned}"


def test_the_makefile_and_the_image_build_read_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert (
        "SILERO_VAD_VERSION := $(shell sed -n 's/^SILERO_VAD_VERSION=//p' scripts/versions.env)"
        in makefile
    )
    images = (ROOT / "scripts/images.sh").read_text()
    assert '--build-arg "SILERO_VAD_VERSION=$SILERO_VAD_VERSION"' in images
    dockerfile = (ROOT / "worker/Dockerfile.ml").read_text()
    assert re.search(r"^ARG SILERO_VAD_VERSION$", dockerfile, re.MULTILINE)
    assert '"silero-vad==${SILERO_VAD_VERSION}"' in dockerfile


def test_the_installed_wheel_is_the_pinned_one() -> None:
    try:
        installed = importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("silero-vad is not installed here (make venv installs it)")
    assert installed == versions()["SILERO_VAD_VERSION"]
