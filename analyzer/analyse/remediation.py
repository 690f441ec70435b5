"""STRICT PeerAuthentication YAML an operator can apply, following what istiod will honour."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from analyzer.analyse import yaml_text
from analyzer.model.inventory import Workload
from analyzer.model.policy import Mode, PeerAuthentication

# Labels that identify a workload without following every rollout.
_STABLE_LABELS = ("app.kubernetes.io/name", "app", "k8s-app", "name")
_VOLATILE = {
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "pod-template-generation",
}


def policy_yaml(pa: PeerAuthentication) -> str:
    spec: dict = {}
    if pa.selector:
        spec["selector"] = {"matchLabels": dict(pa.selector)}
    spec["mtls"] = {"mode": pa.mode.value}
    if pa.port_modes:
        spec["portLevelMtls"] = {str(p): {"mode": m.value} for p, m in sorted(pa.port_modes.items())}
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": pa.name, "namespace": pa.namespace},
        "spec": spec,
    }
    return yaml_text.dump(doc)


class Neighbours:
    """The workloads of one namespace indexed by label: which of them a selector matches is then a
    few set lookups, not a scan of the namespace for each workload (quadratic in a big namespace)."""

    def __init__(self, workloads: Iterable[Workload]):
        self._by_label: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for w in workloads:
            for label in w.labels.items():
                self._by_label[label].add(w.key)

    def matching(self, selector: dict[str, str]) -> set[tuple[str, str]]:
        """The keys of the workloads whose labels hold every pair of a non-empty `selector`."""
        found = sorted((self._by_label.get(label, set()) for label in selector.items()), key=len)
        return set.intersection(*found) if found else set()


def workload_selector(workload: Workload, neighbours: Neighbours) -> dict[str, str] | None:
    """The smallest stable label selector that matches this workload and no other in its namespace."""
    candidates = [{k: workload.labels[k]} for k in _STABLE_LABELS if k in workload.labels]
    candidates.append({k: v for k, v in workload.labels.items() if k not in _VOLATILE})
    for selector in candidates:
        if selector and not neighbours.matching(selector) - {workload.key}:
            return selector
    return None


def strict_for_workload(workload: Workload, existing: PeerAuthentication | None, neighbours: Neighbours) -> str:
    """YAML that makes one workload STRICT; edits its own policy when it has one."""
    if existing is not None:
        ports = {p: Mode.STRICT for p in existing.port_modes}
        return policy_yaml(
            PeerAuthentication(
                existing.namespace, existing.name, existing.created, existing.selector, Mode.STRICT, ports
            )
        )
    selector = workload_selector(workload, neighbours)
    workload_created = datetime.now(UTC)
    if selector is None:
        return ""
    return policy_yaml(
        PeerAuthentication(workload.namespace, f"{workload.name}-strict", workload_created, selector, Mode.STRICT)
    )


def strict_edit(pa: PeerAuthentication) -> PeerAuthentication:
    """The same policy (same name, so `kubectl apply` edits it) made STRICT on every port."""
    return PeerAuthentication(
        pa.namespace, pa.name, pa.created, pa.selector, Mode.STRICT, {p: Mode.STRICT for p in pa.port_modes}
    )
