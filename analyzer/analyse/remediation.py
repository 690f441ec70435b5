"""STRICT PeerAuthentication YAML an operator can apply, following what istiod will honour."""

from __future__ import annotations

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


def workload_selector(workload: Workload, neighbours: list[Workload]) -> dict[str, str] | None:
    """The smallest stable label selector that matches this workload and no other in its namespace."""
    others = [w for w in neighbours if w.key != workload.key]
    candidates = [{k: workload.labels[k]} for k in _STABLE_LABELS if k in workload.labels]
    candidates.append({k: v for k, v in workload.labels.items() if k not in _VOLATILE})
    for selector in candidates:
        if selector and not any(all(o.labels.get(k) == v for k, v in selector.items()) for o in others):
            return selector
    return None


def strict_for_workload(workload: Workload, existing: PeerAuthentication | None, neighbours: list[Workload]) -> str:
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
