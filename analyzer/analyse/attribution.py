"""Who sent the plaintext Istio could not name, and the blockers grouped by client (docs/attribution.md).

Pure: takes the blocker edges, the plaintext timeline, the inventory's client facts and the
traffic's client evidence; returns ranked candidates per unnamed edge and one row per client.
A candidate resting on a source that could not be read (a 403, a failed query) is never certain.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from analyzer.analyse.cron import ScheduleError, fire_times
from analyzer.analyse.verdicts import UNNAMED
from analyzer.model.clients import (
    CERTAIN,
    CLIENT_SIDE,
    CONFIDENCES,
    JOBS,
    KUBELET,
    LIKELY,
    NODES,
    PEER_ADDRESS,
    PODS,
    POSSIBLE,
    PROBES,
    PROMETHEUS,
    SCRAPE_TARGETS,
    SIDECARLESS,
    Candidate,
    ClientGroup,
    ClientTraffic,
    CronSchedule,
    EdgeAttribution,
)
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.report import EdgeResult, TimelinePoint

# Ports of the sidecar itself: merged metrics (15020) and Envoy's stats (15090) are never captured.
PROXY_PORTS = {15020, 15090}
# Callers that are sidecar-less by design and call many workloads (well-known ingress controllers).
INGRESS_HINTS = ("ingress-nginx", "nginx-ingress", "traefik", "haproxy", "contour", "kong", "ambassador", "emissary")
MATCH = 0.25  # observed within 25% of the expected volume: the rate matches
MAX_CANDIDATES = 5  # sidecar-less workloads listed per edge (the rest are counted in the evidence)
_SOURCE_ORDER = (PEER_ADDRESS, CLIENT_SIDE, PROBES, SCRAPE_TARGETS, JOBS, SIDECARLESS)
# The inventory and traffic sources each attribution source rests on.
_RESTS_ON = {
    PEER_ADDRESS: (PEER_ADDRESS, PODS, NODES),
    CLIENT_SIDE: (CLIENT_SIDE,),
    PROBES: (PODS, PROBES),
    SCRAPE_TARGETS: (SCRAPE_TARGETS, PODS),
    JOBS: (JOBS, "timeline"),
    SIDECARLESS: (PODS,),
}


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def unnamed(edge: EdgeResult) -> bool:
    return edge.source_workload in UNNAMED or edge.source_namespace in UNNAMED


class Attributor:
    def __init__(
        self,
        inventory: Inventory,
        traffic: ClientTraffic,
        timeline: list[TimelinePoint],
        window: Window,
        timeline_doubt: str = "",
        step: timedelta | None = None,
    ):
        self.inventory = inventory
        self.facts = inventory.clients
        self.traffic = traffic
        self.window = window
        self.degraded = {**self.facts.degraded, **traffic.degraded}
        if timeline_doubt:
            self.degraded["timeline"] = timeline_doubt
        self.bursts: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
        for p in timeline:
            if p.count > 0 and p.source_workload in UNNAMED:
                self.bursts[(p.destination_namespace, p.destination_workload, p.protocol)].append(p.timestamp)
        stamps = sorted({p.timestamp for p in timeline})
        gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
        # The range query's step; else the smallest gap between points (an upper bound of it).
        self.step = step or (min(gaps) if gaps else timedelta(minutes=5))
        self.pods_by_ip: dict[str, list] = defaultdict(list)
        self.pods_by_workload: dict[tuple[str, str], list] = defaultdict(list)
        for pod in self.facts.pods:
            self.pods_by_workload[(pod.namespace, pod.workload)].append(pod)
            for ip in pod.ips:
                self.pods_by_ip[ip].append(pod)
        # Fire times per CronJob, computed once (a minute-by-minute walk of the window): None when unreadable.
        self.fires: dict[tuple[str, str], list[datetime] | None] = {}
        self.no_sidecar = [w for w in inventory.workloads.values() if w.dataplane is Dataplane.NONE]
        # Ranked once: per edge only the destination's own namespace moves ahead (see `_rank`).
        self.no_sidecar_ranked = sorted(self.no_sidecar, key=lambda w: (_rank(w, None, inventory), w.namespace, w.name))
        self.no_sidecar_by_namespace: dict[str, list[Workload]] = defaultdict(list)
        for w in sorted(self.no_sidecar, key=lambda w: w.name):
            self.no_sidecar_by_namespace[w.namespace].append(w)
        # The client side's TCP rows per destination, read once rather than once per edge.
        self.client_side_tcp: dict[tuple[str, str], list] = defaultdict(list)
        for row in traffic.client_side:
            if row.protocol == "tcp":
                self.client_side_tcp[(row.destination_namespace, row.destination_workload)].append(row)
        self.nodes_by_address = {a: n for n in self.facts.nodes for a in n.addresses}
        # mTLS volume per (client ns, client, destination ns, destination) as the server names it
        self.mtls_from: dict[tuple[str, str, str, str], float] = {}

    # -- per edge ---------------------------------------------------------------------------

    def attribute(self, edge: EdgeResult) -> EdgeAttribution:
        candidates = [
            *self._peer_addresses(edge),
            *self._client_side(edge),
            *self._probes(edge),
            *self._scrape_targets(edge),
            *self._jobs(edge),
        ]
        named = {c.name for c in candidates}
        candidates += [c for c in self._sidecarless(edge) if c.name not in named]
        candidates = [self._capped(c) for c in candidates]
        # Stable: within one source, candidates keep the order that source ranked them in.
        candidates.sort(key=lambda c: (CONFIDENCES.index(c.confidence), _SOURCE_ORDER.index(c.source)))
        return EdgeAttribution(
            edge.source_namespace,
            edge.source_workload,
            edge.destination_namespace,
            edge.destination_workload,
            edge.protocol,
            candidates,
        )

    def _capped(self, c: Candidate) -> Candidate:
        """Certain only when everything it rests on was read; one step down per missing source."""
        missing = [self.degraded[s] for s in _RESTS_ON[c.source] if s in self.degraded]
        if not missing:
            return c
        confidence = LIKELY if c.confidence == CERTAIN else POSSIBLE
        return Candidate(c.name, confidence, c.source, f"{c.evidence} (partial data: {'; '.join(missing)})")

    def _peer_addresses(self, edge: EdgeResult) -> list[Candidate]:
        label = self.traffic.peer_label
        rows = [
            r
            for r in self.traffic.peer_addresses
            if (r.destination_namespace, r.destination_workload)
            == (edge.destination_namespace, edge.destination_workload)
            and r.count > 0
        ]
        by_name: dict[str, tuple[float, list[str]]] = {}
        for r in rows:
            ip = host_of(r.address)
            pods = [p for p in self.pods_by_ip.get(ip, []) if not p.host_network]
            node = self.nodes_by_address.get(ip)
            if len({(p.namespace, p.workload) for p in pods}) == 1:
                pod = pods[0]
                name, what = f"{pod.namespace}/{pod.workload}", f"{ip} is pod {pod.namespace}/{pod.name}"
            elif node is not None:
                hosts = sorted(
                    f"{p.namespace}/{p.workload}" for p in self.facts.pods if p.host_network and p.node == node.name
                )
                also = f"; host-network pods there: {', '.join(hosts)}" if hosts else ""
                name, what = f"node {node.name}", f"{ip} is node {node.name} (kubelet or a host-network pod{also})"
            elif pods:
                names = sorted({f"{p.namespace}/{p.name}" for p in pods})
                name, what = ip, f"{ip} is held by several pods ({', '.join(names)})"
            else:
                name, what = ip, f"{ip} is no pod or node in the inventory (outside the cluster, or a pod gone)"
            count, whats = by_name.get(name, (0.0, []))
            by_name[name] = (count + r.count, [*whats, what])
        out = []
        for name, (count, whats) in by_name.items():
            evidence = f"{count:g} {edge.unit} with {label}: " + "; ".join(dict.fromkeys(whats))
            out.append(Candidate(name, CERTAIN, PEER_ADDRESS, evidence))
        return out

    def _client_side(self, edge: EdgeResult) -> list[Candidate]:
        """Plaintext TCP carries no peer metadata; a meshed sender still names itself on its own side."""
        if edge.protocol != "tcp" or edge.plaintext_count <= 0:
            return []
        out = []
        for row in self.client_side_tcp.get((edge.destination_namespace, edge.destination_workload), []):
            client = self.inventory.workload(row.source_namespace, row.source_workload)
            if client is None or not client.meshed:
                continue
            attributed = self.mtls_from.get(
                (row.source_namespace, row.source_workload, row.destination_namespace, row.destination_workload), 0.0
            )
            excess = row.count - attributed
            if excess <= 0:
                continue
            share = excess / edge.plaintext_count
            confidence = CERTAIN if abs(share - 1) <= 0.1 else LIKELY
            out.append(
                Candidate(
                    f"{row.source_namespace}/{row.source_workload}",
                    confidence,
                    CLIENT_SIDE,
                    f"its sidecar reports {row.count:g} connections to {edge.destination_namespace}/"
                    f"{edge.destination_workload} (reporter=source) while the server names it on {attributed:g} "
                    f"mTLS ones: {excess:g} of the {edge.plaintext_count:g} unnamed plaintext connections",
                )
            )
        return out

    def _probes(self, edge: EdgeResult) -> list[Candidate]:
        facts = self.facts.workloads.get((edge.destination_namespace, edge.destination_workload))
        if facts is None or facts.rewrite_probes is not False or not facts.probes:
            return []
        handler = {"http": "http", "grpc": "grpc", "tcp": "tcp"}.get(edge.protocol)
        probes = [p for p in facts.probes if p.handler == handler]
        if not probes:
            return []
        per_pod = sum(self.window.seconds / p.period_seconds for p in probes)
        expected = per_pod * facts.replicas
        shown = ", ".join(
            f"{p.probe} {p.handler} :{p.port if p.port is not None else '?'} every {p.period_seconds:g}s"
            for p in probes
        )
        ratio = edge.plaintext_count / expected if expected else 0.0
        confidence = LIKELY if abs(ratio - 1) <= MATCH else POSSIBLE
        evidence = (
            f'sidecar.istio.io/rewriteAppHTTPProbers: "false": {facts.replicas} replica(s) x ({shown}) '
            f"= {expected:.0f} {edge.unit} expected in the window, {edge.plaintext_count:g} observed"
        )
        return [Candidate(KUBELET, confidence, PROBES, evidence)]

    def _scrape_targets(self, edge: EdgeResult) -> list[Candidate]:
        if edge.protocol not in ("http", "grpc"):
            return []
        pods = {
            ip: pod
            for pod in self.pods_by_workload.get((edge.destination_namespace, edge.destination_workload), [])
            if not pod.host_network
            for ip in pod.ips
        }
        by_job: dict[str, list] = defaultdict(list)
        for t in self.traffic.targets:
            host, port = host_of(t.address), port_of(t.address)
            if host in pods and port is not None and port not in PROXY_PORTS:
                by_job[t.job].append(t)
        out = []
        for job, targets in sorted(by_job.items()):
            intervals = [t.interval_seconds for t in targets if t.interval_seconds]
            expected = sum(self.window.seconds / i for i in intervals)
            where = ", ".join(sorted({t.address for t in targets}))
            if intervals:
                ratio = edge.plaintext_count / expected
                confidence = LIKELY if abs(ratio - 1) <= MATCH else POSSIBLE
                rate = f"every {intervals[0]:g}s: {expected:.0f} {edge.unit} expected in the window, "
            else:
                confidence, rate = POSSIBLE, "at an interval Prometheus did not report: "
            evidence = (
                f"Prometheus job {job} scrapes {where} (an app port, not 15020) {rate}{edge.plaintext_count:g} observed"
            )
            out.append(Candidate(f"{PROMETHEUS} (job {job})", confidence, SCRAPE_TARGETS, evidence))
        return out

    def _jobs(self, edge: EdgeResult) -> list[Candidate]:
        bursts = sorted(self.bursts.get((edge.destination_namespace, edge.destination_workload, edge.protocol), []))
        if not bursts:
            return []
        out = []
        step = self.step

        def explained(times: list[tuple[datetime, datetime]]) -> tuple[int, int]:
            """(bursts inside some run, runs with a burst). A burst is stamped at the end of its step, and
            the counter moves at the scrape after the traffic: up to two steps after a run."""
            hit = sum(1 for b in bursts if any(lo - step <= b <= hi + 2 * step for lo, hi in times))
            runs = sum(1 for lo, hi in times if any(lo - step <= b <= hi + 2 * step for b in bursts))
            return hit, runs

        for cron in self.facts.cronjobs:
            if not self._is_sidecarless(cron.namespace, cron.name):
                continue
            fires = self._fire_times(cron)
            if fires is None:
                continue
            runs = [(f, f) for f in fires]
            hit, matched = explained(runs)
            if hit < len(bursts) / 2:
                continue  # most of the plaintext falls outside its runs: the schedule says nothing
            zone = cron.time_zone or "UTC (timeZone unset: kube-controller-manager's zone may differ)"
            confidence = LIKELY if hit == len(bursts) and matched >= 0.8 * len(runs) else POSSIBLE
            out.append(
                Candidate(
                    f"{cron.namespace}/{cron.name}",
                    confidence,
                    JOBS,
                    f"sidecar-less CronJob, schedule {cron.schedule!r} in {zone}: {hit} of {len(bursts)} plaintext "
                    f"burst(s) fall on its {len(runs)} run(s) in the window, {matched} run(s) with a burst",
                )
            )
        for job in self.facts.jobs:
            if job.start is None or any(c.name == f"{job.namespace}/{job.workload}" for c in out):
                continue
            if not self._is_sidecarless(job.namespace, job.workload):
                continue
            hit, _ = explained([(job.start, job.completion or self.window.end)])
            if hit < len(bursts) / 2:
                continue
            confidence = LIKELY if hit == len(bursts) else POSSIBLE
            ended = f"completed {job.completion:%Y-%m-%d %H:%M}Z" if job.completion else "not completed"
            out.append(
                Candidate(
                    f"{job.namespace}/{job.workload}",
                    confidence,
                    JOBS,
                    f"sidecar-less Job {job.name} started {job.start:%Y-%m-%d %H:%M}Z, {ended}: "
                    f"{hit} of {len(bursts)} plaintext burst(s) fall in its run",
                )
            )
        return out

    def _fire_times(self, cron: CronSchedule) -> list[datetime] | None:
        key = (cron.namespace, cron.name)
        if key not in self.fires:
            try:
                self.fires[key] = fire_times(cron.schedule, cron.time_zone, self.window.start, self.window.end)
            except ScheduleError:
                self.fires[key] = None
        return self.fires[key]

    def _is_sidecarless(self, namespace: str, name: str) -> bool:
        w = self.inventory.workload(namespace, name)
        return w is not None and w.dataplane is Dataplane.NONE

    def _sidecarless(self, edge: EdgeResult) -> list[Candidate]:
        destination = (edge.destination_namespace, edge.destination_workload)
        others = len(self.no_sidecar) - sum(
            1 for w in self.no_sidecar_by_namespace[destination[0]] if w.key == destination
        )
        if not others:
            return []
        # Same namespace first (rank 0, by name), then the mesh-wide order: as sorting all by `_rank`.
        local = (w for w in self.no_sidecar_by_namespace[destination[0]] if w.key != destination)
        rest = (w for w in self.no_sidecar_ranked if w.namespace != destination[0])
        out = []
        for w in itertools.islice(itertools.chain(local, rest), MAX_CANDIDATES):
            if others == 1:
                why, confidence = "the only sidecar-less workload in the mesh", LIKELY
            else:
                why, confidence = (
                    f"one of {others} sidecar-less workloads; {_reason(w, edge, self.inventory)}",
                    POSSIBLE,
                )
            if w.host_network:
                why += " (host network: it shows as its node's address)"
            out.append(
                Candidate(f"{w.namespace}/{w.name}", confidence, SIDECARLESS, f"{w.kind} without a sidecar: {why}")
            )
        return out


def _rank(w: Workload, edge: EdgeResult | None, inventory: Inventory) -> int:
    """0: beside the destination; 1: an ingress controller; 2: in a namespace without injection; 3."""
    if edge is not None and w.namespace == edge.destination_namespace:
        return 0
    if _ingress(w):
        return 1
    ns = inventory.namespaces.get(w.namespace)
    if ns is not None and not ns.injection_enabled and not ns.ambient_enabled:
        return 2
    return 3


def _reason(w: Workload, edge: EdgeResult, inventory: Inventory) -> str:
    return (
        "same namespace as the destination",
        "a well-known ingress controller",
        "its namespace has no injection",
        "sidecar-less in an injected namespace",
    )[_rank(w, edge, inventory)]


def _ingress(w: Workload) -> bool:
    text = " ".join([w.name, *w.labels.values()]).lower()
    return any(hint in text for hint in INGRESS_HINTS)


def host_of(address: str) -> str:
    """The IP of "ip:port", "[v6]:port" or a bare address."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def port_of(address: str) -> int | None:
    tail = address.rsplit("]:", 1)[1] if address.startswith("[") and "]:" in address else None
    if tail is None and address.count(":") == 1:
        tail = address.split(":", 1)[1]
    return int(tail) if tail and tail.isdigit() else None


# -- grouping ---------------------------------------------------------------------------------

_ADVICE = {
    PROBES: (
        "turn Istio's probe rewrite back on for the destination (drop sidecar.istio.io/rewriteAppHTTPProbers: "
        '"false"): probes then go through pilot-agent on 15020 and never reach the app in plaintext'
    ),
    SCRAPE_TARGETS: (
        "scrape the destination through Istio's merged metrics on 15020 (do not set prometheus.istio.io/"
        'merge-metrics: "false"), or give Prometheus Istio certificates before STRICT'
    ),
    CLIENT_SIDE: (
        "the client has a sidecar but sends plaintext TCP: look for a DestinationRule with tls DISABLE, "
        "calls to pod IPs, or a missing security.istio.io/tlsMode label"
    ),
    PEER_ADDRESS: (
        "mesh the client at this address (inject a sidecar or enrol it in ambient), or keep the port PERMISSIVE"
    ),
    JOBS: "inject a sidecar into the Job's pods (with native sidecars so the Job can finish), or enrol it in ambient",
    SIDECARLESS: "inject a sidecar into it (or enrol it in ambient), or keep the destination's port PERMISSIVE",
}


def best(attribution: EdgeAttribution) -> Candidate | None:
    """The candidate that names the client: the top one, if it is certain or likely and alone at the top."""
    top = attribution.candidates[:2]
    if not top or top[0].confidence == POSSIBLE:
        return None
    if len(top) == 2 and top[1].confidence == top[0].confidence and top[1].source == top[0].source:
        return None  # two equally likely: say unknown rather than pick one
    return top[0]


def group(edges: Iterable[EdgeResult], attributions: dict[tuple, EdgeAttribution]) -> list[ClientGroup]:
    """One row per client over the blocker edges: Istio's name, else the best candidate, else unknown."""
    rows: dict[str, ClientGroup] = {}
    advice: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if not e.blocker:
            continue
        attribution = attributions.get(edge_key(e))
        candidate = best(attribution) if attribution else None
        if not unnamed(e):
            client, attributed, confidence, evidence = f"{e.source_namespace}/{e.source_workload}", False, "", ""
            advice[client].append(e.advice)
        elif candidate is not None:
            client, attributed, confidence = candidate.name, True, candidate.confidence
            evidence = candidate.evidence
            advice[client].append(_ADVICE[candidate.source])
        else:
            client, attributed, confidence = "unknown", True, ""
            shown = [f"{c.name} ({c.confidence})" for c in (attribution.candidates if attribution else [])[:3]]
            evidence = ("possibly " + ", ".join(shown)) if shown else "no source names it"
            advice[client].append(e.advice)
        row = rows.setdefault(client, ClientGroup(client, attributed, confidence, evidence))
        if attributed and not row.attributed:  # Istio names it on some edges; attribution on others
            row.attributed, row.confidence = True, confidence
        if row.evidence != evidence and evidence and evidence not in row.evidence:
            row.evidence = f"{row.evidence}; {evidence}" if row.evidence else evidence
        if CONFIDENCES.index(confidence or CERTAIN) > CONFIDENCES.index(row.confidence or CERTAIN):
            row.confidence = confidence
        destination = f"{e.destination_namespace}/{e.destination_workload}"
        if destination not in row.destinations:
            row.destinations.append(destination)
        row.edges += 1
        if e.unit == "connections":
            row.connections = round(row.connections + e.plaintext_count, 3)
        else:
            row.requests = round(row.requests + e.plaintext_count, 3)
        if e.first_plaintext_seen and (row.first_seen is None or e.first_plaintext_seen < row.first_seen):
            row.first_seen = e.first_plaintext_seen
        if e.last_plaintext_seen and (row.last_seen is None or e.last_plaintext_seen > row.last_seen):
            row.last_seen = e.last_plaintext_seen
    for client, row in rows.items():
        texts = [a for a in advice[client] if a]
        row.advice = max(set(texts), key=texts.count) if texts else ""
        row.destinations.sort()
    return sorted(rows.values(), key=lambda r: (-(r.requests + r.connections), r.client))


def edge_key(e: EdgeResult | EdgeAttribution) -> tuple[str, str, str, str, str]:
    return (e.source_namespace, e.source_workload, e.destination_namespace, e.destination_workload, e.protocol)


def attribute(
    edges: list[EdgeResult],
    inventory: Inventory,
    traffic: ClientTraffic,
    timeline: list[TimelinePoint],
    window: Window,
    *,
    mtls_from: dict[tuple[str, str, str, str], float] | None = None,
    timeline_doubt: str = "",
    step: timedelta | None = None,
) -> tuple[list[EdgeAttribution], list[ClientGroup]]:
    """Candidates for every unnamed blocker edge, and the blocker edges grouped by client.

    `mtls_from`: mTLS volume per (client ns, client, destination ns, destination) as the server
    reports it, to tell a meshed client's plaintext from its mTLS on its own side's series."""
    attributor = Attributor(inventory, traffic, timeline, window, timeline_doubt, step)
    attributor.mtls_from = dict(mtls_from or {})
    attributions = [attributor.attribute(e) for e in edges if e.blocker and unnamed(e)]
    by_key = {edge_key(a): a for a in attributions}
    return attributions, group(edges, by_key)
