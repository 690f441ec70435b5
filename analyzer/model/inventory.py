"""What the cluster holds: namespaces, workloads and the policies that govern them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from analyzer.model.authorization import AuthorizationPolicy
from analyzer.model.clients import ClientInventory
from analyzer.model.observability import Service, Telemetry
from analyzer.model.policy import DestinationRule, PeerAuthentication


class Dataplane(enum.StrEnum):
    SIDECAR = "sidecar"
    AMBIENT = "ambient"
    GATEWAY = "gateway"  # ingress/egress gateways, waypoints, ztunnel: PeerAuthentication does not apply
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def injection_enabled(self) -> bool:
        return self.labels.get("istio-injection") == "enabled" or (
            "istio.io/rev" in self.labels and self.labels.get("istio-injection") != "disabled"
        )

    @property
    def ambient_enabled(self) -> bool:
        return self.labels.get("istio.io/dataplane-mode") == "ambient"


@dataclass(frozen=True, slots=True)
class Workload:
    """A workload as Istio names it in metrics (Deployment, StatefulSet, Job, bare Pod...)."""

    namespace: str
    name: str
    kind: str
    labels: dict[str, str] = field(default_factory=dict)
    dataplane: Dataplane = Dataplane.NONE
    ports: tuple[int, ...] = ()
    service_account: str = "default"
    cluster: str = ""
    host_network: bool = False  # spec.hostNetwork: never injected, never captured
    # traffic.sidecar.istio.io/excludeInboundPorts and includeInboundPorts as written on the pod
    # (None: not set); parsed by analyse/blind_spots.py, which warns about values it cannot read.
    exclude_inbound_ports: str | None = None
    include_inbound_ports: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def meshed(self) -> bool:
        """True when PeerAuthentication governs this workload's inbound traffic."""
        return self.dataplane in (Dataplane.SIDECAR, Dataplane.AMBIENT)


@dataclass(slots=True)
class Inventory:
    """Everything read from the cluster (or files). Bad objects are skipped into `problems`."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    peer_authentications: list[PeerAuthentication] = field(default_factory=list)
    destination_rules: list[DestinationRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Set when the source could not list PeerAuthentications at all (e.g. CRD missing), and for
    # inputs read despite a flaw (a duplicate YAML key, a selector field Istio ignores).
    warnings: list[str] = field(default_factory=list)
    # Namespace -> why its policies cannot be trusted: a PeerAuthentication there could not be
    # read (it might be the oldest, deciding one). The root namespace stands for the whole mesh.
    policy_doubts: dict[str, list[str]] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    telemetries: list[Telemetry] = field(default_factory=list)
    # (namespace, pod name) -> the workload key it belongs to; only sources that list pods fill it.
    pod_workloads: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # Blind-spot inputs that could not be listed at all (CRD missing, 403): the check that
    # needed them did not run, which the report says.
    unavailable_checks: list[str] = field(default_factory=list)
    authorization_policies: list[AuthorizationPolicy] = field(default_factory=list)
    # Namespace -> why its AuthorizationPolicies cannot be trusted (one could not be read): the
    # authorization findings there are unknown. The root namespace stands for the whole mesh.
    authz_doubts: dict[str, list[str]] = field(default_factory=dict)
    # Why no AuthorizationPolicy could be listed at all (CRD missing, 403): every finding unknown.
    authz_unavailable: str = ""
    # Pod and node addresses, probes, Jobs and CronJobs: what names an unknown plaintext client.
    clients: ClientInventory = field(default_factory=ClientInventory)

    def add_workload(self, workload: Workload) -> None:
        self.workloads.setdefault(workload.key, workload)

    def workload(self, namespace: str, name: str) -> Workload | None:
        return self.workloads.get((namespace, name))
