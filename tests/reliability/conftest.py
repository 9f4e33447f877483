"""Fixtures of the fault suite: its load (default or heavy), the seed of its random
choices, an operator stack per scenario, and the results written for docs/reliability.md.

The scenarios stop and restart the session's servers (NATS, MinIO, kube-apiserver),
so the tier runs in a pytest session of its own (`make reliability`; `make test`
runs it after the other tiers): collection refuses a session that mixes it with
other tiers.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Stack, stack_fixture
from tests.reliability import results

HEAVY_ENV = "MEDIAFLOW_RELIABILITY_HEAVY"
SEED_ENV = "MEDIAFLOW_RELIABILITY_SEED"
RESULTS_ENV = "MEDIAFLOW_RELIABILITY_RESULTS"  # where to write the rows (default docs/)
OUTCOME = pytest.StashKey[str]()


@dataclass(frozen=True)
class Load:
    """How hard the scenarios push: uploads per burst and how many faults."""

    variant: str
    burst: int  # uploads per burst
    kills: int  # operator SIGKILLs
    nats_outage_s: float  # NATS held down this long (MinIO's target retries every 2-3 s)
    pod_deletions: int  # worker pods deleted while running
    poison_each: int  # poison messages of each kind
    settle_s: float  # deadline for everything to be processed once the faults are over
    limit_s: int  # the time limit of one scenario


DEFAULT_LOAD = Load(
    "default",
    burst=10,
    kills=3,
    nats_outage_s=20,
    pod_deletions=5,
    poison_each=3,
    settle_s=240,
    limit_s=600,
)
HEAVY_LOAD = Load(
    "heavy",
    burst=40,
    kills=6,
    nats_outage_s=90,
    pod_deletions=15,
    poison_each=10,
    settle_s=1200,
    limit_s=2400,
)


def current_load() -> Load:
    """``MEDIAFLOW_RELIABILITY_HEAVY=1`` (`make reliability HEAVY=1`): the heavy variant."""
    return HEAVY_LOAD if os.environ.get(HEAVY_ENV) == "1" else DEFAULT_LOAD


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heavy variant's scenarios need a longer limit than the tier's (tests/tiers.py
    leaves a test with its own timeout marker alone)."""
    limit = current_load().limit_s
    for item in items:
        if item.get_closest_marker("reliability") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(limit))


def pytest_collection_finish(session: pytest.Session) -> None:
    mine = [i for i in session.items if i.get_closest_marker("reliability")]
    if mine and len(mine) != len(session.items):
        raise pytest.UsageError(
            "the reliability tier restarts the stack's servers: run it in a pytest session "
            "of its own (`make reliability`, or `pytest -m reliability`)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            item.stash[OUTCOME] = f"expected failure ({report.wasxfail})"
        else:
            item.stash[OUTCOME] = report.outcome


@pytest.fixture(scope="session")
def load() -> Load:
    """The variant this run measures."""
    return current_load()


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    """The seed of every random choice of the run: printed, recorded, repeatable."""
    value = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1, 10**6))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # fixtures' output is captured otherwise
            reporter.write_line(f"reliability seed: {value} (repeat with {SEED_ENV}={value})")
    return value


@pytest.fixture
def rng(seed: int, request: pytest.FixtureRequest) -> random.Random:
    """A generator per scenario, so one scenario's choices do not depend on the others."""
    return random.Random(f"{seed}/{request.node.name}")


@pytest.fixture(scope="session")
def result_rows() -> Iterator[list[results.Row]]:
    """Rows of this session; merged into the results JSON when the session ends."""
    rows: list[results.Row] = []
    yield rows
    if rows:
        path = Path(os.environ.get(RESULTS_ENV) or results.RESULTS_JSON)
        results.save(results.merge(results.load(path), rows), path)


@pytest.fixture
def measure(
    request: pytest.FixtureRequest, result_rows: list[results.Row], load: Load, seed: int
) -> Iterator[dict[str, Any]]:
    """The scenario's row: it fills ``scenario``, ``order``, ``fault``, ``inputs`` and
    ``measured``; the outcome is added when the test is over."""
    row: dict[str, Any] = {"variant": load.variant, "inputs": {"seed": seed}, "measured": {}}
    yield row
    if "scenario" in row:
        row["outcome"] = request.node.stash.get(OUTCOME, "error")
        row["inputs"]["machine"] = f"{os.cpu_count()} CPUs"
        result_rows.append(row)


@pytest.fixture
def open_stack(
    kube_cluster: Any, minio_server: Any, nats_server: Any, tmp_path: Path
) -> Iterator[Callable[..., Stack]]:
    """Opens a namespace with a running operator (``stack_fixture`` of the e2e harness,
    arguments as there); all are cleaned up after the test."""
    with ExitStack() as stacks:

        def open_(**kw: Any) -> Stack:
            return stacks.enter_context(
                contextmanager(stack_fixture)(
                    kube_cluster, minio_server, nats_server, tmp_path, **kw
                )
            )

        yield open_
