"""Per workload below STRICT: what its AuthorizationPolicies do to plaintext, with traffic as evidence.

- open: nothing stops a request without a peer identity;
- denied: the policies already reject plaintext (STRICT changes only how it fails);
- depends: decided by fields the metrics do not carry (paths, JWTs, addresses, ports);
- unknown: a policy that could apply could not be read, or none could be listed.
Plus the DENY rules plaintext slips past, the observed plaintext clients already answered 403
(and whether Envoy's RBAC counters show those 403s were the proxy's: analyse/rbac_evidence.py),
and for an open workload that still receives plaintext a suggested policy to start from.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from analyzer.analyse import yaml_text
from analyzer.analyse.authz_engine import AuthzEngine, plaintext_finding
from analyzer.analyse.classify import MTLS, PLAINTEXT
from analyzer.analyse.rbac_evidence import NOT_PROXY, PROXY, Judgement, RbacEvidence
from analyzer.analyse.remediation import Neighbours, workload_selector
from analyzer.analyse.verdicts import UNNAMED, source_name
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.report import Verdict, WorkloadResult
from analyzer.model.traffic import FORBIDDEN, Traffic

UNKNOWN = "unknown"
# A SPIFFE principal as the metrics name it; anything else is not copied into a suggestion.
_PRINCIPAL = re.compile(r"^spiffe://([A-Za-z0-9._-]+/ns/[A-Za-z0-9._-]+/sa/[A-Za-z0-9._-]+)$")


@dataclass(slots=True)
class AuthzFinding:
    status: str  # open, denied, depends, unknown
    reason: str
    policies: list[str] = field(default_factory=list)
    slipped_rules: list[str] = field(default_factory=list)
    denied_clients: list[str] = field(default_factory=list)
    denials_unknown: str = ""  # why the 403s could not be read
    denials_by: str = ""  # proxy, not-proxy or unconfirmed when some client looked denied; "" otherwise
    suggestion: str = ""


def _printable(text: str, limit: int = 80) -> str:
    """Label text for a YAML comment: one line, bounded (labels are attacker-controlled)."""
    clean = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def authz_doubts(inventory: Inventory, namespace: str, root: str, workload: Workload | None) -> list[str]:
    """Why the policies that could apply to a workload in `namespace` cannot be trusted."""
    doubts = []
    if inventory.authz_unavailable:
        doubts.append(f"AuthorizationPolicies could not be listed ({inventory.authz_unavailable})")
    for scope in dict.fromkeys((root, namespace)):
        doubts += inventory.authz_doubts.get(scope, [])
    if workload is None and any(
        p.selector and p.namespace in (root, namespace) for p in inventory.authorization_policies
    ):
        doubts.append("labels unknown: the workload is not in the inventory, so selector policies cannot be matched")
    return doubts


def _plaintext_by_destination(frame: pd.DataFrame) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(client, protocol) of each plaintext row, per destination: read once, in plain Python (a
    big mesh has thousands of destinations, and a pandas filter per destination adds up)."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    columns = ["destination_namespace", "destination_workload", "source_namespace", "source_workload", "protocol"]
    for ns, wl, src_ns, src_wl, protocol in zip(*(frame[c].tolist() for c in columns), strict=True):
        out[(ns, wl)].append((source_name(src_ns, src_wl), str(protocol)))
    return out


def _principals_by_destination(frame: pd.DataFrame) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    columns = ["destination_namespace", "destination_workload", "source_principal"]
    for ns, wl, principal in zip(*(frame[c].tolist() for c in columns), strict=True):
        out[(ns, wl)].add(str(principal))
    return out


def _response_totals(responses: pd.DataFrame) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per destination and plaintext client: [requests, of which answered 403], read in one pass."""
    totals: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    columns = ["destination_namespace", "destination_workload", "source_namespace", "source_workload"]
    for ns, wl, src_ns, src_wl, code, count in zip(
        *(responses[c].tolist() for c in [*columns, "response_code", "count"]), strict=True
    ):
        if count > 0:
            seen = totals[(ns, wl)][source_name(src_ns, src_wl)]
            seen[0] += count
            seen[1] += count if code == FORBIDDEN else 0.0
    return totals


def _all_denied(totals: dict[tuple[str, str], dict[str, list[float]]]) -> dict[tuple[str, str], list[str]]:
    return {
        key: sorted(src for src, (total, denied) in by_source.items() if denied == total)
        for key, by_source in totals.items()
    }


def denied_by_destination(responses: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """Per destination, the plaintext clients every request of which was answered 403."""
    return _all_denied(_response_totals(responses))


def _denials_note(judged: Judgement, clients: list[str]) -> str:
    """What the reason adds about whose 403s they were."""
    if judged.by == PROXY:
        return f"the plaintext 403s were the proxy's: {judged.why}"
    if judged.by == NOT_PROXY:
        listed = ", ".join(_printable(c) for c in clients[:5]) + (" ..." if len(clients) > 5 else "")
        return (
            f"the plaintext 403s were the application's, not the proxy's ({judged.why}): not already "
            f"denied, STRICT would cut off {listed}"
        )
    return f"unconfirmed that the plaintext 403s were the proxy's ({judged.why}); an application's 403 looks the same"


def suggest(
    workload: Workload, neighbours: Neighbours, mtls_principals: Iterable[str], plaintext_clients: Iterable[str]
) -> str:
    """An ALLOW policy that keeps the observed mTLS identities and admits plaintext: a starting point
    to review, never to apply as is. It holds only conditions the metrics can check, so `what-if` on
    it predicts exactly which observed clients it denies; narrowing plaintext by port is offered as a
    comment, because the metrics do not carry the port and what-if could not check it."""
    selector = workload_selector(workload, neighbours)
    if selector is None:
        return ""
    seen = set(mtls_principals)
    principals = sorted({m.group(1) for p in seen if (m := _PRINCIPAL.match(p))})
    unnamed = sum(1 for p in seen if not _PRINCIPAL.match(p))
    rules: list[dict] = []
    if principals:
        rules.append({"from": [{"source": {"principals": principals}}]})
    rules.append({"from": [{"source": {"notPrincipals": ["*"]}}]})
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{workload.name}-limit-plaintext"[:253], "namespace": workload.namespace},
        "spec": {"selector": {"matchLabels": selector}, "action": "ALLOW", "rules": rules},
    }
    clients = sorted(set(plaintext_clients))
    header = [
        "# A STARTING POINT TO REVIEW, not a policy to apply as is (generated by mtls-readiness).",
        "# Rule 1 keeps the mTLS clients seen in the window; any other mTLS client would be denied."
        if principals
        else "# No mTLS client was seen in the window: every mTLS client would be denied.",
        "# The last rule admits requests without a peer identity (plaintext), so no observed client is denied;",
        "# check that with: mtls-readiness what-if --apply <this file>.",
    ]
    if unnamed:
        header.append(
            f"# {unnamed} mTLS identity(ies) seen were not SPIFFE principals and are not in rule 1: add them."
        )
    if workload.ports:
        ports = ", ".join(f'"{p}"' for p in workload.ports)
        header += [
            "# To admit plaintext on the declared ports only, add to the last rule (what-if cannot check",
            f"# this, the metrics do not carry the port):  to: [{{operation: {{ports: [{ports}]}}}}]",
        ]
    header += [
        "# Narrow it further with ipBlocks of the plaintext clients' addresses.",
        "# Plaintext clients seen: "
        + ", ".join(_printable(c) for c in clients[:10])
        + (" ..." if len(clients) > 10 else ""),
    ]
    return "\n".join(header) + "\n" + yaml_text.dump(doc)


def findings(
    inventory: Inventory,
    traffic: Traffic,
    observations: pd.DataFrame,
    engine: AuthzEngine,
    below_strict: Iterable[tuple[str, str]],
    root: str,
) -> dict[tuple[str, str], AuthzFinding]:
    """The finding for each meshed (ns, name) in `below_strict`, from the classified observations."""
    positive = observations[observations["count"] > 0]
    plain = _plaintext_by_destination(positive[positive["security"] == PLAINTEXT])
    mtls = _principals_by_destination(positive[positive["security"] == MTLS])
    totals = None if traffic.plaintext_responses is None else _response_totals(traffic.plaintext_responses)
    responses = None if totals is None else _all_denied(totals)
    # Per destination, the plaintext requests answered 403 (of any client): what RBAC's denials must match.
    forbidden = {key: sum(d for _, d in by_source.values()) for key, by_source in (totals or {}).items()}
    evidence = RbacEvidence.of(traffic, inventory)
    by_namespace: dict[str, list[Workload]] = {}
    for w in inventory.workloads.values():
        by_namespace.setdefault(w.namespace, []).append(w)
    neighbours = {ns: Neighbours(found) for ns, found in by_namespace.items()}
    out: dict[tuple[str, str], AuthzFinding] = {}
    for ns, name in below_strict:
        if name in UNNAMED:
            continue
        workload = inventory.workload(ns, name)
        here = plain.get((ns, name), [])
        protocols = {protocol for _, protocol in here}
        clients = [client for client, _ in here]
        doubts = authz_doubts(inventory, ns, root, workload)
        labels = workload.labels if workload else {}
        ambient = workload is not None and workload.dataplane is Dataplane.AMBIENT
        finding = plaintext_finding(engine, ns, labels, protocols, ambient)
        denied: list[str] | None = []
        if clients:
            denied = None if responses is None else responses.get((ns, name), [])
        judged = evidence.judge(ns, name, forbidden.get((ns, name), 0.0)) if denied else None
        if judged is not None and judged.by == NOT_PROXY:
            denied = []  # the application's 403s: these clients still get through to it today
        result = AuthzFinding(
            status=UNKNOWN if doubts else finding.status,
            reason="; ".join(doubts) if doubts else _reason(finding.status, finding.why, finding.by),
            policies=finding.policies,
            slipped_rules=[s.describe() for s in finding.slipped],
            denied_clients=denied or [],
            denials_unknown=(traffic.responses_failed or "response codes were not collected") if denied is None else "",
            denials_by=judged.by if judged else "",
        )
        result.reason += "".join(f"; {n}" for n in finding.not_applied)
        if judged is not None:
            result.reason += f"; {_denials_note(judged, responses.get((ns, name), []) if responses else [])}"
        if result.status == "open" and clients and workload is not None:
            result.suggestion = suggest(workload, neighbours[ns], mtls.get((ns, name), set()), clients)
        out[(ns, name)] = result
    return out


def _reason(status: str, why: str, by: tuple[str, ...]) -> str:
    rules = f" ({', '.join(by[:5])}{' ...' if len(by) > 5 else ''})" if by else ""
    lead = {
        "open": "plaintext is admitted",
        "denied": "plaintext is already denied",
        "depends": "plaintext may be denied",
    }.get(status, status)
    return f"{lead}: {why}{rules}"


def annotate(
    workloads: list[WorkloadResult],
    inventory: Inventory,
    traffic: Traffic,
    observations: pd.DataFrame,
    root: str,
) -> None:
    """Fill the authorization fields of every meshed workload below STRICT."""
    below = [
        (w.namespace, w.workload)
        for w in workloads
        if w.verdict not in (Verdict.ENFORCED, Verdict.NOT_MESHED) and w.dataplane in ("sidecar", "ambient")
    ]
    engine = AuthzEngine(inventory.authorization_policies, root)
    found = findings(inventory, traffic, observations, engine, below, root)
    for w in workloads:
        f = found.get((w.namespace, w.workload))
        if f is None:
            continue
        w.authz_plaintext, w.authz_reason, w.authz_policies = f.status, f.reason, f.policies
        w.authz_slipped_rules, w.plaintext_denied_clients = f.slipped_rules, f.denied_clients
        w.plaintext_denials_unknown, w.authz_suggestion = f.denials_unknown, f.suggestion
        w.plaintext_denials_by = f.denials_by
