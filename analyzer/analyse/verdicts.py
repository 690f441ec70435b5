"""The verdict rules of docs/contract.md, as pure functions: one workload, a proposed change, a scope.

Never READY without full evidence: any doubt (a failed query, a window Prometheus does not
hold, traffic whose security cannot be read) turns what would be READY into UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.analyse.policy_engine import Resolution
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.policy import Mode
from analyzer.model.report import Verdict
from analyzer.model.traffic import Traffic

# How Istio spells a label it could not fill (a dropped label reads as empty).
UNNAMED = {"", "unknown"}


@dataclass(slots=True)
class Evidence:
    """What the window shows for one destination workload."""

    mtls: float = 0.0
    plaintext: float = 0.0
    unreadable: float = 0.0
    plaintext_sources: set[str] = field(default_factory=set)


def source_name(namespace: str, workload: str) -> str:
    """How the report names a client: "ns/name", or "unknown" when Istio could not tell."""
    if workload in UNNAMED:
        return "unknown"
    return f"{namespace}/{workload}" if namespace not in UNNAMED else workload


def global_doubts(traffic: Traffic) -> list[str]:
    doubts = [f"query failed ({q})" for q in traffic.failed_queries if q.startswith("totals:")]
    if not traffic.coverage.complete:
        doubts.append(traffic.coverage.detail or "Prometheus does not hold the whole lookback window")
    return doubts


def scoped_doubts(traffic: Traffic, inventory: Inventory, namespace: str, name: str, root_namespace: str) -> list[str]:
    """Doubts that reach this one destination workload only: its namespace's part of a split
    query missing, its own data contradicting itself, or a policy of its namespace (or of the
    root namespace, which governs the whole mesh) that could not be read."""
    doubts = list(traffic.namespace_doubts.get(namespace, ()))
    doubts += traffic.destination_doubts.get((namespace, name), ())
    doubts += inventory.policy_doubts.get(namespace, ())
    if namespace != root_namespace:
        doubts += inventory.policy_doubts.get(root_namespace, ())
    return doubts


def judge_workload(
    workload: Workload | None, resolution: Resolution, evidence: Evidence, doubts: list[str]
) -> tuple[Verdict, list[str]]:
    """The verdict for one destination workload and why; never READY without full evidence."""
    if workload is not None and not workload.meshed:
        if workload.dataplane is Dataplane.GATEWAY:
            return Verdict.NOT_MESHED, [
                "an Istio gateway or waypoint: its listeners follow Gateway TLS, not PeerAuthentication"
            ]
        return Verdict.NOT_MESHED, ["no sidecar and not ambient: PeerAuthentication does not apply"]
    if any(d.startswith("labels unknown") for d in doubts):
        # The mode cannot be resolved; plaintext arriving still proves it is not STRICT.
        if evidence.plaintext > 0:
            return Verdict.BLOCKED, [f"plaintext from {', '.join(sorted(evidence.plaintext_sources))}", *doubts]
        return Verdict.UNKNOWN, doubts
    if resolution.everywhere(Mode.STRICT):
        return Verdict.ENFORCED, []
    if resolution.everywhere(Mode.DISABLE):
        return Verdict.DISABLED, []
    if evidence.plaintext > 0:
        return Verdict.BLOCKED, [f"plaintext from {', '.join(sorted(evidence.plaintext_sources))}"]
    if doubts or evidence.unreadable > 0:  # traffic whose security cannot be read is a doubt in itself
        return Verdict.UNKNOWN, doubts or [f"{evidence.unreadable:g} requests/connections could not be classified"]
    if evidence.mtls > 0:
        return Verdict.READY, []
    return Verdict.NO_TRAFFIC, ["no inbound traffic in the window"]


def judge_change(before: Resolution, evidence: Evidence, doubts: list[str]) -> Verdict:
    """What one meshed workload adds to its namespace's (or the mesh's) verdict, whichever policy
    holds it below STRICT (namespace-wide, a workload-level exception or a DISABLE)."""
    if any(d.startswith("labels unknown") for d in doubts):
        # Its mode cannot be resolved; plaintext arriving still proves it is not STRICT.
        return Verdict.BLOCKED if evidence.plaintext > 0 else Verdict.UNKNOWN
    if before.everywhere(Mode.STRICT):
        return Verdict.ENFORCED
    if evidence.plaintext > 0:
        return Verdict.BLOCKED
    if doubts or evidence.unreadable > 0:
        return Verdict.UNKNOWN
    return Verdict.READY if evidence.mtls > 0 else Verdict.NO_TRAFFIC


def combine(verdicts: list[Verdict]) -> Verdict:
    """Namespace or mesh verdict from what every meshed workload in it adds (judge_change):
    BLOCKED beats UNKNOWN beats the rest; ENFORCED only when all are; NO_TRAFFIC when none of
    those not yet STRICT has evidence. No meshed workload at all: NOT_MESHED."""
    if not verdicts:
        return Verdict.NOT_MESHED
    if any(v is Verdict.BLOCKED for v in verdicts):
        return Verdict.BLOCKED
    if any(v is Verdict.UNKNOWN for v in verdicts):
        return Verdict.UNKNOWN
    if all(v is Verdict.ENFORCED for v in verdicts):
        return Verdict.ENFORCED
    if not any(v is Verdict.READY for v in verdicts):
        return Verdict.NO_TRAFFIC
    return Verdict.READY
