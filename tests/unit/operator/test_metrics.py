"""The operator's metrics: documented exactly (docs/metrics.md), bounded labels,
series of deleted Workflows removed, and every metric the chart's dashboard and
alert rules use exists."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import mediaflow_operator
import mediaflow_worker
from mediaflow_operator import metrics
from mediaflow_worker import errors

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "mediaflow"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def registered() -> dict[str, str]:
    """Exposed name (counters with ``_total``) -> type of every ``mediaflow_*``
    metric registered once every operator module is imported."""
    for module in pkgutil.walk_packages(mediaflow_operator.__path__, "mediaflow_operator."):
        importlib.import_module(module.name)
    found = {}
    for family in REGISTRY.collect():
        if family.name.startswith("mediaflow_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = family.type
    return found


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The table of docs/metrics.md: name -> (type, labels)."""
    rows = {}
    for line in (REPO / "docs" / "metrics.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`mediaflow_"):
            continue
        labels = tuple(re.findall(r"`([a-z_]+)`", cells[2]))
        rows[cells[0].strip("`")] = (cells[1], labels)
    return rows


def test_docs_list_exactly_the_registered_metrics_with_their_types_and_labels() -> None:
    docs = documented()
    names = registered()
    assert sorted(docs) == sorted(names), "docs/metrics.md and the registry differ"
    for name, kind in names.items():
        assert docs[name][0] == kind, name
    assert sorted(metrics.LABEL_NAMES) == sorted(names), "every metric is defined in metrics.py"
    for name, labels in metrics.LABEL_NAMES.items():
        assert docs[name][1] == labels, name


def test_names_follow_the_conventions() -> None:
    for name, kind in registered().items():
        assert name.startswith("mediaflow_")
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name


def test_every_per_workflow_metric_can_be_forgotten() -> None:
    per_workflow = {
        wrapper.metric.describe()[0].name
        for wrapper in vars(metrics).values()
        if isinstance(wrapper, metrics.PerWorkflow)
    }
    for name, labels in metrics.LABEL_NAMES.items():
        if "workflow" in labels:
            assert labels[:2] == ("namespace", "workflow"), name
            assert name.removesuffix("_total") in per_workflow, f"{name} is not a PerWorkflow"


def _exposed(namespace: str, workflow: str) -> list[str]:
    text = generate_latest(REGISTRY).decode()
    return [
        line
        for line in text.splitlines()
        if f'namespace="{namespace}"' in line and f'workflow="{workflow}"' in line
    ]


def test_forget_workflow_removes_every_series_of_that_workflow_only() -> None:
    for workflow in ("gone", "kept"):
        metrics.JOBS_CREATED.labels("obs-ns", workflow, "event").inc()
        metrics.JOB_RESULTS.labels("obs-ns", workflow, "failed", "BadInput").inc()
        metrics.UPLOAD_TO_JOB.labels("obs-ns", workflow).observe(0.3)
        metrics.BACKLOG.labels("obs-ns", workflow).set(4)
        metrics.NOTIFICATION_DELIVERIES.labels("obs-ns", workflow, "webhook-0", "retried").inc()
        metrics.NOTIFICATIONS_PENDING.labels("obs-ns", workflow, "queue-1").set(2)
    assert len(_exposed("obs-ns", "gone")) > 6
    metrics.forget_workflow("obs-ns", "gone")
    assert _exposed("obs-ns", "gone") == []
    assert len(_exposed("obs-ns", "kept")) > 6
    metrics.forget_workflow("obs-ns", "gone")  # twice is fine
    metrics.forget_workflow("obs-ns", "kept")
    assert _exposed("obs-ns", "kept") == []
    # A Workflow created again under the same name starts from zero.
    metrics.JOBS_CREATED.labels("obs-ns", "gone", "event").inc()
    assert any(line.endswith(" 1.0") for line in _exposed("obs-ns", "gone"))
    metrics.forget_workflow("obs-ns", "gone")


def _worker_reasons() -> set[str]:
    """Every reason the worker can report: its error classes' and the literal
    ``reason="..."`` arguments in its code."""
    found = {
        cls.reason
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.WorkerError)
    }
    for path in Path(mediaflow_worker.__path__[0]).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "reason"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.add(node.value.value)
    return found


def test_every_reason_the_worker_reports_is_a_known_label_value() -> None:
    reasons = _worker_reasons()
    assert {"BadInput", "Interrupted", "InternalError", "OutputTooSmall"} <= reasons
    assert reasons <= metrics.JOB_REASONS, reasons - metrics.JOB_REASONS


@pytest.mark.parametrize(
    ("outcome", "reason", "label"),
    [
        ("succeeded", "", "Succeeded"),
        ("succeeded", "UpToDate", "UpToDate"),
        ("superseded", "", "Superseded"),
        ("failed", "", "Failed"),
        ("failed", "BackoffLimitExceeded", "BackoffLimitExceeded"),
        ("failed", "OOMKilled", "OOMKilled"),
        ("failed", "Something the worker of tomorrow says", "Other"),
    ],
)
def test_job_reasons_are_bounded(outcome: str, reason: str, label: str) -> None:
    assert metrics.job_reason(outcome, reason) == label


def test_sink_ids_name_the_index_in_the_spec() -> None:
    assert metrics.sink_id("webhook", 0) == "webhook-0"
    assert metrics.sink_id("queue", 3) == "queue-3"


# --- the chart's dashboard and alert rules ---


def _used(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\bmediaflow_[a-z_]+", expr)}


def _known(name: str, names: dict[str, str]) -> bool:
    if name in names:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and names.get(base) == "histogram":
            return True
    return False


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "mediaflow.json").read_text())
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return found


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load((CHART / "rules" / "mediaflow.rules.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_every_metric_the_dashboard_uses_exists() -> None:
    names = registered()
    used = _used(_dashboard_exprs())
    assert len(used) > 10
    assert sorted(n for n in used if not _known(n, names)) == []


def test_every_metric_the_alert_rules_use_exists_and_the_issues_alerts_are_there() -> None:
    names = registered()
    used = _used(_rule_exprs())
    assert sorted(n for n in used if not _known(n, names)) == []
    rules = yaml.safe_load((CHART / "rules" / "mediaflow.rules.yaml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts == {
        "MediaflowBacklogGrowing",
        "MediaflowNotificationsFailing",
        "MediaflowJobsRefused",
        "MediaflowReconcileFailing",
        "MediaflowStreamNearlyFull",
    }
    documented_alerts = set(
        re.findall(r"\| `(Mediaflow\w+)` \|", (REPO / "docs" / "metrics.md").read_text())
    )
    assert documented_alerts == alerts


def test_the_unknown_name_check_would_catch_a_typo() -> None:
    names = registered()
    assert not _known("mediaflow_jobs_createdd_total", names)
    assert not _known("mediaflow_backlog_messages_bucket", names)  # a gauge has no buckets
    assert _known("mediaflow_upload_to_job_seconds_bucket", names)


def _balanced(expr: str) -> bool:
    """Brackets of a PromQL expression close in order (strings skipped): the typo a
    name check cannot see. Not a PromQL parser; Prometheus checks the rest on load."""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quoted = False
    for char in expr:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([{":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return False
    return not stack and not quoted


def test_every_expression_of_the_dashboard_and_the_rules_has_balanced_brackets() -> None:
    assert not _balanced("sum(rate(x[5m])")
    assert not _balanced('x{a="b"')
    bad = [e for e in [*_dashboard_exprs(), *_rule_exprs()] if not _balanced(e)]
    assert bad == []
