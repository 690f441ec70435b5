"""Blind spots and policy lint end to end: the real CLI reads a loopback Kubernetes API (real
`kubernetes` client) and a real Prometheus that holds Istio's request metrics plus the proxies'
own `envoy_server_live`, for exactly the pods Prometheus "scrapes". The page is checked in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from analyzer.cli import main
from analyzer.collect.kube import read_cluster
from analyzer.model.inventory import Dataplane
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh, destination_rule_disable, openmetrics_lines
from tests.support.browser import DESKTOP, PHONE, BrowserError, Chromium
from tests.support.e2e import HISTORY, Report, read_latest
from tests.support.kube_api import FORBIDDEN, NOT_FOUND, FakeKubeAPI
from tests.support.prometheus import PrometheusServer

NONE = Dataplane.NONE
EXCLUDE = "traffic.sidecar.istio.io/excludeInboundPorts"
UNSCRAPED = {"shop/api"}  # sidecar workloads whose pods have no proxy series


def _mesh() -> SampleMesh:
    return SampleMesh(
        workloads=[
            MeshWorkload("shop", "web", ports=(8080, 9000)),
            MeshWorkload("shop", "ui"),
            MeshWorkload("shop", "api"),
            MeshWorkload("shop", "cart"),
            MeshWorkload("stats", "collector"),
            MeshWorkload("orders", "web"),
            MeshWorkload("orders", "billing"),
            MeshWorkload("node", "agent", dataplane=NONE, kind="DaemonSet", ports=(9100,)),
        ],
        flows=[
            Flow("shop/ui", "shop/web", per_hour=120),
            Flow("orders/web", "orders/billing", per_hour=240, plaintext=True),
        ],
        namespace_labels={ns: {"istio-injection": "enabled"} for ns in ("shop", "stats", "orders")},
        policies=[
            destination_rule_disable("orders", "billing-no-tls", "billing.orders.svc.cluster.local"),
            {
                "apiVersion": "telemetry.istio.io/v1",
                "kind": "Telemetry",
                "metadata": {"name": "no-metrics", "namespace": "stats"},
                "spec": {"metrics": [{"providers": [{"name": "prometheus"}], "overrides": [{"disabled": True}]}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "agent", "namespace": "node"},
                "spec": {"clusterIP": "None", "selector": {"app": "agent"}, "ports": [{"port": 9100}]},
            },
        ],
        history=HISTORY,
    )


def _cluster(mesh: SampleMesh) -> list[dict]:
    """What the API server lists, with what the injector and the DaemonSet author wrote on the pods."""
    objects = mesh.cluster_objects()
    for obj in objects:
        if obj["kind"] != "Pod":
            continue
        app = obj["metadata"]["labels"].get("app")
        if obj["metadata"]["namespace"] == "shop" and app == "web":
            obj["metadata"]["annotations"][EXCLUDE] = "9000,15090,15021,15020"
        if app == "agent":
            obj["spec"]["hostNetwork"] = True
    return objects


def _pods(objects: list[dict]) -> dict[str, list[str]]:
    pods: dict[str, list[str]] = {}
    for obj in objects:
        if obj["kind"] == "Pod":
            ref = f"{obj['metadata']['namespace']}/{obj['metadata']['labels']['app']}"
            pods.setdefault(ref, []).append(obj["metadata"]["name"])
    return pods


def _prometheus(mesh: SampleMesh, objects: list[dict], workdir: Path, now: datetime) -> PrometheusServer:
    """Istio's counters plus envoy_server_live{namespace, pod} for every sidecar pod but UNSCRAPED's."""
    step = timedelta(minutes=5)
    times = [now - HISTORY + step * i for i in range(int(HISTORY / step) + 1)]
    sidecars = {w.ref for w in mesh.workloads if w.dataplane is Dataplane.SIDECAR}
    data = workdir / "data.om"
    with data.open("w", encoding="utf-8") as stream:
        lines = list(openmetrics_lines(mesh.series(now, step)))
        stream.writelines(lines[:-1])  # without "# EOF"
        stream.write("# TYPE envoy_server_live gauge\n")
        for ref, names in sorted(_pods(objects).items()):
            if ref not in sidecars or ref in UNSCRAPED:
                continue
            for pod in names:
                labels = f'namespace="{ref.split("/")[0]}",pod="{pod}",job="kubernetes-pods"'
                stream.writelines(f"envoy_server_live{{{labels}}} 1 {t.timestamp():.3f}\n" for t in times)
        stream.write("# EOF\n")
    server = PrometheusServer(workdir)
    server.load_file(data)
    server.start()
    return server


@dataclass
class Served:
    report: Report
    result_dir: Path
    inputs: list[str]  # the --policies-from/--kubeconfig/--prometheus-url/--lookback arguments


@pytest.fixture(scope="module")
def served(kube_api_factory, tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[Served]:
    mesh = _mesh()
    objects = _cluster(mesh)
    api: FakeKubeAPI = kube_api_factory(objects)
    workdir = tmp_path_factory.mktemp("blind")
    (workdir / "prometheus").mkdir()
    prometheus = _prometheus(mesh, objects, workdir / "prometheus", now)
    try:
        kubeconfig = str(api.write_kubeconfig(workdir / "kubeconfig"))
        out = workdir / "out"
        inputs = ["--policies-from", "kube", "--kubeconfig", kubeconfig, "--prometheus-url", prometheus.url]
        inputs += ["--lookback", "1d"]
        code = main(["report", *inputs, "--output-dir", str(out)])
        yield Served(read_latest(out, code), out, inputs)
    finally:
        prometheus.stop()


def _spots(report: Report, kind: str) -> list[dict]:
    return [b for b in report.summary["blind_spots"] if b["kind"] == kind]


def test_an_excluded_inbound_port_is_a_blind_spot_without_changing_a_verdict_resting_on_other_ports(served):
    [spot] = _spots(served.report, "excluded-ports")
    assert (spot["subject"], spot["ports"], spot["affects_verdict"]) == ("shop/web", [9000], False)
    assert "no telemetry and no enforcement" in spot["detail"]
    assert served.report.verdict("shop/web") == "READY"  # mTLS from shop/ui on the captured port


def test_an_unscraped_meshed_workload_is_no_telemetry_never_no_traffic_or_ready(served):
    report = served.report
    [spot] = _spots(report, "no-proxy-telemetry")
    assert (spot["subject"], spot["affects_verdict"]) == ("shop/api", True)
    assert "scraped none of its 2 pod proxies" in spot["detail"]
    row = report.workloads["shop/api"]
    assert row["verdict"] == "UNKNOWN" and "no telemetry" in row["reasons"]
    # The control: a scraped workload with no traffic stays NO_TRAFFIC.
    assert report.verdict("shop/cart") == "NO_TRAFFIC"
    assert report.namespaces["shop"]["verdict"] == "UNKNOWN"
    assert any("no-proxy-telemetry" in w and "shop/api" in w for w in report.summary["warnings"])
    assert report.code == 2  # UNKNOWN: the run is incomplete, never "ready"


def test_a_telemetry_override_that_disables_metrics_makes_its_workloads_unknown(served):
    report = served.report
    [spot] = _spots(report, "telemetry-disabled")
    assert (spot["subject"], spot["workloads"], spot["affects_verdict"]) == (
        "Telemetry stats/no-metrics",
        ["stats/collector"],
        True,
    )
    row = report.workloads["stats/collector"]
    assert row["verdict"] == "UNKNOWN" and "Telemetry stats/no-metrics disables the request metrics" in row["reasons"]


def test_a_host_network_pod_and_a_headless_service_are_shown(served):
    [host] = _spots(served.report, "host-network")
    assert (host["subject"], host["ports"]) == ("node/agent", [9100])
    [headless] = _spots(served.report, "headless-service")
    assert headless["subject"] == "Service node/agent" and headless["workloads"] == ["node/agent"]
    assert "sidecar-less endpoint(s) node/agent are called in plaintext" in headless["detail"]
    assert served.report.verdict("node/agent") == "NOT_MESHED"


def test_lint_names_the_client_a_disabling_destination_rule_affects_with_evidence(served):
    [finding] = [f for f in served.report.summary["lint"] if f["rule"] == "destination-rule-disable"]
    assert finding["policy"] == "DestinationRule orders/billing-no-tls"
    assert "makes 1 client(s) send plaintext in the window: orders/web" in finding["detail"]
    [evidence] = finding["evidence"]
    assert evidence.startswith("orders/web -> orders/billing: ") and "plaintext requests, last seen" in evidence
    count = float(evidence.split(": ")[1].split()[0])
    assert count == pytest.approx(240 * 24, rel=0.03)  # a day of 240 plaintext requests an hour


@pytest.mark.parametrize(
    ("namespace", "blind"),
    [("shop", "shop/api"), ("stats", "stats/collector")],
    ids=["unscraped proxy", "metrics disabled by Telemetry"],
)
def test_what_if_cannot_call_a_proposal_safe_where_the_telemetry_is_blind(
    served, tmp_path: Path, capsys, namespace: str, blind: str
):
    proposal = tmp_path / "strict.yaml"
    proposal.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {"name": "default", "namespace": namespace},
                "spec": {"mtls": {"mode": "STRICT"}},
            }
        ),
        encoding="utf-8",
    )
    code = main(["what-if", "--apply", str(proposal), *served.inputs, "-o", "json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 2, answer
    assert answer["verdict"] != "safe"
    assert any(blind in json.dumps(d) for d in answer["doubts"]), answer["doubts"]


def test_result_json_carries_the_same_findings(served):
    result = json.loads((served.report.run_folder / "result.json").read_text(encoding="utf-8"))
    assert result["blind_spots"] == served.report.summary["blind_spots"]
    assert result["lint"] == served.report.summary["lint"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    try:
        with Chromium() as chromium:
            yield chromium
    except BrowserError as exc:  # a missing chromium or axe-core fails, never skips
        pytest.fail(str(exc))


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_the_blind_spot_section_reads_in_chromium_and_is_axe_clean(served, browser: Chromium, width: int):
    page = browser.page(width=width)
    url = (served.report.run_folder / "index.html").resolve().as_uri()
    page.open(url)
    assert page.errors() == []
    rows = page.evaluate(
        """[...document.querySelectorAll('section[aria-labelledby="blind-spots"] tbody tr')]
        .map(r => [...r.cells].map(c => c.innerText.trim()))"""
    )
    kinds = {r[0]: r for r in rows}
    assert {"excluded-ports", "no-proxy-telemetry", "telemetry-disabled", "host-network", "headless-service"} <= set(
        kinds
    )
    assert kinds["no-proxy-telemetry"][1:3] == ["shop/api", "made UNKNOWN"]  # in words, not by colour
    assert kinds["excluded-ports"][2] == "unchanged"
    lint = page.evaluate("""[...document.querySelectorAll('ul.lint > li')].map(li => li.innerText)""")
    assert any("destination-rule-disable" in item and "orders/web -> orders/billing" in item for item in lint)
    assert page.axe() == []


def test_a_forbidden_or_missing_blind_spot_list_degrades_that_check_and_never_fails_the_read(
    kube_api_factory, tmp_path
):
    api = kube_api_factory(
        _cluster(_mesh()), faults={"/api/v1/services": FORBIDDEN, "/apis/telemetry.istio.io": NOT_FOUND}
    )
    inventory = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    assert inventory.services == [] and inventory.telemetries == []
    forbidden, missing = inventory.unavailable_checks
    assert "403 Forbidden" in forbidden and 'resources: ["services"]' in forbidden
    assert "headless services" in forbidden
    assert "no telemetries.telemetry.istio.io v1 or v1alpha1 served" in missing
    assert inventory.warnings[:2] == [forbidden, missing]
    assert inventory.workloads  # the rest of the cluster was read


def test_a_malformed_telemetry_from_the_cluster_is_one_warning_and_a_doubt(kube_api_factory, tmp_path):
    bad = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "broken", "namespace": "stats"},
        "spec": {"metrics": [{"overrides": [{"disabled": "yes please"}]}]},
    }
    api = kube_api_factory([*_cluster(_mesh()), bad])
    inventory = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    [problem] = inventory.problems
    assert "skipped Telemetry stats/broken" in problem
    assert [t.ref for t in inventory.telemetries] == ["stats/no-metrics"]
    assert any("Telemetry stats/broken could not be read" in d for d in inventory.policy_doubts["stats"])
