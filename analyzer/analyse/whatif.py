"""What a proposed PeerAuthentication would do to the clients observed in the window.

The same engine answers it: the proposal is applied as `kubectl apply` would (same name
replaces, keeping its age; new policies are the newest, so a second namespace-wide policy is
ignored exactly as istiod ignores it). It reads the window through the report's own Analysis,
so the cluster filter, the coverage check, failed queries, scoped doubts and unreadable labels
count exactly as they do for the report's verdicts.

The answer is `cut_off` (an observed plaintext client would lose its connection: exit 3, even
when other parts are in doubt), `cannot_tell` (a doubt touches a destination the proposal
tightens: exit 2) or `safe` (exit 0). A proposal that tightens only workloads that received no
traffic in the window is `safe`: nothing observed is cut off; a warning says there was no
evidence either way, because a client that did not call in the window may still exist.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from analyzer.analyse.classify import PLAINTEXT
from analyzer.analyse.policy_engine import PolicyEngine, Resolution
from analyzer.analyse.verdicts import UNNAMED, source_name
from analyzer.model.policy import Mode, PeerAuthentication
from analyzer.model.traffic import UNIT_BY_PROTOCOL

if TYPE_CHECKING:  # readiness imports this module for the mesh headline
    from analyzer.analyse.readiness import Analysis

SAFE, CUT_OFF, CANNOT_TELL = "safe", "cut_off", "cannot_tell"
EXIT_CODES = {SAFE: 0, CANNOT_TELL: 2, CUT_OFF: 3}
_GROUP = ["source_namespace", "source_workload", "destination_namespace", "destination_workload", "protocol"]


@dataclass(frozen=True, slots=True)
class CutOff:
    source: str
    destination: str
    protocol: str
    unit: str
    plaintext_count: float
    last_seen: datetime | None
    certain: bool  # False when port-level exceptions leave some ports open
    mode_before: str
    mode_after: str
    decided_by: str


@dataclass(slots=True)
class Prediction:
    cut_off: list[CutOff] = field(default_factory=list)
    changed_workloads: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Why the window cannot show that nothing is cut off (scoped to what the proposal reaches).
    doubts: list[str] = field(default_factory=list)
    # Client -> destination edges still carrying plaintext to destinations below STRICT that the
    # proposal leaves alone (for a mesh-wide STRICT: those behind namespace- or workload-level exceptions).
    untouched_edges: list[tuple[str, str]] = field(default_factory=list)
    # What was proposed: PeerAuthentication, or AuthorizationPolicy (then `cut_off` lists the
    # observed clients, mTLS or plaintext, the proposal would deny).
    kind: str = "PeerAuthentication"

    @property
    def notes(self) -> list[str]:  # the name notebooks used before `warnings`
        return self.warnings

    @property
    def clients(self) -> list[str]:
        """Distinct clients cut off ("unknown" is one client, however many destinations it calls)."""
        return sorted({c.source for c in self.cut_off})

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Distinct client -> destination edges cut off (protocols of one edge count once)."""
        return sorted({(c.source, c.destination) for c in self.cut_off})

    @property
    def verdict(self) -> str:
        return CUT_OFF if self.cut_off else CANNOT_TELL if self.doubts else SAFE

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for c in sorted(self.cut_off, key=lambda c: (-c.plaintext_count, c.source, c.destination)):
            row = asdict(c)
            row["last_seen"] = c.last_seen.isoformat().replace("+00:00", "Z") if c.last_seen else None
            rows.append(row)
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "clients": len(self.clients),
            "edges": len(self.edges),
            "cut_off": rows,
            "doubts": list(self.doubts),
            "warnings": list(self.warnings),
            "changed_workloads": list(self.changed_workloads),
            "proposal_kind": self.kind,
        }


def tightens(before: Resolution, after: Resolution) -> bool:
    """True when some port that was not STRICT becomes STRICT: only then can a client be cut off."""
    ports = {*before.port_modes, *after.port_modes}
    if after.mode is Mode.STRICT and before.mode is not Mode.STRICT:
        return True
    return any(after.for_port(p) is Mode.STRICT and before.for_port(p) is not Mode.STRICT for p in ports)


def predict(analysis: Analysis, proposed: list[PeerAuthentication]) -> Prediction:
    """Which observed plaintext clients `proposed` would cut off, judged by the report's rules of doubt."""
    inventory, before = analysis.inventory, analysis.engine
    after = before.with_applied(proposed)
    out = Prediction(warnings=_proposal_warnings(analysis, before, after, proposed))

    reached: dict[tuple[str, str], tuple[Resolution, Resolution]] = {}
    for ns, name in analysis.destination_keys():
        workload = inventory.workload(ns, name)
        if workload is not None and not workload.meshed:
            continue
        # The report's own resolution is kept per destination; only the proposal's is new.
        old, new = analysis.resolve(ns, workload), after.resolve(ns, workload.labels if workload else {})
        if old == new:
            continue
        if workload is not None:
            out.changed_workloads.append(f"{ns}/{name}")
        if tightens(old, new):
            reached[(ns, name)] = (old, new)

    if any(Mode.STRICT in {pa.mode, *pa.port_modes.values()} for pa in proposed):
        out.doubts += analysis.doubts  # failed totals, a window Prometheus does not hold
    for (ns, name), _ in reached.items():
        workload = inventory.workload(ns, name)
        doubts = [d for d in analysis.doubts_for(ns, name, workload) if d not in analysis.doubts]
        if workload is None and after.has_workload_policies(ns) and not before.has_workload_policies(ns):
            doubts.append("labels unknown: not in the inventory, so the proposed workload policy cannot be matched")
        out.doubts += [f"{ns}/{name}: {d}" for d in doubts]
    out.doubts += _unnamed_doubts(analysis, before, after, proposed, reached)
    out.doubts += _scope_doubts(analysis, before, after, proposed)

    _cut_offs(analysis, reached, out)
    quiet = [f"{ns}/{name}" for ns, name in reached if not _has_evidence(analysis, ns, name)]
    if reached and len(quiet) == len(reached):
        out.warnings.append(
            f"the {len(quiet)} workload(s) the proposal tightens received no traffic in the window: "
            "nothing observed is cut off, but there is no evidence either way"
        )
    elif quiet:
        out.warnings.append(f"{len(quiet)} tightened workload(s) had no traffic in the window: {', '.join(quiet)}")
    if not reached:
        out.warnings.append("the proposal makes no workload stricter")
    return out


def _has_evidence(analysis: Analysis, ns: str, name: str) -> bool:
    ev = analysis.evidence.get((ns, name))
    return ev is not None and (ev.mtls + ev.plaintext + ev.unreadable) > 0


def _unnamed_doubts(
    analysis: Analysis,
    before: PolicyEngine,
    after: PolicyEngine,
    proposed: list[PeerAuthentication],
    reached: dict[tuple[str, str], tuple[Resolution, Resolution]],
) -> list[str]:
    """Non-mTLS traffic to a destination Istio could not name, in a namespace the proposal reaches:
    it may be one of the workloads being tightened."""
    namespaces = {ns for ns, _ in reached} | {pa.namespace for pa in proposed if pa.selector}
    doubts = []
    for ns, ev in sorted(analysis.unattributed.items()):
        touched = ns in namespaces or tightens(before.resolve(ns, {}), after.resolve(ns, {}))
        if touched and (ev.plaintext or ev.unreadable):
            volume = ev.plaintext + ev.unreadable
            doubts.append(f"{volume:g} non-mTLS requests/connections to an unnamed workload in {ns}")
    return doubts


def _scope_doubts(
    analysis: Analysis, before: PolicyEngine, after: PolicyEngine, proposed: list[PeerAuthentication]
) -> list[str]:
    """A proposal that tightens namespaces outside --namespace/--exclude-namespace: their traffic
    was not read, so the window cannot show that nothing there is cut off."""
    scope = analysis.settings.scope
    if not scope.limited:
        return []
    root = analysis.settings.root_namespace
    strict = [pa for pa in proposed if Mode.STRICT in {pa.mode, *pa.port_modes.values()}]
    doubts = []
    if any(pa.namespace == root and not pa.selector for pa in strict):
        doubts.append(
            f"the proposal is mesh-wide, but the scope ({scope.describe()}) left other namespaces out: "
            "their traffic was not read"
        )
    outside = {pa.namespace for pa in strict if pa.namespace != root and not scope.includes(pa.namespace)}
    for w in analysis.inventory.workloads.values():
        if not w.meshed or scope.includes(w.namespace):
            continue
        if tightens(before.resolve(w.namespace, w.labels), after.resolve(w.namespace, w.labels)):
            outside.add(w.namespace)
    if outside and not doubts:
        names = ", ".join(sorted(outside))
        doubts.append(f"the proposal tightens namespaces outside the scope, whose traffic was not read: {names}")
    return doubts


def _cut_offs(
    analysis: Analysis, reached: dict[tuple[str, str], tuple[Resolution, Resolution]], out: Prediction
) -> None:
    obs = analysis.observations
    if obs.empty:
        return
    plain = obs[(obs["security"] == PLAINTEXT) & (obs["count"] > 0)]
    if plain.empty:
        return
    grouped = plain.groupby(_GROUP, dropna=False)["count"].sum()
    last_seen = _last_seen(analysis)
    untouched: set[tuple[str, str]] = set()
    for key, count in grouped.items():
        src_ns, src_wl, ns, wl, protocol = key
        source = source_name(src_ns, src_wl)
        if (ns, wl) not in reached:
            workload = analysis.inventory.workload(ns, wl)
            held = wl not in UNNAMED and (workload is None or workload.meshed)
            if held and not analysis.resolve(ns, workload).everywhere(Mode.STRICT):
                untouched.add((source, f"{ns}/{wl}"))
            continue
        old, new = reached[(ns, wl)]
        out.cut_off.append(
            CutOff(
                source=source,
                destination=f"{ns}/{wl}",
                protocol=protocol,
                unit=UNIT_BY_PROTOCOL.get(protocol, "requests"),
                plaintext_count=round(float(count), 3),
                last_seen=last_seen.get(key),
                certain=new.everywhere(Mode.STRICT),
                mode_before=old.mode.value,
                mode_after=new.mode.value,
                decided_by=new.source,
            )
        )
    out.untouched_edges = sorted(untouched)


def _last_seen(analysis: Analysis) -> dict[tuple, datetime]:
    timeline = analysis.timeline
    if timeline.empty:
        return {}
    plain = timeline[(timeline["security"] == PLAINTEXT) & (timeline["count"] > 0)]
    if plain.empty:
        return {}
    return {key: ts.to_pydatetime() for key, ts in plain.groupby(_GROUP, dropna=False)["timestamp"].max().items()}


def _proposal_warnings(
    analysis: Analysis, before: PolicyEngine, after: PolicyEngine, proposed: list[PeerAuthentication]
) -> list[str]:
    warnings = []
    for note in after.ignored_policies():
        if any(note.startswith(f"PeerAuthentication {pa.ref} ") for pa in proposed):
            warnings.append("proposed " + note)
    known = {pa.ref for pa in before.policies}
    warnings += [f"{pa.ref} replaces the existing policy of that name" for pa in proposed if pa.ref in known]
    by_namespace: dict[str, list[dict[str, str]]] = defaultdict(list)
    for w in analysis.inventory.workloads.values():
        by_namespace[w.namespace].append(w.labels)
    for pa in proposed:
        if pa.namespace == analysis.settings.root_namespace and not pa.selector:
            continue  # mesh-wide: reaches every namespace
        labels = by_namespace.get(pa.namespace)
        if not labels:
            warnings.append(f"proposed {pa.ref}: namespace {pa.namespace} has no workload in the inventory (typo?)")
        elif pa.selector and not any(pa.matches(lbl) for lbl in labels):
            selector = ", ".join(f"{k}={v}" for k, v in sorted(pa.selector.items()))
            warnings.append(f"proposed {pa.ref}: selector {selector} matches no workload in {pa.namespace} (typo?)")
    return warnings


def format_table(prediction: Prediction) -> str:
    lines = [f"warning: {w}" for w in prediction.warnings]
    lines += [f"cannot tell: {d}" for d in prediction.doubts]
    lines.append(f"workloads whose mode changes: {len(prediction.changed_workloads)}")
    if prediction.cut_off:
        lines.append(
            f"{len(prediction.clients)} observed plaintext client(s) would be cut off "
            f"({len(prediction.edges)} client->destination edge(s)):"
        )
        lines.append(f"{'SOURCE':30} {'DESTINATION':30} {'PROTO':5} {'PLAINTEXT':>10}  MODE AFTER (DECIDED BY)")
        for c in sorted(prediction.cut_off, key=lambda c: -c.plaintext_count):
            maybe = "" if c.certain else "  [some ports stay open]"
            head = f"{c.source:30} {c.destination:30} {c.protocol:5} {c.plaintext_count:>10g}"
            lines.append(f"{head}  {c.mode_after} ({c.decided_by}){maybe}")
        if prediction.doubts:
            lines.append(f"and {len(prediction.doubts)} doubt(s) above: more clients may be cut off")
    elif prediction.doubts:
        lines.append(f"cannot tell if an observed client would be cut off: {len(prediction.doubts)} doubt(s) above")
    else:
        lines.append("no client observed in the window would be cut off")
    return "\n".join(lines)
