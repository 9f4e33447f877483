"""Per-tier time limits (a pytest plugin, loaded with ``-p tests.tiers`` from pyproject).

One limit for every test was either too long for a unit test stuck in a loop (it held
the run for ten minutes) or too short for an e2e test that starts an operator and waits
for Jobs. Each tier gets its own limit instead; ``timeout`` in pyproject.toml is only the
fallback for a test that carries no tier marker (collection refuses those anyway).

A test that needs more than its tier's limit says so itself with
``@pytest.mark.timeout(N)``; an explicit marker always wins. The limit covers the
test's setup too, so the first test of a session also pays for starting the stack
(about 6.5 s; more on a loaded 2-core machine).
"""

from __future__ import annotations

import pytest

# Seconds. The slowest test of each tier on a 2-core machine with other work beside it
# (docs/development.md): unit well under 1 s, integration 28 s, e2e 46 s. Each limit leaves
# about six times that, so a slow CI machine is not a failure, but a hang is.
TIER_TIMEOUTS = {
    "unit": 60,
    "integration": 180,
    "e2e": 300,
    # A fault scenario: bursts, the fault, and recovery (about 1-2 min by default; the
    # heavy variant's scenarios ask for more with their own marker).
    "reliability": 600,
}


def timeout_for(item: pytest.Item) -> int | None:
    """The limit of the item's tier (the longest, if it somehow carries several)."""
    limits = [limit for tier, limit in TIER_TIMEOUTS.items() if item.get_closest_marker(tier)]
    return max(limits) if limits else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue  # the test's own limit wins
        limit = timeout_for(item)
        if limit is not None:
            item.add_marker(pytest.mark.timeout(limit))
