"""Istio's mTLS migration walk-through, end to end: the real CLI, a real Prometheus, policy files.

https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/ : `foo` and `bar` run
httpbin and curl with sidecars, `legacy` runs curl without one. Each step of the migration is its
own traffic set (what Istio records depends on the policies in force), so each gets its own
Prometheus. The data spans 30 hours and the reports look back one day, which keeps the backfill
small and leaves room for "older than the lookback".

"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh, peer_authentication
from tests.support.e2e import Report, run_report, short_history, write_policies

# -- the walk-through ------------------------------------------------------------------------------

STEPS: dict[str, Callable[[], SampleMesh]] = {
    "no policy": lambda: catalogue.walkthrough(),
    "STRICT in foo": lambda: catalogue.walkthrough([peer_authentication("foo", "default", "STRICT")]),
    "mesh-wide STRICT": lambda: catalogue.walkthrough([peer_authentication("istio-system", "default", "STRICT")]),
    # The legacy client stopped 26 hours ago: its plaintext is older than the one-day lookback.
    "legacy stopped": lambda: catalogue.walkthrough(legacy_stopped=timedelta(hours=26)),
}
# 120 requests an hour on every edge, summed over the one-day window.
PER_DAY = 120 * 24


@dataclass
class Step:
    url: str
    policies: Path
    report: Report


@pytest.fixture(scope="module")
def steps(
    prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Step]]:
    """One Prometheus and one report per walk-through step, started on first use."""
    done: dict[str, Step] = {}

    def get(name: str) -> Step:
        if name not in done:
            mesh = short_history(STEPS[name]())
            url = prometheus_factory(mesh)
            folder = tmp_path_factory.mktemp("walkthrough")
            policies = write_policies(mesh, folder)
            done[name] = Step(url, policies, run_report(None, url, policies, folder / "reports"))
        return done[name]

    yield get


def test_no_policy_both_httpbins_are_blocked_by_the_unknown_plaintext_client(steps: Callable[[str], Step]) -> None:
    report = steps("no policy").report
    assert report.code == 0
    assert report.verdict("foo/httpbin") == "BLOCKED"
    assert report.verdict("bar/httpbin") == "BLOCKED"
    assert report.workloads["foo/httpbin"]["plaintext_sources"] == "unknown"
    assert report.workloads["foo/httpbin"]["mode"] == "PERMISSIVE"
    assert report.workloads["foo/httpbin"]["mode_source"] == "default"
    # The curls receive nothing; the sidecar-less one is out of PeerAuthentication's reach.
    assert report.verdict("foo/curl") == "NO_TRAFFIC"
    assert report.verdict("bar/curl") == "NO_TRAFFIC"
    assert report.verdict("legacy/curl") == "NOT_MESHED"

    for ref in ("foo/httpbin", "bar/httpbin"):
        edges = {e["source_workload"]: e for e in report.edges_to(ref)}
        # The legacy curl has no sidecar: the server cannot name it.
        assert set(edges) == {"curl", "unknown"}
        unknown = edges["unknown"]
        assert unknown["blocker"] == "true"
        assert unknown["source_namespace"] == "unknown"
        assert unknown["source_principal"] == "unknown"
        assert (unknown["protocol"], unknown["unit"]) == ("http", "requests")
        assert float(unknown["mtls_count"]) == 0
        assert float(unknown["plaintext_share"]) == 1
        # One day of 120 an hour, not the 30 hours Prometheus holds.
        assert PER_DAY * 0.97 < float(unknown["plaintext_count"]) < PER_DAY * 1.03
        assert unknown["last_plaintext_seen"].endswith("Z")
        # foo/curl and bar/curl both reach it over mTLS; each is its own edge.
        meshed = [e for e in report.edges_to(ref) if e["source_workload"] == "curl"]
        assert sorted(e["source_namespace"] for e in meshed) == ["bar", "foo"]
        for edge in meshed:
            assert edge["blocker"] == "false"
            assert float(edge["plaintext_count"]) == 0
            assert edge["source_principal"] == f"spiffe://cluster.local/ns/{edge['source_namespace']}/sa/curl"
            assert PER_DAY * 0.97 < float(edge["mtls_count"]) < PER_DAY * 1.03

    assert report.namespaces["foo"]["verdict"] == "BLOCKED"
    assert report.namespaces["bar"]["verdict"] == "BLOCKED"
    assert report.namespaces["foo"]["blocked"] == "1"
    assert report.namespaces["legacy"]["verdict"] == "NOT_MESHED"
    assert report.summary["mesh_verdict"] == "BLOCKED"
    assert report.summary["namespaces"]["foo"] == "BLOCKED"
    assert report.summary["verdicts"]["BLOCKED"] == 2
    assert report.summary["verdicts"]["NO_TRAFFIC"] == 2
    assert report.summary["verdicts"]["NOT_MESHED"] == 1
    assert report.summary["verdicts"]["READY"] == 0


def test_strict_in_foo_enforces_foo_while_bar_stays_blocked(steps: Callable[[str], Step]) -> None:
    report = steps("STRICT in foo").report
    assert report.code == 0
    httpbin = report.workloads["foo/httpbin"]
    assert (httpbin["verdict"], httpbin["mode"], httpbin["mode_source"]) == ("ENFORCED", "STRICT", "foo/default")
    assert report.verdict("foo/curl") == "ENFORCED"
    assert report.verdict("bar/httpbin") == "BLOCKED"
    assert report.workloads["bar/httpbin"]["mode"] == "PERMISSIVE"
    # STRICT rejects the legacy plaintext: foo/httpbin records none, and nothing towards foo blocks.
    assert not [e for e in report.edges if e["destination_namespace"] == "foo" and e["blocker"] == "true"]
    assert [e["source_workload"] for e in report.edges if e["blocker"] == "true"] == ["unknown"]
    assert report.edges_to("bar/httpbin")[0]["blocker"] == "true"  # blockers sort first

    assert report.namespaces["foo"]["verdict"] == "ENFORCED"
    assert report.namespaces["foo"]["mode"] == "STRICT"
    assert report.namespaces["foo"]["enforced"] == "2"
    assert report.namespaces["bar"]["verdict"] == "BLOCKED"
    assert report.summary["mesh_verdict"] == "BLOCKED"
    assert report.summary["namespaces"] == {
        "bar": "BLOCKED",
        "foo": "ENFORCED",
        "istio-system": "NOT_MESHED",
        "legacy": "NOT_MESHED",
    }


def test_mesh_wide_strict_enforces_both(steps: Callable[[str], Step]) -> None:
    report = steps("mesh-wide STRICT").report
    assert report.code == 0
    for ref in ("foo/httpbin", "bar/httpbin", "foo/curl", "bar/curl"):
        row = report.workloads[ref]
        assert (row["verdict"], row["mode"], row["mode_source"]) == ("ENFORCED", "STRICT", "istio-system/default")
    assert report.verdict("legacy/curl") == "NOT_MESHED"
    assert not [e for e in report.edges if e["blocker"] == "true"]
    assert report.namespaces["foo"]["verdict"] == "ENFORCED"
    assert report.namespaces["bar"]["verdict"] == "ENFORCED"
    assert report.summary["mesh_verdict"] == "ENFORCED"
    assert report.summary["verdicts"]["ENFORCED"] == 4


def test_plaintext_older_than_the_lookback_leaves_both_ready(steps: Callable[[str], Step]) -> None:
    report = steps("legacy stopped").report
    assert report.code == 0
    for ref in ("foo/httpbin", "bar/httpbin"):
        row = report.workloads[ref]
        assert row["verdict"] == "READY"
        assert float(row["plaintext_count"]) == 0
        assert row["plaintext_sources"] == ""
        assert PER_DAY * 2 * 0.97 < float(row["mtls_count"]) < PER_DAY * 2 * 1.03
    assert not [e for e in report.edges if e["blocker"] == "true"]
    assert all(e["last_plaintext_seen"] == "" for e in report.edges)
    assert report.namespaces["foo"]["verdict"] == "READY"
    assert report.namespaces["bar"]["verdict"] == "READY"
    assert report.namespaces["foo"]["ready"] == "1"
    assert report.summary["mesh_verdict"] == "READY"
    assert report.summary["verdicts"]["READY"] == 2
    assert report.summary["verdicts"]["UNKNOWN"] == 0
    assert report.summary["warnings"] == []


def test_the_lookback_decides_whether_old_plaintext_counts(
    steps: Callable[[str], Step], tmp_path: Path, capsys: pytest.CaptureFixture[str], now: datetime
) -> None:
    """The same data with a window that reaches back past the legacy client's last call."""
    step = steps("legacy stopped")
    report = run_report(capsys, step.url, step.policies, tmp_path, lookback="29h")
    assert report.code == 0
    assert report.verdict("foo/httpbin") == "BLOCKED"
    assert report.verdict("bar/httpbin") == "BLOCKED"
    assert report.summary["lookback"] == "29h"
    # It stopped 26 hours before the data ends: three hours of 120 an hour fall inside a 29-hour
    # window ending then. The window ends when the report runs, later than the data: that lag is
    # cut off its start.
    inside = 3 - (datetime.now(UTC) - now) / timedelta(hours=1)
    edge = next(e for e in report.edges_to("foo/httpbin") if e["source_workload"] == "unknown")
    assert 120 * inside * 0.9 < float(edge["plaintext_count"]) < 120 * inside * 1.1
    assert report.summary["mesh_verdict"] == "BLOCKED"
