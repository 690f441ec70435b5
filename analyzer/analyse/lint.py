"""Policy lint with evidence: policies that do not do what they look like, shown with the traffic
of the window that proves it (docs/semantics.md, sections 1, 2 and 7). Pure.

The rules istiod applies to PeerAuthentications come from the policy engine (`ignored_policies`),
and DestinationRule lookup from `advice.disabling_rule`: this module only adds the evidence.
"""

from __future__ import annotations

import re
from collections import defaultdict

from analyzer.analyse import advice
from analyzer.analyse.blind_spots import uncaptured_ports
from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.analyse.verdicts import source_name
from analyzer.model.findings import LintFinding
from analyzer.model.inventory import Dataplane, Inventory
from analyzer.model.observability import Service
from analyzer.model.policy import DestinationRule, Mode
from analyzer.model.report import EdgeResult

STRICT_PLAINTEXT = "strict-receives-plaintext"
STRICT_UNCAPTURED = "strict-port-not-captured"
DR_DISABLE = "destination-rule-disable"
MUTUAL_TO_SIDECARLESS = "istio-mutual-to-sidecarless"
IGNORED = "ignored-policy"
MAX_EVIDENCE = 20  # lines per finding; the edges CSV has every edge
_POLICY_REF = re.compile(r"^PeerAuthentication (\S+)")


def _edge_line(e: EdgeResult) -> str:
    seen = f", last seen {e.last_plaintext_seen:%Y-%m-%d %H:%M}Z" if e.last_plaintext_seen else ""
    client = source_name(e.source_namespace, e.source_workload)
    return (
        f"{client} -> {e.destination_namespace}/{e.destination_workload}: "
        f"{e.plaintext_count:g} plaintext {e.unit}{seen}"
    )


def _evidence(edges: list[EdgeResult]) -> list[str]:
    edges = sorted(edges, key=lambda e: -e.plaintext_count)
    lines = [_edge_line(e) for e in edges[:MAX_EVIDENCE]]
    if len(edges) > MAX_EVIDENCE:
        lines.append(f"and {len(edges) - MAX_EVIDENCE} more edge(s) in edges.csv")
    return lines


def strict_receiving_plaintext(
    inventory: Inventory, engine: PolicyEngine, edges: list[EdgeResult]
) -> list[LintFinding]:
    """STRICT everywhere, yet plaintext arrived in the window: a policy applied mid-window, traffic
    through a gateway or waypoint, or a port the sidecar does not capture."""
    by_destination: dict[tuple[str, str], list[EdgeResult]] = defaultdict(list)
    for e in edges:
        if e.plaintext_count > 0 and e.destination_mode == Mode.STRICT.value:
            by_destination[(e.destination_namespace, e.destination_workload)].append(e)
    findings = []
    for (ns, name), found in sorted(by_destination.items()):
        findings.append(
            LintFinding(
                STRICT_PLAINTEXT,
                f"workload {ns}/{name}",
                f"{ns}/{name} is STRICT ({found[0].destination_mode_source}) but received plaintext in the window: "
                "the policy is newer than the traffic, or the plaintext arrives where STRICT does not reach "
                "(a gateway, a port the sidecar does not capture)",
                _evidence(found),
            )
        )
    for w in sorted(inventory.workloads.values(), key=lambda w: w.key):
        if w.dataplane is not Dataplane.SIDECAR:
            continue
        resolution = engine.resolve(w.namespace, w.labels)
        if not resolution.everywhere(Mode.STRICT):
            continue
        ports, _ = uncaptured_ports(w)
        if ports is None or ports:
            shown = "every inbound port" if ports is None else f"port(s) {', '.join(map(str, sorted(ports)))}"
            findings.append(
                LintFinding(
                    STRICT_UNCAPTURED,
                    f"workload {w.namespace}/{w.name}",
                    f"{w.namespace}/{w.name} is STRICT ({resolution.source}) but {shown} bypass the sidecar: "
                    "plaintext is accepted there and no metric shows it",
                    [
                        f"excludeInboundPorts={w.exclude_inbound_ports!r}, "
                        f"includeInboundPorts={w.include_inbound_ports!r}"
                    ],
                )
            )
    return findings


def disabling_rules(inventory: Inventory, edges: list[EdgeResult], root_namespace: str) -> list[LintFinding]:
    """DestinationRules with tls.mode DISABLE, naming the clients whose plaintext they cause."""
    findings = []
    for rule in sorted(inventory.destination_rules, key=lambda r: r.ref):
        if not rule.disables_tls():
            continue
        affected = [
            e
            for e in edges
            # An unmeshed client sends plaintext whatever a DestinationRule says.
            if e.plaintext_count > 0
            and e.client_kind != "unmeshed"
            and advice.disabling_rule(e, [rule], root_namespace) == rule.ref
        ]
        clients = sorted({source_name(e.source_namespace, e.source_workload) for e in affected})
        where = "tls.mode DISABLE" if rule.tls_mode == "DISABLE" else "tls.mode DISABLE on some ports"
        detail = f"DestinationRule {rule.ref} (host {rule.host}) sets {where}: " + (
            f"it makes {len(clients)} client(s) send plaintext in the window: {', '.join(clients[:10])}"
            + (" and more" if len(clients) > 10 else "")
            if clients
            else "no client was seen sending plaintext through it in the window"
        )
        findings.append(LintFinding(DR_DISABLE, f"DestinationRule {rule.ref}", detail, _evidence(affected)))
    return findings


def _services_for(rule: DestinationRule, services: list[Service]) -> list[Service]:
    host = advice.qualified_host(rule.host, rule.namespace)
    return [s for s in services if advice.host_matches(host, s.host)]


def mutual_to_sidecarless(inventory: Inventory) -> list[LintFinding]:
    """ISTIO_MUTUAL forces mTLS even to endpoints without a sidecar, which cannot answer it."""
    findings = []
    for rule in sorted(inventory.destination_rules, key=lambda r: r.ref):
        if rule.tls_mode != "ISTIO_MUTUAL" and "ISTIO_MUTUAL" not in rule.port_tls_modes.values():
            continue
        bare = sorted(
            {
                f"{w.namespace}/{w.name} (via Service {s.ref})"
                for s in _services_for(rule, inventory.services)
                for w in inventory.workloads.values()
                if w.namespace == s.namespace and s.selects(w.labels) and w.dataplane is Dataplane.NONE
            }
        )
        if bare:
            findings.append(
                LintFinding(
                    MUTUAL_TO_SIDECARLESS,
                    f"DestinationRule {rule.ref}",
                    f"DestinationRule {rule.ref} (host {rule.host}) sets ISTIO_MUTUAL, but {len(bare)} endpoint "
                    "workload(s) have no sidecar: their clients' connections fail instead of falling back",
                    bare[:MAX_EVIDENCE],
                )
            )
    return findings


def ignored_policies(engine: PolicyEngine) -> list[LintFinding]:
    findings = []
    for note in engine.ignored_policies():
        match = _POLICY_REF.match(note)
        findings.append(LintFinding(IGNORED, f"PeerAuthentication {match.group(1)}" if match else "", note))
    return findings


def lint(inventory: Inventory, engine: PolicyEngine, edges: list[EdgeResult], root_namespace: str) -> list[LintFinding]:
    return [
        *strict_receiving_plaintext(inventory, engine, edges),
        *disabling_rules(inventory, edges, root_namespace),
        *mutual_to_sidecarless(inventory),
        *ignored_policies(engine),
    ]
