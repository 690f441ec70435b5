"""The pure attribution engine and the cron reader: one named case per rule (docs/attribution.md)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.analyse.attribution import Window, attribute, host_of, port_of
from analyzer.analyse.cron import ScheduleError, fire_times
from analyzer.model.clients import (
    ClientInventory,
    ClientSideEdge,
    ClientTraffic,
    CronSchedule,
    NodeFacts,
    PeerAddress,
    PodFacts,
    Probe,
    ScrapeTarget,
    WorkloadFacts,
)
from analyzer.model.inventory import Dataplane, Inventory, Namespace, Workload
from analyzer.model.report import EdgeResult, TimelinePoint

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(days=1), END)
DAY = 86400
STEP = timedelta(minutes=5)


def edge(dest: str = "shop/api", protocol: str = "http", count: float = 100.0, source: str = "unknown/unknown"):
    src_ns, src = source.split("/")
    ns, name = dest.split("/")
    return EdgeResult(
        "", src_ns, src, "unknown", "", ns, name, f"{name}.{ns}.svc.cluster.local", protocol,
        "connections" if protocol == "tcp" else "requests", 0.0, count, 1.0, 0.0, None, None,
        "PERMISSIVE", "default", True,
    )  # fmt: skip


def wl(ref: str, dataplane: Dataplane = Dataplane.SIDECAR, kind: str = "Deployment", **kw) -> Workload:
    ns, name = ref.split("/")
    return Workload(ns, name, kind, dataplane=dataplane, **kw)


@dataclass
class Case:
    workloads: list[Workload]
    edge: EdgeResult = field(default_factory=edge)
    facts: ClientInventory = field(default_factory=ClientInventory)
    traffic: ClientTraffic = field(default_factory=ClientTraffic)
    timeline: list[TimelinePoint] = field(default_factory=list)
    mtls_from: dict = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    expected: list[tuple[str, str, str]] = field(default_factory=list)  # (name, confidence, source), best first
    evidence: str = ""  # in the top candidate's evidence


API = wl("shop/api")
LEGACY = wl("legacy/curl", Dataplane.NONE)
POD = PodFacts("legacy", "curl-1", "curl", ("10.0.0.5",))
NODE = NodeFacts("node-a", ("10.1.0.1", "node-a"))
PROBED = WorkloadFacts("shop", "api", 2, (Probe("api", "readiness", "http", 8000, 10),), rewrite_probes=False)
API_POD = PodFacts("shop", "api-1", "api", ("10.0.0.9",), meshed=True)


def peer(address: str, count: float = 100.0) -> ClientTraffic:
    return ClientTraffic("source_address", [PeerAddress("shop", "api", address, count)])


def burst_points(hours_ago: range, minute: int = 7) -> list[TimelinePoint]:
    """A burst in the 5-minute step after minute `minute` of each hour, `hours_ago` before END."""
    return [
        TimelinePoint("", "unknown", "unknown", "unknown", "", "shop", "api", "", "http",
                      END.replace(minute=minute) - timedelta(hours=h) + timedelta(minutes=5), 10.0)
        for h in hours_ago
    ]  # fmt: skip


CASES = {
    "the-only-sidecarless-workload-is-likely": Case(
        [API, LEGACY],
        expected=[("legacy/curl", "likely", "sidecar-less")],
        evidence="the only sidecar-less workload in the mesh",
    ),
    "same-namespace-first-then-ingress-then-uninjected": Case(
        [
            API,
            wl("other/x", Dataplane.NONE),
            wl("ingress/ingress-nginx", Dataplane.NONE),
            wl("shop/batch", Dataplane.NONE),
        ],
        namespaces={"other": {"istio-injection": "enabled"}, "ingress": {}},
        expected=[
            ("shop/batch", "possible", "sidecar-less"),
            ("ingress/ingress-nginx", "possible", "sidecar-less"),
            ("other/x", "possible", "sidecar-less"),
        ],
        evidence="same namespace as the destination",
    ),
    "peer-address-on-a-pod-is-certain": Case(
        [API, LEGACY, wl("legacy/other", Dataplane.NONE)],
        facts=ClientInventory(pods=[POD]),
        traffic=peer("10.0.0.5:43210"),
        expected=[("legacy/curl", "certain", "peer-address"), ("legacy/other", "possible", "sidecar-less")],
        evidence="100 requests with source_address: 10.0.0.5 is pod legacy/curl-1",
    ),
    "peer-address-on-a-node-names-the-node": Case(
        [API],
        facts=ClientInventory(nodes=[NODE]),
        traffic=peer("10.1.0.1:5000"),
        expected=[("node node-a", "certain", "peer-address")],
        evidence="kubelet or a host-network pod",
    ),
    "peer-address-unknown-is-shown-as-is": Case(
        [API],
        traffic=peer("[2001:db8::7]:5000"),
        expected=[("2001:db8::7", "certain", "peer-address")],
        evidence="is no pod or node in the inventory",
    ),
    "peer-address-with-unread-pods-is-not-certain": Case(
        [API],
        facts=ClientInventory(pods=[POD], degraded={"pods": "pods could not be listed"}),
        traffic=peer("10.0.0.5:1"),
        expected=[("legacy/curl", "likely", "peer-address")],
        evidence="partial data: pods could not be listed",
    ),
    "probes-without-rewrite-at-the-expected-rate": Case(
        [API],
        edge=edge(count=2 * DAY / 10),
        facts=ClientInventory(workloads={("shop", "api"): PROBED}),
        expected=[("kubelet", "likely", "probes")],
        evidence="2 replica(s) x (readiness http :8000 every 10s) = 17280 requests expected",
    ),
    "probes-far-from-the-rate-are-only-possible": Case(
        [API],
        edge=edge(count=10 * 2 * DAY / 10),
        facts=ClientInventory(workloads={("shop", "api"): PROBED}),
        expected=[("kubelet", "possible", "probes")],
    ),
    "rewritten-probes-send-nothing": Case(
        [API],
        facts=ClientInventory(workloads={("shop", "api"): replace(PROBED, rewrite_probes=None)}),
        expected=[],
    ),
    "tcp-probe-does-not-explain-http": Case(
        [API],
        facts=ClientInventory(
            workloads={("shop", "api"): replace(PROBED, probes=(Probe("api", "liveness", "tcp", 8000, 10),))}
        ),
        expected=[],
    ),
    "scrape-target-on-an-app-port-is-prometheus": Case(
        [API],
        edge=edge(count=DAY / 30),
        facts=ClientInventory(pods=[API_POD]),
        traffic=ClientTraffic(targets=[ScrapeTarget("10.0.0.9:8000", "pods", 30.0, "up")]),
        expected=[("prometheus (job pods)", "likely", "scrape-targets")],
        evidence="every 30s: 2880 requests expected",
    ),
    "scrape-of-merged-metrics-15020-is-not-a-client": Case(
        [API],
        facts=ClientInventory(pods=[API_POD]),
        traffic=ClientTraffic(targets=[ScrapeTarget("10.0.0.9:15020", "pods", 30.0, "up")]),
        expected=[],
    ),
    "failed-targets-query-caps-confidence": Case(
        [API],
        edge=edge(count=DAY / 30),
        facts=ClientInventory(pods=[API_POD]),
        traffic=ClientTraffic(
            targets=[ScrapeTarget("10.0.0.9:8000", "pods", 30.0)], degraded={"scrape-targets": "timeout"}
        ),
        expected=[("prometheus (job pods)", "possible", "scrape-targets")],
    ),
    "meshed-tcp-client-from-its-own-side": Case(
        [API, wl("shop/web")],
        edge=edge(protocol="tcp", count=50),
        traffic=ClientTraffic(client_side=[ClientSideEdge("shop", "web", "shop", "api", "tcp", 80)]),
        mtls_from={("shop", "web", "shop", "api"): 30.0},
        expected=[("shop/web", "certain", "client-side")],
        evidence="reports 80 connections to shop/api (reporter=source) while the server names it on 30 mTLS ones",
    ),
    "client-side-fully-mtls-names-nobody": Case(
        [API, wl("shop/web")],
        edge=edge(protocol="tcp", count=50),
        traffic=ClientTraffic(client_side=[ClientSideEdge("shop", "web", "shop", "api", "tcp", 80)]),
        mtls_from={("shop", "web", "shop", "api"): 80.0},
        expected=[],
    ),
    "cronjob-on-the-bursts-ranks-above-one-off-them": Case(
        [API, wl("shop/nightly", Dataplane.NONE, "CronJob"), wl("shop/other", Dataplane.NONE, "CronJob")],
        facts=ClientInventory(
            cronjobs=[CronSchedule("shop", "nightly", "7 * * * *"), CronSchedule("shop", "other", "37 */6 * * *")]
        ),
        timeline=burst_points(range(1, 24)),
        expected=[
            ("shop/nightly", "likely", "jobs"),
            ("shop/other", "possible", "sidecar-less"),  # named once: a source's candidate is not repeated
        ],
        evidence="23 of 23 plaintext burst(s) fall on its 24 run(s) in the window, 23 run(s) with a burst",
    ),
    "cronjob-suspect-without-timeline-is-not-likely": Case(
        [API, wl("shop/nightly", Dataplane.NONE, "CronJob"), wl("shop/x", Dataplane.NONE)],
        facts=ClientInventory(cronjobs=[CronSchedule("shop", "nightly", "7 * * * *")]),
        timeline=[],
        expected=[("shop/nightly", "possible", "sidecar-less"), ("shop/x", "possible", "sidecar-less")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_attribution(name: str) -> None:
    case = CASES[name]
    inventory = Inventory(clients=case.facts)
    for w in case.workloads:
        inventory.add_workload(w)
    for ns, labels in case.namespaces.items():
        inventory.namespaces[ns] = Namespace(ns, labels)
    attributions, _ = attribute(
        [case.edge], inventory, case.traffic, case.timeline, WINDOW, mtls_from=case.mtls_from, step=STEP
    )
    got = [(c.name, c.confidence, c.source) for c in attributions[0].candidates]
    assert got == case.expected
    if case.evidence:
        assert case.evidence in attributions[0].candidates[0].evidence


def test_named_clients_are_not_attributed_and_group_with_their_edges() -> None:
    inventory = Inventory()
    for w in (API, wl("shop/db"), LEGACY):
        inventory.add_workload(w)
    edges = [edge(source="shop/web"), edge("shop/db", source="shop/web"), edge("shop/db", count=5)]
    edges[0].advice = edges[1].advice = "fix the DestinationRule"
    attributions, groups = attribute(edges, inventory, ClientTraffic(), [], WINDOW)
    assert len(attributions) == 1  # only the unnamed edge
    rows = {g.client: g for g in groups}
    assert rows["shop/web"].destinations == ["shop/api", "shop/db"] and rows["shop/web"].edges == 2
    assert not rows["shop/web"].attributed and rows["shop/web"].advice == "fix the DestinationRule"
    assert rows["legacy/curl"].attributed and rows["legacy/curl"].confidence == "likely"


def test_two_equally_likely_candidates_leave_the_client_unknown() -> None:
    inventory = Inventory(clients=ClientInventory(pods=[POD, replace(POD, namespace="b", workload="c", name="c-1")]))
    inventory.add_workload(API)
    traffic = ClientTraffic("source_address", [PeerAddress("shop", "api", "10.0.0.5:1", 5)])
    _, groups = attribute([edge()], inventory, traffic, [], WINDOW)
    assert [g.client for g in groups] == ["10.0.0.5"]  # two pods share the address: shown as it is


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("10.0.0.5:80", "10.0.0.5", 80), ("[fd00::1]:443", "fd00::1", 443), ("10.0.0.5", "10.0.0.5", None)],
)
def test_address_parts(address: str, host: str, port: int | None) -> None:
    assert (host_of(address), port_of(address)) == (host, port)


START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("schedule", "zone", "hours", "expected"),
    [
        ("*/15 * * * *", None, 1, ["00:15", "00:30", "00:45", "01:00"]),
        ("0 3 * * *", None, 48, ["06-01 03:00", "06-02 03:00"]),
        ("@daily", None, 48, ["06-02 00:00", "06-03 00:00"]),
        ("30 9 * * mon-fri", None, 24 * 7, ["06-01", "06-02", "06-03", "06-04", "06-05"]),
        ("0 0 15 * sun", None, 24 * 15, ["06-07", "06-14", "06-15"]),  # day of month OR day of week
        ("0 2 * * *", "Europe/Berlin", 24, ["06-02 00:00"]),  # 02:00 CEST is 00:00 UTC (window start excluded)
        ("CRON_TZ=America/New_York 0 20 * * *", None, 24, ["06-02 00:00"]),
    ],
)
def test_fire_times(schedule: str, zone: str | None, hours: int, expected: list[str]) -> None:
    fires = fire_times(schedule, zone, START, START + timedelta(hours=hours))
    shown = [f.strftime("%m-%d %H:%M") for f in fires]
    assert len(shown) == len(expected)
    assert all(s.endswith(e) or s.startswith(e) for s, e in zip(shown, expected, strict=True)), shown


@pytest.mark.parametrize(("schedule", "zone"), [("0 3 * *", None), ("61 * * * *", None), ("0 3 * * *", "Mars/Base")])
def test_unreadable_schedules_raise(schedule: str, zone: str | None) -> None:
    with pytest.raises(ScheduleError):
        fire_times(schedule, zone, START, START + timedelta(hours=1))
