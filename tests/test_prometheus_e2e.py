"""The PromQL the job sends, against a real Prometheus, agrees with the in-process sample mesh."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource
from analyzer.config import PrometheusSettings
from analyzer.sample import catalogue
from analyzer.sample.traffic import SampleTrafficSource


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if c != "count"]
    return frame.groupby(keys, dropna=False)["count"].sum().sort_index()


def test_window_totals_match_the_sample_mesh(prometheus_factory, now):
    mesh = catalogue.demo()
    url = prometheus_factory(mesh)
    window = timedelta(days=7)
    live = PrometheusTrafficSource(PrometheusClient(PrometheusSettings(url=url))).collect(now - window, now)
    expected = SampleTrafficSource(mesh, now=now).collect(now - window, now)
    assert live.failed_queries == []
    assert live.destination_doubts == {}, "window totals and timeline name the same plaintext edges"
    assert live.coverage.complete
    got, want = _totals(live.observations), _totals(expected.observations)
    assert list(got.index) == list(want.index)
    # increase() extrapolates to the window edges; counts agree within a few percent.
    ratio = (got / want).to_numpy()
    assert ((ratio > 0.97) & (ratio < 1.05)).all(), (got / want)[(ratio <= 0.97) | (ratio >= 1.05)]
    # The nightly ETL job's one burst of plaintext TCP, three days ago, is not lost.
    etl = got.xs("postgres", level="destination_workload").xs("none", level="connection_security_policy")
    assert etl.sum() >= 13
