"""docs/reliability.md is exactly what the renderer makes of docs/reliability.json, so
its figures are ones `make reliability` measured; and the renderer's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import results

pytestmark = pytest.mark.unit


def test_the_doc_is_the_rendering_of_the_measured_results() -> None:
    rows = results.load(results.RESULTS_JSON)
    assert rows, "docs/reliability.json holds no results: run `make reliability`"
    assert results.RESULTS_DOC.read_text() == results.render(rows), (
        "docs/reliability.md differs from its rendering: run `python -m tests.reliability.results`"
    )


def test_every_row_names_its_outcome_load_fault_and_measurements() -> None:
    for row in results.load(results.RESULTS_JSON):
        assert {"scenario", "variant", "outcome", "load", "fault", "inputs", "measured"} <= set(row)
        assert "seed" in row["inputs"], row["scenario"]


def test_a_row_is_one_table_line_with_seven_cells() -> None:
    row = {
        "scenario": "s",
        "variant": "default",
        "outcome": "passed",
        "load": {"uploads": 3},
        "fault": "a | b\nc",
        "inputs": {"seed": 1, "points": [1, 2]},
        "measured": {"all done s": 12.345, "counters": {"received": 3}},
    }
    line = results.render_row(row)
    assert line == (
        "| s | default | passed | uploads=3 | a \\| b c | seed=1, points=1/2 "
        "| all done s=12.3, counters={received=3} |"
    )
    assert results.render([row]).endswith(results.HEADER + "\n" + line + "\n")


def test_merge_replaces_rows_of_the_same_scenario_and_variant(tmp_path: Path) -> None:
    old = [
        {"scenario": "b", "variant": "default", "order": 2, "outcome": "failed"},
        {"scenario": "a", "variant": "heavy", "order": 1, "outcome": "passed"},
    ]
    new = [{"scenario": "b", "variant": "default", "order": 2, "outcome": "passed"}]
    merged = results.merge(old, new)
    assert [(r["scenario"], r["outcome"]) for r in merged] == [("a", "passed"), ("b", "passed")]
    path = tmp_path / "r.json"
    results.save(merged, path)
    assert results.load(path) == merged
