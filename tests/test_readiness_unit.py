"""The verdict rules of docs/contract.md, one named case each, on the pure functions that apply them.

analyse/readiness.py: judge_workload (a workload), judge_change (a workload a wider STRICT policy
would reach), combine (a namespace or the mesh), global_doubts; analyse/classify.py: what one
server-side observation was (docs/semantics.md, section 4). Above all: never READY in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analyzer.analyse.classify import MTLS, PLAINTEXT, UNREADABLE, classify
from analyzer.analyse.figures import plaintext_points
from analyzer.analyse.policy_engine import Resolution
from analyzer.analyse.readiness import Settings, analyse
from analyzer.analyse.verdicts import Evidence, combine, global_doubts, judge_change, judge_workload
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.policy import Mode
from analyzer.model.report import TimelinePoint, Verdict
from analyzer.model.traffic import EDGE_KEY, OBSERVATION_COLUMNS, Coverage, Traffic

SIDECAR = Workload("shop", "cart", "Deployment", {"app": "cart"}, Dataplane.SIDECAR, (8080,))
AMBIENT = Workload("edge", "gateway", "Deployment", {"app": "gateway"}, Dataplane.AMBIENT, (8080,))
NO_SIDECAR = Workload("legacy", "curl", "Deployment", {"app": "curl"}, Dataplane.NONE)

PERMISSIVE = Resolution(Mode.PERMISSIVE, "default", "default")
STRICT = Resolution(Mode.STRICT, "shop/default", "namespace")
DISABLE = Resolution(Mode.DISABLE, "shop/off", "workload")
STRICT_BUT_ONE_PORT = Resolution(Mode.STRICT, "shop/cart", "workload", {9090: Mode.PERMISSIVE}, "shop/cart")
PERMISSIVE_BUT_ONE_PORT = Resolution(Mode.PERMISSIVE, "shop/cart", "workload", {8080: Mode.STRICT}, "shop/cart")

NOTHING = Evidence()
MTLS_ONLY = Evidence(mtls=100)
PLAIN = Evidence(mtls=100, plaintext=5, plaintext_sources={"unknown", "legacy/curl"})
UNREADABLE_ONLY = Evidence(unreadable=40)
MTLS_AND_UNREADABLE = Evidence(mtls=100, unreadable=1)

FAILED_QUERY = "query failed (totals:istio_requests_total: ConnectionError)"
PARTIAL_WINDOW = "Prometheus holds from 2026-11-28 00:00Z but the window starts 2026-11-23 00:00Z"
NO_LABEL = "40 requests/connections without a readable connection_security_policy label"
NO_LABELS = "labels unknown: the workload is not in the inventory, so workload-level policies cannot be matched"
DOUBTS = {"failed query": FAILED_QUERY, "incomplete coverage": PARTIAL_WINDOW, "unreadable label": NO_LABEL}


E, R, B, N, U = Verdict.ENFORCED, Verdict.READY, Verdict.BLOCKED, Verdict.NO_TRAFFIC, Verdict.UNKNOWN
D, X = Verdict.DISABLED, Verdict.NOT_MESHED


@dataclass(frozen=True)
class WorkloadCase:
    name: str
    workload: Workload | None
    resolution: Resolution
    evidence: Evidence
    expected: Verdict
    doubts: list[str] = field(default_factory=list)


W = WorkloadCase
WORKLOAD_CASES = [
    # NOT_MESHED: PeerAuthentication does not apply, whatever the traffic or the policy says.
    W("no sidecar is NOT_MESHED", NO_SIDECAR, PERMISSIVE, PLAIN, X),
    W("no sidecar under STRICT is NOT_MESHED", NO_SIDECAR, STRICT, MTLS_ONLY, X),
    W("no sidecar in doubt is NOT_MESHED", NO_SIDECAR, PERMISSIVE, NOTHING, X, [FAILED_QUERY]),
    # ENFORCED: STRICT on every port; a policy fact that missing traffic data cannot change.
    W("STRICT is ENFORCED", SIDECAR, STRICT, MTLS_ONLY, E),
    W("STRICT without traffic is ENFORCED", SIDECAR, STRICT, NOTHING, E),
    W("STRICT with old plaintext is ENFORCED", SIDECAR, STRICT, PLAIN, E),
    W("STRICT with a failed query is ENFORCED", SIDECAR, STRICT, NOTHING, E, [FAILED_QUERY]),
    W("ambient STRICT is ENFORCED", AMBIENT, STRICT, MTLS_ONLY, E),
    # Not STRICT on every port: one PERMISSIVE port keeps it from ENFORCED.
    W("STRICT but one PERMISSIVE port, mTLS only, is READY", SIDECAR, STRICT_BUT_ONE_PORT, MTLS_ONLY, R),
    W("STRICT but one PERMISSIVE port, plaintext, is BLOCKED", SIDECAR, STRICT_BUT_ONE_PORT, PLAIN, B),
    W("one STRICT port of PERMISSIVE, plaintext, is BLOCKED", SIDECAR, PERMISSIVE_BUT_ONE_PORT, PLAIN, B),
    # DISABLED: plaintext is expected there (section 8, rule 6), not a finding.
    W("DISABLE is DISABLED", SIDECAR, DISABLE, NOTHING, D),
    W("DISABLE with plaintext is DISABLED", SIDECAR, DISABLE, PLAIN, D),
    # BLOCKED: at least one client sent plaintext; that is proof even when other data is missing.
    W("plaintext is BLOCKED", SIDECAR, PERMISSIVE, PLAIN, B),
    W("ambient plaintext is BLOCKED", AMBIENT, PERMISSIVE, PLAIN, B),
    W("plaintext with a failed query is BLOCKED", SIDECAR, PERMISSIVE, PLAIN, B, [FAILED_QUERY]),
    W("plaintext with unknown labels is BLOCKED", None, PERMISSIVE, PLAIN, B, [NO_LABELS]),
    # READY: traffic observed, all of it mTLS, nothing in doubt.
    W("mTLS only is READY", SIDECAR, PERMISSIVE, MTLS_ONLY, R),
    W("ambient mTLS only is READY", AMBIENT, PERMISSIVE, MTLS_ONLY, R),
    W("seen only in traffic, mTLS only, is READY", None, PERMISSIVE, MTLS_ONLY, R),
    # NO_TRAFFIC: no evidence either way.
    W("nothing is NO_TRAFFIC", SIDECAR, PERMISSIVE, NOTHING, N),
    # UNKNOWN: the data needed was missing.
    W("mTLS with a failed query is UNKNOWN", SIDECAR, PERMISSIVE, MTLS_ONLY, U, [FAILED_QUERY]),
    W("mTLS in a partial window is UNKNOWN", SIDECAR, PERMISSIVE, MTLS_ONLY, U, [PARTIAL_WINDOW]),
    W("mTLS and unreadable traffic is UNKNOWN", SIDECAR, PERMISSIVE, MTLS_AND_UNREADABLE, U, [NO_LABEL]),
    W("unreadable only is UNKNOWN", SIDECAR, PERMISSIVE, UNREADABLE_ONLY, U, [NO_LABEL]),
    # The evidence alone must be enough: unreadable traffic is a doubt even if the caller forgot to say so.
    W("unreadable traffic, no doubt passed, is UNKNOWN", SIDECAR, PERMISSIVE, MTLS_AND_UNREADABLE, U),
    W("unreadable only, no doubt passed, is UNKNOWN", SIDECAR, PERMISSIVE, UNREADABLE_ONLY, U),
    W("nothing with a failed query is UNKNOWN", SIDECAR, PERMISSIVE, NOTHING, U, [FAILED_QUERY]),
    W("nothing in a partial window is UNKNOWN", SIDECAR, PERMISSIVE, NOTHING, U, [PARTIAL_WINDOW]),
    W("mTLS with unknown labels is UNKNOWN", None, PERMISSIVE, MTLS_ONLY, U, [NO_LABELS]),
    W("unknown labels hide even a STRICT default", None, STRICT, MTLS_ONLY, U, [NO_LABELS]),
]  # fmt: skip


@pytest.mark.parametrize("case", WORKLOAD_CASES, ids=lambda c: c.name)
def test_judge_workload(case: WorkloadCase) -> None:
    verdict, reasons = judge_workload(case.workload, case.resolution, case.evidence, list(case.doubts))
    assert verdict is case.expected
    if verdict in (Verdict.UNKNOWN, Verdict.NOT_MESHED, Verdict.NO_TRAFFIC, Verdict.BLOCKED):
        assert reasons, "a verdict that needs explaining comes with a reason"
    if verdict is Verdict.BLOCKED:
        assert all(source in reasons[0] for source in case.evidence.plaintext_sources)
    for doubt in case.doubts:
        if verdict is Verdict.UNKNOWN:
            assert doubt in reasons


@dataclass(frozen=True)
class ChangeCase:
    name: str
    before: Resolution
    evidence: Evidence
    expected: Verdict
    doubts: list[str] = field(default_factory=list)


CHANGE_CASES = [
    ChangeCase("already STRICT is ENFORCED", STRICT, MTLS_ONLY, Verdict.ENFORCED),
    ChangeCase("already STRICT in doubt is ENFORCED", STRICT, NOTHING, Verdict.ENFORCED, [FAILED_QUERY]),
    ChangeCase("plaintext would be cut off: BLOCKED", PERMISSIVE, PLAIN, Verdict.BLOCKED),
    ChangeCase("plaintext to DISABLE would be cut off: BLOCKED", DISABLE, PLAIN, Verdict.BLOCKED),
    ChangeCase("plaintext in doubt is BLOCKED", PERMISSIVE, PLAIN, Verdict.BLOCKED, [PARTIAL_WINDOW]),
    ChangeCase("one STRICT port is not ENFORCED", PERMISSIVE_BUT_ONE_PORT, MTLS_ONLY, Verdict.READY),
    ChangeCase("mTLS only is READY", PERMISSIVE, MTLS_ONLY, Verdict.READY),
    ChangeCase("nothing is NO_TRAFFIC", PERMISSIVE, NOTHING, Verdict.NO_TRAFFIC),
    ChangeCase("mTLS with a failed query is UNKNOWN", PERMISSIVE, MTLS_ONLY, Verdict.UNKNOWN, [FAILED_QUERY]),
    ChangeCase("mTLS in a partial window is UNKNOWN", PERMISSIVE, MTLS_ONLY, Verdict.UNKNOWN, [PARTIAL_WINDOW]),
    ChangeCase("nothing in doubt is UNKNOWN", PERMISSIVE, NOTHING, Verdict.UNKNOWN, [FAILED_QUERY]),
    ChangeCase("unreadable traffic is UNKNOWN", PERMISSIVE, MTLS_AND_UNREADABLE, Verdict.UNKNOWN, [NO_LABEL]),
    ChangeCase("unreadable traffic, no doubt passed, is UNKNOWN", PERMISSIVE, MTLS_AND_UNREADABLE, Verdict.UNKNOWN),
]


@pytest.mark.parametrize("case", CHANGE_CASES, ids=lambda c: c.name)
def test_judge_change(case: ChangeCase) -> None:
    assert judge_change(case.before, case.evidence, list(case.doubts)) is case.expected


COMBINE_CASES = {
    "one blocked workload blocks the namespace": ([R, R, B], B),
    "blocked wins over unknown": ([U, B, R], B),
    "unknown wins over ready": ([R, U], U),
    "unknown wins over enforced": ([E, U], U),
    "all enforced is ENFORCED": ([E, E], E),
    "ready and enforced is READY": ([E, R], R),
    "ready and no traffic is READY (some evidence)": ([R, N, N], R),
    "no traffic anywhere is NO_TRAFFIC": ([N, N], N),
    "a single ready workload is READY": ([R], R),
}


@pytest.mark.parametrize(("verdicts", "expected"), COMBINE_CASES.values(), ids=COMBINE_CASES.keys())
def test_combine(verdicts: list[Verdict], expected: Verdict) -> None:
    assert combine(verdicts) is expected
    assert combine(list(reversed(verdicts))) is expected  # order never matters


@pytest.mark.parametrize("doubt", DOUBTS.values(), ids=DOUBTS.keys())
@pytest.mark.parametrize("workload", [SIDECAR, AMBIENT, None], ids=["sidecar", "ambient", "not in inventory"])
@pytest.mark.parametrize("resolution", [PERMISSIVE, PERMISSIVE_BUT_ONE_PORT, STRICT_BUT_ONE_PORT], ids=str)
@pytest.mark.parametrize("evidence", [NOTHING, MTLS_ONLY, UNREADABLE_ONLY, MTLS_AND_UNREADABLE], ids=repr)
def test_never_ready_in_doubt(
    doubt: str, workload: Workload | None, resolution: Resolution, evidence: Evidence
) -> None:
    verdict, reasons = judge_workload(workload, resolution, evidence, [doubt])
    assert verdict is Verdict.UNKNOWN
    assert doubt in reasons
    assert judge_change(resolution, evidence, [doubt]) is Verdict.UNKNOWN
    assert combine([Verdict.READY, judge_change(resolution, evidence, [doubt])]) is Verdict.UNKNOWN


# -- global doubts: what makes every verdict of a run doubtful ------------------------------------

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def traffic(
    *, failed: tuple[str, ...] = (), coverage: Coverage | None = None, rows: list[list] | None = None
) -> Traffic:
    return Traffic(
        window_start=NOW - timedelta(days=7),
        window_end=NOW,
        source="test",
        observations=pd.DataFrame(rows or [], columns=OBSERVATION_COLUMNS).astype({"count": "float64"}),
        coverage=coverage or Coverage(complete=True),
        failed_queries=list(failed),
    )


GLOBAL_DOUBT_CASES = {
    "all well": (traffic(), 0),
    "a window-totals query failed": (traffic(failed=("totals:istio_requests_total: HTTPError",)), 1),
    "both totals queries failed": (traffic(failed=("totals:a: x", "totals:b: y")), 2),
    "only a timeline query failed (last-seen only)": (traffic(failed=("timeline:istio_requests_total: x",)), 0),
    "the data starts after the window": (traffic(coverage=Coverage(False, detail=PARTIAL_WINDOW)), 1),
    "coverage unknown, no detail": (traffic(coverage=Coverage(False)), 1),
}


@pytest.mark.parametrize(("data", "count"), GLOBAL_DOUBT_CASES.values(), ids=GLOBAL_DOUBT_CASES.keys())
def test_global_doubts(data: Traffic, count: int) -> None:
    doubts = global_doubts(data)
    assert len(doubts) == count
    assert all(d for d in doubts)


# -- classify: what one server-side observation was ---------------------------------------------

INVENTORY = Inventory(workloads={w.key: w for w in (SIDECAR, AMBIENT, NO_SIDECAR)})


def observation(destination: Workload | tuple[str, str], csp: str, reporter: str = "destination") -> list:
    ns, name = destination.key if isinstance(destination, Workload) else destination
    edge = ["Kubernetes", "foo", "curl", "unknown", "Kubernetes", ns, name, f"{name}.{ns}.svc.cluster.local"]
    return [*edge, "http", reporter, csp, 10.0]


CLASSIFY_CASES = {
    "sidecar mutual_tls is mTLS": (observation(SIDECAR, "mutual_tls"), MTLS),
    "sidecar none is plaintext": (observation(SIDECAR, "none"), PLAINTEXT),
    "sidecar unknown cannot be read": (observation(SIDECAR, "unknown"), UNREADABLE),
    "sidecar without the label cannot be read": (observation(SIDECAR, ""), UNREADABLE),
    "an unexpected spelling is never mTLS": (observation(SIDECAR, "MUTUAL_TLS"), UNREADABLE),
    "ztunnel mutual_tls is mTLS": (observation(AMBIENT, "mutual_tls"), MTLS),
    "ztunnel unknown is plaintext": (observation(AMBIENT, "unknown"), PLAINTEXT),
    "waypoint mutual_tls is mTLS": (observation(AMBIENT, "mutual_tls", "waypoint"), MTLS),
    "unknown to a workload not in the inventory cannot be read": (observation(("ghost", "api"), "unknown"), UNREADABLE),
    "none to a workload not in the inventory is plaintext": (observation(("ghost", "api"), "none"), PLAINTEXT),
    # A client's own view always says unknown: never plaintext, even towards an ambient pod.
    "source-reported unknown to ambient is not plaintext": (observation(AMBIENT, "unknown", "source"), UNREADABLE),
    "source-reported unknown to a sidecar is not plaintext": (observation(SIDECAR, "unknown", "source"), UNREADABLE),
}  # fmt: skip


@pytest.mark.parametrize(("row", "expected"), CLASSIFY_CASES.values(), ids=CLASSIFY_CASES.keys())
def test_classify(row: list, expected: str) -> None:
    frame = pd.DataFrame([row], columns=OBSERVATION_COLUMNS)
    classified = classify(frame, INVENTORY)
    assert classified["security"].tolist() == [expected]
    assert classified.drop(columns="security").equals(frame)  # the input is not changed


def test_classify_reads_rows_without_a_reporter_column() -> None:
    """The timeline has no reporter column: every one of its rows is server side."""
    frame = pd.DataFrame([observation(AMBIENT, "unknown"), observation(SIDECAR, "none")], columns=OBSERVATION_COLUMNS)
    classified = classify(frame.drop(columns="reporter"), INVENTORY)
    assert classified["security"].tolist() == [PLAINTEXT, PLAINTEXT]


def test_classify_empty() -> None:
    classified = classify(traffic().observations, INVENTORY)
    assert classified.empty
    assert "security" in classified.columns


# -- the rules through analyse(): doubts reach namespaces and the mesh too --------------------------

SETTINGS = Settings(run_id="20261130T020000Z", generated_at=NOW, lookback="7d")
MTLS_ROW = observation(SIDECAR, "mutual_tls")


@pytest.mark.parametrize(
    "data",
    [
        traffic(rows=[MTLS_ROW], failed=("totals:istio_tcp_connections_opened_total: ReadTimeout",)),
        traffic(rows=[MTLS_ROW], coverage=Coverage(False, detail=PARTIAL_WINDOW)),
        traffic(rows=[MTLS_ROW, observation(SIDECAR, "")]),
    ],
    ids=DOUBTS.keys(),
)
def test_analyse_never_reports_ready_in_doubt(data: Traffic) -> None:
    result = analyse(INVENTORY, data, SETTINGS)
    verdicts = {f"{w.namespace}/{w.workload}": w.verdict for w in result.workloads}
    assert verdicts["shop/cart"] is Verdict.UNKNOWN
    assert verdicts["legacy/curl"] is Verdict.NOT_MESHED
    assert Verdict.READY not in verdicts.values()
    assert Verdict.READY not in {n.verdict for n in result.namespaces}
    assert result.mesh.verdict is Verdict.UNKNOWN
    assert not result.complete
    assert result.warnings


def test_analyse_the_same_mtls_without_doubt_is_ready() -> None:
    """The control for the test above: the doubt, and only the doubt, keeps it from READY."""
    result = analyse(INVENTORY, traffic(rows=[MTLS_ROW]), SETTINGS)
    cart = next(w for w in result.workloads if w.workload == "cart")
    assert cart.verdict is Verdict.READY
    assert result.mesh.verdict is Verdict.READY
    assert result.complete


def test_gateways_are_not_meshed_whatever_their_traffic() -> None:
    gateway = Workload(
        "istio-system", "istio-ingressgateway", "Deployment", {"istio": "ingressgateway"}, Dataplane.GATEWAY
    )
    evidence = Evidence(mtls=10.0)
    verdict, reasons = judge_workload(gateway, Resolution(Mode.PERMISSIVE, "default", "default"), evidence, [])
    assert verdict is Verdict.NOT_MESHED
    assert "Gateway TLS" in reasons[0]
    assert not gateway.meshed


def test_each_timeline_point_carries_its_rows_labels_under_their_own_names() -> None:
    """plaintext_points builds points positionally, for speed: every field must still get its own column."""
    stamp = pd.Timestamp("2026-01-01T00:05:00Z")
    row = {c: f"{c}-value" for c in EDGE_KEY}
    frame = pd.DataFrame(
        [
            {**row, "security": PLAINTEXT, "timestamp": stamp, "count": 7.5},
            {**row, "source_workload": "other", "security": MTLS, "timestamp": stamp, "count": 1.0},
        ]
    )
    (point,) = plaintext_points(frame, PLAINTEXT)
    assert [f.name for f in fields(TimelinePoint)] == [*EDGE_KEY, "timestamp", "count"]
    assert {c: getattr(point, c) for c in EDGE_KEY} == row
    assert point.timestamp == stamp.to_pydatetime() and point.count == 7.5
