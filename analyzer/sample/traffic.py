"""The sample mesh standing in for Prometheus: the same Traffic, computed in process from the
series the mesh would export, with the semantics of the PromQL in `queries`."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd

from analyzer.collect import queries
from analyzer.collect.responses import forbidden_namespaces
from analyzer.model.clients import ClientSideEdge, ClientTraffic, PeerAddress
from analyzer.model.traffic import (
    OBSERVATION_COLUMNS,
    RESPONSE_COLUMNS,
    TIMELINE_COLUMNS,
    Coverage,
    Traffic,
    empty_observations,
    empty_timeline,
)
from analyzer.sample.mesh import PEER_LABEL, SampleMesh, Series

SCRAPE = timedelta(minutes=5)


class SampleTrafficSource:
    def __init__(self, mesh: SampleMesh, *, now: datetime, scrape: timedelta = SCRAPE):
        self.mesh = mesh
        self.now = now
        self.scrape = scrape
        self.source = "sample mesh (built in)"

    def collect(self, window_start: datetime, window_end: datetime) -> Traffic:
        exported = list(self.mesh.series(self.now, self.scrape))
        series = [s for s in exported if s.labels.get("reporter") in ("destination", "waypoint")]
        step = queries.timeline_step(window_end - window_start)
        traffic = Traffic(window_start=window_start, window_end=window_end, source=self.source)
        traffic.observations = _totals(series, window_start, window_end)
        traffic.timeline = _timeline(series, window_start, window_end, step)
        traffic.plaintext_responses = _responses(series, window_start, window_end)
        namespaces = forbidden_namespaces(traffic.plaintext_responses)
        if namespaces:  # asked only then, as collect/responses.py does
            traffic.rbac_denials = _rbac_denials(exported, set(namespaces), window_start, window_end)
        traffic.timeline_step = step
        traffic.clients = _client_evidence(exported, window_start, window_end)
        data_start = self.now - self.mesh.history
        if data_start > window_start + queries.presence_span(window_end - window_start):
            traffic.coverage = Coverage(
                complete=False,
                data_start=data_start,
                detail=f"the sample mesh holds data from {data_start:%Y-%m-%d %H:%M}Z only; shorten --lookback",
            )
        return traffic


def _row(s: Series) -> list[str]:
    return [s.labels.get(label, "") for label in queries.LABELS]


def _in_window(s: Series, start: datetime, end: datetime) -> float | None:
    """Counter growth in (start, end], counting a series born inside the window from zero."""
    times = [t for t, _ in s.samples]
    lo, hi = bisect_right(times, start), bisect_right(times, end)
    if hi <= lo:
        return None
    return s.samples[hi - 1][1] - (s.samples[lo - 1][1] if lo else 0.0)


def _totals(series: list[Series], start: datetime, end: datetime) -> pd.DataFrame:
    rows = []
    for s in series:
        grown = _in_window(s, start, end)
        if grown is not None:
            rows.append([*_row(s), grown])
    if not rows:
        return empty_observations()
    frame = pd.DataFrame(rows, columns=[*queries.LABELS.values(), "count"])
    keys = [c for c in OBSERVATION_COLUMNS if c != "count"]
    return frame.groupby(keys, as_index=False, dropna=False)["count"].sum()[OBSERVATION_COLUMNS]


def _timeline(series: list[Series], start: datetime, end: datetime, step: timedelta) -> pd.DataFrame:
    rows = []
    for s in series:
        if s.labels.get("connection_security_policy") == "mutual_tls":
            continue
        labels = [s.labels.get(label, "") for label in queries.LABELS if label != "reporter"]
        t = start
        while t <= end:
            grown = _in_window(s, t - step, t)
            if grown:
                rows.append([*labels, t, grown])
            t += step
    if not rows:
        return empty_timeline()
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    keys = [c for c in TIMELINE_COLUMNS if c != "count"]
    return frame.groupby(keys, as_index=False, dropna=False)["count"].sum()[TIMELINE_COLUMNS]


def _responses(series: list[Series], start: datetime, end: datetime) -> pd.DataFrame:
    """What queries.PlaintextResponses answers: plaintext requests by response code."""
    rows = []
    for s in series:
        labels = s.labels
        if labels.get("reporter") != "destination" or labels.get("connection_security_policy") != "none":
            continue
        if "response_code" not in labels:  # TCP
            continue
        grown = _in_window(s, start, end)
        if grown is not None:
            rows.append([labels.get(label, "") for label in queries.RESPONSE_LABELS] + [grown])
    frame = pd.DataFrame(rows, columns=RESPONSE_COLUMNS).astype({"count": "float64"})
    keys = [c for c in RESPONSE_COLUMNS if c != "count"]
    return frame.groupby(keys, as_index=False, dropna=False)["count"].sum()[RESPONSE_COLUMNS]


def _rbac_denials(
    series: Iterable[Series], namespaces: set[str], start: datetime, end: datetime
) -> dict[tuple[str, str], float]:
    """What queries.RbacDenials answers: denials per (namespace, pod) in the namespaces asked for."""
    names = re.compile(queries.RBAC_NAMES)
    out: dict[tuple[str, str], float] = {}
    for s in series:
        labels = s.labels
        if not names.fullmatch(s.metric) or labels.get("authz_enforce_result") != "denied":
            continue
        if labels.get("namespace") not in namespaces:
            continue
        grown = _in_window(s, start, end)
        if grown is not None:
            key = (labels["namespace"], labels.get("pod", ""))
            out[key] = out.get(key, 0.0) + grown
    return out


def _client_evidence(series: Iterable[Series], start: datetime, end: datetime) -> ClientTraffic:
    """The peer-address rows and client-side series, as collect/prometheus reads them."""
    peers: dict[tuple[str, str, str], float] = {}
    sides: dict[tuple[str, str, str, str, str], float] = {}
    for s in series:
        grown = _in_window(s, start, end)
        if not grown:
            continue
        labels = s.labels
        if labels.get("reporter") == "source" and labels.get("request_protocol") == "tcp":
            key = (
                labels["source_workload_namespace"],
                labels["source_workload"],
                labels["destination_workload_namespace"],
                labels["destination_workload"],
                labels["request_protocol"],
            )
            sides[key] = sides.get(key, 0.0) + grown
        elif labels.get(PEER_LABEL) and labels.get("connection_security_policy") != "mutual_tls":
            peer = (labels["destination_workload_namespace"], labels["destination_workload"], labels[PEER_LABEL])
            peers[peer] = peers.get(peer, 0.0) + grown
    return ClientTraffic(
        peer_label=PEER_LABEL,
        peer_addresses=[PeerAddress(*k, count=v) for k, v in sorted(peers.items())],
        client_side=[ClientSideEdge(*k, count=v) for k, v in sorted(sides.items())],
    )
