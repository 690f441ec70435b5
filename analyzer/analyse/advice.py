"""What kind of client sent plaintext, and what to do about it (docs/semantics.md, sections 2 and 4)."""

from __future__ import annotations

from typing import Any

from analyzer.analyse.verdicts import UNNAMED
from analyzer.model.inventory import Dataplane, Inventory
from analyzer.model.policy import DestinationRule

CLUSTER_DOMAIN = "svc.cluster.local"


def client_kind(source_namespace: str, source_workload: str, protocol: str, inventory: Inventory) -> str:
    """meshed, unmeshed or unknown: what kind of client an edge's source is."""
    if source_workload in UNNAMED:
        # A sidecar client sends peer metadata with every HTTP request, plaintext or not;
        # plaintext TCP carries none, so there it could be either (docs/semantics.md, section 3).
        return "unmeshed" if protocol in ("http", "grpc") else "unknown"
    source = inventory.workload(source_namespace, source_workload)
    if source is None:
        return "unknown"
    return "unmeshed" if source.dataplane is Dataplane.NONE else "meshed"  # gateways are meshed clients


def advise(row: Any, kind: str, inventory: Inventory, root_namespace: str) -> str:
    if kind == "meshed":
        rule = disabling_rule(row, inventory.destination_rules, root_namespace)
        if rule:
            return f"DestinationRule {rule} sets tls.mode DISABLE for this host: remove it or use ISTIO_MUTUAL"
        return (
            "the client has a sidecar but sends plaintext: look for a DestinationRule with tls DISABLE, "
            "enableAutoMtls=false, calls to pod IPs, or a missing security.istio.io/tlsMode label"
        )
    if kind == "unmeshed":
        if row.source_workload in UNNAMED:
            return (
                "a caller without a sidecar (another pod, a node or kubelet probe without rewrite, an ingress "
                "controller, a scraper, or outside the cluster): mesh it, or keep its port PERMISSIVE"
            )
        return f"{row.source_namespace}/{row.source_workload} has no sidecar: inject one (or enrol it in ambient)"
    return "plaintext TCP carries no peer metadata: find the caller (unmeshed pod, or a meshed one with TLS disabled)"


def qualified_host(host: str, namespace: str) -> str:
    """A DestinationRule host as istiod reads it: short names are relative to the rule's namespace."""
    if host == "*" or host.startswith("*."):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{CLUSTER_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.{CLUSTER_DOMAIN}"
    return host


def host_matches(rule_host: str, service: str) -> bool:
    if rule_host == "*":
        return True
    if rule_host.startswith("*."):
        return service.endswith(rule_host[1:])
    return rule_host == service


def disabling_rule(row: Any, rules: list[DestinationRule], root_namespace: str) -> str:
    """The DestinationRule that turns TLS off for this edge's service, looked up where istiod
    looks: the client's namespace, the service's, then the root namespace."""
    for namespace in (row.source_namespace, row.destination_namespace, root_namespace):
        for rule in rules:
            if rule.namespace != namespace or not rule.disables_tls():
                continue
            if rule.workload_selector and namespace != row.source_namespace:
                continue  # a workloadSelector rule applies only to clients in its own namespace
            if host_matches(qualified_host(rule.host, rule.namespace), row.destination_service):
                return rule.ref
    return ""
