"""The chart's objects as the real API server sees them: a server-side dry run
of the default and the external-services renders in namespaces that enforce the
restricted Pod Security profile, and what the operator's ServiceAccount may do
(`kubectl auth can-i --list`) compared with the allow-list of config/rbac.yaml."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart.test_chart import EXTERNAL
from tests.support.binaries import binary, versions
from tests.support.helm import CHART, run_helm
from tests.support.workflow_api import ensure_namespace

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
# Granted to every authenticated user by the cluster's default roles.
EVERYONE = {
    ("selfsubjectreviews.authentication.k8s.io", "create"),
    ("selfsubjectaccessreviews.authorization.k8s.io", "create"),
    ("selfsubjectrulesreviews.authorization.k8s.io", "create"),
}


def _template(release: str, namespace: str, *sets: str) -> str:
    args = ["template", release, str(CHART), "--kube-version", versions()["KUBERNETES_VERSION"]]
    for value in sets:
        args += ["--set", value]
    return run_helm(*args, namespace=namespace).stdout


def _kubectl(kubeconfig: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("kubectl"), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("values", [[], EXTERNAL], ids=["bundled", "external"])
def test_the_api_server_accepts_every_rendered_object_under_the_restricted_profile(
    kube_cluster: Any, values: list[str]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, workflows = f"chart-{suffix}", f"chart-media-{suffix}"
    api = kube_cluster.api_client()
    ensure_namespace(api, namespace, labels=RESTRICTED)
    ensure_namespace(api, workflows, labels=RESTRICTED)
    rendered = _template(
        f"mf-{suffix}",
        namespace,
        f"rbac.namespaces={{{workflows}}}",
        f"storage.shareWithNamespaces={{{workflows}}}",
        # The dashboard ConfigMap too (the PrometheusRule needs prometheus-operator's CRD).
        "metrics.grafanaDashboard.enabled=true",
        *values,
    )
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert {"Deployment", "ServiceAccount", "Pod"} <= kinds  # Pod: the `helm test` hook
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    # Admission looks pods' ServiceAccounts up (a dry run creates none): create them first.
    accounts = [d for d in docs if d["kind"] == "ServiceAccount"]
    created = _kubectl(
        kube_cluster.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(accounts)
    )
    assert created.returncode == 0, created.stderr
    applied = _kubectl(
        kube_cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=rendered
    )
    assert applied.returncode == 0, applied.stderr
    assert "PodSecurity" not in applied.stderr, applied.stderr
    assert applied.stdout.count("(server dry run)") == len(docs)


def _allowed_by_config_rbac() -> set[tuple[str, str]]:
    """(resource as `kubectl auth can-i --list` names it, verb) from config/rbac.yaml."""
    role = next(
        d
        for d in yaml.safe_load_all((REPO / "config" / "rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )
    allowed = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                base, _, sub = resource.partition("/")
                name = f"{base}.{group}" if group else base
                name = f"{name}/{sub}" if sub else name
                allowed |= {(name, verb) for verb in rule["verbs"]}
    return allowed


def test_the_operator_service_account_may_do_nothing_beyond_config_rbac(kube_cluster: Any) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, workflows = f"chart-{suffix}", f"chart-media-{suffix}"
    api = kube_cluster.api_client()
    ensure_namespace(api, namespace, labels=RESTRICTED)
    ensure_namespace(api, workflows, labels=RESTRICTED)
    rendered = _template(
        f"mf-{suffix}",
        namespace,
        f"rbac.namespaces={{{workflows}}}",
        f"storage.shareWithNamespaces={{{workflows}}}",
    )
    rbac = [
        d
        for d in yaml.safe_load_all(rendered)
        if d
        and d["kind"]
        in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
        and "test" not in d["metadata"]["name"]
    ]
    applied = _kubectl(kube_cluster.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    assert applied.returncode == 0, applied.stderr
    account = next(d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount")
    allowed = _allowed_by_config_rbac() | EVERYONE
    for where in (workflows, namespace):
        listed = _kubectl(
            kube_cluster.kubeconfig, "auth", "can-i", "--list", "-n", where,
            f"--as=system:serviceaccount:{namespace}:{account}",
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        granted = set()
        for line in listed.stdout.splitlines()[1:]:
            columns = re.split(r"\s{2,}", line.strip())
            if len(columns) < 4 or not columns[0] or columns[0].startswith("["):
                continue  # a non-resource URL row (discovery, granted to everyone)
            resource, verbs = columns[0], columns[3].strip("[]").split()
            granted |= {(resource, verb) for verb in verbs}
        beyond = granted - allowed
        assert beyond == set(), (
            f"in {where}, the operator may do more than config/rbac.yaml: {sorted(beyond)}"
        )
        # ...and what the code needs is there (in the Workflows' namespace).
        if where == workflows:
            assert ("jobs.batch", "create") in granted
            assert ("workflows.mediaflow.dev/status", "patch") in granted
