"""Blind spots and policy lint (analyse/blind_spots.py, analyse/lint.py): pure engines, one named
case per rule. Each case states the kinds found, which workloads they make UNKNOWN and a phrase
of the detail, so a check that fires for the wrong reason still fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analyzer.analyse import blind_spots, lint
from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.analyse.readiness import Settings, analyse
from analyzer.collect.manifests import build_inventory
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.observability import MetricsOverride, MetricsRule, Service, ServicePort, Telemetry
from analyzer.model.policy import DestinationRule, Mode, PeerAuthentication
from analyzer.model.report import EdgeResult, Verdict
from analyzer.model.traffic import Traffic

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ROOT = "istio-system"
SIDECAR, NONE = Dataplane.SIDECAR, Dataplane.NONE


def wl(ref: str, dataplane: Dataplane = SIDECAR, ports: tuple[int, ...] = (8080,), **extra: object) -> Workload:
    ns, name = ref.split("/")
    return Workload(ns, name, "Deployment", {"app": name}, dataplane, ports, **extra)  # type: ignore[arg-type]


def inventory(*workloads: Workload, pods: dict[str, list[str]] | None = None, **extra: object) -> Inventory:
    inv = Inventory(workloads={w.key: w for w in workloads}, **extra)  # type: ignore[arg-type]
    for ref, names in (pods or {}).items():
        ns, name = ref.split("/")
        for pod in names:
            inv.pod_workloads[(ns, pod)] = (ns, name)
    return inv


def traffic(proxy_pods: set[tuple[str, str]] | None = None, error: str = "") -> Traffic:
    t = Traffic(T0, T0, "test")
    t.proxy_pods = frozenset(proxy_pods) if proxy_pods is not None else None
    t.proxy_presence_error = error
    return t


def telemetry(ref: str, *overrides: MetricsOverride, providers: tuple[str, ...] = (), **extra: object) -> Telemetry:
    ns, name = ref.split("/")
    return Telemetry(ns, name, metrics=(MetricsRule(providers, overrides),), **extra)  # type: ignore[arg-type]


def pa(ref: str, mode: Mode, *, selector: dict[str, str] | None = None, ports: dict[int, Mode] | None = None):
    ns, name = ref.split("/")
    return PeerAuthentication(ns, name, T0, dict(selector or {}), mode, dict(ports or {}))


SCRAPED = {("shop", "web-1")}
OFF = MetricsOverride(disabled=True)
HOST_REMOVED = MetricsOverride(removed_tags=("request_host",))

BLIND_CASES = [
    pytest.param(
        inventory(wl("shop/web", exclude_inbound_ports="15020,15021,15090")),
        traffic(),
        [],
        [],
        "",
        id="istio's own excluded ports are no blind spot",
    ),
    pytest.param(
        inventory(wl("shop/web", ports=(8080, 9000), exclude_inbound_ports="9000,15090")),
        traffic(),
        ["excluded-ports"],
        [],
        "port(s) 9000 bypass the sidecar",
        id="an excluded app port: no telemetry there, verdict unchanged",
    ),
    pytest.param(
        inventory(wl("shop/web", ports=(8080,), exclude_inbound_ports="8080")),
        traffic(),
        ["excluded-ports"],
        ["shop/web"],
        "every declared port",
        id="every declared port excluded: verdict cannot rest on metrics",
    ),
    pytest.param(
        inventory(wl("shop/web", ports=(8080, 9000), include_inbound_ports="8080", exclude_inbound_ports="8080")),
        traffic(),
        ["excluded-ports"],
        [],
        "port(s) 9000 bypass",
        id="an include list replaces the default and makes exclusions moot",
    ),
    pytest.param(
        inventory(wl("shop/web", include_inbound_ports="")),
        traffic(),
        ["excluded-ports"],
        ["shop/web"],
        "includeInboundPorts is empty",
        id="an empty include list captures nothing",
    ),
    pytest.param(
        inventory(wl("shop/web", exclude_inbound_ports="9000-9100")),
        traffic(),
        ["excluded-ports"],
        ["shop/web"],
        "unreadable",
        id="an unreadable annotation is a doubt, never taken as 'nothing excluded'",
    ),
    pytest.param(
        inventory(wl("shop/web"), wl("shop/api"), pods={"shop/web": ["web-1"], "shop/api": ["api-1", "api-2"]}),
        traffic(SCRAPED),
        ["no-proxy-telemetry"],
        ["shop/api"],
        "scraped none of its 2 pod proxies",
        id="a meshed workload whose proxies are not scraped has no telemetry",
    ),
    pytest.param(
        inventory(wl("shop/web"), wl("legacy/curl", NONE), pods={"shop/web": ["web-1"], "legacy/curl": ["curl-1"]}),
        traffic(SCRAPED),
        [],
        [],
        "",
        id="a sidecar-less pod has no proxy to scrape",
    ),
    pytest.param(
        inventory(wl("shop/web"), pods={"shop/web": ["web-1"]}),
        traffic(error="query proxy-presence failed: 503"),
        ["check-unavailable"],
        [],
        "503",
        id="a failed presence query leaves the check undone, never 'scraped'",
    ),
    pytest.param(
        inventory(wl("shop/web"), pods={"shop/web": ["web-1"]}),
        traffic(set()),
        ["check-unavailable"],
        [],
        "no envoy_server_live series",
        id="no proxy series at all: labels unknown, check not run",
    ),
    pytest.param(
        inventory(wl("shop/web")),
        traffic(SCRAPED),
        ["check-unavailable"],
        [],
        "no running pods",
        id="an inventory without pods cannot be checked",
    ),
    pytest.param(
        inventory(
            wl("shop/web"), wl("pay/api"), telemetries=[telemetry(f"{ROOT}/mesh", MetricsOverride(disabled=True))]
        ),
        traffic(),
        ["telemetry-disabled"],
        ["pay/api", "shop/web"],
        "for the whole mesh",
        id="a root-namespace Telemetry disabling all metrics reaches every sidecar",
    ),
    pytest.param(
        inventory(
            wl("shop/web"),
            wl("shop/api"),
            telemetries=[
                telemetry("shop/off", MetricsOverride("REQUEST_COUNT", "SERVER", True), selector={"app": "api"})
            ],
        ),
        traffic(),
        ["telemetry-disabled"],
        ["shop/api"],
        "workloads matching",
        id="a workload-selector Telemetry reaches only the workloads it selects",
    ),
    pytest.param(
        inventory(
            wl("shop/web"), telemetries=[telemetry("shop/client", MetricsOverride(mode="CLIENT", disabled=True))]
        ),
        traffic(),
        [],
        [],
        "",
        id="disabling client-side metrics leaves the server side we read",
    ),
    pytest.param(
        inventory(
            wl("shop/web"),
            telemetries=[telemetry("shop/sd", MetricsOverride(disabled=True), providers=("stackdriver",))],
        ),
        traffic(),
        ["telemetry-providers"],
        [],
        "for stackdriver only",
        id="a Telemetry for another provider is shown, its override not taken for Prometheus",
    ),
    pytest.param(
        inventory(
            wl("shop/web"),
            telemetries=[
                telemetry("shop/strip", MetricsOverride(removed_tags=("destination_workload", "request_host")))
            ],
        ),
        traffic(),
        ["telemetry-filtered"],
        ["shop/web"],
        "removes the label(s) destination_workload",
        id="a Telemetry removing a label the queries group by",
    ),
    pytest.param(
        inventory(
            wl("shop/web"), telemetries=[telemetry("shop/strip", MetricsOverride(removed_tags=("request_host",)))]
        ),
        traffic(),
        [],
        [],
        "",
        id="removing a label we do not read is harmless",
    ),
    pytest.param(
        inventory(wl("kube-system/node-exporter", NONE, (9100,), host_network=True)),
        traffic(),
        ["host-network"],
        [],
        "never injected",
        id="a host-network pod",
    ),
    pytest.param(
        inventory(
            wl("data/db", ports=(5432,)),
            wl("data/legacy", NONE),
            services=[
                Service("data", "db", headless=True, selector={"app": "db"}, ports=(ServicePort(5432),)),
                Service("data", "db-vip", selector={"app": "db"}),
            ],
        ),
        traffic(),
        ["headless-service"],
        [],
        "reach pod IPs directly",
        id="a headless service (a ClusterIP one is not a blind spot)",
    ),
]


@pytest.mark.parametrize(("inv", "data", "kinds", "unknown", "phrase"), BLIND_CASES)
def test_blind_spot_rules(inv: Inventory, data: Traffic, kinds: list[str], unknown: list[str], phrase: str) -> None:
    found = blind_spots.find(inv, data, PolicyEngine([], ROOT), ROOT)
    assert [s.kind for s in found.spots] == kinds
    assert sorted(f"{ns}/{name}" for ns, name in found.doubts) == unknown
    assert any(s.affects_verdict for s in found.spots) == bool(unknown)
    if phrase:
        assert phrase in " ".join(s.detail for s in found.spots)
    # Every verdict-affecting blind spot is also a warning naming it.
    assert len(found.warnings) == sum(1 for s in found.spots if s.affects_verdict)


def test_port_level_mtls_is_shown_per_workload() -> None:
    inv = inventory(wl("shop/web", ports=(8080, 9000)), wl("shop/api"))
    engine = PolicyEngine([pa("shop/web-ports", Mode.STRICT, selector={"app": "web"}, ports={9000: Mode.PERMISSIVE})])
    found = blind_spots.find(inv, traffic(), engine, ROOT)
    [spot] = found.spots
    assert (spot.kind, spot.subject, spot.ports, spot.affects_verdict) == ("port-level-mtls", "shop/web", [9000], False)
    assert "9000=PERMISSIVE, other ports STRICT, from shop/web-ports" in spot.detail


def test_unscraped_workload_is_unknown_never_no_traffic_and_a_scraped_one_stays_no_traffic() -> None:
    inv = inventory(wl("shop/web"), wl("shop/api"), pods={"shop/web": ["web-1"], "shop/api": ["api-1"]})
    result = analyse(inv, traffic(SCRAPED), Settings("r", T0, "1d", ROOT))
    verdicts = {f"{w.namespace}/{w.workload}": (w.verdict, w.reasons) for w in result.workloads}
    assert verdicts["shop/web"] == (Verdict.NO_TRAFFIC, ["no inbound traffic in the window"])
    verdict, reasons = verdicts["shop/api"]
    assert verdict is Verdict.UNKNOWN and "no telemetry" in reasons[0]
    assert [s.kind for s in result.blind_spots] == ["no-proxy-telemetry"]
    assert any("no-proxy-telemetry" in w and "shop/api" in w for w in result.warnings)


# -- lint ---------------------------------------------------------------------------------------


def edge(src: str, dst: str, plaintext: float, *, mode: str = "PERMISSIVE", service: str = "", kind: str = "meshed"):
    sns, sname = src.split("/")
    dns, dname = dst.split("/")
    return EdgeResult(
        "", sns, sname, "", "", dns, dname, service or f"{dname}.{dns}.svc.cluster.local", "http", "requests",
        0.0, plaintext, 1.0, 0.0, None, None, mode, "shop/default", True, kind,
    )  # fmt: skip


def dr(ref: str, host: str, mode: str) -> DestinationRule:
    ns, name = ref.split("/")
    return DestinationRule(ns, name, T0, host, tls_mode=mode)


LINT_CASES = [
    pytest.param(
        inventory(wl("shop/web")),
        [pa("shop/default", Mode.STRICT)],
        [edge("shop/ui", "shop/web", 12, mode="STRICT")],
        [("strict-receives-plaintext", "workload shop/web")],
        "shop/ui -> shop/web: 12 plaintext requests",
        id="a STRICT workload that still received plaintext in the window",
    ),
    pytest.param(
        inventory(wl("shop/web", ports=(8080, 9000), exclude_inbound_ports="9000")),
        [pa("shop/default", Mode.STRICT)],
        [],
        [("strict-port-not-captured", "workload shop/web")],
        "excludeInboundPorts='9000'",
        id="a STRICT workload with a port that bypasses the sidecar",
    ),
    pytest.param(
        inventory(wl("shop/web"), destination_rules=[dr("shop/no-tls", "web", "DISABLE")]),
        [],
        [
            edge("shop/ui", "shop/web", 40),
            edge("other/job", "shop/web", 5, kind="unmeshed"),
            edge("pay/api", "pay/ledger", 7),
        ],
        [("destination-rule-disable", "DestinationRule shop/no-tls")],
        "makes 1 client(s) send plaintext in the window: shop/ui",
        id="DestinationRule DISABLE names the meshed clients it affects, not unmeshed ones or other hosts",
    ),
    pytest.param(
        inventory(wl("shop/web"), destination_rules=[dr("shop/no-tls", "web", "DISABLE")]),
        [],
        [],
        [("destination-rule-disable", "DestinationRule shop/no-tls")],
        "no client was seen",
        id="DestinationRule DISABLE without observed clients says so",
    ),
    pytest.param(
        inventory(
            wl("shop/web"),
            wl("legacy/db", NONE),
            destination_rules=[dr("legacy/force", "db", "ISTIO_MUTUAL"), dr("shop/fine", "web", "ISTIO_MUTUAL")],
            services=[Service("legacy", "db", selector={"app": "db"}), Service("shop", "web", selector={"app": "web"})],
        ),
        [],
        [],
        [("istio-mutual-to-sidecarless", "DestinationRule legacy/force")],
        "legacy/db (via Service legacy/db)",
        id="ISTIO_MUTUAL towards a sidecar-less endpoint (not towards a meshed one)",
    ),
    pytest.param(
        inventory(wl("shop/web")),
        [
            pa(f"{ROOT}/default", Mode.STRICT),
            pa(f"{ROOT}/scoped", Mode.STRICT, selector={"app": "web"}),
            pa("shop/ports", Mode.STRICT, ports={8080: Mode.DISABLE}),
        ],
        [],
        [  # the engine's order: oldest first, then by name
            ("ignored-policy", "PeerAuthentication shop/ports"),
            ("ignored-policy", f"PeerAuthentication {ROOT}/scoped"),
        ],
        "root namespace",
        id="policies istiod ignores come from the policy engine",
    ),
]


@pytest.mark.parametrize(("inv", "policies", "edges", "want", "phrase"), LINT_CASES)
def test_lint_rules(
    inv: Inventory, policies: list[PeerAuthentication], edges: list[EdgeResult], want: list, phrase: str
) -> None:
    findings = lint.lint(inv, PolicyEngine(policies, ROOT), edges, ROOT)
    assert [(f.rule, f.policy) for f in findings] == want
    assert phrase in " ".join([f.detail for f in findings] + [e for f in findings for e in f.evidence])


def test_an_unreadable_telemetry_is_skipped_with_a_warning_and_doubts_its_namespace() -> None:
    bad = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "odd", "namespace": "shop"},
        "spec": {"metrics": [{"overrides": [{"match": {"mode": "SERVERS"}, "disabled": True}]}]},
    }
    inv = build_inventory([(bad, "file.yaml")])
    assert inv.telemetries == []
    [problem] = inv.problems
    assert "skipped Telemetry shop/odd" in problem and "mode" in problem
    assert inv.policy_doubts == {"shop": [inv.policy_doubts["shop"][0]]}
    assert "Telemetry shop/odd could not be read" in inv.policy_doubts["shop"][0]
