"""The split query plan gives exactly what the one-query formula gave, on a real Prometheus.

The job sends growth and born counters as separate queries and adds them up per label set in
the client. The formula it replaced, `(grown + born) or grown or born`, is kept here as the
reference: same label sets, same counts, a Job's one burst included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests

from analyzer.collect import crosscheck, plan, queries
from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource, matrix_frame, vector_frame
from analyzer.config import PrometheusSettings
from analyzer.model.traffic import OBSERVATION_COLUMNS
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh
from tests.support.e2e import short_history
from tests.support.prometheus import serve_mesh
from tests.support.victoria import serve_mesh as victoria_serve_mesh
from tests.test_traffic_cases_e2e import BURST_AGO, cases_mesh

WINDOW = timedelta(days=1)


def reference_totals(metric: str, window: timedelta) -> str:
    """The formula the job sent before: both parts joined by PromQL's binary operators."""
    sel = queries.server_side(metric)
    w = queries.duration(window)
    grown = f"sum by ({queries.BY}) (increase({sel}[{w}]))"
    born = (
        f"sum by ({queries.BY}) (min_over_time({sel}[{w}]) "
        f"unless last_over_time({sel}[{queries.SEEN_BEFORE}] offset {w}))"
    )
    return f"({grown} + {born}) or {grown} or {born}"


def reference_timeline(metric: str, step: timedelta) -> str:
    sel = f'{metric}{{{queries.SERVER_SIDE}, connection_security_policy!="mutual_tls"}}'
    s, reach = queries.duration(step), queries.timeline_range(step)
    grown = f"(increase({sel}[{queries.duration(reach)}]) * {step / reach:.6g})"
    born = f"(min_over_time({sel}[{s}]) unless last_over_time({sel}[{queries.SEEN_BEFORE}] offset {s}))"
    return f"sum by ({queries.BY}) (({grown} + {born}) or {grown} or {born})"


def plan_mesh() -> SampleMesh:
    """Every case of traffic, plus a flow born inside the window that keeps growing (both parts count)."""
    mesh = cases_mesh()
    mesh.flows.append(Flow("shop/frontend", "shop/catalog", per_hour=90, start=timedelta(hours=5)))
    mesh.flows.append(Flow("batch/loader", "data/postgres", protocol="tcp", per_hour=12, plaintext=True))
    return short_history(mesh)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[PrometheusClient]:
    server = serve_mesh(plan_mesh(), Path(tmp_path_factory.mktemp("plan")), now)
    client = PrometheusClient(PrometheusSettings(url=server.url))
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([c for c in frame.columns if c != "count"]).reset_index(drop=True)


@pytest.mark.parametrize("metric", queries.METRICS)
def test_totals_in_two_parts_equal_the_one_query_formula(client: PrometheusClient, now: datetime, metric: str) -> None:
    want = vector_frame(client.instant(reference_totals(metric, WINDOW), now))
    parts = {
        p: vector_frame(client.instant(queries.WindowTotals(metric, WINDOW, p).promql(), now)) for p in queries.PARTS
    }
    got = plan.join_totals(list(parts.values()))

    assert len(want) >= 4
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))
    # Both parts carry data the other lacks, so the join is what is being tested.
    assert not parts[queries.BORN].empty and not parts[queries.GROWN].empty


def test_the_burst_is_counted_once_by_the_joined_totals(client: PrometheusClient, now: datetime) -> None:
    frames = [
        vector_frame(client.instant(queries.WindowTotals(queries.TCP_OPENED, WINDOW, p).promql(), now))
        for p in queries.PARTS
    ]
    got = plan.join_totals(frames)

    # The sidecar-less CronJob's plaintext: the server names its source "unknown".
    def burst(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["destination_workload"] == "warehouse") & (frame["connection_security_policy"] == "none")]

    assert list(burst(got)["count"]) == [10.0]
    # And the growth part alone would have missed it: that is why the born part is sent.
    assert burst(frames[0])["count"].sum() == 0


@pytest.mark.parametrize("step", [timedelta(minutes=8), timedelta(hours=1)], ids=["8m steps", "1h steps"])
@pytest.mark.parametrize("metric", queries.METRICS)
def test_timeline_in_two_parts_equals_the_one_query_formula(
    client: PrometheusClient, now: datetime, metric: str, step: timedelta
) -> None:
    start = now - WINDOW
    want = matrix_frame(client.range(reference_timeline(metric, step), start, now, step))
    frames = [
        matrix_frame(client.range(queries.PlaintextTimeline(metric, step, p).promql(), start, now, step))
        for p in queries.PARTS
    ]
    got = plan.join_timeline(frames)
    assert len(want) > 0
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))
    if metric == queries.TCP_OPENED:
        burst = got[got["destination_workload"] == "warehouse"]
        assert list(burst["count"]) == [10.0]
        assert abs(burst["timestamp"].iloc[0].to_pydatetime() - (now - BURST_AGO)) <= step + timedelta(minutes=5)


def test_collect_sends_no_binary_join_and_reports_progress(
    client: PrometheusClient, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mtls_readiness")
    client.queries_sent.clear()
    traffic = PrometheusTrafficSource(client).collect(now - WINDOW, now)
    sent = list(client.queries_sent)

    assert traffic.failed_queries == []
    want = pd.concat(
        [vector_frame(client.instant(reference_totals(m, WINDOW), now)) for m in queries.METRICS], ignore_index=True
    )
    pd.testing.assert_frame_equal(_sorted(traffic.observations), _sorted(want))
    step = queries.timeline_step(WINDOW)
    want_timeline = pd.concat(
        [matrix_frame(client.range(reference_timeline(m, step), now - WINDOW, now, step)) for m in queries.METRICS],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(_sorted(traffic.timeline), _sorted(want_timeline))

    assert len(sent) >= 8
    assert not any(" or " in q or ") + (" in q for q in sent), sent
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("query ")]
    total = len(plan.jobs(WINDOW))
    assert len(lines) == total == 8
    assert lines[-1].startswith(f"query {total}/{total} done: ")
    assert all("rows" in line and "s elapsed" in line for line in lines)


def test_a_failed_part_fails_its_whole_query(client: PrometheusClient, now: datetime) -> None:
    """Growth without births could be a false READY: one failed part drops both."""

    class BornFails(PrometheusClient):
        def instant(self, promql: str, at: datetime) -> list[dict]:
            if "unless" in promql and queries.TCP_OPENED in promql:
                raise requests.exceptions.ConnectionError("refused")
            return super().instant(promql, at)

    broken = BornFails(client.settings)
    traffic = PrometheusTrafficSource(broken).collect(now - WINDOW, now)
    assert [q.split(":")[0:2] for q in traffic.failed_queries] == [["totals", queries.TCP_OPENED]]
    assert not (traffic.observations["protocol"] == "tcp").any()
    assert (traffic.observations["protocol"] == "http").any()


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[PrometheusClient]:
    """The same mesh on a real VictoriaMetrics."""
    server = victoria_serve_mesh(plan_mesh(), Path(tmp_path_factory.mktemp("plan-vm")), now)
    client = PrometheusClient(PrometheusSettings(url=server.url))
    try:
        yield client
    finally:
        client.close()
        server.stop()


def test_victoriametrics_gives_the_same_edges_with_one_exact_query_per_count(
    client: PrometheusClient, victoria: PrometheusClient, now: datetime
) -> None:
    want = PrometheusTrafficSource(client).collect(now - WINDOW, now)
    got = PrometheusTrafficSource(victoria).collect(now - WINDOW, now)
    assert got.failed_queries == [] and got.incomplete == []
    # The totals and timeline of each metric, and the plaintext responses: one exact query each.
    # (Attribution's evidence queries, peer addresses and client side, use plain increase().)
    counts = [q for q in victoria.queries_sent if q.startswith("sum by (") and "increase(" not in q]
    assert len(counts) == 5 and all("increase_pure(" in q and "unless" not in q for q in counts)
    assert not [q for q in victoria.queries_sent if "unless" in q]

    key = [c for c in OBSERVATION_COLUMNS if c != "count"]
    both = want.observations.merge(got.observations, on=key, how="outer", suffixes=("_prom", "_vm"), indicator=True)
    assert len(both) >= 8 and (both["_merge"] == "both").all(), both[both["_merge"] != "both"]
    # No extrapolation: whole counts, within 3 % (or one) of Prometheus's estimate.
    assert (got.observations["count"] % 1 == 0).all()
    assert ((both["count_vm"] - both["count_prom"]).abs() <= (both["count_prom"] * 0.03).clip(lower=1)).all(), both
    burst = both[(both["destination_workload"] == "warehouse") & (both["connection_security_policy"] == "none")]
    assert list(burst["count_vm"]) == [10.0]
    # The timeline names the same plaintext edges.
    edge = ["source_namespace", "source_workload", "destination_namespace", "destination_workload"]
    assert set(map(tuple, got.timeline[edge].values)) == set(map(tuple, want.timeline[edge].values))


def test_the_metricsql_plan_is_one_increase_pure_per_count_over_the_same_series() -> None:
    promql_jobs, metricsql_jobs = plan.jobs(WINDOW), plan.jobs(WINDOW, queries.METRICSQL_PARTS)
    assert len(metricsql_jobs) == len(promql_jobs) // 2 == 4
    assert [j.name for j in metricsql_jobs] == [j.name for j in promql_jobs if j.query.part == queries.GROWN]
    for job in metricsql_jobs:
        grown = next(j for j in promql_jobs if j.name == job.name and j.query.part == queries.GROWN)
        assert job.step == grown.step
        if job.name.startswith("totals"):  # the same selector, range and grouping; only the function differs
            assert job.query.promql() == grown.query.promql().replace("increase(", "increase_pure(")
        else:  # MetricsQL's increase reads the sample before its range: one step each is exact
            step = queries.duration(job.query.step)
            assert f"[{step}]" in job.query.promql() and "increase_pure(" in job.query.promql()
            assert f"[{step}]" not in grown.query.promql(), "PromQL's growth reaches over the gap between steps"


def test_a_sparse_client_stays_in_the_timeline_when_steps_fall_between_scrapes(
    tmp_path_factory: pytest.TempPathFactory, now: datetime
) -> None:
    """One plaintext request every 15 minutes, scraped every 30 s, and every step ending 13 s
    before a request: with ranges one step long, each increment falls between two ranges and
    increase() sees none of them; the cross-check then calls the edge contradictory."""
    mesh = SampleMesh(
        workloads=[MeshWorkload("shop", "web"), MeshWorkload("legacy", "poller")],
        flows=[Flow("legacy/poller", "shop/web", plaintext=True, per_hour=4)],
        history=timedelta(hours=4),
    )
    server = serve_mesh(mesh, Path(tmp_path_factory.mktemp("sparse")), now, scrape=timedelta(seconds=30))
    client = PrometheusClient(PrometheusSettings(url=server.url))
    try:
        end, step = now - timedelta(seconds=13), timedelta(minutes=5)
        start = end - timedelta(hours=2)
        frames = [
            matrix_frame(client.range(queries.PlaintextTimeline(queries.REQUESTS, step, p).promql(), start, end, step))
            for p in queries.PARTS
        ]
        timeline = plan.join_timeline(frames)
        totals = plan.join_totals(
            [vector_frame(client.instant(queries.WindowTotals(queries.REQUESTS, end - start, p).promql(), end))
             for p in queries.PARTS]
        )  # fmt: skip
    finally:
        client.close()
        server.stop()
    assert totals["count"].sum() >= 7  # eight requests in the window, give or take extrapolation
    seen = timeline[timeline["count"] > 0]
    assert len(seen) >= 7, "every request shows in the step it arrived in (or the next)"
    assert abs(timeline["count"].sum() - totals["count"].sum()) <= 0.25 * totals["count"].sum()
    assert crosscheck.contradictions(totals, timeline, start) == {}
