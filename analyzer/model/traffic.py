"""Observed traffic as collected from Prometheus (or the sample mesh).

Collection keeps Istio's raw labels; deciding what counts as plaintext needs the inventory
and happens in `analyzer.analyse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from analyzer.model.clients import ClientTraffic

# One row per server-side series group, summed over the lookback window.
EDGE_KEY = [
    "source_cluster",
    "source_namespace",
    "source_workload",
    "source_principal",
    "destination_cluster",
    "destination_namespace",
    "destination_workload",
    "destination_service",
    "protocol",
]
OBSERVATION_COLUMNS = [*EDGE_KEY, "reporter", "connection_security_policy", "count"]
# Plaintext volume per edge and time step, for first/last seen and the timeline chart.
TIMELINE_COLUMNS = [*EDGE_KEY, "connection_security_policy", "timestamp", "count"]

RESPONSE_COLUMNS = ["source_namespace", "source_workload", "destination_namespace", "destination_workload"]
RESPONSE_COLUMNS += ["response_code", "count"]
# What a sidecar's RBAC filter answers a denied request with (and an application may too).
FORBIDDEN = "403"

UNIT_BY_PROTOCOL = {"http": "requests", "grpc": "requests", "tcp": "connections"}


def empty_observations() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in OBSERVATION_COLUMNS})
    return frame.astype({"count": "float64"})


def empty_timeline() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in TIMELINE_COLUMNS})
    return frame.astype({"count": "float64", "timestamp": "datetime64[ns, UTC]"})


@dataclass(slots=True)
class Coverage:
    """Whether the traffic source holds data for the whole window."""

    complete: bool
    data_start: datetime | None = None
    detail: str = ""


@dataclass(slots=True)
class Traffic:
    window_start: datetime
    window_end: datetime
    source: str
    observations: pd.DataFrame = field(default_factory=empty_observations)
    timeline: pd.DataFrame = field(default_factory=empty_timeline)
    coverage: Coverage = field(default_factory=lambda: Coverage(complete=True))
    # A failed query leaves the data it should have produced missing: verdicts become UNKNOWN.
    failed_queries: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Doubts that reach only part of the mesh: a destination namespace whose part of a split
    # query is missing, or one destination workload (ns, name) whose data contradicts itself.
    # Each turns exactly those verdicts into UNKNOWN, never READY.
    namespace_doubts: dict[str, list[str]] = field(default_factory=dict)
    destination_doubts: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Data that no verdict depends on but the report shows (first/last seen, the timeline):
    # missing, the verdicts stand but the run is incomplete.
    incomplete: list[str] = field(default_factory=list)
    # (namespace, pod) of every proxy Prometheus scraped in the window (queries.ProxyPresence);
    # None when the source did not ask, or the query failed (then `proxy_presence_error` says why).
    proxy_pods: frozenset[tuple[str, str]] | None = None
    proxy_presence_error: str = ""
    # Plaintext HTTP requests per client, destination and response code (RESPONSE_COLUMNS), for
    # "plaintext already denied". None: not collected (a source without it, or the query failed,
    # then `responses_failed` says why); the findings it feeds are then unknown, never "none denied".
    plaintext_responses: pd.DataFrame | None = None
    responses_failed: str = ""
    # Requests Envoy's HTTP RBAC filter denied in the window, per (namespace, pod) (pod "" when the
    # series names none), asked only when a plaintext request was answered 403 (queries.RbacDenials).
    # None: not asked, or the query failed (then `rbac_failed` says why): the 403s stay unconfirmed.
    rbac_denials: dict[tuple[str, str], float] | None = None
    rbac_failed: str = ""
    # Peer addresses, client-side series and scrape targets: what names an unknown plaintext client.
    clients: ClientTraffic = field(default_factory=ClientTraffic)
    timeline_step: timedelta | None = None  # the range query's step; None: not known
