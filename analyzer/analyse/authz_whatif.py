"""What proposed AuthorizationPolicies would do to the clients observed in the window.

Every observed client -> destination edge (mTLS with the principal the metrics name, plaintext
without one) to a workload whose applicable policies change is decided before and after by the
engine. Newly denied is a cut-off (exit 3); a decision that depends on fields the metrics do not
carry, or on traffic, labels or policies that could not be read, is a doubt (exit 2); only with
evidence that no observed client is denied is the answer safe (exit 0). The same Prediction as
the PeerAuthentication what-if, so the output and exit codes are the same.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from analyzer.analyse.authz_engine import DENIED, DEPENDS, UNKNOWN_IDENTITY, AuthzEngine, Request
from analyzer.analyse.authz_findings import authz_doubts
from analyzer.analyse.classify import MTLS, PLAINTEXT
from analyzer.analyse.verdicts import source_name
from analyzer.analyse.whatif import CutOff, Prediction
from analyzer.model.authorization import AuthorizationPolicy
from analyzer.model.inventory import Dataplane
from analyzer.model.traffic import UNIT_BY_PROTOCOL

if TYPE_CHECKING:
    from analyzer.analyse.readiness import Analysis

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EDGE = ["source_namespace", "source_workload", "source_principal", "destination_namespace"]
_EDGE += ["destination_workload", "protocol", "security"]


def _same(policies: list[AuthorizationPolicy]) -> list[AuthorizationPolicy]:
    """Policies compared by content: age and the what-if mark do not change a decision."""
    return sorted((replace(p, created=_EPOCH, hypothetical=False) for p in policies), key=lambda p: p.ref)


def _identity(security: str, principal: str) -> str | None:
    if security == PLAINTEXT:
        return None
    return principal if principal.startswith("spiffe://") else UNKNOWN_IDENTITY


def predict_authz(analysis: Analysis, proposed: list[AuthorizationPolicy]) -> Prediction:
    inventory, root = analysis.inventory, analysis.settings.root_namespace
    before = AuthzEngine(inventory.authorization_policies, root)
    after = before.with_applied(proposed)
    out = Prediction(warnings=_warnings(analysis, before, proposed), kind="AuthorizationPolicy")

    reached: set[tuple[str, str]] = set()
    for ns, name in analysis.destination_keys():
        workload = inventory.workload(ns, name)
        if workload is not None and not workload.meshed:
            continue
        labels = workload.labels if workload else {}
        if _same(before.applicable(ns, labels)) != _same(after.applicable(ns, labels)):
            reached.add((ns, name))
            if workload is not None:
                out.changed_workloads.append(f"{ns}/{name}")
            elif any(p.selector for p in proposed if p.namespace in (ns, root)):
                out.doubts.append(
                    f"{ns}/{name}: labels unknown: not in the inventory, so the selector cannot be matched"
                )
    if reached or any(p.namespace == root or not p.selector for p in proposed):
        out.doubts += analysis.doubts  # failed totals, a window Prometheus does not hold
    for ns, name in sorted(reached):
        workload = inventory.workload(ns, name)
        scoped = [d for d in analysis.doubts_for(ns, name, workload) if d not in analysis.doubts]
        scoped += [d for d in authz_doubts(inventory, ns, root, workload) if not d.startswith("labels unknown")]
        out.doubts += [f"{ns}/{name}: {d}" for d in scoped]
    touched = {ns for ns, _ in reached} | {p.namespace for p in proposed}
    for ns, ev in sorted(analysis.unattributed.items()):
        if (ns in touched or root in touched) and (ev.mtls + ev.plaintext + ev.unreadable) > 0:
            volume = ev.mtls + ev.plaintext + ev.unreadable
            out.doubts.append(f"{volume:g} requests/connections to an unnamed workload in {ns}")

    obs = analysis.observations
    seen = obs[(obs["count"] > 0)] if not obs.empty else obs
    if not seen.empty:
        grouped = seen.groupby(_EDGE, dropna=False)["count"].sum()
        for key, count in grouped.items():
            src_ns, src_wl, principal, ns, wl, protocol, security = key
            if (ns, wl) not in reached:
                continue
            source, destination = source_name(src_ns, src_wl), f"{ns}/{wl}"
            if security not in (MTLS, PLAINTEXT):
                out.doubts.append(f"{source} -> {destination}: {count:g} without a readable connection_security_policy")
                continue
            workload = inventory.workload(ns, wl)
            labels = workload.labels if workload else {}
            ambient = workload is not None and workload.dataplane is Dataplane.AMBIENT
            request = Request(_identity(security, str(principal)), str(protocol), ambient)
            old, new = before.decide(ns, labels, request), after.decide(ns, labels, request)
            kind = "plaintext" if security == PLAINTEXT else "mTLS"
            if old.outcome == DENIED:
                continue  # already denied: the proposal changes nothing for it
            if new.outcome == DENIED:
                out.cut_off.append(
                    CutOff(
                        source=source,
                        destination=destination,
                        protocol=str(protocol),
                        unit=UNIT_BY_PROTOCOL.get(str(protocol), "requests"),
                        plaintext_count=round(float(count), 3),
                        last_seen=None,
                        certain=True,
                        mode_before=f"{kind} {old.outcome}",
                        mode_after=f"{kind} denied",
                        decided_by=", ".join(new.by[:3]) or new.why,
                    )
                )
            elif new.outcome == DEPENDS:
                out.doubts.append(
                    f"{source} -> {destination} ({kind}, {protocol}): {new.why} ({', '.join(new.by[:3])})"
                )
    if not reached:
        out.warnings.append("the proposal changes the policies of no workload seen in the window or the inventory")
    elif not out.cut_off and not out.doubts and seen.empty:
        out.warnings.append("no traffic in the window: nothing observed is denied, but there is no evidence either way")
    return out


def _warnings(analysis: Analysis, before: AuthzEngine, proposed: list[AuthorizationPolicy]) -> list[str]:
    warnings = []
    known = {p.ref for p in before.policies}
    warnings += [f"{p.ref} replaces the existing policy of that name" for p in proposed if p.ref in known]
    for p in proposed:
        if p.target_refs:
            warnings.append(f"proposed {p.ref} uses targetRefs: sidecars ignore it (gateways and waypoints only)")
        if p.dry_run:
            warnings.append(f"proposed {p.ref} is dry-run: it would change no decision")
    labels = [w.labels for w in analysis.inventory.workloads.values()]
    for p in proposed:
        if p.selector and p.namespace == analysis.settings.root_namespace:
            if not any(p.selects(lbl) for lbl in labels):
                warnings.append(f"proposed {p.ref}: selector matches no workload in the mesh (typo?)")
        elif p.selector:
            here = [w.labels for w in analysis.inventory.workloads.values() if w.namespace == p.namespace]
            if not any(p.selects(lbl) for lbl in here):
                warnings.append(f"proposed {p.ref}: selector matches no workload in {p.namespace} (typo?)")
    return warnings


def format_table(prediction: Prediction) -> str:
    lines = [f"warning: {w}" for w in prediction.warnings]
    lines += [f"cannot tell: {d}" for d in prediction.doubts]
    lines.append(f"workloads whose AuthorizationPolicies change: {len(prediction.changed_workloads)}")
    if prediction.cut_off:
        lines.append(
            f"{len(prediction.clients)} observed client(s) would be denied "
            f"({len(prediction.edges)} client->destination edge(s)):"
        )
        lines.append(f"{'SOURCE':30} {'DESTINATION':30} {'PROTO':5} {'COUNT':>10}  BEFORE -> AFTER (DENIED BY)")
        for c in sorted(prediction.cut_off, key=lambda c: -c.plaintext_count):
            head = f"{c.source:30} {c.destination:30} {c.protocol:5} {c.plaintext_count:>10g}"
            lines.append(f"{head}  {c.mode_before} -> {c.mode_after} ({c.decided_by})")
        if prediction.doubts:
            lines.append(f"and {len(prediction.doubts)} doubt(s) above: more clients may be denied")
    elif prediction.doubts:
        lines.append(f"cannot tell if an observed client would be denied: {len(prediction.doubts)} doubt(s) above")
    else:
        lines.append("no client observed in the window would be denied")
    return "\n".join(lines)
