"""The Helm chart (charts/mediaflow) renders what the project's own manifests say.

These tests run the pinned helm binary (`make tools`, found like every stack binary:
``$MEDIAFLOW_CACHE/bin`` first, then PATH) on the chart; nothing is installed. They hold
the chart to the project's sources of truth: the CRD in crds/, the RBAC rules of
config/rbac.yaml, the version in mediaflow_api, the operator's Settings.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediaflow_api import __version__
from mediaflow_operator.settings import ENV_PREFIX, Settings
from tests.support.binaries import versions
from tests.support.helm import CHART, run_helm

# helm is a real tool run as a process: integration tier (no stack needed).
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
KUBE_VERSION = versions()["KUBERNETES_VERSION"]
NAMESPACE = "mediaflow-system"
LABELS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
]
EXTERNAL = [
    "minio.enabled=false",
    "nats.enabled=false",
    "externalMinio.endpoint=s3.example.com:443",
    "externalMinio.secure=true",
    "externalNats.url=nats://nats.example.com:4222",
    "storage.accessKey=mediaflow",
    "storage.secretKey=not-a-real-secret",
]
# Every optional part switched on: standby, namespaced RBAC, ServiceMonitor, dashboard,
# alert rules, ARN, command.
EVERYTHING = [
    "standby.enabled=true",
    "rbac.namespaces={media,video}",
    "storage.shareWithNamespaces={media,video}",
    "metrics.serviceMonitor.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "events.arn=arn:minio:sqs::MEDIAFLOW:nats",
    "events.fastArn=arn:minio:sqs::MEDIAFLOW_FAST:nats",
    "worker.command={mediaflow-worker,job}",
    "worker.modelsVolume.persistentVolumeClaim.claimName=models",
    "operator.debug=true",
]
POD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet", "Pod"}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(*args, timeout=30, check=False)


def render(*sets: str, include_crds: bool = False) -> list[dict[str, Any]]:
    args = ["template", "rel", str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    if include_crds:
        args.append("--include-crds")
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] == "Pod":
            yield f"Pod/{doc['metadata']['name']}", doc["spec"]
        elif doc["kind"] in POD_KINDS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def operator_env(
    docs: list[dict[str, Any]], name: str = "rel-mediaflow-operator"
) -> dict[str, Any]:
    spec = one(docs, "Deployment", name)["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "operator")
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def normalized(rules: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], ...]]:
    """RBAC rules as sorted tuples: order of rules and of list items does not matter."""
    return sorted(tuple(tuple(sorted(rule.get(key) or [])) for key in RULE_KEYS) for rule in rules)


RULE_KEYS = ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")


def config_cluster_role() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "config" / "rbac.yaml").read_text())
    return next(d for d in docs if d["kind"] == "ClusterRole")


def allowed(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples granted by rules without resourceNames."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# --- Chart metadata and CRDs ---


def test_the_chart_crds_are_the_project_crds_byte_for_byte() -> None:
    for name in (
        "mediaflow.dev_workflows.yaml",
        "mediaflow.dev_mediatemplates.yaml",
        "mediaflow.dev_clustermediatemplates.yaml",
    ):
        project = (ROOT / "crds" / name).read_bytes()
        chart = (CHART / "crds" / name).read_bytes()
        assert chart == project, f"run make crds: charts/mediaflow/crds/{name} differs"


def test_the_chart_ships_kopfs_peering_crd_of_config_peering_yaml() -> None:
    config = next(yaml.safe_load_all((ROOT / "config" / "peering.yaml").read_text()))
    chart = yaml.safe_load((CHART / "crds" / "clusterkopfpeerings.kopf.dev.yaml").read_text())
    assert config["kind"] == "CustomResourceDefinition"
    assert chart == config
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [
        "clusterkopfpeerings.kopf.dev.yaml",
        "mediaflow.dev_clustermediatemplates.yaml",
        "mediaflow.dev_mediatemplates.yaml",
        "mediaflow.dev_workflows.yaml",
    ]


def test_chart_and_app_versions_are_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "mediaflow"
    assert chart["version"] == __version__
    assert chart["appVersion"] == __version__
    assert chart["kubeVersion"] == ">=1.29.0-0"


def test_helm_lint_strict_passes() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


# --- Rendering ---


@pytest.mark.parametrize("sets", [[], EXTERNAL, EVERYTHING], ids=["defaults", "external", "all"])
def test_every_object_has_the_app_kubernetes_io_labels(sets: list[str]) -> None:
    docs = render(*sets)
    assert len(docs) > 5
    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        missing = [key for key in LABELS if key not in labels]
        assert not missing, f"{doc['kind']}/{doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/version"] == __version__
        assert labels["app.kubernetes.io/instance"] == "rel"


@pytest.mark.parametrize("sets", [[], EVERYTHING], ids=["defaults", "all"])
def test_selectors_hold_no_chart_or_version_label(sets: list[str]) -> None:
    selectors: list[tuple[str, dict[str, str]]] = []
    for doc in render(*sets):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = doc.get("spec") or {}
        if doc["kind"] in POD_KINDS - {"Pod"}:
            selectors.append((where, spec["selector"]["matchLabels"]))
            template_labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= template_labels.items(), where
        elif doc["kind"] == "Service":
            selectors.append((where, spec["selector"]))
        elif doc["kind"] == "ServiceMonitor":
            selectors.append((where, spec["selector"]["matchLabels"]))
    assert selectors
    for where, selector in selectors:
        assert "helm.sh/chart" not in selector, where
        assert "app.kubernetes.io/version" not in selector, where


def test_defaults_bundle_minio_and_nats_with_the_notification_target() -> None:
    docs = render()
    minio = one(docs, "StatefulSet", "rel-mediaflow-minio")
    nats = one(docs, "StatefulSet", "rel-mediaflow-nats")
    pinned = versions()
    minio_container = minio["spec"]["template"]["spec"]["containers"][0]
    nats_container = nats["spec"]["template"]["spec"]["containers"][0]
    assert minio_container["image"] == f"ghcr.io/mediaflow/minio:{pinned['MINIO_VERSION']}"
    assert nats_container["image"] == f"ghcr.io/mediaflow/nats:{pinned['NATS_SERVER_VERSION']}"
    env = {e["name"]: e.get("value") for e in minio_container["env"]}
    assert env["MINIO_NOTIFY_NATS_ENABLE_MEDIAFLOW"] == "on"
    assert (
        env["MINIO_NOTIFY_NATS_ADDRESS_MEDIAFLOW"] == "rel-mediaflow-nats.mediaflow-system.svc:4222"
    )
    assert env["MINIO_NOTIFY_NATS_SUBJECT_MEDIAFLOW"] == Settings().nats_subject
    assert env["MINIO_NOTIFY_NATS_JETSTREAM_MEDIAFLOW"] == "on"
    assert env["MINIO_NOTIFY_NATS_QUEUE_DIR_MEDIAFLOW"] == "/data/.mediaflow-queue"
    assert int(env["MINIO_NOTIFY_NATS_QUEUE_LIMIT_MEDIAFLOW"]) > 0
    assert nats_container["args"][:3] == ["-js", "-sd", "/data"]
    for sts in (minio, nats):
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        # volumeClaimTemplates are immutable: a version label there would break upgrades.
        assert "app.kubernetes.io/version" not in claim["metadata"]["labels"]
    operator = operator_env(docs)
    assert operator["MEDIAFLOW_NATS_URL"] == "nats://rel-mediaflow-nats.mediaflow-system.svc:4222"
    assert operator["MEDIAFLOW_MINIO_NOTIFY_TARGET_ID"] == "MEDIAFLOW"
    assert operator["MEDIAFLOW_DEFAULT_STORAGE_SECRET"] == f"{NAMESPACE}/rel-mediaflow-storage"
    # The fast target: same NATS and subject, no queue dir, and the operator told of it.
    assert env["MINIO_NOTIFY_NATS_ENABLE_MEDIAFLOW_FAST"] == "on"
    assert (
        env["MINIO_NOTIFY_NATS_ADDRESS_MEDIAFLOW_FAST"]
        == env["MINIO_NOTIFY_NATS_ADDRESS_MEDIAFLOW"]
    )
    assert env["MINIO_NOTIFY_NATS_SUBJECT_MEDIAFLOW_FAST"] == Settings().nats_subject
    assert env["MINIO_NOTIFY_NATS_JETSTREAM_MEDIAFLOW_FAST"] == "on"
    assert not [
        name
        for name in env
        if name.startswith("MINIO_NOTIFY_NATS_QUEUE_") and name.endswith("_FAST")
    ]
    assert operator["MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID"] == "MEDIAFLOW_FAST"
    assert Settings.from_env(
        {k: v for k, v in operator.items() if isinstance(v, str)}
    ).notify_arns == ("arn:minio:sqs::MEDIAFLOW:nats", "arn:minio:sqs::MEDIAFLOW_FAST:nats")
    headless = one(docs, "Service", "rel-mediaflow-minio-headless")
    assert headless["spec"]["clusterIP"] == "None"


def test_without_fast_delivery_minio_has_only_the_durable_target() -> None:
    docs = render("events.fastDelivery=false")
    minio = one(docs, "StatefulSet", "rel-mediaflow-minio")
    env = {e["name"] for e in minio["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MINIO_NOTIFY_NATS_QUEUE_DIR_MEDIAFLOW" in env
    assert not [name for name in env if name.endswith("_MEDIAFLOW_FAST")]
    operator = operator_env(docs)
    assert "MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID" not in operator
    assert "MEDIAFLOW_MINIO_NOTIFY_FAST_ARN" not in operator


def test_a_fast_target_id_equal_to_the_durable_one_fails() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "events.fastTargetId=MEDIAFLOW",
    )  # fmt: skip
    assert result.returncode != 0
    assert "events.fastTargetId" in result.stderr


def test_persistence_disabled_uses_emptydir_volumes() -> None:
    docs = render("minio.persistence.enabled=false", "nats.persistence.enabled=false")
    for name in ("rel-mediaflow-minio", "rel-mediaflow-nats"):
        sts = one(docs, "StatefulSet", name)
        assert "volumeClaimTemplates" not in sts["spec"]
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes["data"]


def test_storage_class_dash_means_no_dynamic_provisioning() -> None:
    docs = render("minio.persistence.storageClass=-", "nats.persistence.storageClass=local")
    minio_claim = one(docs, "StatefulSet", "rel-mediaflow-minio")["spec"]["volumeClaimTemplates"]
    nats_claim = one(docs, "StatefulSet", "rel-mediaflow-nats")["spec"]["volumeClaimTemplates"]
    assert minio_claim[0]["spec"]["storageClassName"] == ""
    assert nats_claim[0]["spec"]["storageClassName"] == "local"
    default = one(render(), "StatefulSet", "rel-mediaflow-minio")["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in default[0]["spec"]


def test_external_minio_and_nats_render_no_statefulset() -> None:
    docs = render(*EXTERNAL)
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    env = operator_env(docs)
    assert env["MEDIAFLOW_NATS_URL"] == "nats://nats.example.com:4222"
    secret = one(docs, "Secret", "rel-mediaflow-storage")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "endpoint": "s3.example.com:443",
        "secure": "true",
        "accessKey": "mediaflow",
        "secretKey": "not-a-real-secret",
    }


def test_external_minio_without_credentials_fails_with_what_to_set() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "minio.enabled=false", "--set", "externalMinio.endpoint=s3.example.com:443",
    )  # fmt: skip
    assert result.returncode != 0
    assert "storage.existingSecret" in result.stderr


def test_disabled_nats_without_external_url_fails_with_what_to_set() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "nats.enabled=false",
    )  # fmt: skip
    assert result.returncode != 0
    assert "externalNats.url" in result.stderr


def test_generated_credentials_are_random_and_an_existing_secret_replaces_them() -> None:
    first = one(render(), "Secret", "rel-mediaflow-storage")["data"]
    second = one(render(), "Secret", "rel-mediaflow-storage")["data"]
    assert first["accessKey"] != second["accessKey"]
    assert first["secretKey"] != second["secretKey"]
    docs = render("storage.existingSecret=my-storage")
    assert not [d for d in docs if d["kind"] == "Secret"]
    env = operator_env(docs)
    assert env["MEDIAFLOW_S3_SECRET_KEY"] == {
        "secretKeyRef": {"name": "my-storage", "key": "secretKey"}
    }
    assert env["MEDIAFLOW_DEFAULT_STORAGE_SECRET"] == f"{NAMESPACE}/my-storage"


# --- The operator Deployment ---


def test_the_operator_is_one_replica_replaced_with_recreate() -> None:
    docs = render(*EVERYTHING)
    for name in ("rel-mediaflow-operator", "rel-mediaflow-operator-standby"):
        spec = one(docs, "Deployment", name)["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
    assert [d["metadata"]["name"] for d in render() if d["kind"] == "Deployment"] == [
        "rel-mediaflow-operator"
    ]


def test_the_standby_peers_with_a_lower_priority_and_the_peering_object_exists() -> None:
    docs = render(*EVERYTHING)
    active, standby = operator_env(docs), operator_env(docs, "rel-mediaflow-operator-standby")
    assert active["MEDIAFLOW_PEERING_NAME"] == standby["MEDIAFLOW_PEERING_NAME"] == "rel-mediaflow"
    assert int(active["MEDIAFLOW_PEERING_PRIORITY"]) > int(standby["MEDIAFLOW_PEERING_PRIORITY"])
    one(docs, "ClusterKopfPeering", "rel-mediaflow")
    selectors = [
        one(docs, "Deployment", n)["spec"]["selector"]["matchLabels"]
        for n in ("rel-mediaflow-operator", "rel-mediaflow-operator-standby")
    ]
    assert selectors[0] != selectors[1], "two Deployments must not select each other's pods"
    assert "MEDIAFLOW_PEERING_NAME" not in operator_env(render())


def test_a_standby_priority_not_below_the_active_one_fails() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "standby.enabled=true", "--set", "standby.priority=100",
    )  # fmt: skip
    assert result.returncode != 0
    assert "standby.priority" in result.stderr


def test_every_operator_setting_can_be_set_by_the_chart() -> None:
    env = operator_env(render(*EVERYTHING))
    expected = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    missing = sorted(expected - env.keys())
    assert not missing, f"operator settings the chart never sets: {missing}"
    assert env["MEDIAFLOW_NAMESPACES"] == "media video"
    assert env["MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES"] == "media video"
    assert env["MEDIAFLOW_WORKER_COMMAND"] == "mediaflow-worker job"
    assert env["MEDIAFLOW_DEBUG"] == "1"


def test_chart_values_are_valid_operator_settings() -> None:
    env = operator_env(render(*EVERYTHING))
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = Settings.from_env(plain)
    assert settings.namespaces == ("media", "video")
    assert settings.default_storage_secret_ref == (NAMESPACE, "rel-mediaflow-storage")
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.models_volume_source == {"persistentVolumeClaim": {"claimName": "models"}}


def test_the_worker_image_default_is_the_operators_default() -> None:
    env = operator_env(render())
    assert env["MEDIAFLOW_WORKER_IMAGE"] == Settings.model_fields["worker_image"].default
    assert env["MEDIAFLOW_WORKER_IMAGE"] == f"ghcr.io/mediaflow/worker:{__version__}"
    spec = one(render(), "Deployment", "rel-mediaflow-operator")["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == f"ghcr.io/mediaflow/operator:{__version__}"


def test_the_worker_ml_image_default_is_the_operators_default_and_can_be_moved() -> None:
    env = operator_env(render())
    assert env["MEDIAFLOW_WORKER_ML_IMAGE"] == Settings.model_fields["worker_ml_image"].default
    assert env["MEDIAFLOW_WORKER_ML_IMAGE"] == f"ghcr.io/mediaflow/worker-ml:{__version__}"
    assert "MEDIAFLOW_MODELS_VOLUME" not in env
    moved = operator_env(
        render("worker.mlImage.repository=registry.example/ml", "worker.mlImage.tag=v7")
    )
    assert moved["MEDIAFLOW_WORKER_ML_IMAGE"] == "registry.example/ml:v7"


def test_the_models_volume_reaches_the_operator_as_a_volume_source() -> None:
    env = operator_env(render("worker.modelsVolume.configMap.name=classifiers"))
    settings = Settings.from_env({"MEDIAFLOW_MODELS_VOLUME": env["MEDIAFLOW_MODELS_VOLUME"]})
    assert settings.models_volume_source == {"configMap": {"name": "classifiers"}}


@pytest.mark.parametrize(
    "sets",
    [
        ["worker.modelsVolume.configMap.name=a", "worker.modelsVolume.secret.secretName=b"],
        ["worker.modelsVolume.name=models"],
    ],
    ids=["two-sources", "a-name"],
)
def test_the_values_schema_takes_one_volume_source_for_the_models(sets: list[str]) -> None:
    args = ["template", "rel", str(CHART), "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    result = helm(*args)
    assert result.returncode != 0
    assert "modelsVolume" in result.stderr, result.stderr


def test_probes_use_the_liveness_endpoint_and_metrics_the_metrics_port() -> None:
    docs = render("operator.healthPort=8181", "metrics.port=9191")
    container = one(docs, "Deployment", "rel-mediaflow-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8181, "metrics": 9191}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MEDIAFLOW_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8181/healthz"
    assert env["MEDIAFLOW_METRICS_PORT"] == "9191"
    service = one(docs, "Service", "rel-mediaflow-operator-metrics")
    assert service["spec"]["ports"][0]["port"] == 9191
    off = render("metrics.enabled=false", "metrics.serviceMonitor.enabled=true")
    assert operator_env(off)["MEDIAFLOW_METRICS_PORT"] == "0"
    assert not [
        d
        for d in off
        if d["kind"] in ("Service", "ServiceMonitor") and "metrics" in d["metadata"]["name"]
    ]


def test_the_dashboard_and_the_alert_rules_render_when_enabled_and_only_then() -> None:
    docs = render(
        "metrics.grafanaDashboard.enabled=true",
        "metrics.grafanaDashboard.labels.team=media",
        "metrics.grafanaDashboard.annotations.grafana_folder=Media",
        "metrics.prometheusRule.enabled=true",
        "metrics.prometheusRule.labels.release=prom",
    )
    dashboard_map = one(docs, "ConfigMap", "rel-mediaflow-dashboard")
    assert dashboard_map["metadata"]["namespace"] == NAMESPACE
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard_map["metadata"]["labels"]["team"] == "media"
    assert dashboard_map["metadata"]["annotations"] == {"grafana_folder": "Media"}
    shipped = (CHART / "dashboards" / "mediaflow.json").read_text()
    dashboard = json.loads(dashboard_map["data"]["mediaflow.json"])
    assert dashboard == json.loads(shipped)  # verbatim: Helm did not touch its {{ }}
    assert dashboard["uid"] == "mediaflow"
    assert dashboard["panels"]
    rule = one(docs, "PrometheusRule", "rel-mediaflow-operator")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prom"
    shipped_rules = yaml.safe_load((CHART / "rules" / "mediaflow.rules.yaml").read_text())
    assert rule["spec"] == shipped_rules
    entries = [entry for group in rule["spec"]["groups"] for entry in group["rules"]]
    assert len(entries) == 5
    for entry in entries:
        assert entry["expr"].strip(), entry["alert"]
        assert entry["labels"]["severity"] in ("warning", "critical"), entry["alert"]
    # Prometheus' own templates reach it untouched.
    assert "{{ $labels.workflow }}" in entries[0]["annotations"]["summary"]
    monitor = one(
        render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor", "rel-mediaflow-operator"
    )
    # The metrics' namespace label is the Workflow's: the target's must not rename it.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    # Off by default, and off with the metrics.
    for sets in (
        [],
        [
            "metrics.enabled=false",
            "metrics.grafanaDashboard.enabled=true",
            "metrics.prometheusRule.enabled=true",
        ],
    ):
        kinds = {(d["kind"], d["metadata"]["name"]) for d in render(*sets)}
        assert ("ConfigMap", "rel-mediaflow-dashboard") not in kinds
        assert ("PrometheusRule", "rel-mediaflow-operator") not in kinds


# --- RBAC ---


def test_the_cluster_role_has_exactly_the_rules_of_config_rbac_yaml() -> None:
    docs = render()
    rendered = one(docs, "ClusterRole", "rel-mediaflow-operator")["rules"]
    assert normalized(rendered) == normalized(config_cluster_role()["rules"])
    binding = one(docs, "ClusterRoleBinding", "rel-mediaflow-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-mediaflow-operator", "namespace": NAMESPACE}
    ]
    assert not [
        d
        for d in docs
        if d["kind"] in ("Role", "RoleBinding") and "test" not in d["metadata"]["name"]
    ]


def test_config_rbac_yaml_lets_the_operator_update_workflow_finalizers() -> None:
    assert ("mediaflow.dev", "workflows/finalizers", "update") in allowed(
        config_cluster_role()["rules"]
    )


def test_namespaced_rbac_grants_no_more_than_config_rbac_yaml() -> None:
    docs = render("rbac.namespaces={media,video}", "storage.shareWithNamespaces={media,video}")
    config = allowed(config_cluster_role()["rules"])
    cluster = one(docs, "ClusterRole", "rel-mediaflow-operator")["rules"]
    # Cluster-wide only what cannot be namespaced, and the cluster-wide list of Workflows.
    assert allowed(cluster) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", verb)
        for verb in ("get", "list", "watch")
    } | {("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")} | {
        ("", "namespaces", v) for v in ("get", "list", "watch")
    } | {("mediaflow.dev", "workflows", "list")} | {
        ("mediaflow.dev", "clustermediatemplates", v) for v in ("get", "list", "watch")
    } | {("mediaflow.dev", "clustermediatemplates/status", "patch")}
    roles = [d for d in docs if d["kind"] == "Role" and "test" not in d["metadata"]["name"]]
    by_namespace = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in roles}
    assert set(by_namespace) == {
        ("media", "rel-mediaflow-operator"),
        ("video", "rel-mediaflow-operator"),
        (NAMESPACE, "rel-mediaflow-operator-storage-secret"),
    }
    for role in roles:
        assert allowed(role["rules"]) <= config, role["metadata"]
    watched = by_namespace[("media", "rel-mediaflow-operator")]["rules"]
    assert allowed(watched) | allowed(cluster) == config
    (secret_rule,) = by_namespace[(NAMESPACE, "rel-mediaflow-operator-storage-secret")]["rules"]
    assert secret_rule["resourceNames"] == ["rel-mediaflow-storage"]
    assert secret_rule["verbs"] == ["get"]
    bindings = {
        (d["metadata"]["namespace"], d["roleRef"]["name"])
        for d in docs
        if d["kind"] == "RoleBinding" and "test" not in d["metadata"]["name"]
    }
    assert bindings == set(by_namespace)


def test_the_helm_test_pod_may_only_handle_workflows_in_its_namespace() -> None:
    docs = render("rbac.namespaces={media}", "storage.shareWithNamespaces={media}")
    role = one(docs, "Role", "rel-mediaflow-test")
    assert role["metadata"]["namespace"] == "media"
    assert allowed(role["rules"]) == {
        ("mediaflow.dev", "workflows", v) for v in ("get", "create", "delete")
    }
    pod = one(docs, "Pod", "rel-mediaflow-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["serviceAccountName"] == "rel-mediaflow-test"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["NS"] == "media"


# --- Values schema ---


def test_the_values_schema_rejects_an_unknown_key_by_name() -> None:
    cases = {
        "operator.replicas=2": "replicas",
        "minio.persistance.size=1Gi": "persistance",
        "typoAtTheTop=1": "typoAtTheTop",
    }
    for setting, unknown in cases.items():
        result = helm(
            "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", setting
        )
        assert result.returncode != 0, setting
        assert f"'{unknown}' not allowed" in result.stderr, result.stderr


def test_the_values_schema_rejects_a_value_outside_its_enum() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "operator.logFormat=xml",
    )  # fmt: skip
    assert result.returncode != 0
    assert "logFormat" in result.stderr


# Kubernetes' own nested types, passed through and validated by the API server.
PASSTHROUGH = {
    "/properties/operator/properties/affinity/properties/nodeAffinity",
    "/properties/operator/properties/affinity/properties/podAffinity",
    "/properties/operator/properties/affinity/properties/podAntiAffinity",
    "/properties/operator/properties/extraEnv/items/properties/valueFrom",
    "/properties/worker/properties/modelsVolume/additionalProperties",
}


def test_every_object_level_of_the_values_schema_is_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_levels: list[str] = []

    def walk(node: dict[str, Any], where: str) -> None:
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            extra = node.get("additionalProperties", True)
            if extra is True and where not in PASSTHROUGH:
                open_levels.append(where or "/")
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{where}/properties/{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}/items")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}/additionalProperties")

    walk(schema, "")
    assert not open_levels, f"objects without additionalProperties: false: {open_levels}"


def test_every_values_key_has_a_comment_above_it() -> None:
    """A key of the schema (not an entry of a map such as resources) has a comment above it."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    undocumented: list[str] = []
    stack: list[tuple[int, dict[str, Any]]] = [(-1, schema)]
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#") and not stripped.startswith("-") and ":" in stripped:
            indent = len(line) - len(line.lstrip())
            while stack[-1][0] >= indent:
                stack.pop()
            key = stripped.split(":", 1)[0]
            parent = stack[-1][1]
            child = (parent.get("properties") or {}).get(key)
            if child is not None:
                kubernetes_type = str(parent.get("description", "")).startswith("Kubernetes")
                if not previous.startswith("#") and not kubernetes_type:
                    undocumented.append(f"values.yaml:{number}: {key}")
                stack.append((indent, child))
            else:
                assert parent.get("additionalProperties") not in (None, False), (
                    f"values.yaml:{number}: {key} is not in values.schema.json"
                )
                stack.append((indent, {}))
        previous = stripped
    assert not undocumented, undocumented


# --- Security ---


@pytest.mark.parametrize("sets", [[], EXTERNAL, EVERYTHING], ids=["defaults", "external", "all"])
def test_every_pod_meets_the_restricted_profile_with_a_read_only_root(sets: list[str]) -> None:
    specs = list(pod_specs(render(*sets)))
    assert len(specs) >= 2
    for where, spec in specs:
        pod = spec.get("securityContext") or {}
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container.get("securityContext") or {}
            at = f"{where} container {container['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, at
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], at
            assert not sc.get("capabilities", {}).get("add"), at
            assert sc.get("readOnlyRootFilesystem") is True, at
            assert sc.get("privileged") is not True, at
            assert sc.get("runAsUser", 1) != 0, at
        assert not spec.get("hostNetwork"), where
        assert not spec.get("hostPID"), where
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v], where


def test_openshift_can_leave_the_user_to_the_platform() -> None:
    docs = render(
        "operator.podSecurityContext.runAsUser=null",
        "operator.podSecurityContext.runAsGroup=null",
    )
    pod = one(docs, "Deployment", "rel-mediaflow-operator")["spec"]["template"]["spec"]
    assert "runAsUser" not in pod["securityContext"]
    assert "runAsGroup" not in pod["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_default_secret_is_shared_with_no_namespace_unless_listed() -> None:
    assert "MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES" not in operator_env(render())
    env = operator_env(render("storage.shareWithNamespaces={media,video}"))
    assert env["MEDIAFLOW_DEFAULT_STORAGE_NAMESPACES"] == "media video"


def test_a_smoke_test_namespace_that_is_not_shared_fails_with_what_to_set() -> None:
    result = helm(
        "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "rbac.namespaces={media}",
    )  # fmt: skip
    assert result.returncode != 0
    assert "storage.shareWithNamespaces" in result.stderr
    assert "tests.enabled=false" in result.stderr
