"""Namespace and mesh verdicts, one named case each, through analyse() on a built inventory.

A namespace (and the mesh) is judged over every meshed workload in it, whichever policy holds it
below STRICT (namespace-wide, a workload-level exception, a DISABLE); its remediation is the wide
STRICT policy plus an edit of every exception, and never a policy that changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import yaml

from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.analyse.readiness import Settings, analyse
from analyzer.model.inventory import Dataplane, Inventory, Namespace, Workload
from analyzer.model.policy import Mode, PeerAuthentication
from analyzer.model.report import RunResult, Verdict
from analyzer.model.traffic import OBSERVATION_COLUMNS, Traffic
from analyzer.pipeline import proposal_policy

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
OLD = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(run_id="20261130T020000Z", generated_at=NOW, lookback="7d")
E, R, B, N, U, X = (
    Verdict.ENFORCED,
    Verdict.READY,
    Verdict.BLOCKED,
    Verdict.NO_TRAFFIC,
    Verdict.UNKNOWN,
    Verdict.NOT_MESHED,
)


def wl(name: str, dataplane: Dataplane = Dataplane.SIDECAR, ns: str = "app") -> Workload:
    return Workload(ns, name, "Deployment", {"app": name}, dataplane, (8080,))


def pa(
    name: str, mode: Mode, app: str | None = None, ns: str = "app", ports: dict[int, Mode] | None = None
) -> PeerAuthentication:
    return PeerAuthentication(ns, name, OLD, {"app": app} if app else {}, mode, ports or {})


def row(dest: str, csp: str, source: str = "client/web", ns: str = "app", count: float = 10.0) -> list:
    src_ns, src_wl = source.split("/") if "/" in source else ("unknown", source)
    edge = ["c1", src_ns, src_wl, "", "c1", ns, dest, f"{dest}.{ns}.svc.cluster.local"]
    return [*edge, "http", "destination", csp, count]


def run(workloads: list[Workload], policies: list[PeerAuthentication], rows: list[list]) -> RunResult:
    inventory = Inventory(
        namespaces={ns: Namespace(ns, {"istio-injection": "enabled"}) for ns in {w.namespace for w in workloads}},
        workloads={w.key: w for w in workloads},
        peer_authentications=policies,
    )
    traffic = Traffic(
        window_start=NOW - timedelta(days=7),
        window_end=NOW,
        source="test",
        observations=pd.DataFrame(rows, columns=OBSERVATION_COLUMNS).astype({"count": "float64"}),
    )
    return analyse(inventory, traffic, SETTINGS)


@dataclass(frozen=True)
class Case:
    name: str
    workloads: list[Workload]
    policies: list[PeerAuthentication]
    rows: list[list]
    expected: Verdict
    exceptions: list[str] = field(default_factory=list)
    # READY only: the names of the policies the remediation applies, in order.
    remediation: list[str] = field(default_factory=list)


A, C = wl("a"), wl("c")
STRICT_NS = pa("default", Mode.STRICT)
CASES = [
    Case("every workload STRICT is ENFORCED", [A, C], [STRICT_NS], [row("a", "mutual_tls")], E),
    Case(
        "a PERMISSIVE exception receiving plaintext in a STRICT namespace is BLOCKED",
        [A, C],
        [STRICT_NS, pa("a-open", Mode.PERMISSIVE, "a")],
        [row("a", "none"), row("c", "mutual_tls")],
        B,
        ["app/a-open"],
    ),
    Case(
        "a PERMISSIVE exception with mTLS only in a STRICT namespace is READY, not ENFORCED: edit it",
        [A, C],
        [STRICT_NS, pa("a-open", Mode.PERMISSIVE, "a")],
        [row("a", "mutual_tls")],
        R,
        ["app/a-open"],
        ["a-open"],
    ),
    Case(
        "a PERMISSIVE exception without traffic in a STRICT namespace is NO_TRAFFIC",
        [A, C],
        [STRICT_NS, pa("a-open", Mode.PERMISSIVE, "a")],
        [],
        N,
        ["app/a-open"],
    ),
    Case(
        "a port-level PERMISSIVE exception counts as one",
        [A],
        [STRICT_NS, pa("a-port", Mode.UNSET, "a", ports={8080: Mode.PERMISSIVE})],
        [row("a", "mutual_tls")],
        R,
        ["app/a-port"],
        ["a-port"],
    ),
    Case(
        "a DISABLE-only namespace with plaintext is BLOCKED (the namespace policy would change nothing)",
        [A],
        [pa("a-off", Mode.DISABLE, "a")],
        [row("a", "none", count=3360)],
        B,
        ["app/a-off"],
    ),
    Case(
        "a DISABLE-only namespace with mTLS only is READY: the namespace policy plus the edit",
        [A],
        [pa("a-off", Mode.DISABLE, "a")],
        [row("a", "mutual_tls")],
        R,
        ["app/a-off"],
        ["default", "a-off"],
    ),
    Case("mTLS only under the default is READY", [A, C], [], [row("a", "mutual_tls"), row("c", "mutual_tls")], R,
         [], ["default"]),
    Case(
        "an existing namespace-wide policy is edited, not a second one added",
        [A],
        [pa("mine", Mode.PERMISSIVE)],
        [row("a", "mutual_tls")],
        R,
        [],
        ["mine"],
    ),
    Case("one READY and one idle is READY", [A, C], [], [row("a", "mutual_tls")], R, [], ["default"]),
    Case("nothing observed is NO_TRAFFIC", [A, C], [], [], N),
    Case("plaintext to one is BLOCKED", [A, C], [], [row("a", "none"), row("c", "mutual_tls")], B),
    Case("unreadable traffic to one is UNKNOWN", [A, C], [], [row("a", "mutual_tls"), row("c", "")], U),
    Case("BLOCKED wins over UNKNOWN", [A, C], [], [row("a", "none"), row("c", "")], B),
    Case("ambient plaintext (ztunnel's unknown) is BLOCKED", [wl("z", Dataplane.AMBIENT)], [], [row("z", "unknown")],
         B),
    Case("plaintext to an unnamed destination is UNKNOWN", [A], [], [row("a", "mutual_tls"), row("", "none")], U),
    Case("sidecar-less workloads only is NOT_MESHED", [wl("n", Dataplane.NONE)], [], [row("n", "none")], X),
    Case(
        "plaintext to a sidecar-less workload does not block its meshed neighbour",
        [A, wl("n", Dataplane.NONE)],
        [],
        [row("a", "mutual_tls"), row("n", "none")],
        R,
        [],
        ["default"],
    ),
]  # fmt: skip


def _namespace(result: RunResult, ns: str = "app"):
    return next(n for n in result.namespaces if n.namespace == ns)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_namespace_verdict(case: Case) -> None:
    result = run(case.workloads, case.policies, case.rows)
    ns = _namespace(result)
    assert ns.verdict is case.expected, ns.reasons
    assert ns.exceptions == case.exceptions
    if ns.verdict in (B, U):
        assert ns.reasons, "a BLOCKED or UNKNOWN namespace says which workload and why"
    docs = [proposal_policy(d) for d in yaml.safe_load_all(ns.remediation or "") if d]
    assert [d.name for d in docs] == (case.remediation if case.expected is R else [])


@pytest.mark.parametrize("case", [c for c in CASES if c.expected is R], ids=lambda c: c.name)
def test_remediation_makes_every_workload_strict_and_each_document_changes_something(case: Case) -> None:
    result = run(case.workloads, case.policies, case.rows)
    docs = [proposal_policy(d) for d in yaml.safe_load_all(_namespace(result).remediation) if d]
    before = PolicyEngine(case.policies, "istio-system")
    after = before.with_applied(docs)
    for w in case.workloads:
        if w.meshed:
            assert after.resolve(w.namespace, w.labels).everywhere(Mode.STRICT), w.name
    for doc in docs:
        alone = before.with_applied([doc])
        changed = [w for w in case.workloads if alone.resolve("app", w.labels) != before.resolve("app", w.labels)]
        assert changed or alone.resolve("app", {}) != before.resolve("app", {}), f"{doc.ref} changes nothing"


# -- the mesh ------------------------------------------------------------------------------------------


def test_mesh_is_judged_over_every_namespace_and_lists_exceptions() -> None:
    workloads = [wl("a", ns="one"), wl("b", ns="two")]
    policies = [pa("default", Mode.PERMISSIVE, ns="two")]
    result = run(workloads, policies, [row("a", "mutual_tls", ns="one"), row("b", "mutual_tls", ns="two")])
    assert result.mesh.verdict is R
    assert result.mesh.exceptions == ["two/default"]
    docs = [proposal_policy(d) for d in yaml.safe_load_all(result.mesh.remediation) if d]
    assert [d.ref for d in docs] == ["istio-system/default", "two/default"]
    assert all(d.mode is Mode.STRICT for d in docs)


def test_mesh_plaintext_behind_a_namespace_exception_blocks_and_is_counted_apart() -> None:
    workloads = [wl("a", ns="one"), wl("b", ns="two")]
    policies = [pa("default", Mode.PERMISSIVE, ns="two")]
    rows = [row("a", "mutual_tls", ns="one"), row("b", "none", source="x/legacy", ns="two")]
    mesh = run(workloads, policies, rows).mesh
    assert mesh.verdict is B  # a mesh-wide STRICT would not reach two/b, but the mesh is not safe
    assert (mesh.cut_off_clients, mesh.cut_off_edges, mesh.behind_exceptions) == (0, 0, 1)
    assert mesh.remediation == ""


def test_mesh_headline_counts_clients_and_edges_apart() -> None:
    """`unknown` calling three workloads is one client and three edges."""
    workloads = [wl("a"), wl("c"), wl("d")]
    rows = [row(d, "none", source="unknown") for d in ("a", "c", "d")] + [row("a", "none", source="x/cron")]
    mesh = run(workloads, [], rows).mesh
    assert mesh.verdict is B
    assert (mesh.cut_off_clients, mesh.cut_off_edges, mesh.behind_exceptions) == (2, 4, 0)
    assert "cut off 2 client(s) (4 client->destination edge(s))" in mesh.reasons[0]


def test_namespace_verdicts_are_linear_in_namespaces() -> None:
    """Indexes are built once: 1,500 namespaces take well under a second more than 150 would."""
    import time

    def timed(count: int) -> float:
        workloads = [wl("a", ns=f"ns{i}") for i in range(count)]
        rows = [row("a", "mutual_tls", ns=f"ns{i}") for i in range(count)]
        started = time.perf_counter()
        result = run(workloads, [], rows)
        assert len(result.namespaces) == count
        return time.perf_counter() - started

    small, large = timed(150), timed(1500)
    assert large < 10 * small * 3, (small, large)  # quadratic would be about 100x
