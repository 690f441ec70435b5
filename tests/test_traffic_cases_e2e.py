"""Each kind of traffic Istio records, end to end: the real CLI, a real query engine, policy files.

Every test runs on Prometheus and on VictoriaMetrics (`engine_factory`). One server holds a mesh
in which every case has its own destination, so one report answers them all; a second holds a
series whose connection_security_policy label was dropped, which makes its whole report incomplete.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from analyzer.collect import queries
from analyzer.model.inventory import Dataplane
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh, destination_rule_disable
from tests.support.e2e import Report, read_latest, run_report, short_history, write_policies
from tests.support.engines import EngineFactory

INJECT = {"istio-injection": "enabled"}
AMBIENT_NS = {"istio.io/dataplane-mode": "ambient"}
REPO = Path(__file__).resolve().parents[1]
BURST_AGO = timedelta(hours=10)


def cases_mesh() -> SampleMesh:
    workloads = [
        MeshWorkload("shop", "frontend", ports=(8080,)),
        MeshWorkload("shop", "cart", ports=(8080,)),  # mTLS only; frontend's sidecar reports it too
        MeshWorkload("shop", "catalog", ports=(8080,)),  # nobody calls it
        MeshWorkload("payments", "api", ports=(8080,)),
        MeshWorkload("payments", "ledger", ports=(9090,)),  # gRPC over mTLS
        MeshWorkload("orders", "web", ports=(8080,)),
        MeshWorkload("orders", "billing", ports=(8080,)),  # web's DestinationRule disables TLS
        MeshWorkload("data", "postgres", kind="StatefulSet", ports=(5432,)),  # plaintext TCP from outside
        MeshWorkload("batch", "loader", ports=()),
        MeshWorkload("batch", "warehouse", ports=(5432,)),  # one short burst of plaintext
        MeshWorkload("batch", "nightly", dataplane=Dataplane.NONE, kind="CronJob", ports=()),
        MeshWorkload("edge", "gateway", dataplane=Dataplane.AMBIENT, ports=(8080,)),  # ztunnel plaintext
        MeshWorkload("edge", "ratelimit", dataplane=Dataplane.AMBIENT, ports=(8081,)),  # HBONE only
        MeshWorkload("ingress", "nginx", dataplane=Dataplane.NONE, ports=(80,)),
    ]
    flows = [
        Flow("shop/frontend", "shop/cart", per_hour=300),
        Flow("payments/api", "payments/ledger", protocol="grpc", per_hour=600),
        Flow("orders/web", "orders/billing", per_hour=240, plaintext=True),
        Flow(None, "data/postgres", protocol="tcp", per_hour=30),
        Flow("orders/web", "data/postgres", protocol="tcp", per_hour=60),
        Flow("batch/loader", "batch/warehouse", protocol="tcp", per_hour=60),
        # A CronJob's run: 10 connections inside five minutes, ten hours ago. The server's counter
        # is born at 10 between two scrapes and then stays flat: increase() alone sees nothing.
        Flow(
            "batch/nightly",
            "batch/warehouse",
            protocol="tcp",
            per_hour=120,
            start=BURST_AGO,
            stop=BURST_AGO - timedelta(minutes=5),
        ),
        Flow("ingress/nginx", "edge/gateway", per_hour=600),
        Flow("shop/frontend", "edge/ratelimit", per_hour=600),
    ]
    return SampleMesh(
        workloads=workloads,
        flows=flows,
        namespace_labels={
            **{ns: INJECT for ns in ("shop", "payments", "orders", "data", "batch")},
            "edge": AMBIENT_NS,
            "ingress": {},
        },
        policies=[destination_rule_disable("orders", "billing-no-tls", "billing.orders.svc.cluster.local")],
    )


def unreadable_mesh() -> SampleMesh:
    """A Telemetry API override removed connection_security_policy from one workload's metrics."""
    return SampleMesh(
        workloads=[
            MeshWorkload("shop", "frontend", ports=(8080,)),
            MeshWorkload("shop", "cart", ports=(8080,)),
            MeshWorkload("analytics", "reports", ports=(8080,)),
        ],
        flows=[
            Flow("shop/frontend", "shop/cart", per_hour=300),
            Flow("shop/frontend", "analytics/reports", per_hour=60, drop_security_label=True),
        ],
        namespace_labels={"shop": INJECT, "analytics": INJECT},
    )


@dataclass
class Served:
    url: str
    policies: Path
    report: Report


def serve(
    engine_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory, mesh: SampleMesh
) -> Served:
    mesh = short_history(mesh)
    url = engine_factory(mesh)
    folder = tmp_path_factory.mktemp("cases")
    policies = write_policies(mesh, folder)
    return Served(url, policies, run_report(None, url, policies, folder / "reports"))


@pytest.fixture(scope="module")
def cases(engine_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory) -> Served:
    return serve(engine_factory, tmp_path_factory, cases_mesh())


@pytest.fixture(scope="module")
def unreadable(engine_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory) -> Served:
    return serve(engine_factory, tmp_path_factory, unreadable_mesh())


def instant(url: str, promql: str, at: datetime) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": promql, "time": at.timestamp()}, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def edge(report: Report, source: str, destination: str) -> dict[str, str]:
    """The one edge from `source` ("ns/name", or "unknown") to `destination`."""
    found = [
        e
        for e in report.edges_to(destination)
        if source in (f"{e['source_namespace']}/{e['source_workload']}", e["source_workload"])
    ]
    assert len(found) == 1, found
    return found[0]


def near(value: str, expected: float, tolerance: float = 0.03) -> bool:
    return expected * (1 - tolerance) < float(value) < expected * (1 + tolerance)


def test_the_cases_report_is_complete(cases: Served) -> None:
    report = cases.report
    assert report.code == 0
    assert report.summary["warnings"] == []
    assert report.summary["verdicts"]["UNKNOWN"] == 0
    assert report.summary["mesh_verdict"] == "BLOCKED"


def test_plaintext_tcp_from_an_unnamed_caller_blocks(cases: Served) -> None:
    report = cases.report
    assert report.verdict("data/postgres") == "BLOCKED"
    plain = edge(report, "unknown", "data/postgres")
    assert (plain["protocol"], plain["unit"], plain["blocker"]) == ("tcp", "connections", "true")
    assert near(plain["plaintext_count"], 30 * 24)
    # Plaintext TCP carries no peer metadata: the caller could be meshed or not.
    assert plain["client_kind"] == "unknown"
    meshed = edge(report, "orders/web", "data/postgres")
    assert (meshed["protocol"], meshed["unit"], meshed["blocker"]) == ("tcp", "connections", "false")
    assert near(meshed["mtls_count"], 60 * 24)
    assert float(meshed["plaintext_count"]) == 0
    assert report.workloads["data/postgres"]["plaintext_sources"] == "unknown"
    assert report.namespaces["data"]["verdict"] == "BLOCKED"


def test_grpc_over_mtls_is_ready_and_counted_as_requests(cases: Served) -> None:
    report = cases.report
    assert report.verdict("payments/ledger") == "READY"
    grpc = edge(report, "payments/api", "payments/ledger")
    assert (grpc["protocol"], grpc["unit"], grpc["blocker"]) == ("grpc", "requests", "false")
    assert near(grpc["mtls_count"], 600 * 24)
    assert grpc["source_principal"] == "spiffe://cluster.local/ns/payments/sa/api"
    assert report.namespaces["payments"]["verdict"] == "READY"


def test_a_meshed_client_sending_plaintext_is_named_and_blamed_on_its_destination_rule(cases: Served) -> None:
    report = cases.report
    assert report.verdict("orders/billing") == "BLOCKED"
    assert report.workloads["orders/billing"]["plaintext_sources"] == "orders/web"
    plain = edge(report, "orders/web", "orders/billing")
    assert plain["blocker"] == "true"
    assert plain["client_kind"] == "meshed"
    # Peer metadata names the client over plaintext HTTP, but there is no certificate.
    assert plain["source_principal"] == "unknown"
    assert near(plain["plaintext_count"], 240 * 24)
    assert "orders/billing-no-tls" in plain["advice"]
    assert report.namespaces["orders"]["verdict"] == "BLOCKED"


def test_source_reported_series_never_count(cases: Served, now: datetime) -> None:
    report = cases.report
    # The client sidecars did export their own view, with connection_security_policy "unknown".
    client_side = instant(
        cases.url,
        'istio_requests_total{reporter="source", connection_security_policy="unknown", '
        'destination_workload=~"cart|ratelimit"}',
        now,
    )
    assert {s["metric"]["destination_workload"] for s in client_side} == {"cart", "ratelimit"}
    # Counted, "unknown" would be unreadable at a sidecar (UNKNOWN) and plaintext at ztunnel (BLOCKED);
    # summed with the server's series, every count would double.
    assert report.verdict("shop/cart") == "READY"
    assert report.verdict("edge/ratelimit") == "READY"
    for destination in ("shop/cart", "edge/ratelimit"):
        row = report.workloads[destination]
        assert float(row["plaintext_count"]) == 0
        assert row["plaintext_sources"] == ""
        [only] = report.edges_to(destination)
        assert only["source_workload"] == "frontend"
        assert float(only["plaintext_count"]) == 0
        assert float(only["unreadable_count"]) == 0
    assert near(report.workloads["shop/cart"]["mtls_count"], 300 * 24)
    assert near(report.workloads["edge/ratelimit"]["mtls_count"], 600 * 24)


def test_a_workload_nobody_calls_has_no_traffic(cases: Served) -> None:
    report = cases.report
    catalog = report.workloads["shop/catalog"]
    assert catalog["verdict"] == "NO_TRAFFIC"
    assert (float(catalog["mtls_count"]), float(catalog["plaintext_count"])) == (0, 0)
    assert report.edges_to("shop/catalog") == []
    assert report.verdict("shop/frontend") == "NO_TRAFFIC"
    # Without a sidecar PeerAuthentication does not apply, traffic or not.
    assert report.verdict("ingress/nginx") == "NOT_MESHED"
    assert report.verdict("batch/nightly") == "NOT_MESHED"
    # cart has evidence, so the namespace as a whole can switch.
    assert report.namespaces["shop"]["verdict"] == "READY"
    assert report.namespaces["shop"]["no_traffic"] == "2"
    assert report.namespaces["ingress"]["verdict"] == "NOT_MESHED"


def test_ztunnel_plaintext_reported_as_unknown_blocks_an_ambient_workload(cases: Served) -> None:
    report = cases.report
    gateway = report.workloads["edge/gateway"]
    assert gateway["verdict"] == "BLOCKED"
    assert gateway["dataplane"] == "ambient"
    plain = edge(report, "ingress/nginx", "edge/gateway")
    assert plain["blocker"] == "true"
    # ztunnel names the caller from its address even without a sidecar; the inventory says unmeshed.
    assert plain["client_kind"] == "unmeshed"
    assert near(plain["plaintext_count"], 600 * 24)
    assert report.namespaces["edge"]["verdict"] == "BLOCKED"


def test_a_short_jobs_single_burst_is_counted_as_plaintext(cases: Served, now: datetime) -> None:
    # What makes it hard: the counter was born inside the window and never moved again.
    burst = (
        'istio_tcp_connections_opened_total{reporter="destination", destination_workload="warehouse", '
        'connection_security_policy="none"}'
    )
    [grown] = instant(cases.url, f"increase({burst}[1d])", now)
    assert float(grown["value"][1]) == 0
    report = cases.report
    assert report.verdict("batch/warehouse") == "BLOCKED"
    plain = edge(report, "unknown", "batch/warehouse")
    assert plain["blocker"] == "true"
    assert plain["protocol"] == "tcp"
    assert 10 <= float(plain["plaintext_count"]) <= 11
    # The timeline places it too, within a step of when it happened.
    seen = datetime.fromisoformat(plain["last_plaintext_seen"].replace("Z", "+00:00"))
    assert abs(seen - (now - BURST_AGO)) < timedelta(minutes=20), seen
    assert report.namespaces["batch"]["verdict"] == "BLOCKED"


@pytest.mark.parametrize("step", [timedelta(minutes=8), timedelta(hours=1)], ids=["8m steps", "1h steps"])
def test_the_burst_lands_in_exactly_one_timeline_step_wherever_the_steps_fall(
    cases: Served, engine_factory: EngineFactory, now: datetime, step: timedelta
) -> None:
    """The timeline queries behind first/last seen (all parts the job sends to this engine, added
    up per step as the job does), at every alignment of their steps with the scrapes."""
    born = now - BURST_AGO + timedelta(minutes=5)  # the first scrape after the burst
    parts = queries.METRICSQL_PARTS if engine_factory.engine == "victoriametrics" else queries.PARTS
    promqls = [queries.PlaintextTimeline(queries.TCP_OPENED, step, part).promql() for part in parts]
    for shift in range(10):
        end = now + timedelta(minutes=shift)
        per_step: dict[datetime, float] = {}
        for promql in promqls:
            params = {
                "query": promql,
                "start": (end - timedelta(days=1)).timestamp(),
                "end": end.timestamp(),
                "step": f"{int(step.total_seconds())}s",
            }
            answer = requests.get(f"{cases.url}/api/v1/query_range", params=params, timeout=30)
            answer.raise_for_status()
            for series in answer.json()["data"]["result"]:
                if series["metric"]["destination_workload"] == "warehouse":
                    for t, v in series["values"]:
                        at = datetime.fromtimestamp(t, UTC)
                        per_step[at] = per_step.get(at, 0.0) + float(v)
        points = [(at, count) for at, count in sorted(per_step.items()) if count > 0]
        assert len(points) == 1, (shift, points)
        at, count = points[0]
        assert count == 10, (shift, points)
        assert born <= at < born + step, (shift, at)


def test_a_lookback_longer_than_the_data_is_never_ready(cases: Served, tmp_path: Path) -> None:
    """Prometheus holds 30 hours; a two-day window cannot prove that all traffic was mTLS."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer",
            "report",
            "--prometheus-url",
            cases.url,
            "--policies-from",
            str(cases.policies),
            "--output-dir",
            str(tmp_path),
            "--lookback",
            "2d",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    report = read_latest(tmp_path)
    verdicts = {ref: row["verdict"] for ref, row in report.workloads.items()}
    assert "READY" not in verdicts.values()
    assert "READY" not in {row["verdict"] for row in report.namespaces.values()}
    assert report.summary["mesh_verdict"] != "READY"
    # What was READY or NO_TRAFFIC with the whole window is now UNKNOWN ...
    for ref in ("shop/cart", "payments/ledger", "edge/ratelimit", "shop/catalog"):
        assert verdicts[ref] == "UNKNOWN", ref
    assert report.namespaces["shop"]["verdict"] == "UNKNOWN"
    # ... while plaintext seen is proof enough, and policy-only verdicts stand.
    assert verdicts["orders/billing"] == "BLOCKED"
    assert verdicts["ingress/nginx"] == "NOT_MESHED"
    assert report.summary["complete"] is False
    assert any("shorten --lookback" in w for w in report.summary["warnings"])
    assert "shorten --lookback" in result.stderr
    assert "report: " in result.stdout


def test_a_series_without_connection_security_policy_is_unknown(unreadable: Served, now: datetime) -> None:
    [series] = instant(
        unreadable.url, 'istio_requests_total{reporter="destination", destination_workload="reports"}', now
    )
    assert "connection_security_policy" not in series["metric"]
    report = unreadable.report
    assert report.code == 2
    row = report.workloads["analytics/reports"]
    assert row["verdict"] == "UNKNOWN"
    assert "connection_security_policy" in row["reasons"]
    assert float(row["mtls_count"]) == 0
    assert float(row["plaintext_count"]) == 0
    [only] = report.edges_to("analytics/reports")
    assert near(only["unreadable_count"], 60 * 24)
    assert only["blocker"] == "false"
    # Only that workload is in doubt.
    assert report.verdict("shop/cart") == "READY"
    assert report.namespaces["analytics"]["verdict"] == "UNKNOWN"
    assert report.namespaces["shop"]["verdict"] == "READY"
    assert report.summary["mesh_verdict"] == "UNKNOWN"
    assert report.summary["verdicts"]["UNKNOWN"] == 1
    assert any("connection_security_policy" in w for w in report.summary["warnings"])
    assert report.summary["complete"] is False


def test_window_is_the_last_day(cases: Served) -> None:
    summary = cases.report.summary
    start = datetime.fromisoformat(summary["window_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(summary["window_end"].replace("Z", "+00:00"))
    assert end - start == timedelta(days=1)
    assert abs(datetime.now(UTC) - end) < timedelta(minutes=10)
