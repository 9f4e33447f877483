"""Every YAML file users or Kubernetes tools read has no bare `y`/`n` scalar.

kubectl, helm, Argo CD and Flux read YAML 1.1 (go-yaml v2), where a plain `y`,
`Y`, `n` or `N` is a boolean; PyYAML reads them as strings. A CRD with a
property named `y` failed `helm install` ("cannot unmarshal bool into ...
of type string"), and a Workflow with a `y:` key would reach the API server as
`"true":`. Quoted (`'y'`) they are strings everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
YAML_11_ONLY_BOOLEANS = {"y", "Y", "n", "N"}
# Go-templated chart files are not YAML until helm renders them.
FILES = sorted(
    path
    for pattern in ("crds/*.yaml", "charts/mediaflow/crds/*.yaml", "charts/mediaflow/values.yaml",
                    "config/**/*.yaml", "examples/**/*.yaml")
    for path in REPO.glob(pattern)
)  # fmt: skip


def _bare_booleans(text: str) -> list[str]:
    found = []
    for token in yaml.scan(text):
        if not isinstance(token, yaml.ScalarToken):
            continue
        if token.plain and token.value in YAML_11_ONLY_BOOLEANS:
            found.append(f"line {token.start_mark.line + 1}: {token.value}")
    return found


def test_the_scan_finds_a_bare_y_and_not_a_quoted_one() -> None:
    assert _bare_booleans("a:\n  y: 1\n  b: [y, 'n']\n") == ["line 2: y", "line 3: y"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_bare_yaml_11_boolean(path: Path) -> None:
    assert _bare_booleans(path.read_text()) == [], path
