"""Where the telemetry cannot see (docs/semantics.md, section 7): pure checks over the inventory
and what Prometheus said about its own scraping.

Each check yields `BlindSpot`s for the report. A blind spot that leaves a workload's verdict
resting on absent metrics (no proxy scraped, request metrics disabled or stripped by Telemetry,
no inbound port captured) also yields a doubt for that workload: its NO_TRAFFIC or READY
becomes UNKNOWN with the reason, never READY on data that cannot exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.model.findings import BlindSpot
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.observability import Telemetry
from analyzer.model.traffic import Traffic

# Ports of the sidecar itself; the injector adds 15090, 15021 and 15020 to every pod's exclusions.
ISTIO_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090})
# Metric selectors of Telemetry overrides that reach istio_requests_total or
# istio_tcp_connections_opened_total; modes that reach the server side, which is all we read.
READ_METRICS = frozenset({"ALL_METRICS", "REQUEST_COUNT", "TCP_OPENED_CONNECTIONS"})
SERVER_MODES = frozenset({"SERVER", "CLIENT_AND_SERVER"})
# Labels the queries group by and the classification needs; removing one hides who or what.
READ_LABELS = frozenset(
    {
        "connection_security_policy",
        "reporter",
        "request_protocol",
        "source_workload",
        "source_workload_namespace",
        "source_principal",
        "destination_workload",
        "destination_workload_namespace",
        "destination_service",
    }
)
PROMETHEUS = "prometheus"

EXCLUDED = "excluded-ports"
NO_PROXY = "no-proxy-telemetry"
DISABLED = "telemetry-disabled"
FILTERED = "telemetry-filtered"
PROVIDERS = "telemetry-providers"
HOST_NETWORK = "host-network"
HEADLESS = "headless-service"
PORT_LEVEL = "port-level-mtls"
UNAVAILABLE = "check-unavailable"


@dataclass(slots=True)
class Findings:
    spots: list[BlindSpot] = field(default_factory=list)
    # (namespace, workload) -> why its verdict cannot rest on metrics
    doubts: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: list[str] = field(default_factory=list)

    def add(self, spot: BlindSpot, doubt_for: Iterable[tuple[str, str]] = ()) -> None:
        self.spots.append(spot)
        for key in doubt_for:
            self.doubts[key].append(spot.detail)
        if spot.affects_verdict:
            self.warnings.append(f"blind spot ({spot.kind}) {spot.subject}: {spot.detail}")


# -- parsing ------------------------------------------------------------------------------------


def parse_ports(value: str) -> tuple[set[int], list[str]]:
    """A comma list of ports as the sidecar annotations take it; returns (ports, unreadable parts)."""
    ports: set[int] = set()
    bad: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit() and 1 <= int(part) <= 65535:
            ports.add(int(part))
        else:
            bad.append(part[:20])
    return ports, bad


def uncaptured_ports(workload: Workload) -> tuple[set[int] | None, list[str]]:
    """App ports the sidecar does not capture (None: no inbound port is captured at all), and
    unreadable annotation parts. istio-iptables: an include list other than `*` replaces the
    default and makes excludeInboundPorts moot; an empty include list captures nothing."""
    include = workload.include_inbound_ports
    if include is not None and include.strip() != "*":
        if not include.strip():
            return None, []
        included, bad = parse_ports(include)
        return {p for p in workload.ports if p not in included}, bad
    excluded, bad = parse_ports(workload.exclude_inbound_ports or "")
    return excluded - ISTIO_PORTS, bad


# -- the checks ---------------------------------------------------------------------------------


def _sidecars(inventory: Inventory) -> list[Workload]:
    return [w for w in inventory.workloads.values() if w.dataplane is Dataplane.SIDECAR]


def _ref(w: Workload) -> str:
    return f"{w.namespace}/{w.name}"


def excluded_ports(inventory: Inventory, out: Findings) -> None:
    for w in _sidecars(inventory):
        ports, bad = uncaptured_ports(w)
        if bad:
            out.add(
                BlindSpot(
                    EXCLUDED,
                    _ref(w),
                    f"unreadable traffic.sidecar.istio.io inbound port annotation ({', '.join(bad)}): "
                    "which ports the sidecar captures is not known, so its metrics may miss traffic",
                    [_ref(w)],
                    affects_verdict=True,
                ),
                [w.key],
            )
            continue
        if ports is None:
            out.add(
                BlindSpot(
                    EXCLUDED,
                    _ref(w),
                    "includeInboundPorts is empty: no inbound port goes through the sidecar, so there is "
                    "no telemetry and no PeerAuthentication enforcement for its inbound traffic",
                    [_ref(w)],
                    list(w.ports),
                    affects_verdict=True,
                ),
                [w.key],
            )
            continue
        if not ports:
            continue
        every = bool(w.ports) and set(w.ports) <= ports
        out.add(
            BlindSpot(
                EXCLUDED,
                _ref(w),
                f"port(s) {', '.join(map(str, sorted(ports)))} bypass the sidecar: no telemetry and no "
                "enforcement there (STRICT does not apply to them)"
                + ("; that is every declared port, so no inbound traffic is seen" if every else ""),
                [_ref(w)],
                sorted(ports),
                affects_verdict=every,
            ),
            [w.key] if every else [],
        )


def unscraped_proxies(inventory: Inventory, traffic: Traffic, out: Findings) -> None:
    """Sidecar workloads none of whose running pods has a proxy series in the window."""
    if traffic.proxy_pods is None:
        if traffic.proxy_presence_error:
            # The traffic source already warned about the failed query.
            out.spots.append(
                BlindSpot(UNAVAILABLE, "mesh", f"{traffic.proxy_presence_error}; unscraped proxies not checked")
            )
        return  # a source that does not report scraping (the built-in sample)
    sidecars = {w.key: w for w in _sidecars(inventory)}
    pods: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (_, pod), key in inventory.pod_workloads.items():
        if key in sidecars:
            pods[key].append(pod)
    if not traffic.proxy_pods:
        out.spots.append(
            BlindSpot(
                UNAVAILABLE,
                "mesh",
                "Prometheus holds no envoy_server_live series with namespace and pod labels (Istio's sample "
                "scrape job adds them): whether each proxy is scraped was not checked",
            )
        )
        return
    if not pods:
        if sidecars:
            out.spots.append(
                BlindSpot(
                    UNAVAILABLE,
                    "mesh",
                    "the inventory lists no running pods (read from manifests): whether each proxy is scraped "
                    "was not checked; read the cluster (--policies-from kube) or a snapshot for this check",
                )
            )
        return
    for key, names in sorted(pods.items()):
        if any((key[0], pod) in traffic.proxy_pods for pod in names):
            continue
        w = sidecars[key]
        out.add(
            BlindSpot(
                NO_PROXY,
                _ref(w),
                f"no telemetry: Prometheus scraped none of its {len(names)} pod proxies in the window (no "
                "envoy_server_live), so no traffic seen means nothing",
                [_ref(w)],
                affects_verdict=True,
            ),
            [key],
        )


def _reaches_prometheus(providers: tuple[str, ...]) -> bool:
    # No providers: meshConfig.defaultProviders.metrics, which is prometheus in Istio's charts.
    return not providers or PROMETHEUS in providers


def _in_scope(t: Telemetry, w: Workload, root_namespace: str) -> bool:
    if t.namespace == root_namespace and not t.selector and not t.has_target_refs:
        return True  # mesh-wide
    if t.namespace != w.namespace:
        return False
    return t.has_target_refs or t.matches(w.labels)  # targetRefs: cannot be matched, so assumed to apply


def telemetry_overrides(inventory: Inventory, root_namespace: str, out: Findings) -> None:
    """Telemetry resources that disable, or strip labels from, the server-side request metrics."""
    sidecars = _sidecars(inventory)
    for t in sorted(inventory.telemetries, key=lambda t: t.ref):
        disabled, removed = False, set()
        for rule in t.metrics:
            if not _reaches_prometheus(rule.providers):
                continue
            for o in rule.overrides:
                if o.metric not in READ_METRICS or o.mode not in SERVER_MODES:
                    continue
                disabled = disabled or o.disabled
                removed |= set(o.removed_tags) & READ_LABELS
        others = sorted({p for rule in t.metrics for p in rule.providers if p != PROMETHEUS})
        if others and not any(_reaches_prometheus(rule.providers) for rule in t.metrics):
            # Whether naming other providers takes Prometheus off istiod's merged provider list is
            # not modelled: shown, never taken as "metrics flow" nor as "metrics stopped".
            out.add(
                BlindSpot(
                    PROVIDERS,
                    f"Telemetry {t.ref}",
                    f"Telemetry {t.ref} configures metrics for {', '.join(others)} only: check that its "
                    "workloads' request metrics still reach Prometheus",
                )
            )
        if not disabled and not removed:
            continue
        hit = [w for w in sidecars if _in_scope(t, w, root_namespace)]
        scope = (
            "the whole mesh"
            if t.namespace == root_namespace and not t.selector
            else f"namespace {t.namespace}"
            if not t.selector
            else f"workloads matching {t.selector} in {t.namespace}"
        )
        if t.has_target_refs:
            scope += " (targetRefs: assumed to reach every workload of the namespace)"
        what = (
            "disables the request metrics"
            if disabled
            else f"removes the label(s) {', '.join(sorted(removed))} from the request metrics"
        )
        out.add(
            BlindSpot(
                DISABLED if disabled else FILTERED,
                f"Telemetry {t.ref}",
                f"Telemetry {t.ref} {what} for {scope}: verdicts there cannot rest on metrics",
                sorted(_ref(w) for w in hit),
                affects_verdict=bool(hit),
            ),
            [w.key for w in hit],
        )


def host_network(inventory: Inventory, out: Findings) -> None:
    for w in sorted(inventory.workloads.values(), key=_ref):
        if w.host_network:
            out.add(
                BlindSpot(
                    HOST_NETWORK,
                    _ref(w),
                    "host-network pod: never injected nor captured, so it has no telemetry as a server and "
                    "shows as an unnamed plaintext client (the node's address) as a caller",
                    [_ref(w)],
                    list(w.ports),
                )
            )


def headless_services(inventory: Inventory, out: Findings) -> None:
    for s in sorted(inventory.services, key=lambda s: s.ref):
        if not s.headless:
            continue
        selected = sorted(
            (w for w in inventory.workloads.values() if w.namespace == s.namespace and s.selects(w.labels)), key=_ref
        )
        bare = [_ref(w) for w in selected if w.dataplane is Dataplane.NONE]
        detail = "headless service: callers reach pod IPs directly, and auto mTLS is decided per endpoint"
        if bare:
            detail += f"; sidecar-less endpoint(s) {', '.join(bare)} are called in plaintext"
        out.add(BlindSpot(HEADLESS, f"Service {s.ref}", detail, [_ref(w) for w in selected], [p.port for p in s.ports]))


def port_level_exceptions(inventory: Inventory, engine: PolicyEngine, out: Findings) -> None:
    for w in sorted((w for w in inventory.workloads.values() if w.meshed), key=_ref):
        resolution = engine.resolve(w.namespace, w.labels)
        if len(resolution.modes()) < 2:
            continue
        ports = ", ".join(f"{p}={m.value}" for p, m in sorted(resolution.port_modes.items()))
        out.add(
            BlindSpot(
                PORT_LEVEL,
                _ref(w),
                f"portLevelMtls ({ports}, other ports {resolution.mode.value}, from {resolution.port_source}): "
                "no metric carries a port, so its traffic is judged as a whole, not per port",
                [_ref(w)],
                sorted(resolution.port_modes),
            )
        )


def find(inventory: Inventory, traffic: Traffic, engine: PolicyEngine, root_namespace: str) -> Findings:
    out = Findings()
    for reason in inventory.unavailable_checks:
        out.spots.append(BlindSpot(UNAVAILABLE, "mesh", reason))  # already a warning of the inventory
    excluded_ports(inventory, out)
    unscraped_proxies(inventory, traffic, out)
    telemetry_overrides(inventory, root_namespace, out)
    host_network(inventory, out)
    headless_services(inventory, out)
    port_level_exceptions(inventory, engine, out)
    return out
