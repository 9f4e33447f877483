"""The arithmetic of the pipeline benchmark (``bench/pipeline_bench.py``), kept
pure so that unit tests can check it: percentiles, medians of runs with their
baseline and ratio, the burst's ideal time, the API server's write counters
and the operator's footprint read from ``/proc``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# (group, resource) pairs only the operator writes in the measured windows: the
# Job controller writes Jobs only through the ``status`` subresource, so a write
# to a Job itself (create, the "counted" annotation, delete) is the operator's,
# and nothing but the operator (and kopf inside it) writes Workflows. The
# benchmark checks the Job attribution against its own raw-create baseline.
OPERATOR_RESOURCES: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("batch", "jobs", ""),
        ("mediaflow.dev", "workflows", ""),
        ("mediaflow.dev", "workflows", "status"),
    }
)

WriteKey = tuple[str, str, str, str]  # (group, resource, subresource, verb)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between the
    closest ranks (numpy's default), so a p99 of 20 samples lies between the two
    largest instead of being the maximum by construction."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; a zero baseline is an error of the measurement,
    not a ratio of infinity."""
    if baseline == 0:
        raise ValueError(f"ratio of {value} against a zero baseline")
    return value / baseline


@dataclass(frozen=True)
class Figure:
    """One benchmark figure: the median of its runs, the runs themselves and,
    where it has one, the median of its baseline (measured in the same runs) and
    the ratio of the two medians."""

    median: float
    runs: list[float]
    unit: str
    baseline: float | None = None
    baseline_runs: list[float] | None = None
    ratio: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form written to ``bench/results.json``."""
        out: dict[str, Any] = {"median": self.median, "runs": self.runs, "unit": self.unit}
        if self.baseline is not None:
            out.update(baseline=self.baseline, baseline_runs=self.baseline_runs, ratio=self.ratio)
        return out


def figure(
    runs: Sequence[float], unit: str, baseline_runs: Sequence[float] | None = None
) -> Figure:
    """Median of ``runs``; with ``baseline_runs``, the baseline's median and
    the ratio figure / baseline."""
    if not runs:
        raise ValueError(f"a figure in {unit} without runs")
    median = statistics.median(runs)
    if baseline_runs is None:
        return Figure(median, list(runs), unit)
    base = statistics.median(baseline_runs)
    return Figure(median, list(runs), unit, base, list(baseline_runs), ratio(median, base))


def ideal_burst_seconds(uploads: int, concurrency: int, mean_job_seconds: float) -> float:
    """The issue's ideal for a burst: ``uploads / concurrency * mean Job time``,
    i.e. every slot busy from the first upload to the last Job's end with no
    gap between Jobs (a fractional last wave counts as a fraction)."""
    if uploads <= 0 or concurrency <= 0:
        raise ValueError(f"ideal of {uploads} uploads at concurrency {concurrency}")
    return uploads / concurrency * mean_job_seconds


def apiserver_writes(metrics_text: str) -> dict[WriteKey, float]:
    """Write requests (POST, PUT, PATCH, DELETE) served so far, by (group,
    resource, subresource, verb), summed over response codes, scopes and
    versions, from the text the API server's ``/metrics`` serves
    (``apiserver_request_total``). Dry runs are left out: they store nothing."""
    totals: dict[WriteKey, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if sample.name != "apiserver_request_total":
                continue
            labels = sample.labels
            verb = labels.get("verb", "")
            if verb not in WRITE_VERBS or labels.get("dry_run"):
                continue
            key = (
                labels.get("group", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
                verb,
            )
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def writes_delta(
    before: Mapping[WriteKey, float], after: Mapping[WriteKey, float]
) -> dict[WriteKey, float]:
    """What was written between two scrapes (keys with no change left out)."""
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    return {key: value for key, value in delta.items() if value}


def sum_writes(delta: Mapping[WriteKey, float], resources: Iterable[tuple[str, str, str]]) -> float:
    """Writes of ``delta`` to the (group, resource, subresource) triples given."""
    wanted = set(resources)
    return sum(value for (g, r, s, _verb), value in delta.items() if (g, r, s) in wanted)


def event_writes(delta: Mapping[WriteKey, float]) -> float:
    """Writes of Events (the core and the ``events.k8s.io`` API), by anyone."""
    return sum(value for (_g, r, _s, _v), value in delta.items() if r == "events")


def rss_bytes(proc_status: str) -> int:
    """Resident set size from the text of ``/proc/<pid>/status`` (``VmRSS``)."""
    for line in proc_status.splitlines():
        if line.startswith("VmRSS:"):
            amount, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(amount) * 1024
    raise ValueError("no VmRSS line in /proc/<pid>/status (a zombie or kernel thread?)")


def cpu_ticks(proc_stat: str) -> int:
    """User + system CPU time in clock ticks from ``/proc/<pid>/stat``. The
    command name (field 2) may hold spaces and parentheses, so fields are
    counted after its closing parenthesis."""
    rest = proc_stat[proc_stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def cpu_share(ticks_before: int, ticks_after: int, ticks_per_second: int, wall: float) -> float:
    """CPU used over ``wall`` seconds, in cores (1.0 = one core busy throughout)."""
    if wall <= 0:
        raise ValueError(f"CPU share over {wall} s")
    return (ticks_after - ticks_before) / ticks_per_second / wall
