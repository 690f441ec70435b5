"""The run's headline figures, computed once after the verdicts: writers only read them."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from analyzer.model.inventory import Inventory
from analyzer.model.report import VERDICT_ORDER, Doubt, EdgeResult, RunResult, TimelinePoint, Verdict
from analyzer.model.traffic import EDGE_KEY, Traffic

UNITS = ("requests", "connections")


def traffic_totals(edges: Iterable[EdgeResult]) -> dict[str, float]:
    """mTLS and plaintext volume per unit (requests for HTTP/gRPC, connections for TCP)."""
    out = {f"{kind}_{unit}": 0.0 for unit in UNITS for kind in ("mtls", "plaintext")}
    for e in edges:
        out[f"mtls_{e.unit}"] += e.mtls_count
        out[f"plaintext_{e.unit}"] += e.plaintext_count
    return {k: round(v, 3) for k, v in out.items()}


def mtls_shares(totals: dict[str, float]) -> dict[str, float | None]:
    """Share of mTLS among mTLS + plaintext, per unit; None when there was no such traffic."""
    shares: dict[str, float | None] = {}
    for unit in UNITS:
        mtls, plain = totals.get(f"mtls_{unit}", 0.0), totals.get(f"plaintext_{unit}", 0.0)
        shares[unit] = round(mtls / (mtls + plain), 4) if mtls + plain else None
    return shares


def summarise(run: RunResult) -> RunResult:
    """Fill the figures of `run` from its verdicts and edges (in place; returns it)."""
    run.verdicts = {v.value: 0 for v in VERDICT_ORDER}
    for w in run.workloads:
        run.verdicts[w.verdict.value] += 1
    run.namespace_verdicts = {v.value: sum(1 for n in run.namespaces if n.verdict is v) for v in Verdict}
    run.totals = traffic_totals(run.edges)
    run.mtls_share = mtls_shares(run.totals)
    run.blockers = sum(1 for e in run.edges if e.blocker)
    return run


def plaintext_points(timeline: pd.DataFrame, plaintext: str) -> list[TimelinePoint]:
    """The typed points of a classified timeline frame, keeping rows whose `security` is `plaintext`."""
    if timeline.empty:
        return []
    rows = timeline[timeline["security"] == plaintext]
    # Whole columns as Python lists, zipped: a pandas row or records conversion per point costs
    # ~10 us each, and a 40,000-edge mesh has ~50,000 points.
    keys = [rows[c].fillna("").astype(str).tolist() for c in EDGE_KEY]
    stamps = list(pd.DatetimeIndex(pd.to_datetime(rows["timestamp"], utc=True)).to_pydatetime())
    counts = rows["count"].astype(float).tolist()
    # Positional, in EDGE_KEY's order (a test holds TimelinePoint to it): keywords cost a dict per point.
    return [
        TimelinePoint(sc, sns, swl, sp, dc, dns, dwl, svc, proto, stamp, count)
        for (sc, sns, swl, sp, dc, dns, dwl, svc, proto), stamp, count in zip(
            zip(*keys, strict=True), stamps, counts, strict=True
        )
    ]


def doubts(traffic: Traffic, inventory: Inventory, mesh_wide: Iterable[str]) -> list[Doubt]:
    """Every doubt of the run with the scope it reaches (the verdicts already carry them as reasons)."""
    out = [Doubt("mesh", "mesh", reason) for reason in mesh_wide]
    out += [Doubt("namespace", ns, r) for ns, reasons in sorted(traffic.namespace_doubts.items()) for r in reasons]
    out += [
        Doubt("workload", f"{ns}/{name}", r)
        for (ns, name), reasons in sorted(traffic.destination_doubts.items())
        for r in reasons
    ]
    out += [Doubt("policies", ns, r) for ns, reasons in sorted(inventory.policy_doubts.items()) for r in reasons]
    return out
