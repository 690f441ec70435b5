"""--prometheus-selector and --namespace / --exclude-namespace against a real Prometheus holding two
clusters, as a shared Thanos or Mimir does: the sample demo mesh as cluster="prod", and the
walkthrough mesh (its namespaces prefixed stg-) as cluster="staging". Requests are read as they
reached Prometheus, through the fault proxy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource
from analyzer.config import PrometheusSettings
from analyzer.sample import catalogue
from analyzer.sample.mesh import Series, openmetrics_lines
from tests.support.e2e import HISTORY, run_report, short_history, write_policies
from tests.support.fault_proxy import FaultProxy, status
from tests.support.prometheus import PrometheusServer

PROD = 'cluster="prod"'
STG = "stg-"
WINDOW = timedelta(hours=20)


def _labelled(series: Iterator[Series], cluster: str, prefix: str = "") -> Iterator[Series]:
    for s in series:
        labels = {k: prefix + v if k.endswith("_namespace") and v != "unknown" else v for k, v in s.labels.items()}
        yield Series(s.metric, {**labels, "cluster": cluster}, s.samples)


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[tuple[str, FaultProxy, Path]]:
    prod, staging = short_history(catalogue.demo()), short_history(catalogue.walkthrough())
    workdir = Path(tmp_path_factory.mktemp("prometheus"))
    data = workdir / "data.om"
    step = timedelta(minutes=5)
    both = [*_labelled(prod.series(now, step), "prod"), *_labelled(staging.series(now, step), "staging", STG)]
    with data.open("w", encoding="utf-8") as stream:
        stream.writelines(openmetrics_lines(iter(both)))
    server = PrometheusServer(workdir)
    server.load_file(data)
    server.start()
    proxy = FaultProxy(server.url)
    policies = write_policies(prod, Path(tmp_path_factory.mktemp("policies")))
    yield server.url, proxy, policies
    proxy.close()
    server.stop()


def _queries(proxy: FaultProxy) -> list[str]:
    return [r.query for r in proxy.seen if r.query]


def _selectors(promql: str) -> list[str]:
    return re.findall(r"\{[^{}]*\}", promql)


def assert_every_selector_carries(proxy: FaultProxy, matcher: str) -> None:
    """Every vector selector of every query, and every match[] of every label request, carries it;
    no Istio metric is named without braces (a bare name would have escaped the matcher)."""
    seen = _queries(proxy)
    assert seen, "requests reached Prometheus"
    for promql in seen:
        assert not re.search(r"istio_[a-z_]+(?![a-z_|]*\s*[{\"|])", promql), promql
        for selector in _selectors(promql):
            assert matcher in selector, promql
    for request in proxy.seen:
        for selector in request.params.get("match[]", []):
            assert matcher in selector, selector


def test_every_request_carries_the_selector_split_parts_included(two_clusters, now):
    _, proxy, _ = two_clusters
    proxy.reset()
    # The whole-mesh totals are "too big": the job lists namespaces and asks again per namespace.
    too_big = status(422, "too many samples")
    proxy.add(lambda r: r.about("totals", whole=True) and "selector_probe" not in r.query, too_big)
    settings = PrometheusSettings(url=proxy.url, selector=(PROD,), retries=0)
    client = PrometheusClient(settings)
    traffic = PrometheusTrafficSource(client).collect(now - WINDOW, now)
    assert traffic.failed_queries == []
    kinds = {r.kind for r in proxy.seen}
    assert {"check", "totals", "timeline", "coverage", "labels"} <= kinds, kinds
    assert any(r.namespace_part for r in proxy.seen), "the split parts were sent"
    assert any("selector_probe" in q for q in _queries(proxy)), "Prometheus parsed the selector once"
    assert_every_selector_carries(proxy, PROD)
    # What the client records is what was sent (benchmarks replay it).
    assert sorted(p["query"] for _, p in client.requests_sent if "query" in p) == sorted(_queries(proxy))
    namespaces = set(traffic.observations["destination_namespace"])
    assert namespaces and not any(ns.startswith(STG) for ns in namespaces), namespaces


def test_report_with_the_selector_shows_only_that_cluster(two_clusters, tmp_path, capsys):
    url, proxy, policies = two_clusters
    both = run_report(capsys, url, policies, tmp_path / "both")
    assert any(e["destination_namespace"].startswith(STG) for e in both.edges), "control: both clusters are there"
    proxy.reset()
    prod = run_report(capsys, proxy.url, policies, tmp_path / "prod", "--prometheus-selector", PROD)
    assert_every_selector_carries(proxy, PROD)
    for row in prod.edges:
        assert not row["destination_namespace"].startswith(STG) and not row["source_namespace"].startswith(STG)
    assert not [k for k in prod.workloads if k.startswith(STG)]
    assert not [k for k in prod.namespaces if k.startswith(STG)]

    # The same edges as the prod data alone would give, with the same counts: nothing of staging's added.
    def key(e: dict) -> tuple:
        return (e["source_namespace"], e["source_workload"], e["destination_namespace"], e["destination_workload"])

    assert {key(e) for e in prod.edges} == {
        key(e) for e in both.edges if not e["destination_namespace"].startswith(STG)
    }
    assert prod.summary["scope"]["prometheus_selector"] == [PROD] and not prod.summary["scope"]["limited"]


def test_a_bad_selector_is_one_line_and_exit_1(two_clusters, tmp_path, capsys, monkeypatch):
    url, _, policies = two_clusters
    argv = ["report", "--prometheus-url", url, "--policies-from", str(policies), "--output-dir", str(tmp_path)]
    assert main([*argv, "--prometheus-selector", "cluster=prod"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtls-readiness: error: --prometheus-selector:") and "\n" not in err
    # Syntax fine, regex broken: Prometheus itself refuses it before any night's query is sent.
    monkeypatch.setenv("MTLS_READINESS_PROMETHEUS_SELECTOR", 'cluster=~"prod("')
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Prometheus refused --prometheus-selector" in err and "\n" not in err
    assert not (tmp_path / "latest").exists()


SCOPE = ["--namespace", "o*", "--namespace", "edge,pay*", "--exclude-namespace", "payments"]
IN_SCOPE = {"orders", "edge"}


def test_scoped_report_reports_only_the_scope(two_clusters, tmp_path, capsys):
    _, proxy, policies = two_clusters
    proxy.reset()
    report = run_report(capsys, proxy.url, policies, tmp_path, "--prometheus-selector", PROD, *SCOPE)
    # Pushed into the PromQL: the glob as an anchored regex, the exclusion with !~.
    totals = [q for q in _queries(proxy) if "increase(istio_requests_total" in q]
    assert totals and all('destination_workload_namespace=~"o.*|edge|pay.*"' in q for q in totals)
    assert all('destination_workload_namespace!~"payments"' in q for q in totals)
    assert_every_selector_carries(proxy, PROD)

    assert set(report.namespaces) == IN_SCOPE
    assert {k.split("/")[0] for k in report.workloads} <= IN_SCOPE and report.workloads
    assert {e["destination_namespace"] for e in report.edges} <= IN_SCOPE
    # A client outside the scope that sends plaintext into it is still a blocker.
    blockers = {(e["source_namespace"], e["destination_namespace"]) for e in report.edges if e["blocker"] == "true"}
    assert ("ingress", "edge") in blockers, blockers
    assert set(report.summary["namespaces"]) == IN_SCOPE
    scope = report.summary["scope"]
    assert scope["limited"] and scope["namespaces_in_scope"] == sorted(IN_SCOPE)
    assert "payments" in scope["namespaces_left_out"] and "ingress" in scope["namespaces_left_out"]
    result = json.loads((report.run_folder / "result.json").read_text(encoding="utf-8"))
    assert {n["namespace"] for n in result["namespaces"]} == IN_SCOPE
    assert {w["namespace"] for w in result["workloads"]} <= IN_SCOPE
    assert {e["destination_namespace"] for e in result["edges"]} <= IN_SCOPE
    assert {p["destination_namespace"] for p in result["timeline"]} <= IN_SCOPE
    assert result["scope"]["namespaces"] == ["o*", "edge", "pay*"]
    page = (report.run_folder / "index.html").read_text(encoding="utf-8")
    assert "In scope:" in page and "excluding payments" in page
    for outside in ("ledger", "postgres", "mysql", "httpbin", "analytics"):
        assert outside not in page, outside
    for name in ("workloads.csv", "namespaces.csv", "remediation.yaml"):
        text = (report.run_folder / name).read_text(encoding="utf-8")
        for outside in ("payments", "legacy-db", "ledger", "postgres"):
            assert outside not in text, (name, outside)
    # Blocked in scope: a mesh-wide STRICT would cut those clients off, whatever lies outside.
    assert report.summary["mesh_verdict"] == "BLOCKED"


def test_scope_that_is_ready_never_makes_the_mesh_ready(two_clusters, tmp_path, capsys):
    url, _, policies = two_clusters
    report = run_report(capsys, url, policies, tmp_path, "--prometheus-selector", PROD, "--namespace", "payments")
    assert set(report.namespaces) == {"payments"}
    assert report.summary["scope"]["verdict"] in ("READY", "ENFORCED")
    assert report.summary["mesh_verdict"] == "UNKNOWN", "part of the mesh cannot make the mesh READY"
    assert report.code == 0 and report.summary["complete"], "the scope itself was fully judged"
    page = (report.run_folder / "index.html").read_text(encoding="utf-8")
    assert "looked at part of the mesh only" in page


MESH_STRICT = (
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
    "metadata: {name: default, namespace: %s}\nspec: {mtls: {mode: STRICT}}\n"
)


@pytest.mark.parametrize(
    "namespace, scope, code",
    [
        ("payments", ["--namespace", "payments"], 0),  # tightens only what the scope saw, nothing cut off
        ("istio-system", ["--namespace", "payments"], 2),  # mesh-wide: traffic elsewhere was not read
        ("orders", ["--namespace", "payments"], 2),  # outside the scope: cannot tell
        ("orders", ["--namespace", "o*"], 3),  # in scope: web -> billing plaintext is cut off
        ("orders", ["--exclude-namespace", "orders"], 2),  # excluded: cannot tell
    ],
)
def test_what_if_takes_the_scope(two_clusters, tmp_path, capsys, namespace, scope, code):
    _, proxy, policies = two_clusters
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(MESH_STRICT % namespace, encoding="utf-8")
    proxy.reset()
    argv = ["what-if", "--apply", str(proposal), "--prometheus-url", proxy.url, "--policies-from", str(policies)]
    got = main([*argv, "--lookback", "1d", "--prometheus-selector", PROD, *scope, "-o", "json"])
    out = json.loads(capsys.readouterr().out)
    assert got == code, out
    assert_every_selector_carries(proxy, PROD)
    if code == 2:
        assert any("scope" in d for d in out["doubts"]), out["doubts"]


def test_history_is_long_enough():
    assert HISTORY > WINDOW
