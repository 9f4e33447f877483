"""The pipeline benchmark's arithmetic (bench/pipeline_stats.py): percentiles,
figures with baselines, the burst's ideal, the API server's write counters and
the operator's footprint as /proc shows it."""

from __future__ import annotations

import pytest

from bench.pipeline_stats import (
    OPERATOR_RESOURCES,
    apiserver_writes,
    cpu_share,
    cpu_ticks,
    event_writes,
    figure,
    ideal_burst_seconds,
    percentile,
    ratio,
    rss_bytes,
    sum_writes,
    writes_delta,
)

pytestmark = pytest.mark.unit


def test_percentiles_interpolate_between_ranks() -> None:
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 5.0
    assert percentile(samples, 25) == 2.0
    # 99th of 1..5: 0.96 of the way from 4 to 5, not the maximum.
    assert percentile(samples, 99) == pytest.approx(4.96)
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_figure_is_the_median_of_runs_with_its_baseline_and_ratio() -> None:
    fig = figure([30.0, 10.0, 20.0], "Jobs/s", [50.0, 40.0, 60.0])
    assert fig.median == 20.0
    assert fig.baseline == 50.0
    assert fig.ratio == pytest.approx(0.4)
    assert fig.as_dict() == {
        "median": 20.0,
        "runs": [30.0, 10.0, 20.0],
        "unit": "Jobs/s",
        "baseline": 50.0,
        "baseline_runs": [50.0, 40.0, 60.0],
        "ratio": pytest.approx(0.4),
    }
    plain = figure([1.0, 2.0], "ms")
    assert plain.median == 1.5
    assert "ratio" not in plain.as_dict()


def test_a_zero_baseline_or_no_runs_is_an_error() -> None:
    with pytest.raises(ValueError, match="zero baseline"):
        ratio(1.0, 0.0)
    with pytest.raises(ValueError, match="without runs"):
        figure([], "ms")


def test_ideal_burst_is_uploads_over_concurrency_times_job_time() -> None:
    # The figure: 1,000 uploads, 20 Workflows x 20, Jobs of 1.5 s.
    assert ideal_burst_seconds(1000, 400, 1.5) == pytest.approx(3.75)
    assert ideal_burst_seconds(40, 20, 2.0) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="concurrency 0"):
        ideal_burst_seconds(10, 0, 1.0)


def _request(group: str, resource: str, sub: str, verb: str, value: int, **extra: str) -> str:
    labels = {
        "code": "200",
        "component": "apiserver",
        "dry_run": "",
        "group": group,
        "resource": resource,
        "scope": "resource",
        "subresource": sub,
        "verb": verb,
        "version": "v1",
        **extra,
    }
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"apiserver_request_total{{{text}}} {value}"


# What kube-apiserver serves, in its own order: counters by code, a dry run, a
# read, and a histogram family that must not be mistaken for the counter.
METRICS = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        "# TYPE apiserver_request_total counter",
        _request("batch", "jobs", "", "POST", 10, code="201"),
        _request("batch", "jobs", "", "POST", 2, code="409"),
        _request("batch", "jobs", "", "POST", 5, dry_run="All"),
        _request("batch", "jobs", "status", "PUT", 30),
        _request("batch", "jobs", "", "PATCH", 10),
        _request("batch", "jobs", "", "LIST", 99, scope="namespace"),
        _request("mediaflow.dev", "workflows", "status", "PATCH", 3, version="v1alpha1"),
        _request("", "events", "", "POST", 7, code="201"),
        _request("events.k8s.io", "events", "", "POST", 4, code="201"),
        "# HELP apiserver_request_duration_seconds Response latency",
        "# TYPE apiserver_request_duration_seconds histogram",
        'apiserver_request_duration_seconds_bucket{group="batch",verb="POST",le="0.1"} 12',
        "",
    ]
)


def test_apiserver_writes_sum_codes_and_leave_out_reads_and_dry_runs() -> None:
    writes = apiserver_writes(METRICS)
    assert writes == {
        ("batch", "jobs", "", "POST"): 12.0,  # 201 + 409: each was a request
        ("batch", "jobs", "status", "PUT"): 30.0,
        ("batch", "jobs", "", "PATCH"): 10.0,
        ("mediaflow.dev", "workflows", "status", "PATCH"): 3.0,
        ("", "events", "", "POST"): 7.0,
        ("events.k8s.io", "events", "", "POST"): 4.0,
    }


def test_operator_writes_are_jobs_and_workflows_not_the_job_controllers_status() -> None:
    before = apiserver_writes(METRICS)
    after = dict(before)
    after[("batch", "jobs", "", "POST")] += 4
    after[("batch", "jobs", "", "DELETE")] = 4
    after[("batch", "jobs", "status", "PUT")] += 12
    after[("mediaflow.dev", "workflows", "status", "PATCH")] += 1
    after[("", "events", "", "POST")] += 9
    delta = writes_delta(before, after)
    assert delta == {
        ("batch", "jobs", "", "POST"): 4.0,
        ("batch", "jobs", "", "DELETE"): 4.0,
        ("batch", "jobs", "status", "PUT"): 12.0,
        ("mediaflow.dev", "workflows", "status", "PATCH"): 1.0,
        ("", "events", "", "POST"): 9.0,
    }
    assert sum_writes(delta, OPERATOR_RESOURCES) == 9.0
    assert event_writes(delta) == 9.0


PROC_STATUS = "Name:\tpython3\nState:\tS (sleeping)\nVmPeak:\t  300000 kB\nVmRSS:\t   81920 kB\n"
# comm with a space and a parenthesis; utime 150, stime 50 (fields 14 and 15).
PROC_STAT = "4242 (python (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 1 2 3"


def test_proc_parsing_reads_rss_and_cpu_ticks() -> None:
    assert rss_bytes(PROC_STATUS) == 81920 * 1024
    assert cpu_ticks(PROC_STAT) == 200
    with pytest.raises(ValueError, match="VmRSS"):
        rss_bytes("Name:\tkthreadd\n")


def test_cpu_share_is_in_cores() -> None:
    assert cpu_share(100, 350, 100, 5.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="over 0"):
        cpu_share(0, 1, 100, 0.0)
