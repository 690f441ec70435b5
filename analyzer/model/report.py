"""The one result object every writer and notebook reads. Writers never recompute."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pandas as pd


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
    # What a mesh-wide STRICT would cut off: distinct clients, distinct client->destination edges,
    # and plaintext edges it would not reach because a narrower policy holds their destination below STRICT.
    cut_off_clients: int = 0
    cut_off_edges: int = 0
    behind_exceptions: int = 0


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
    timeline: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    misconfigurations: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors and all(w.verdict is not Verdict.UNKNOWN for w in self.workloads)

    def verdict_counts(self) -> dict[str, int]:
        counts = {v.value: 0 for v in VERDICT_ORDER}
        for w in self.workloads:
            counts[w.verdict.value] += 1
        return counts

    def edges_frame(self) -> pd.DataFrame:
        return _frame(self.edges, EdgeResult)

    def workloads_frame(self) -> pd.DataFrame:
        return _frame(self.workloads, WorkloadResult)

    def namespaces_frame(self) -> pd.DataFrame:
        return _frame(self.namespaces, NamespaceResult)


def _frame(items: list, cls: type) -> pd.DataFrame:
    columns = list(cls.__dataclass_fields__)
    return pd.DataFrame([asdict(i) for i in items], columns=columns)
