"""What a proposed PeerAuthentication would do to the clients observed in the window.

The same engine answers it: the proposal is applied as `kubectl apply` would (same name
replaces, keeping its age; new policies are the newest, so a second namespace-wide policy is
ignored exactly as istiod ignores it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.analyse.classify import PLAINTEXT, classify
from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.model.inventory import Inventory
from analyzer.model.policy import Mode, PeerAuthentication
from analyzer.model.traffic import Traffic


@dataclass(frozen=True, slots=True)
class CutOff:
    source: str
    destination: str
    protocol: str
    plaintext_count: float
    mode_before: str
    mode_after: str
    decided_by: str
    certain: bool  # False when port-level exceptions leave some ports open


@dataclass(slots=True)
class Prediction:
    cut_off: list[CutOff] = field(default_factory=list)
    changed_workloads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def predict(
    inventory: Inventory, traffic: Traffic, proposed: list[PeerAuthentication], root_namespace: str
) -> Prediction:
    before = PolicyEngine(inventory.peer_authentications, root_namespace)
    after = before.with_applied(proposed)
    out = Prediction()
    known = {pa.ref for pa in before.policies}
    for note in after.ignored_policies():
        if any(note.startswith(f"PeerAuthentication {pa.ref} ") for pa in proposed):
            out.notes.append("proposed " + note)
    out.notes += [f"{pa.ref} replaces the existing policy of that name" for pa in proposed if pa.ref in known]
    for _, workload in sorted(inventory.workloads.items()):
        if workload.meshed and before.resolve(workload.namespace, workload.labels) != after.resolve(
            workload.namespace, workload.labels
        ):
            out.changed_workloads.append(f"{workload.namespace}/{workload.name}")
    obs = classify(traffic.observations, inventory)
    plain = obs[obs["security"] == PLAINTEXT] if not obs.empty else obs
    if plain.empty:
        return out
    grouped = plain.groupby(
        ["source_namespace", "source_workload", "destination_namespace", "destination_workload", "protocol"],
        dropna=False,
    )["count"].sum()
    for (src_ns, src_wl, ns, wl, protocol), count in grouped.items():
        workload = inventory.workload(ns, wl)
        if workload is not None and not workload.meshed:
            continue
        labels = workload.labels if workload else {}
        old, new = before.resolve(ns, labels), after.resolve(ns, labels)
        if old.everywhere(Mode.STRICT) or Mode.STRICT not in new.modes() or old == new:
            continue
        out.cut_off.append(
            CutOff(
                source="unknown" if src_wl in ("", "unknown") else f"{src_ns}/{src_wl}",
                destination=f"{ns}/{wl}",
                protocol=protocol,
                plaintext_count=round(float(count), 3),
                mode_before=old.mode.value,
                mode_after=new.mode.value,
                decided_by=new.source,
                certain=new.everywhere(Mode.STRICT),
            )
        )
    return out


def format_table(prediction: Prediction) -> str:
    lines = [f"note: {n}" for n in prediction.notes]
    lines.append(f"workloads whose mode changes: {len(prediction.changed_workloads)}")
    if not prediction.cut_off:
        lines.append("no client observed in the window would be cut off")
        return "\n".join(lines)
    lines.append(f"{len(prediction.cut_off)} observed plaintext client(s) would be cut off:")
    lines.append(f"{'SOURCE':30} {'DESTINATION':30} {'PROTO':5} {'PLAINTEXT':>10}  MODE AFTER (DECIDED BY)")
    for c in sorted(prediction.cut_off, key=lambda c: -c.plaintext_count):
        maybe = "" if c.certain else "  [some ports stay open]"
        head = f"{c.source:30} {c.destination:30} {c.protocol:5} {c.plaintext_count:>10g}"
        lines.append(f"{head}  {c.mode_after} ({c.decided_by}){maybe}")
    return "\n".join(lines)
