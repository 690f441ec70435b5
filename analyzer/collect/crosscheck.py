"""Totals and timeline must describe the same plaintext edges; where they do not, neither is trusted.

Both are answers of one Prometheus about one window, so an edge with non-mTLS volume in one and
none in the other means one answer lost data (a store missing, a series dropped). The two differ
legitimately in amount (extrapolation, step alignment), never in presence, with two exceptions
handled here: the timeline's first point reaches one step before the window, and when the window
is not a whole number of steps its last point stops short of the window's end.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from analyzer.model.traffic import EDGE_KEY

MTLS = "mutual_tls"
KEY = [*EDGE_KEY, "connection_security_policy"]


def _edges(frame: pd.DataFrame) -> set[tuple]:
    if frame.empty:
        return set()
    sums = frame.groupby(KEY, dropna=False)["count"].sum()
    return {key for key, value in sums.items() if value > 0}


def contradictions(
    totals: pd.DataFrame,
    timeline: pd.DataFrame,
    window_start: datetime,
    *,
    covers_end: bool = True,
    skip_namespaces: set[str] | frozenset[str] = frozenset(),
) -> dict[tuple[str, str], list[str]]:
    """(destination namespace, workload) -> why its data contradicts itself.

    `totals`: observation rows of one metric; `timeline`: timeline rows of the same metric.
    `covers_end`: whether the timeline's last point is the window's end (else an edge seen only
    in the totals may have been active after it). Namespaces in `skip_namespaces` have a part of
    either query missing, which is reported already.
    """
    in_totals = _edges(totals[totals["connection_security_policy"] != MTLS])
    stamps = pd.Timestamp(window_start)
    stamps = stamps.tz_localize("UTC") if stamps.tzinfo is None else stamps
    in_timeline = _edges(timeline[timeline["timestamp"] > stamps])
    seen_before = _edges(timeline)  # including the step that reaches before the window
    found: dict[tuple[str, str], list[str]] = {}

    def add(edge: tuple, here: str, there: str) -> None:
        row = dict(zip(KEY, edge, strict=True))
        namespace, workload = row["destination_namespace"], row["destination_workload"]
        if namespace in skip_namespaces:
            return
        source = f"{row['source_namespace']}/{row['source_workload']}"
        found.setdefault((namespace, workload), []).append(
            f"contradictory data: {source} -> {namespace}/{workload} ({row['protocol']}, "
            f"{row['connection_security_policy'] or 'no security label'}) has non-mTLS volume in the {here} "
            f"but none in the {there}; an answer lost data"
        )

    for edge in sorted(in_timeline - in_totals):
        add(edge, "timeline", "window totals")
    if covers_end:
        for edge in sorted(in_totals - seen_before):
            add(edge, "window totals", "timeline")
    return found
