"""The one result of a run: what every writer, the notebooks and the next night read.

`RunResult` is the contract: typed, versioned (`schema_version`), serialised as result.json with
a published JSON Schema (docs/result.schema.json). Computed figures (verdict counts, totals,
shares, blockers) are filled once by the analysis; writers only arrange them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime

import pandas as pd

from analyzer import __version__
from analyzer.model.clients import ClientGroup, EdgeAttribution
from analyzer.model.findings import BlindSpot, LintFinding
from analyzer.model.scope import Scope

# Bump when a field changes meaning or is removed; adding a field with a default keeps the version.
SCHEMA_VERSION = 1


class Verdict(enum.StrEnum):
    ENFORCED = "ENFORCED"
    READY = "READY"
    BLOCKED = "BLOCKED"
    NO_TRAFFIC = "NO_TRAFFIC"
    DISABLED = "DISABLED"
    NOT_MESHED = "NOT_MESHED"
    UNKNOWN = "UNKNOWN"


# Display and count order: what needs attention first.
VERDICT_ORDER = [
    Verdict.BLOCKED,
    Verdict.UNKNOWN,
    Verdict.READY,
    Verdict.NO_TRAFFIC,
    Verdict.DISABLED,
    Verdict.ENFORCED,
    Verdict.NOT_MESHED,
]


@dataclass(slots=True)
class EdgeResult:
    source_cluster: str
    source_namespace: str
    source_workload: str
    source_principal: str
    destination_cluster: str
    destination_namespace: str
    destination_workload: str
    destination_service: str
    protocol: str
    unit: str
    mtls_count: float
    plaintext_count: float
    plaintext_share: float
    unreadable_count: float
    first_plaintext_seen: datetime | None
    last_plaintext_seen: datetime | None
    destination_mode: str
    destination_mode_source: str
    blocker: bool
    # meshed (a sidecar client that sends plaintext), unmeshed, or unknown (cannot tell)
    client_kind: str = "unknown"
    advice: str = ""


@dataclass(slots=True)
class WorkloadResult:
    cluster: str
    namespace: str
    workload: str
    kind: str
    dataplane: str
    mode: str
    mode_source: str
    port_modes: dict[int, str]
    mtls_count: float
    plaintext_count: float
    plaintext_sources: list[str]
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    in_inventory: bool = True
    # A STRICT PeerAuthentication to apply, for READY workloads with a workload-level policy.
    remediation: str = ""
    # AuthorizationPolicy against plaintext, for meshed workloads below STRICT ("" elsewhere):
    # open, denied, depends (on fields the metrics lack) or unknown (a policy could not be read).
    authz_plaintext: str = ""
    authz_reason: str = ""
    authz_policies: list[str] = field(default_factory=list)  # enforced policies that apply
    # DENY rules keyed on peer identity, which plaintext never matches: "ns/name rules[i] (fields)".
    authz_slipped_rules: list[str] = field(default_factory=list)
    # Observed plaintext clients every request of which was answered 403 (already broken).
    plaintext_denied_clients: list[str] = field(default_factory=list)
    plaintext_denials_unknown: str = ""  # why the response codes could not be read
    # Whose were those 403s, from Envoy's RBAC denial counters: proxy, not-proxy (the application's:
    # the clients are then not listed above) or unconfirmed; "" when no client was answered only 403.
    plaintext_denials_by: str = ""
    # A suggested AuthorizationPolicy (YAML) for an open workload still receiving plaintext: to review.
    authz_suggestion: str = ""


@dataclass(slots=True)
class NamespaceResult:
    cluster: str
    namespace: str
    mode: str
    mode_source: str
    workloads: int
    enforced: int
    ready: int
    blocked: int
    no_traffic: int
    unknown: int
    not_meshed: int
    disabled: int
    plaintext_count: float
    mtls_count: float
    verdict: Verdict
    injection: str = ""
    reasons: list[str] = field(default_factory=list)
    remediation: str = ""
    # Workload-level policies ("ns/name") that hold a workload of this namespace below STRICT.
    exceptions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MeshResult:
    verdict: Verdict
    mode: str
    mode_source: str
    reasons: list[str] = field(default_factory=list)
    remediation: str = ""
    # Namespace- and workload-level policies that hold a workload below STRICT under the mesh policy.
    exceptions: list[str] = field(default_factory=list)
    # What a mesh-wide STRICT would cut off (the same prediction `what-if` makes for it): distinct
    # clients, distinct client->destination edges, and plaintext edges it would not reach because
    # a namespace- or workload-level policy holds their destination below STRICT.
    cut_off_clients: int = 0
    cut_off_edges: int = 0
    behind_exceptions: int = 0


@dataclass(slots=True)
class TimelinePoint:
    """Plaintext volume of one edge in one step of the range query (the step ending at `timestamp`)."""

    source_cluster: str
    source_namespace: str
    source_workload: str
    source_principal: str
    destination_cluster: str
    destination_namespace: str
    destination_workload: str
    destination_service: str
    protocol: str
    timestamp: datetime
    count: float


@dataclass(slots=True)
class Doubt:
    """Why verdicts in scope cannot be READY. scope: mesh, namespace, workload (ns/name) or policies (of a ns)."""

    scope: str
    name: str
    reason: str


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
    """Night over night; all empty (and `previous_run_id` None) when there was no previous run."""

    previous_run_id: str | None = None
    previous_generated_at: datetime | None = None
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


@dataclass(slots=True)
class RunResult:
    run_id: str
    generated_at: datetime
    lookback: str
    window_start: datetime
    window_end: datetime
    source: str
    root_namespace: str
    workloads: list[WorkloadResult]
    namespaces: list[NamespaceResult]
    edges: list[EdgeResult]
    mesh: MeshResult
    # plaintext only, per edge and step: first/last seen and the "plaintext over time" charts
    timeline: list[TimelinePoint]
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    misconfigurations: list[str] = field(default_factory=list)
    doubts: list[Doubt] = field(default_factory=list)
    cluster: str = ""  # --cluster; "" reads every cluster
    tool_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    # Figures computed once by the analysis (analyse.figures.summarise), never by a writer.
    verdicts: dict[str, int] = field(default_factory=dict)  # workloads per verdict
    namespace_verdicts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)  # mtls_requests, plaintext_connections, ...
    mtls_share: dict[str, float | None] = field(default_factory=dict)  # per unit; None: no such traffic
    blockers: int = 0  # plaintext client -> destination edges that a STRICT switch would cut off
    changes: Changes = field(default_factory=Changes)
    # Where the metrics cannot see (analyse/blind_spots.py) and policies that do not do what they
    # look like, with the window's evidence (analyse/lint.py).
    blind_spots: list[BlindSpot] = field(default_factory=list)
    lint: list[LintFinding] = field(default_factory=list)
    # What the run looked at (--namespace, --exclude-namespace, --prometheus-selector).
    scope: Scope = field(default_factory=Scope)
    # Who sent each unnamed blocker edge's plaintext (docs/attribution.md), and blockers grouped by client.
    attributions: list[EdgeAttribution] = field(default_factory=list)
    clients: list[ClientGroup] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        # Derived, not stored: an error added after the analysis can never leave a stale "complete".
        return not self.errors and all(w.verdict is not Verdict.UNKNOWN for w in self.workloads)

    def verdict_counts(self) -> dict[str, int]:
        return dict(self.verdicts)

    def timeline_frame(self) -> pd.DataFrame:
        frame = _frame(self.timeline, TimelinePoint)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame.astype({"count": "float64"})

    def edges_frame(self) -> pd.DataFrame:
        return _frame(self.edges, EdgeResult)

    def workloads_frame(self) -> pd.DataFrame:
        return _frame(self.workloads, WorkloadResult)

    def namespaces_frame(self) -> pd.DataFrame:
        return _frame(self.namespaces, NamespaceResult)


def _frame(items: list, cls: type) -> pd.DataFrame:
    """One row per item, built column by column: `asdict` per item (a recursive deep copy) took
    seconds and a second copy of every row at 40,000 edges. Lists and dicts in cells are copied,
    as asdict did, so a frame never shares a mutable value with the result."""
    columns = [f.name for f in fields(cls)]
    if not items:
        return pd.DataFrame([], columns=columns)  # object columns, not the float64 of empty lists
    data = {c: [_copied(getattr(i, c)) for i in items] for c in columns}
    return pd.DataFrame(data, columns=columns)


def _copied(value: object) -> object:
    return value.copy() if isinstance(value, list | dict) else value
