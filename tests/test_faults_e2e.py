"""Faults between the job and Prometheus, end to end: never a false READY, never a false "safe".

A real Prometheus behind tests/support/fault_proxy.py, and `mtls-readiness report` run in process.
The mesh is built so that any lost part of the data turns a BLOCKED into READY: web/api's only
plaintext client is seen only in the requests queries; data/postgres's only plaintext client is
one short burst of TCP (a counter born inside the window), seen only in the TCP queries. Every
case asserts its exact outcome, and that nothing is READY the fault-free run does not call READY.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.collect.queries import REQUESTS, TCP_OPENED
from analyzer.model.inventory import Dataplane
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh
from tests.support import fault_proxy as fp
from tests.support.e2e import Report, read_latest, run_report, short_history, write_policies
from tests.support.fault_proxy import FaultProxy, Request

INJECT = {"istio-injection": "enabled"}
TIMEOUT = "1"  # --prometheus-timeout for every run: a delayed answer fails in seconds


def fault_mesh() -> SampleMesh:
    workloads = [
        MeshWorkload("shop", "frontend", ports=(8080,)),
        MeshWorkload("shop", "cart", ports=(8080,)),
        MeshWorkload("web", "api", ports=(8080,)),
        MeshWorkload("data", "postgres", kind="StatefulSet", ports=(5432,)),
        MeshWorkload("legacy", "curl", dataplane=Dataplane.NONE, ports=()),
        MeshWorkload("data", "etl", dataplane=Dataplane.NONE, kind="CronJob", ports=()),
    ]
    flows = [
        Flow("shop/frontend", "shop/cart", per_hour=600),
        Flow("shop/frontend", "web/api", per_hour=600),
        Flow("legacy/curl", "web/api", per_hour=60),  # plaintext HTTP, steady
        Flow("shop/cart", "data/postgres", protocol="tcp", per_hour=60),
        # One burst of plaintext TCP six hours ago: its counter is born inside the window.
        Flow(
            "data/etl",
            "data/postgres",
            protocol="tcp",
            per_hour=30,
            start=timedelta(hours=6),
            stop=timedelta(hours=6) - timedelta(minutes=10),
        ),
    ]
    labels = {"shop": INJECT, "web": INJECT, "data": INJECT, "legacy": {}, "istio-system": {}}
    return short_history(SampleMesh(workloads=workloads, flows=flows, namespace_labels=labels))


@pytest.fixture(scope="module")
def served(
    prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FaultProxy, Path]]:
    mesh = fault_mesh()
    proxy = FaultProxy(prometheus_factory(mesh))
    yield proxy, write_policies(mesh, tmp_path_factory.mktemp("faults"))
    proxy.close()


@pytest.fixture
def proxy(served: tuple[FaultProxy, Path]) -> Iterator[FaultProxy]:
    served[0].reset()
    yield served[0]
    served[0].reset()


@pytest.fixture(scope="module")
def baseline(served: tuple[FaultProxy, Path], tmp_path_factory: pytest.TempPathFactory) -> Report:
    proxy, policies = served
    proxy.reset()
    return run_report(None, proxy.url, policies, tmp_path_factory.mktemp("baseline") / "reports", *_flags())


def _flags() -> tuple[str, ...]:
    return ("--prometheus-timeout", TIMEOUT)


def run(served: tuple[FaultProxy, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Report:
    return run_report(capsys, served[0].url, served[1], tmp_path / "reports", *_flags())


def verdicts(report: Report) -> dict[str, str]:
    return {ref: row["verdict"] for ref, row in report.workloads.items()}


def edges(report: Report) -> list[dict[str, object]]:
    """The edges, with counts rounded and without first/last seen: runs minutes apart see windows
    minutes apart, and increase() extrapolates a little differently."""
    moving = ("_seen", "_count", "plaintext_share")
    return [
        {
            **{k: v for k, v in e.items() if not k.endswith(moving)},
            "counts": [round(float(e["mtls_count"])), round(float(e["plaintext_count"]))],
        }
        for e in report.edges
    ]


def assert_no_new_ready(report: Report, baseline: Report) -> None:
    """The global rule: a fault may cost a verdict, never invent a READY."""
    for ref, row in report.workloads.items():
        if row["verdict"] == "READY":
            assert baseline.verdict(ref) == "READY", ref
    for ns, row in report.namespaces.items():
        if row["verdict"] == "READY":
            assert baseline.namespaces[ns]["verdict"] == "READY", ns
    if report.summary["mesh_verdict"] == "READY":
        assert baseline.summary["mesh_verdict"] == "READY"


def assert_incomplete(report: Report, baseline: Report, unknown: set[str], *, warning: str) -> None:
    """Exactly `unknown` turned UNKNOWN; every other verdict is the fault-free one."""
    assert report.code == 2
    assert report.summary["complete"] is False
    want = {ref: "UNKNOWN" if ref in unknown else v for ref, v in verdicts(baseline).items()}
    assert verdicts(report) == want
    assert any(warning in w for w in report.summary["warnings"]), report.summary["warnings"]
    assert_no_new_ready(report, baseline)


def test_the_fault_free_run_has_ready_and_blocked(baseline: Report) -> None:
    assert baseline.code == 0 and baseline.summary["complete"] is True
    assert baseline.summary["warnings"] == []
    assert baseline.verdict("web/api") == "BLOCKED"
    assert baseline.verdict("data/postgres") == "BLOCKED"
    assert baseline.verdict("shop/cart") == "READY"
    plaintext = {(e["destination_workload"], e["protocol"]) for e in baseline.edges if float(e["plaintext_count"]) > 0}
    assert plaintext == {("api", "http"), ("postgres", "tcp")}


def is_totals(metric: str, whole: bool | None = None) -> Callable[[Request], bool]:
    return lambda r: r.about("totals", metric, whole=whole)


def is_timeline(metric: str, whole: bool | None = None) -> Callable[[Request], bool]:
    return lambda r: r.about("timeline", metric, whole=whole)


# Every meshed workload whose verdict rests on the window totals.
ALL_TOTALS = {"shop/cart", "shop/frontend", "web/api", "data/postgres"}

BROKEN_TOTALS = {
    "status error with HTTP 200": (fp.status(200, "query failed in a store"), "query failed in a store"),
    "thanos partial answer": (
        fp.rewrite(lambda d: d.update(warnings=["No StoreAPIs matched for this query"])),
        "No StoreAPIs matched",
    ),
    "partial response info": (fp.rewrite(lambda d: d.update(infos=["partial response: store down"])), "infos"),
    "victoriametrics cluster partial answer": (fp.rewrite(lambda d: d.update(isPartial=True)), "isPartial"),
    "NaN values": (fp.set_values("NaN"), "finite"),
    "+Inf values": (fp.set_values("+Inf"), "finite"),
    "non-numeric values": (fp.set_values("abc"), "not a number"),
    "wrong resultType": (fp.rewrite(lambda d: d["data"].update(resultType="matrix")), "resultType"),
    "missing value": (fp.rewrite(lambda d: [s.pop("value") for s in d["data"]["result"]] and None), "has no value"),
    "scalar result": (
        fp.rewrite(lambda d: {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}),
        "resultType",
    ),
    "truncated body": (fp.truncate(0.5, announce_full_length=False), "not valid JSON"),
    "body cut off mid-transfer": (fp.truncate(0.5), "cut off"),
    "connection reset": (fp.reset_connection(), "connection"),
    "HTTP 400 bad data": (fp.status(400, "parse error: " + "x" * 1000), "HTTP 400: parse error"),
}


# Each fault on one of the two metrics, alternating, to keep the module fast: both metrics go
# through the same reader, and each has several faults.
CASES = [(*case, (REQUESTS, TCP_OPENED)[i % 2]) for i, case in enumerate(BROKEN_TOTALS.values())]
IDS = [f"{name}-{'requests' if i % 2 == 0 else 'tcp'}" for i, name in enumerate(BROKEN_TOTALS)]


@pytest.mark.parametrize(("action", "warning", "metric"), CASES, ids=IDS)
def test_a_broken_totals_answer_makes_every_verdict_resting_on_it_unknown(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    action: fp.Action,
    warning: str,
    metric: str,
) -> None:
    proxy.add(is_totals(metric), action)
    report = run(served, tmp_path, capsys)
    # The other metric's plaintext still proves its destination BLOCKED.
    still_blocked = "data/postgres" if metric == REQUESTS else "web/api"
    assert_incomplete(report, baseline, ALL_TOTALS - {still_blocked}, warning=warning)
    assert any(f"totals:{metric}" in w and warning in w for w in report.summary["warnings"])
    for w in report.summary["warnings"]:
        assert len(w) < 600 and "127.0.0.1" not in w  # bounded, and never the URL


@pytest.mark.parametrize("code", [429, 500, 502])
def test_intermittent_errors_are_retried_and_change_nothing(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: int,
) -> None:
    proxy.add(is_totals(REQUESTS), fp.status(code), times=2)
    proxy.add(is_timeline(TCP_OPENED), fp.status(code), times=1)
    report = run(served, tmp_path, capsys)
    assert report.code == 0 and report.summary["complete"] is True
    assert verdicts(report) == verdicts(baseline)
    assert edges(report) == edges(baseline)
    # Two failed attempts, then one answer for each of its two parts (growth, born counters).
    assert sum(1 for r in proxy.seen if r.about("totals", REQUESTS)) == 4


@pytest.mark.parametrize(
    ("metric", "victim"),
    [(REQUESTS, "web/api"), (TCP_OPENED, "data/postgres")],
    ids=["plaintext http client", "single tcp burst"],
)
@pytest.mark.parametrize("where", ["totals", "timeline"])
def test_a_series_silently_missing_from_one_answer_is_caught_by_the_cross_check(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    metric: str,
    victim: str,
    where: str,
) -> None:
    match = is_totals(metric) if where == "totals" else is_timeline(metric)
    workload = victim.split("/")[1]

    def keep(labels: dict[str, str]) -> bool:
        plaintext = labels.get("connection_security_policy") != "mutual_tls"
        return not (plaintext and labels.get("destination_workload") == workload)

    proxy.add(match, fp.drop_series(keep))
    report = run(served, tmp_path, capsys)
    if where == "totals":  # without the totals' plaintext it would be READY: UNKNOWN instead
        assert_incomplete(report, baseline, {victim}, warning="contradictory data")
        assert f"-> {victim}" in report.workloads[victim]["reasons"]
    else:  # the totals still prove it BLOCKED; first/last seen are what is missing
        assert_incomplete(report, baseline, set(), warning="contradictory data")
        assert any(f"-> {victim}" in e for e in report.summary["errors"])


def test_a_failed_namespace_part_of_a_split_costs_only_that_namespace(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    too_big = "query processing would load too many samples into memory in query execution"
    proxy.add(is_totals(REQUESTS, whole=True), fp.status(422, too_big))
    proxy.add(lambda r: r.about("totals", REQUESTS) and r.namespace_part == "web", fp.status(422, too_big))
    report = run(served, tmp_path, capsys)
    assert_incomplete(report, baseline, {"web/api"}, warning="failed for namespace web")
    parts = {r.namespace_part for r in proxy.seen if r.about("totals", REQUESTS, whole=False)}
    assert parts >= {"", "shop", "web", "data"}


def test_a_timed_out_query_is_split_and_the_parts_give_the_same_answer(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.add(is_timeline(REQUESTS, whole=True), fp.delay(float(TIMEOUT) + 1))
    report = run(served, tmp_path, capsys)
    assert report.code == 0
    assert verdicts(report) == verdicts(baseline)
    assert edges(report) == edges(baseline)


def test_a_failed_timeline_keeps_the_verdicts_but_the_run_is_incomplete(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.add(is_timeline(REQUESTS), fp.status(200, "store unavailable"))
    report = run(served, tmp_path, capsys)
    assert_incomplete(report, baseline, set(), warning="timeline:istio_requests_total")
    assert any("store unavailable" in e for e in report.summary.get("errors", [])), report.summary


def test_a_broken_coverage_answer_leaves_nothing_ready(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.add(lambda r: r.kind == "coverage", fp.set_values("NaN"))
    report = run(served, tmp_path, capsys)
    assert_incomplete(report, baseline, {"shop/cart", "shop/frontend"}, warning="how far back")


def test_upstream_stopping_mid_run_leaves_nothing_ready(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def stop_after_check(request: Request, upstream: fp.Upstream) -> fp.Reply:
        reply = upstream()
        proxy.upstream_stopped = True
        return reply

    proxy.add(lambda r: r.kind == "check", stop_after_check)
    report = run(served, tmp_path, capsys)
    assert report.code == 2 and report.summary["complete"] is False
    assert "READY" not in verdicts(report).values()
    assert_no_new_ready(report, baseline)


def test_prometheus_gone_before_the_run_exits_1_and_keeps_latest(
    served: tuple[FaultProxy, Path],
    proxy: FaultProxy,
    baseline: Report,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output_dir = tmp_path / "reports"
    shutil.copytree(baseline.output_dir, output_dir, symlinks=True)
    before = {str(p.relative_to(output_dir)): p.read_bytes() for p in output_dir.rglob("*") if p.is_file()}
    link = os.readlink(output_dir / "latest")
    proxy.upstream_stopped = True
    capsys.readouterr()
    argv = ["report", "--prometheus-url", proxy.url, "--policies-from", str(served[1])]
    code = main([*argv, "--output-dir", str(output_dir), "--lookback", "1d", *_flags()])
    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.err.splitlines()
    assert "Prometheus" in line and "HTTP 502" in line and "127.0.0.1" in line
    assert os.readlink(output_dir / "latest") == link
    after = {str(p.relative_to(output_dir)): p.read_bytes() for p in output_dir.rglob("*") if p.is_file()}
    assert after == before
    assert read_latest(output_dir).summary == baseline.summary
