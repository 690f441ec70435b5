"""What attributing an unnamed plaintext client needs, and what the attribution found.

Two halves: facts about the cluster (pod and node addresses, probes, Jobs and CronJobs, read with
the inventory) and facts about the traffic (a peer-address label, client-side series, the
Prometheus scrape targets, read with the traffic). Each source that could not be read is named in
`degraded`: the engine then never calls a candidate from it certain (docs/attribution.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CERTAIN, LIKELY, POSSIBLE = "certain", "likely", "possible"
CONFIDENCES = (CERTAIN, LIKELY, POSSIBLE)

# Attribution sources, as named in `degraded` and in each candidate's `source`.
PEER_ADDRESS = "peer-address"
PROBES = "probes"
SCRAPE_TARGETS = "scrape-targets"
JOBS = "jobs"
SIDECARLESS = "sidecar-less"
CLIENT_SIDE = "client-side"
NODES = "nodes"
PODS = "pods"

KUBELET = "kubelet"  # the candidate name of kubelet probes (no workload sends them)
PROMETHEUS = "prometheus"  # the candidate name of the Prometheus that answered the queries


@dataclass(frozen=True, slots=True)
class Probe:
    """One kubelet probe of one container, as declared (before any rewrite by the injector)."""

    container: str
    probe: str  # liveness, readiness, startup
    handler: str  # http, tcp, grpc (exec probes send no traffic and are not kept)
    port: int | None  # None: a named port the container does not declare
    period_seconds: float = 10.0  # Kubernetes' default


@dataclass(frozen=True, slots=True)
class PodFacts:
    namespace: str
    name: str
    workload: str  # Istio's workload name for the pod (Deployment, CronJob...)
    ips: tuple[str, ...] = ()
    host_network: bool = False
    node: str = ""
    meshed: bool = False


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    namespace: str
    name: str
    replicas: int = 1
    probes: tuple[Probe, ...] = ()
    # sidecar.istio.io/rewriteAppHTTPProbers; None: not set (Istio's default rewrites)
    rewrite_probes: bool | None = None


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    addresses: tuple[str, ...] = ()  # InternalIP, ExternalIP, Hostname


@dataclass(frozen=True, slots=True)
class JobRun:
    namespace: str
    name: str
    workload: str  # the CronJob for a scheduled Job, else the Job itself
    start: datetime | None = None
    completion: datetime | None = None


@dataclass(frozen=True, slots=True)
class CronSchedule:
    namespace: str
    name: str
    schedule: str
    time_zone: str | None = None
    suspend: bool = False


@dataclass(slots=True)
class ClientInventory:
    pods: list[PodFacts] = field(default_factory=list)
    workloads: dict[tuple[str, str], WorkloadFacts] = field(default_factory=dict)
    nodes: list[NodeFacts] = field(default_factory=list)
    jobs: list[JobRun] = field(default_factory=list)
    cronjobs: list[CronSchedule] = field(default_factory=list)
    degraded: dict[str, str] = field(default_factory=dict)  # source -> why it is missing or partial


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """Non-mTLS volume to a destination from one peer address (the Telemetry override's label)."""

    destination_namespace: str
    destination_workload: str
    address: str  # as Envoy writes source.address: ip:port, or [v6]:port
    count: float


@dataclass(frozen=True, slots=True)
class ClientSideEdge:
    """A client-side (reporter="source") series: the sender names itself there."""

    source_namespace: str
    source_workload: str
    destination_namespace: str
    destination_workload: str
    protocol: str
    count: float


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One active target of the Prometheus that answers the queries."""

    address: str  # host:port it scrapes
    job: str
    interval_seconds: float | None
    health: str = "unknown"


@dataclass(slots=True)
class ClientTraffic:
    peer_label: str = ""  # "" when no peer-address label is configured
    peer_addresses: list[PeerAddress] = field(default_factory=list)
    client_side: list[ClientSideEdge] = field(default_factory=list)
    targets: list[ScrapeTarget] = field(default_factory=list)
    degraded: dict[str, str] = field(default_factory=dict)


# -- what the attribution found (stored on the RunResult) -------------------------------------


@dataclass(slots=True)
class Candidate:
    """Who may have sent an unnamed edge's plaintext, why, and how sure the evidence is."""

    name: str  # "ns/workload", "kubelet", "node <name>", or an address nothing in the inventory has
    confidence: str  # certain, likely, possible
    source: str  # which attribution source named it (PEER_ADDRESS, PROBES, ...)
    evidence: str


@dataclass(slots=True)
class EdgeAttribution:
    """The ranked candidates for one blocker edge whose client Istio could not name."""

    source_namespace: str
    source_workload: str
    destination_namespace: str
    destination_workload: str
    protocol: str
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(slots=True)
class ClientGroup:
    """One plaintext client (named by Istio, or its best attributed candidate) and what it blocks."""

    client: str  # "ns/workload", a candidate name, or "unknown" when nothing names it
    attributed: bool  # False: Istio's own labels name it
    confidence: str  # "" when Istio names it; else the best candidate's confidence
    evidence: str
    destinations: list[str] = field(default_factory=list)  # "ns/workload"
    edges: int = 0
    requests: float = 0.0
    connections: float = 0.0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    advice: str = ""
