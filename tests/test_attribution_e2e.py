"""Attribution of unknown plaintext clients, end to end: a real Prometheus (which also really scrapes
a small HTTP server standing in for a pod), the loopback Kubernetes API, the real CLI.

One mesh holds one case per attribution source, each in its own namespace; one Prometheus and one
report serve them all (docs/attribution.md).
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from analyzer.cli import main
from analyzer.model.inventory import Dataplane
from analyzer.sample import catalogue
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh
from tests.support.e2e import run_report, short_history, write_policies
from tests.support.prometheus import serve_mesh

SIDECAR, NONE = Dataplane.SIDECAR, Dataplane.NONE
INJECT = {"istio-injection": "enabled"}
SCRAPED_IP = "127.0.0.2"  # loopback: the small HTTP server the test Prometheus really scrapes
SCRAPE_SECONDS = 15
BURST_MINUTE = 7  # jobs/nightly fires at minute 7 of every hour; jobs/other at minute 37


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"app_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _fires(now: datetime, minute: int) -> list[timedelta]:
    """How long ago each hourly run at `minute` started, within the last day."""
    out = []
    t = now.replace(minute=minute, second=0, microsecond=0)
    while t > now - timedelta(hours=23, minutes=30):
        if t < now - timedelta(minutes=30):
            out.append(now - t)
        t -= timedelta(hours=1)
    return out


def attribution_mesh(now: datetime) -> SampleMesh:
    probe = MeshWorkload("probe", "api", ports=(8000,), rewrite_probes=False, probes=(("readiness", "http", 8000, 10),))
    workloads = [
        probe,
        MeshWorkload("scrape", "app", ports=(8000,), pod_ips=(SCRAPED_IP,)),
        MeshWorkload("jobs", "db", kind="StatefulSet", ports=(5432,)),
        MeshWorkload("jobs", "nightly", dataplane=NONE, kind="CronJob", ports=(), schedule=f"{BURST_MINUTE} * * * *"),
        MeshWorkload(
            "jobs", "other", dataplane=NONE, kind="CronJob", ports=(), schedule=f"{BURST_MINUTE + 30} * * * *"
        ),
        MeshWorkload("tcp", "client", ports=()),
        MeshWorkload("tcp", "db", kind="StatefulSet", ports=(5432,)),
        MeshWorkload("addr", "api", ports=(8080,)),
        MeshWorkload("addr", "legacy", dataplane=NONE, ports=()),
    ]
    flows = [
        # kubelet: 2 replicas x one HTTP probe every 10s, not rewritten
        Flow(None, "probe/api", per_hour=2 * 360),
        # Prometheus scraping the app port every 15s
        Flow(None, "scrape/app", per_hour=3600 / SCRAPE_SECONDS),
        Flow("tcp/client", "tcp/db", protocol="tcp", per_hour=60, plaintext=True),
        Flow("addr/legacy", "addr/api", per_hour=120),
    ]
    flows += [
        Flow("jobs/nightly", "jobs/db", protocol="tcp", per_hour=600, start=ago, stop=ago - timedelta(minutes=6))
        for ago in _fires(now, BURST_MINUTE)
    ]
    labels = {ns: INJECT for ns in ("probe", "scrape", "jobs", "tcp", "addr")}
    mesh = SampleMesh(workloads=workloads, flows=flows, namespace_labels={**labels, "istio-system": {}})
    mesh.peer_address_namespaces = frozenset({"addr"})
    return short_history(mesh, timedelta(hours=25))


@pytest.fixture(scope="module")
def scraped_app() -> Iterator[int]:
    server = ThreadingHTTPServer((SCRAPED_IP, 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, now: datetime, scraped_app: int) -> Iterator[str]:
    config = (
        f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\nscrape_configs:\n"
        f"  - job_name: app-direct\n    static_configs:\n      - targets: ['{SCRAPED_IP}:{scraped_app}']\n"
    )
    # Samples every 2 minutes: the timeline's 8-minute steps then each hold several, as they do on
    # a real Prometheus scraping every 15-30s (5-minute samples leave some steps one, missing bursts).
    folder = Path(tmp_path_factory.mktemp("prometheus"))
    server = serve_mesh(attribution_mesh(now), folder, now, scrape=timedelta(minutes=2), config=config)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # service discovery hands the static target over a moment after start
        targets = requests.get(f"{server.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        if targets and targets[0].get("health") == "up":
            break
        time.sleep(0.2)
    yield server.url
    server.stop()


def _report(tmp: Path, url: str, kubeconfig: Path) -> dict:
    out = tmp / "reports"
    argv = ["report", "--prometheus-url", url, "--policies-from", "kube", "--kubeconfig", str(kubeconfig)]
    main([*argv, "--output-dir", str(out), "--lookback", "1d"])
    latest = out / "latest"
    result = json.loads((latest / "result.json").read_text(encoding="utf-8"))
    result["clients_csv"] = list(csv.DictReader((latest / "clients.csv").open(encoding="utf-8")))
    result["candidates_csv"] = list(csv.DictReader((latest / "candidates.csv").open(encoding="utf-8")))
    result["page"] = (latest / "index.html").read_text(encoding="utf-8")
    return result


@pytest.fixture(scope="module")
def result(prometheus: str, kube_api_factory, tmp_path_factory: pytest.TempPathFactory, now: datetime) -> dict:
    api = kube_api_factory(attribution_mesh(now))
    tmp = tmp_path_factory.mktemp("attribution")
    return _report(tmp, prometheus, api.write_kubeconfig(tmp / "kubeconfig"))


def candidates(result: dict, destination: str) -> list[dict]:
    ns, name = destination.split("/")
    found = [a for a in result["attributions"] if (a["destination_namespace"], a["destination_workload"]) == (ns, name)]
    assert len(found) == 1, [(a["destination_namespace"], a["destination_workload"]) for a in result["attributions"]]
    return found[0]["candidates"]


def test_the_test_prometheus_really_scrapes_the_app_port(prometheus: str, scraped_app: int):
    targets = requests.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert [(t["scrapeUrl"], t["health"]) for t in targets] == [(f"http://{SCRAPED_IP}:{scraped_app}/metrics", "up")]


def test_a_scrape_target_on_a_pod_ip_names_prometheus(result: dict, scraped_app: int):
    top = candidates(result, "scrape/app")[0]
    assert top["name"] == "prometheus (job app-direct)"
    assert top["confidence"] == "likely"
    assert (
        f"scrapes {SCRAPED_IP}:{scraped_app} (an app port, not 15020) every 15s: 5760 requests expected"
        in (top["evidence"])
    )


def test_probes_without_rewrite_are_the_kubelet_at_the_expected_rate(result: dict):
    top = candidates(result, "probe/api")[0]
    assert top["name"] == "kubelet" and top["confidence"] == "likely" and top["source"] == "probes"
    # 2 replicas x 8,640 probes a day
    assert "2 replica(s) x (readiness http :8000 every 10s) = 17280 requests expected" in top["evidence"]
    observed = float(re.search(r"expected in the window, ([\d.]+) observed", top["evidence"]).group(1))
    assert observed == pytest.approx(17280, rel=0.01)  # increase() extrapolates at the window's edges


def test_a_cronjob_whose_runs_match_the_bursts_ranks_above_one_that_does_not(result: dict):
    ranked = candidates(result, "jobs/db")
    assert ranked[0]["name"] == "jobs/nightly"
    assert ranked[0]["confidence"] == "likely" and ranked[0]["source"] == "jobs"
    assert f"schedule '{BURST_MINUTE} * * * *'" in ranked[0]["evidence"]
    other = [c for c in ranked if c["name"] == "jobs/other"]
    # the other CronJob is sidecar-less too, but its schedule explains none of the bursts
    assert [c["source"] for c in other] == ["sidecar-less"] and other[0]["confidence"] == "possible"


def test_a_meshed_tcp_client_is_named_from_its_own_sidecar(result: dict):
    top = candidates(result, "tcp/db")[0]
    assert (top["name"], top["confidence"], top["source"]) == ("tcp/client", "certain", "client-side")
    sent = re.search(r"its sidecar reports ([\d.]+) connections to tcp/db \(reporter=source\)", top["evidence"])
    assert float(sent.group(1)) == pytest.approx(1440, rel=0.01)
    assert "while the server names it on 0 mTLS ones" in top["evidence"]


def test_the_peer_address_label_resolves_to_a_pod(result: dict):
    top = candidates(result, "addr/api")[0]
    assert (top["name"], top["confidence"], top["source"]) == ("addr/legacy", "certain", "peer-address")
    assert re.fullmatch(r"[\d.]+ requests with source_address: 10\.[\d.]+ is pod addr/legacy-\w+-\w+", top["evidence"])


def test_blockers_are_grouped_by_client_in_result_csv_and_page(result: dict):
    rows = {r["client"]: r for r in result["clients_csv"]}
    assert rows["kubelet"]["destinations"] == "probe/api" and rows["kubelet"]["confidence"] == "likely"
    assert float(rows["tcp/client"]["connections"]) == pytest.approx(1440, rel=0.01)
    assert rows["tcp/client"]["attributed"] == "true"
    assert float(rows["addr/legacy"]["requests"]) == pytest.approx(2880, rel=0.01)
    assert {c["client"] for c in result["clients"]} == set(rows)
    assert '<table class="sortable" id="clients-table">' in result["page"]
    assert "<caption" in result["page"] and "prometheus (job app-direct)" in result["page"]
    # The headline keeps counting clients as Istio names them, as what-if does: every one of these
    # five is "unknown" to Istio, one client over five edges; the grouping names five.
    assert (result["mesh"]["cut_off_clients"], result["mesh"]["cut_off_edges"]) == (1, 5)
    assert len(rows) == 5


def test_a_refused_cronjob_list_degrades_only_the_schedule_match(
    prometheus: str, kube_api_factory, tmp_path: Path, now: datetime
):
    api = kube_api_factory(attribution_mesh(now), faults={"/apis/batch/v1/cronjobs": 403})
    result = _report(tmp_path, prometheus, api.write_kubeconfig(tmp_path / "kubeconfig"))
    warning = next(w for w in result["warnings"] if w.startswith("attribution without cronjobs"))
    assert 'apiGroups: ["batch"], resources: ["cronjobs"], verbs: ["list"]' in warning
    assert all(c["source"] != "jobs" for c in candidates(result, "jobs/db"))
    assert candidates(result, "tcp/db")[0]["confidence"] == "certain"  # other sources stand


def test_the_walkthrough_names_legacy_curl(prometheus_factory, tmp_path: Path, capsys):
    mesh = short_history(catalogue.walkthrough())
    report = run_report(capsys, prometheus_factory(mesh), write_policies(mesh, tmp_path), tmp_path / "reports")
    rows = list(csv.DictReader((report.output_dir / "latest" / "clients.csv").open(encoding="utf-8")))
    assert [(r["client"], r["confidence"], r["destinations"], r["edges"]) for r in rows] == [
        ("legacy/curl", "likely", "bar/httpbin;foo/httpbin", "2")
    ]
    assert rows[0]["evidence"] == "Deployment without a sidecar: the only sidecar-less workload in the mesh"
    assert rows[0]["attributed"] == "true" and rows[0]["requests"] == str(2 * 120 * 24)
