"""Night over night: what moved since the previous published run.

Pure: compares this run's RunResult with the previous run as read back by `collect.run_store`
(its summary.json and CSV files), so a run written by an older version still compares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyzer.model.report import EdgeResult, RunResult, Verdict

if TYPE_CHECKING:
    from analyzer.collect.run_store import PublishedRun

# Who talks to whom over which protocol: a plaintext client is "new" when this key had no plaintext before.
CLIENT_KEY = [
    "source_cluster",
    "source_namespace",
    "source_workload",
    "destination_cluster",
    "destination_namespace",
    "destination_workload",
    "protocol",
]
WORKLOAD_KEY = ["cluster", "namespace", "workload"]
UNITS = ("requests", "connections")
# summary.json keeps long lists short; the CSV files and the page have the rest.
LIST_LIMIT = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GOOD = {Verdict.READY.value, Verdict.ENFORCED.value}


@dataclass(slots=True)
class ClientChange:
    """A plaintext client -> destination edge that appeared (or disappeared) since the previous run."""

    source_namespace: str
    source_workload: str
    destination_namespace: str
    destination_workload: str
    protocol: str
    unit: str
    plaintext_count: float
    blocker: bool
    client_kind: str


@dataclass(slots=True)
class VerdictChange:
    scope: str  # mesh, namespace or workload
    name: str  # "mesh", the namespace, or namespace/workload
    before: str  # the previous verdict; "" when it was not in the previous run
    after: str
    why: str = ""


@dataclass(slots=True)
class Changes:
    previous_run_id: str | None = None
    previous_generated_at: str | None = None
    new_plaintext_clients: list[ClientChange] = field(default_factory=list)
    plaintext_clients_gone: list[ClientChange] = field(default_factory=list)
    regressions: list[VerdictChange] = field(default_factory=list)
    newly_ready: list[VerdictChange] = field(default_factory=list)
    newly_enforced: list[VerdictChange] = field(default_factory=list)
    # this run minus the previous one
    verdict_delta: dict[str, int] = field(default_factory=dict)
    namespace_verdict_delta: dict[str, int] = field(default_factory=dict)
    blockers_delta: int | None = None
    mtls_share_delta: dict[str, float | None] = field(default_factory=dict)
    mesh_verdict_before: str | None = None

    @property
    def has_previous(self) -> bool:
        return self.previous_run_id is not None

    def to_dict(self, limit: int = LIST_LIMIT) -> dict[str, Any]:
        """The `changes` key of summary.json: counts always, lists up to `limit` items."""
        out: dict[str, Any] = {
            "previous_run_id": self.previous_run_id,
            "previous_generated_at": self.previous_generated_at,
            "mesh_verdict_before": self.mesh_verdict_before,
            "verdict_delta": self.verdict_delta,
            "namespace_verdict_delta": self.namespace_verdict_delta,
            "blockers_delta": self.blockers_delta,
            "mtls_share_delta": self.mtls_share_delta,
        }
        for name in ("new_plaintext_clients", "plaintext_clients_gone", "regressions", "newly_ready", "newly_enforced"):
            items = getattr(self, name)
            out[name] = [asdict(i) for i in items[:limit]]
            out[f"{name}_total"] = len(items)
        return out


def traffic_totals(edges: list[EdgeResult]) -> dict[str, float]:
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


def _restore(text: str) -> str:
    """Undo the CSV writer's formula neutralisation, so keys read back match this run's."""
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START else text


def _text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.reindex(columns=columns).fillna("").astype(str)
    return out.apply(lambda col: col.map(_restore))


def _plaintext_clients(edges: list[EdgeResult]) -> dict[tuple, ClientChange]:
    clients: dict[tuple, ClientChange] = {}
    for e in edges:
        if e.plaintext_count <= 0:
            continue
        key = tuple(getattr(e, c) for c in CLIENT_KEY)
        seen = clients.get(key)
        if seen is not None:  # one client, several principals or services: one line
            seen.plaintext_count = round(seen.plaintext_count + e.plaintext_count, 3)
            seen.blocker = seen.blocker or e.blocker
            continue
        clients[key] = ClientChange(
            source_namespace=e.source_namespace,
            source_workload=e.source_workload,
            destination_namespace=e.destination_namespace,
            destination_workload=e.destination_workload,
            protocol=e.protocol,
            unit=e.unit,
            plaintext_count=e.plaintext_count,
            blocker=e.blocker,
            client_kind=e.client_kind,
        )
    return clients


def _previous_plaintext_clients(previous: PublishedRun) -> dict[tuple, ClientChange]:
    frame = previous.edges
    if frame.empty or "plaintext_count" not in frame.columns:
        return {}
    frame = frame[frame["plaintext_count"].fillna(0) > 0]
    keys = _text(frame, CLIENT_KEY)
    extra = _text(frame, ["unit", "client_kind"])
    blocker = frame["blocker"] if "blocker" in frame.columns else pd.Series(False, index=frame.index)
    clients: dict[tuple, ClientChange] = {}
    for key, unit, kind, count, block in zip(
        keys.itertuples(index=False, name=None),
        extra["unit"],
        extra["client_kind"],
        frame["plaintext_count"],
        blocker,
        strict=True,
    ):
        if key in clients:
            clients[key].plaintext_count = round(clients[key].plaintext_count + float(count), 3)
            continue
        src_ns, src_wl, dst_ns, dst_wl, protocol = key[1], key[2], key[4], key[5], key[6]
        clients[key] = ClientChange(src_ns, src_wl, dst_ns, dst_wl, protocol, unit, float(count), bool(block), kind)
    return clients


def _previous_verdicts(frame: pd.DataFrame, key: list[str]) -> dict[tuple, str]:
    if frame.empty or "verdict" not in frame.columns:
        return {}
    keys = _text(frame, key)
    return dict(zip(keys.itertuples(index=False, name=None), frame["verdict"].astype(str), strict=True))


def _moves(scope: str, now: dict[tuple, tuple[str, str]], before: dict[tuple, str]) -> dict[str, list[VerdictChange]]:
    """Sort verdict changes into regressions, newly READY and newly ENFORCED.

    `now` maps a key to (display name, verdict). A regression is READY/ENFORCED -> BLOCKED, or
    ENFORCED -> anything short of STRICT (someone lifted the policy); UNKNOWN and NOT_MESHED
    are not progress either way.
    """
    out: dict[str, list[VerdictChange]] = {"regressions": [], "newly_ready": [], "newly_enforced": []}
    for key, (name, after) in now.items():
        was = before.get(key, "")
        if was == after:
            continue
        if was in _GOOD and after == Verdict.BLOCKED.value:
            out["regressions"].append(VerdictChange(scope, name, was, after, "plaintext arrived"))
        elif was == Verdict.ENFORCED.value and after in (Verdict.READY, Verdict.NO_TRAFFIC, Verdict.DISABLED):
            out["regressions"].append(VerdictChange(scope, name, was, after, "no longer STRICT"))
        elif after == Verdict.READY.value:
            out["newly_ready"].append(VerdictChange(scope, name, was, after, "" if was else "new"))
        elif after == Verdict.ENFORCED.value:
            out["newly_enforced"].append(VerdictChange(scope, name, was, after, "" if was else "new"))
    return out


def _delta(now: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) - int(before.get(k, 0) or 0) for k, v in now.items()}


def compare(run: RunResult, previous: PublishedRun | None) -> Changes:
    """What moved between `previous` (None: this is the first run) and `run`."""
    if previous is None:
        return Changes()
    before = previous.summary
    changes = Changes(
        previous_run_id=previous.run_id,
        previous_generated_at=before.get("generated_at"),
        mesh_verdict_before=before.get("mesh_verdict"),
    )

    now_clients, was_clients = _plaintext_clients(run.edges), _previous_plaintext_clients(previous)
    by_volume = lambda c: (not c.blocker, -c.plaintext_count)  # noqa: E731
    changes.new_plaintext_clients = sorted((c for k, c in now_clients.items() if k not in was_clients), key=by_volume)
    changes.plaintext_clients_gone = sorted((c for k, c in was_clients.items() if k not in now_clients), key=by_volume)

    moves = {"regressions": [], "newly_ready": [], "newly_enforced": []}
    scopes = [
        ("mesh", {("mesh",): ("mesh", run.mesh.verdict.value)}, {("mesh",): str(before.get("mesh_verdict", ""))}),
        (
            "namespace",
            {(n.namespace,): (n.namespace, n.verdict.value) for n in run.namespaces},
            {(k,): v for k, v in before.get("namespaces", {}).items()},
        ),
        (
            "workload",
            {
                (w.cluster, w.namespace, w.workload): (f"{w.namespace}/{w.workload}", w.verdict.value)
                for w in run.workloads
            },
            _previous_verdicts(previous.workloads, WORKLOAD_KEY),
        ),
    ]
    for scope, now, was in scopes:
        for kind, items in _moves(scope, now, was).items():
            moves[kind] += items
    changes.regressions, changes.newly_ready, changes.newly_enforced = (
        moves["regressions"],
        moves["newly_ready"],
        moves["newly_enforced"],
    )

    changes.verdict_delta = _delta(run.verdict_counts(), before.get("verdicts", {}))
    ns_counts = {v.value: sum(1 for n in run.namespaces if n.verdict is v) for v in Verdict}
    changes.namespace_verdict_delta = _delta(ns_counts, before.get("namespace_verdicts", {}))
    if isinstance(before.get("blockers"), int):
        changes.blockers_delta = sum(1 for e in run.edges if e.blocker) - before["blockers"]
    now_share = mtls_shares(traffic_totals(run.edges))
    was_share = mtls_shares(before.get("totals", {}))
    changes.mtls_share_delta = {
        unit: round(now_share[unit] - was_share[unit], 4)
        if now_share[unit] is not None and was_share[unit] is not None
        else None
        for unit in UNITS
    }
    return changes
