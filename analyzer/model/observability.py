"""What decides whether the telemetry can see a workload: Services and Istio Telemetry resources.

Read by the blind-spot checks (`analyse/blind_spots.py`); pure data, reduced to the fields used.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target_port: str = ""  # a number or a container port name, as written; "" means the same as `port`
    name: str = ""


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    headless: bool = False  # clusterIP: None: DNS answers with pod IPs, callers reach pods directly
    selector: dict[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def selects(self, labels: dict[str, str]) -> bool:
        # A Service without a selector has hand-made endpoints: it selects no workload we know.
        return bool(self.selector) and all(labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class MetricsOverride:
    """One `spec.metrics[].overrides[]` entry of a Telemetry resource."""

    metric: str = "ALL_METRICS"  # REQUEST_COUNT, TCP_OPENED_CONNECTIONS, ... (Istio's MetricSelector)
    mode: str = "CLIENT_AND_SERVER"  # CLIENT, SERVER or CLIENT_AND_SERVER
    disabled: bool = False
    removed_tags: tuple[str, ...] = ()  # tagOverrides with operation REMOVE


@dataclass(frozen=True, slots=True)
class MetricsRule:
    """One `spec.metrics[]` entry: the providers it shapes and its overrides."""

    providers: tuple[str, ...] = ()  # empty: meshConfig.defaultProviders.metrics
    overrides: tuple[MetricsOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class Telemetry:
    namespace: str
    name: str
    selector: dict[str, str] = field(default_factory=dict)
    has_target_refs: bool = False  # targetRefs (Gateway API) select what we cannot match: doubt
    metrics: tuple[MetricsRule, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())
