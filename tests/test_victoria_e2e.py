"""VictoriaMetrics as the query engine, end to end: what it answers differently, and its faults.

A real single-node VictoriaMetrics holding the fault-test mesh (tests/test_faults_e2e.py), behind
the fault proxy. The job finds that the engine speaks MetricsQL and counts with increase_pure()
in one query per count, which is exact where PromQL's two parts would count a new counter's
first value twice; a VictoriaMetrics cluster's `isPartial: true` is a failed query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from analyzer.collect import queries
from analyzer.collect.queries import REQUESTS, TCP_OPENED
from tests.support import fault_proxy as fp
from tests.support.e2e import Report, run_report, write_policies
from tests.support.fault_proxy import FaultProxy, Request
from tests.support.victoria import serve_mesh
from tests.test_faults_e2e import assert_incomplete, fault_mesh, verdicts

# The data/etl CronJob's one burst: 30 an hour for ten minutes, its counter born inside the window.
BURST = 5


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[tuple[FaultProxy, Path]]:
    mesh = fault_mesh()
    server = serve_mesh(mesh, tmp_path_factory.mktemp("victoriametrics"), now)
    proxy = FaultProxy(server.url)
    yield proxy, write_policies(mesh, tmp_path_factory.mktemp("victoria"))
    proxy.close()
    server.stop()


@pytest.fixture
def proxy(served: tuple[FaultProxy, Path]) -> Iterator[FaultProxy]:
    served[0].reset()
    yield served[0]
    served[0].reset()


@pytest.fixture(scope="module")
def first_run(
    served: tuple[FaultProxy, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, list[Request]]:
    """The fault-free report, and every request it sent."""
    proxy, policies = served
    proxy.reset()
    report = run_report(None, proxy.url, policies, tmp_path_factory.mktemp("baseline") / "reports")
    return report, list(proxy.seen)


@pytest.fixture(scope="module")
def baseline(first_run: tuple[Report, list[Request]]) -> Report:
    return first_run[0]


def run(served: tuple[FaultProxy, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Report:
    return run_report(capsys, served[0].url, served[1], tmp_path / "reports", "--prometheus-timeout", "2")


def burst(report: Report) -> float:
    [edge] = [e for e in report.edges_to("data/postgres") if e["source_workload"] == "unknown"]
    return float(edge["plaintext_count"])


def test_the_job_counts_with_metricsql_and_the_burst_exactly(first_run: tuple[Report, list[Request]]) -> None:
    baseline, requests_sent = first_run
    assert baseline.code == 0 and baseline.summary["complete"] is True
    assert baseline.summary["warnings"] == []
    assert (baseline.verdict("web/api"), baseline.verdict("data/postgres")) == ("BLOCKED", "BLOCKED")
    assert baseline.verdict("shop/cart") == "READY"
    sent = [r for r in requests_sent if r.kind in ("totals", "timeline")]
    # One query per count (totals and timeline of each metric), no born-counter part.
    assert len(sent) == 4 and all(r.query.startswith("sum by (") and "increase_pure(" in r.query for r in sent)
    assert not any("unless" in r.query for r in requests_sent)
    # The plaintext responses (authorization findings) are counted the same exact way.
    responses = [r for r in requests_sent if r.kind == "responses"]
    assert len(responses) == 1 and "increase_pure(" in responses[0].query
    # Every query asked VictoriaMetrics cluster to refuse a partial answer.
    queries_sent = [r for r in requests_sent if r.path.startswith("/api/v1/query")]
    assert queries_sent and all(r.params.get("deny_partial_response") == ["1"] for r in queries_sent)
    # No extrapolation: whole counts, exactly what the sample mesh sent in the last day.
    assert burst(baseline) == BURST
    edge = next(e for e in baseline.edges_to("web/api") if e["source_workload"] == "unknown")
    assert float(edge["plaintext_count"]) == 60 * 24


def test_promql_parts_on_victoriametrics_count_a_new_counters_first_value_twice(
    served: tuple[FaultProxy, Path], now: datetime
) -> None:
    """Why the job does not send PromQL's two parts to VictoriaMetrics: its increase() already
    counts this born counter from 0, so growth + first value over-counts (never under-counts)."""
    total = 0.0
    for part in queries.PARTS:
        promql = queries.WindowTotals(TCP_OPENED, timedelta(days=1), part).promql()
        answer = requests.post(f"{served[0].url}/api/v1/query", data={"query": promql, "time": now.timestamp()})
        answer.raise_for_status()
        for series in answer.json()["data"]["result"]:
            labels = series["metric"]
            if (labels["destination_workload"], labels["source_workload"]) == ("postgres", "unknown"):
                total += float(series["value"][1])
    assert BURST < total <= 2 * BURST


def test_a_failed_probe_keeps_the_promql_parts_and_the_verdicts(
    served: tuple[FaultProxy, Path], proxy: FaultProxy, baseline: Report, tmp_path: Path, capsys
) -> None:
    proxy.add(lambda r: r.kind == "probe", fp.status(400, "unknown function"))
    report = run(served, tmp_path, capsys)
    assert report.code == 0 and report.summary["complete"] is True
    assert verdicts(report) == verdicts(baseline)
    assert any("unless" in r.query for r in proxy.seen)
    # The documented cost of that fallback on VictoriaMetrics: an over-count, never a miss.
    assert BURST < burst(report) <= 2 * BURST


def is_totals(metric: str) -> Callable[[Request], bool]:
    return lambda r: r.about("totals", metric)


@pytest.mark.parametrize(
    ("metric", "still_blocked"), [(REQUESTS, "data/postgres"), (TCP_OPENED, "web/api")], ids=["requests", "tcp"]
)
def test_a_partial_cluster_answer_makes_every_verdict_resting_on_it_unknown(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    metric: str,
    still_blocked: str,
) -> None:
    """vmselect answers `isPartial: true` when a vmstorage node is down (unless told to deny it)."""
    proxy.add(is_totals(metric), fp.rewrite(lambda d: d.update(isPartial=True)))
    report = run(served, tmp_path, capsys)
    everything = {"shop/cart", "shop/frontend", "web/api", "data/postgres"}
    assert_incomplete(report, baseline, everything - {still_blocked}, warning="isPartial")
    assert any(f"totals:{metric}" in w and "isPartial" in w for w in report.summary["warnings"])


def test_a_partial_coverage_answer_leaves_nothing_ready(
    served: tuple[FaultProxy, Path], proxy: FaultProxy, baseline: Report, tmp_path: Path, capsys
) -> None:
    proxy.add(lambda r: r.kind == "coverage", fp.rewrite(lambda d: d.update(isPartial=True)))
    report = run(served, tmp_path, capsys)
    assert_incomplete(report, baseline, {"shop/cart", "shop/frontend"}, warning="how far back")
    assert "READY" not in verdicts(report).values()
