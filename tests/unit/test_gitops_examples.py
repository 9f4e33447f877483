"""The GitOps examples in examples/gitops/ stay true to the chart: each parses,
installs charts/mediaflow from a git repository, applies the CRDs the way
docs/install.md says, and sets only value keys that charts/mediaflow/values.yaml
has (values.schema.json would reject any other key at install time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
CHART_PATH = "charts/mediaflow"
CHART_VALUES: dict[str, Any] = yaml.safe_load((REPO / CHART_PATH / "values.yaml").read_text())


def _documents(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((GITOPS / name).read_text()) if d is not None]
    assert docs, f"{name} holds no document"
    assert all(isinstance(d, dict) for d in docs), name
    return docs


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _unknown_keys(values: dict[str, Any], chart: dict[str, Any], at: str = "") -> list[str]:
    """Value paths set in ``values`` that ``chart`` (values.yaml) does not have.
    Below a key whose default is an empty map (labels, nodeSelector, ...) any key
    is the user's own; a map must meet a map, and a non-map a non-map."""
    wrong: list[str] = []
    for key, value in values.items():
        path = f"{at}{key}"
        if key not in chart:
            wrong.append(path)
            continue
        default = chart[key]
        if isinstance(default, dict) != isinstance(value, dict):
            wrong.append(f"{path} (a map in one, not in the other)")
        elif isinstance(value, dict) and default:
            wrong += _unknown_keys(value, default, f"{path}.")
    return wrong


def _argocd() -> dict[str, Any]:
    return _one(_documents("argocd-application.yaml"), "Application")


def _flux() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = _documents("flux-helmrelease.yaml")
    return _one(docs, "GitRepository"), _one(docs, "HelmRelease")


def test_the_walk_catches_a_wrong_key() -> None:
    assert _unknown_keys({"operator": {"image": {"repo": "x"}}}, CHART_VALUES) == [
        "operator.image.repo"
    ]
    assert _unknown_keys({"rbac": {"namespaces": {"a": 1}}}, CHART_VALUES)
    assert not _unknown_keys({"commonLabels": {"team": "media"}}, CHART_VALUES)


def test_the_argocd_application_installs_the_chart_with_its_crds() -> None:
    app = _argocd()
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    source = app["spec"]["source"]
    assert source["path"] == CHART_PATH
    assert source["repoURL"].endswith(".git")
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    # helm template cannot `lookup` the generated Secret: credentials must be the user's.
    assert source["helm"]["valuesObject"]["storage"]["existingSecret"]


def test_the_flux_helmrelease_installs_the_chart_and_replaces_its_crds() -> None:
    repo, release = _flux()
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    chart = release["spec"]["chart"]["spec"]
    assert Path(chart["chart"]).as_posix() == CHART_PATH
    assert chart["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
    assert repo["metadata"]["namespace"] == release["metadata"]["namespace"]
    assert release["spec"]["install"]["crds"] == "CreateReplace"
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"


@pytest.mark.parametrize("example", ["argocd", "flux"])
def test_every_value_the_example_sets_is_a_chart_value(example: str) -> None:
    if example == "argocd":
        values = _argocd()["spec"]["source"]["helm"]["valuesObject"]
    else:
        values = _flux()[1]["spec"]["values"]
    assert values, "the example sets no values"
    assert _unknown_keys(values, CHART_VALUES) == []
    # The four images no registry publishes yet are all pointed elsewhere.
    for component in ("operator", "worker", "minio", "nats"):
        repository = values[component]["image"]["repository"]
        assert not repository.startswith("ghcr.io/mediaflow/"), component


def test_the_install_guide_shows_both_examples() -> None:
    guide = (REPO / "docs" / "install.md").read_text()
    for name in ("argocd-application.yaml", "flux-helmrelease.yaml"):
        assert f"examples/gitops/{name}" in guide
