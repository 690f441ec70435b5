"""The policy engine against the rules of docs/semantics.md section 1, one named row per rule or edge case.

Every row states the whole answer (mode, deciding policy, level, port overrides) so that an engine
that gets the right mode for the wrong reason still fails.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.analyse.policy_engine import DEFAULT, MESH, NAMESPACE, WORKLOAD, PolicyEngine, Resolution
from analyzer.model.policy import Mode, PeerAuthentication

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ROOT = "istio-system"
WEB = {"app": "web", "version": "v1"}

P, S, D, U = Mode.PERMISSIVE, Mode.STRICT, Mode.DISABLE, Mode.UNSET


def pa(
    ref: str,
    mode: Mode = U,
    *,
    selector: dict[str, str] | None = None,
    ports: dict[int, Mode] | None = None,
    age: int = 0,
) -> PeerAuthentication:
    """A PeerAuthentication `namespace/name`, created `age` days after T0 (bigger is newer)."""
    namespace, name = ref.split("/")
    return PeerAuthentication(
        namespace=namespace,
        name=name,
        created=T0 + timedelta(days=age),
        selector=dict(selector or {}),
        mode=mode,
        port_modes=dict(ports or {}),
    )


def refs(notes: list[str]) -> list[str]:
    """The policy each ignored_policies() note is about."""
    found = [re.match(r"PeerAuthentication (\S+) ", note) for note in notes]
    assert all(found), notes
    return [m.group(1) for m in found if m]


# -- resolve(): one row per rule of the algorithm ------------------------------------------------------------------


def case(
    id_: str,
    policies: list[PeerAuthentication],
    want: tuple[Mode, str, str],
    *,
    ns: str = "shop",
    labels: dict[str, str] = WEB,
    ports: dict[int, Mode] | None = None,
    port_source: str = "",
    root: str = ROOT,
):
    return pytest.param(policies, root, ns, labels, want, ports or {}, port_source, id=id_)


RESOLVE_CASES = [
    case("no-policy-is-permissive-default", [], (P, DEFAULT, DEFAULT)),
    case("mesh-strict", [pa("istio-system/default", S)], (S, "istio-system/default", MESH)),
    case("mesh-disable", [pa("istio-system/default", D)], (D, "istio-system/default", MESH)),
    case("mesh-unset-is-permissive", [pa("istio-system/default", U)], (P, DEFAULT, DEFAULT)),
    case(
        "namespace-overrides-mesh",
        [pa("istio-system/default", S), pa("shop/default", P)],
        (P, "shop/default", NAMESPACE),
    ),
    case(
        "namespace-disable-overrides-mesh-strict",
        [pa("istio-system/default", S), pa("shop/default", D)],
        (D, "shop/default", NAMESPACE),
    ),
    case(
        "namespace-unset-inherits-mesh",
        [pa("istio-system/default", S), pa("shop/default", U)],
        (S, "istio-system/default", MESH),
    ),
    case("namespace-unset-without-mesh-is-permissive", [pa("shop/default", U)], (P, DEFAULT, DEFAULT)),
    case("other-namespace-policy-does-not-apply", [pa("billing/default", S)], (P, DEFAULT, DEFAULT)),
    case(
        "workload-overrides-namespace",
        [pa("shop/default", S), pa("shop/web", P, selector={"app": "web"})],
        (P, "shop/web", WORKLOAD),
    ),
    case(
        "workload-strict-overrides-namespace-disable",
        [pa("istio-system/default", P), pa("shop/default", D), pa("shop/web", S, selector={"app": "web"})],
        (S, "shop/web", WORKLOAD),
    ),
    case(
        "workload-unset-inherits-namespace",
        [pa("istio-system/default", D), pa("shop/default", S), pa("shop/web", U, selector={"app": "web"})],
        (S, "shop/default", NAMESPACE),
    ),
    case(
        "workload-unset-and-namespace-unset-inherit-mesh",
        [pa("istio-system/default", D), pa("shop/default", U), pa("shop/web", U, selector={"app": "web"})],
        (D, "istio-system/default", MESH),
    ),
    case(
        "workload-unset-all-levels-unset-is-permissive",
        [pa("istio-system/default", U), pa("shop/default", U), pa("shop/web", U, selector={"app": "web"})],
        (P, DEFAULT, DEFAULT),
    ),
    case(
        "workload-disable",
        [pa("shop/default", S), pa("shop/web", D, selector={"app": "web"})],
        (D, "shop/web", WORKLOAD),
    ),
    case(
        "selector-subset-of-pod-labels-matches",
        [pa("shop/web", S, selector={"app": "web"})],
        (S, "shop/web", WORKLOAD),
        labels={"app": "web", "version": "v1", "team": "a"},
    ),
    case(
        "selector-equal-to-pod-labels-matches",
        [pa("shop/web", S, selector=WEB)],
        (S, "shop/web", WORKLOAD),
    ),
    case(
        "selector-with-a-label-the-pod-lacks-does-not-match",
        [pa("shop/default", D), pa("shop/web", S, selector={"app": "web", "tier": "front"})],
        (D, "shop/default", NAMESPACE),
    ),
    case(
        "selector-with-a-different-value-does-not-match",
        [pa("shop/default", D), pa("shop/web", S, selector={"app": "web", "version": "v2"})],
        (D, "shop/default", NAMESPACE),
    ),
    case(
        "selector-does-not-match-unlabelled-pod",
        [pa("shop/web", S, selector={"app": "web"})],
        (P, DEFAULT, DEFAULT),
        labels={},
    ),
    case(
        "workload-policy-of-other-namespace-does-not-apply",
        [pa("billing/web", S, selector={"app": "web"})],
        (P, DEFAULT, DEFAULT),
    ),
    case(
        "empty-matchlabels-is-namespace-wide",
        [pa("istio-system/default", P), pa("shop/all", S, selector={})],
        (S, "shop/all", NAMESPACE),
        labels={"app": "anything"},
    ),
    case(
        "empty-matchlabels-in-root-is-mesh-wide",
        [pa("istio-system/all", S, selector={})],
        (S, "istio-system/all", MESH),
    ),
    case(
        "several-namespace-policies-oldest-wins",
        [pa("shop/newer", S, age=2), pa("shop/older", P, age=1)],
        (P, "shop/older", NAMESPACE),
    ),
    case(
        "several-namespace-policies-oldest-wins-even-when-unset",
        [pa("istio-system/default", D), pa("shop/older", U, age=1), pa("shop/newer", S, age=2)],
        (D, "istio-system/default", MESH),
    ),
    case(
        "several-namespace-policies-tie-smaller-name-wins",
        [pa("shop/b", S), pa("shop/a", P)],
        (P, "shop/a", NAMESPACE),
    ),
    case(
        "several-namespace-policies-tie-smaller-name-wins-over-list-order",
        [pa("shop/a", S), pa("shop/b", P)],
        (S, "shop/a", NAMESPACE),
    ),
    case(
        "several-namespace-policies-name-loses-to-age",
        [pa("shop/a", S, age=5), pa("shop/z", D, age=1)],
        (D, "shop/z", NAMESPACE),
    ),
    case(
        "several-mesh-policies-oldest-wins",
        [pa("istio-system/newer", S, age=3), pa("istio-system/older", D, age=1)],
        (D, "istio-system/older", MESH),
    ),
    case(
        "several-workload-policies-oldest-wins",
        [pa("shop/newer", S, selector={"app": "web"}, age=2), pa("shop/older", D, selector={"version": "v1"}, age=1)],
        (D, "shop/older", WORKLOAD),
    ),
    case(
        "several-workload-policies-tie-smaller-name-wins",
        [pa("shop/web-b", S, selector={"app": "web"}), pa("shop/web-a", D, selector={"app": "web"})],
        (D, "shop/web-a", WORKLOAD),
    ),
    case(
        "several-workload-policies-no-merging-of-ports",
        [
            pa("shop/older", P, selector={"app": "web"}, age=1),
            pa("shop/newer", S, selector={"app": "web"}, ports={8080: D}, age=2),
        ],
        (P, "shop/older", WORKLOAD),
    ),
    case(
        "several-workload-policies-unset-winner-inherits-not-the-loser",
        [
            pa("shop/default", D),
            pa("shop/older", U, selector={"app": "web"}, ports={9090: S}, age=1),
            pa("shop/newer", S, selector={"app": "web"}, age=2),
        ],
        (D, "shop/default", NAMESPACE),
        ports={9090: S},
        port_source="shop/older",
    ),
    case(
        "older-non-matching-workload-policy-does-not-shadow",
        [pa("shop/other", D, selector={"app": "other"}, age=1), pa("shop/web", S, selector={"app": "web"}, age=2)],
        (S, "shop/web", WORKLOAD),
    ),
    case(
        "root-namespace-selector-policy-is-ignored",
        [pa("istio-system/web", S, selector={"app": "web"})],
        (P, DEFAULT, DEFAULT),
    ),
    case(
        "root-namespace-selector-policy-is-ignored-for-root-workloads",
        [pa("istio-system/default", P), pa("istio-system/istiod", S, selector={"app": "istiod"})],
        (P, "istio-system/default", MESH),
        ns=ROOT,
        labels={"app": "istiod"},
    ),
    case(
        "root-namespace-workload-gets-mesh-policy",
        [pa("istio-system/default", S), pa("shop/default", D)],
        (S, "istio-system/default", MESH),
        ns=ROOT,
    ),
    case(
        "port-level-overrides-workload-mode",
        [pa("shop/web", S, selector={"app": "web"}, ports={8080: P, 9090: D})],
        (S, "shop/web", WORKLOAD),
        ports={8080: P, 9090: D},
        port_source="shop/web",
    ),
    case(
        "port-level-unset-inherits-workload-mode",
        [pa("shop/default", S), pa("shop/web", P, selector={"app": "web"}, ports={9090: U, 8080: D})],
        (P, "shop/web", WORKLOAD),
        ports={9090: P, 8080: D},
        port_source="shop/web",
    ),
    case(
        "port-level-unset-under-unset-workload-inherits-namespace",
        [
            pa("istio-system/default", D),
            pa("shop/default", S),
            pa("shop/web", U, selector={"app": "web"}, ports={9090: U}),
        ],
        (S, "shop/default", NAMESPACE),
        ports={9090: S},
        port_source="shop/web",
    ),
    case(
        "port-level-unset-everywhere-is-permissive",
        [pa("shop/web", U, selector={"app": "web"}, ports={9090: U})],
        (P, DEFAULT, DEFAULT),
        ports={9090: P},
        port_source="shop/web",
    ),
    case(
        "port-level-on-namespace-policy-is-ignored",
        [pa("shop/default", S, ports={8080: D})],
        (S, "shop/default", NAMESPACE),
    ),
    case(
        "port-level-on-mesh-policy-is-ignored",
        [pa("istio-system/default", S, ports={8080: D})],
        (S, "istio-system/default", MESH),
    ),
    case(
        "port-level-of-non-matching-workload-policy-is-ignored",
        [pa("shop/default", S), pa("shop/api", S, selector={"app": "api"}, ports={8080: D})],
        (S, "shop/default", NAMESPACE),
    ),
    case(
        "custom-root-namespace-is-mesh-level",
        [pa("mesh-root/default", S)],
        (S, "mesh-root/default", MESH),
        root="mesh-root",
    ),
    case(
        "custom-root-istio-system-wide-policy-is-only-namespace-level",
        [pa("istio-system/default", S)],
        (P, DEFAULT, DEFAULT),
        root="mesh-root",
    ),
    case(
        "custom-root-istio-system-wide-policy-governs-istio-system",
        [pa("mesh-root/default", P), pa("istio-system/default", S)],
        (S, "istio-system/default", NAMESPACE),
        ns=ROOT,
        root="mesh-root",
    ),
    case(
        "custom-root-istio-system-selector-policy-is-a-workload-policy",
        [pa("mesh-root/default", P), pa("istio-system/istiod", S, selector={"app": "istiod"})],
        (S, "istio-system/istiod", WORKLOAD),
        ns=ROOT,
        labels={"app": "istiod"},
        root="mesh-root",
    ),
    case(
        "custom-root-selector-policy-in-new-root-is-ignored",
        [pa("mesh-root/default", P), pa("mesh-root/web", S, selector={"app": "web"})],
        (P, "mesh-root/default", MESH),
        root="mesh-root",
    ),
]


@pytest.mark.parametrize(("policies", "root", "ns", "labels", "want", "ports", "port_source"), RESOLVE_CASES)
def test_resolve(
    policies: list[PeerAuthentication],
    root: str,
    ns: str,
    labels: dict[str, str],
    want: tuple[Mode, str, str],
    ports: dict[int, Mode],
    port_source: str,
) -> None:
    got = PolicyEngine(policies, root_namespace=root).resolve(ns, labels)
    assert (got.mode, got.source, got.level) == want
    assert got.port_modes == ports
    assert got.port_source == port_source
    # Input order never matters: istiod sorts by age.
    assert PolicyEngine(list(reversed(policies)), root_namespace=root).resolve(ns, labels) == got


def test_default_root_namespace_is_istio_system() -> None:
    engine = PolicyEngine([pa("istio-system/default", S), pa("istio-system/web", S, selector={"app": "web"})])
    assert engine.root_namespace == ROOT
    assert engine.resolve("shop", WEB).level == MESH
    assert engine.workload_policy("shop", WEB) is None


# -- the per-level questions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policies", "root", "ns", "mesh", "namespace", "workload"),
    [
        pytest.param([], ROOT, "shop", None, None, None, id="nothing"),
        pytest.param(
            [pa("istio-system/default", S), pa("shop/default", P), pa("shop/web", D, selector={"app": "web"})],
            ROOT,
            "shop",
            "istio-system/default",
            "shop/default",
            "shop/web",
            id="one-per-level",
        ),
        pytest.param(
            [pa("istio-system/default", S), pa("istio-system/web", D, selector={"app": "web"})],
            ROOT,
            ROOT,
            "istio-system/default",
            None,
            None,
            id="root-namespace-has-no-namespace-or-workload-level",
        ),
        pytest.param(
            [pa("istio-system/default", S), pa("mesh-root/default", P)],
            "mesh-root",
            ROOT,
            "mesh-root/default",
            "istio-system/default",
            None,
            id="custom-root-istio-system-is-ordinary",
        ),
    ],
)
def test_level_lookups(
    policies: list[PeerAuthentication],
    root: str,
    ns: str,
    mesh: str | None,
    namespace: str | None,
    workload: str | None,
) -> None:
    engine = PolicyEngine(policies, root_namespace=root)

    def ref_of(p: PeerAuthentication | None) -> str | None:
        return p.ref if p else None

    assert ref_of(engine.mesh_policy()) == mesh
    assert ref_of(engine.namespace_policy(ns)) == namespace
    assert ref_of(engine.workload_policy(ns, WEB)) == workload
    assert engine.has_workload_policies(ns) is (workload is not None)


# -- Resolution ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "port", "want"),
    [
        pytest.param(Resolution(S, "shop/web", WORKLOAD), 8080, S, id="no-overrides-base-mode"),
        pytest.param(Resolution(S, "shop/web", WORKLOAD, {8080: P}), 8080, P, id="overridden-port"),
        pytest.param(Resolution(S, "shop/web", WORKLOAD, {8080: P}), 9090, S, id="other-port-base-mode"),
        pytest.param(Resolution(P, DEFAULT, DEFAULT, {15008: D}), 15008, D, id="any-port-number"),
    ],
)
def test_resolution_for_port(resolution: Resolution, port: int, want: Mode) -> None:
    assert resolution.for_port(port) is want


@pytest.mark.parametrize(
    ("resolution", "strict_everywhere", "permissive_everywhere", "modes"),
    [
        pytest.param(Resolution(S, "a/b", NAMESPACE), True, False, {S}, id="strict-no-ports"),
        pytest.param(Resolution(P, DEFAULT, DEFAULT), False, True, {P}, id="permissive-no-ports"),
        pytest.param(Resolution(S, "a/b", WORKLOAD, {8080: P}), False, False, {S, P}, id="strict-with-open-port"),
        pytest.param(Resolution(P, "a/b", WORKLOAD, {8080: S}), False, False, {S, P}, id="permissive-with-strict-port"),
        pytest.param(Resolution(S, "a/b", WORKLOAD, {8080: S}), True, False, {S}, id="port-repeats-base-mode"),
    ],
)
def test_resolution_everywhere(
    resolution: Resolution, strict_everywhere: bool, permissive_everywhere: bool, modes: set[Mode]
) -> None:
    assert resolution.everywhere(S) is strict_everywhere
    assert resolution.everywhere(P) is permissive_everywhere
    assert resolution.modes() == modes


def test_resolution_describe_ports_merges_declared_and_overridden() -> None:
    res = Resolution(S, "shop/web", WORKLOAD, {9090: D})
    assert res.describe_ports([8080, 80]) == {80: S, 8080: S, 9090: D}
    assert list(res.describe_ports([8080, 80])) == [80, 8080, 9090]


def test_port_keys_are_target_ports_not_service_ports() -> None:
    # Service port 80 -> targetPort 8080: only 8080 is the key istiod looks up (ForPort(TargetPort)).
    res = PolicyEngine([pa("shop/web", S, selector={"app": "web"}, ports={8080: P})]).resolve("shop", WEB)
    assert res.for_port(8080) is P
    assert res.for_port(80) is S


# -- with_applied / wide_strict --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "proposed", "want", "ignored"),
    [
        pytest.param(
            [pa("shop/old", P, age=1), pa("shop/mid", D, age=2)],
            [pa("shop/old", S, age=-100)],
            (S, "shop/old", NAMESPACE),
            ["shop/mid"],
            id="same-name-replaces-and-keeps-creation-time",
        ),
        pytest.param(
            [pa("shop/default", P, age=1)],
            [pa("shop/lock-down", S, age=-100)],
            (P, "shop/default", NAMESPACE),
            ["shop/lock-down"],
            id="new-namespace-wide-policy-is-newest-so-ignored",
        ),
        pytest.param(
            [pa("shop/default", P, age=100_000)],
            [pa("shop/lock-down", S)],
            (P, "shop/default", NAMESPACE),
            ["shop/lock-down"],
            id="new-policy-is-newest-even-if-cluster-clock-is-ahead",
        ),
        pytest.param(
            [pa("istio-system/default", P)],
            [pa("shop/default", S)],
            (S, "shop/default", NAMESPACE),
            [],
            id="new-namespace-policy-where-none-exists-applies",
        ),
        pytest.param(
            [pa("istio-system/default", P, age=1)],
            [pa("istio-system/strict", S, age=-100)],
            (P, "istio-system/default", MESH),
            ["istio-system/strict"],
            id="new-mesh-policy-is-newest-so-ignored",
        ),
        pytest.param(
            [pa("shop/default", P), pa("shop/web", D, selector={"app": "web"}, age=1)],
            [pa("shop/web-strict", S, selector={"app": "web"}, age=-100)],
            (D, "shop/web", WORKLOAD),
            [],
            id="new-workload-policy-loses-to-existing-matching-one",
        ),
        pytest.param(
            [pa("shop/default", P)],
            [pa("istio-system/web", S, selector={"app": "web"})],
            (P, "shop/default", NAMESPACE),
            ["istio-system/web"],
            id="proposed-root-selector-policy-is-ignored-and-reported",
        ),
    ],
)
def test_with_applied(
    existing: list[PeerAuthentication],
    proposed: list[PeerAuthentication],
    want: tuple[Mode, str, str],
    ignored: list[str],
) -> None:
    before = PolicyEngine(existing)
    snapshot = [(p.ref, p.mode, p.created) for p in before.policies]
    after = before.with_applied(proposed)
    got = after.resolve("shop", WEB)
    assert (got.mode, got.source, got.level) == want
    assert refs(after.ignored_policies()) == ignored
    # The original engine is untouched and every proposal is marked as hypothetical.
    assert [(p.ref, p.mode, p.created) for p in before.policies] == snapshot
    proposed_refs = {p.ref for p in proposed}
    assert {p.ref for p in after.policies if p.hypothetical} == proposed_refs
    originals = {p.ref: p.created for p in existing}
    for p in after.policies:
        if p.ref in originals:
            assert p.created == originals[p.ref], "kubectl apply keeps creationTimestamp"
        else:
            assert p.created > max(originals.values()), "a new object is the newest"


def test_with_applied_keeps_root_namespace() -> None:
    after = PolicyEngine([], root_namespace="mesh-root").with_applied([pa("mesh-root/default", S)])
    assert after.root_namespace == "mesh-root"
    assert after.resolve("shop", WEB).level == MESH


@pytest.mark.parametrize(
    ("existing", "scope", "want_ref", "want_created"),
    [
        pytest.param(
            [pa("shop/default", P, age=3)], "shop", "shop/default", T0 + timedelta(days=3), id="edits-existing"
        ),
        pytest.param(
            [pa("shop/zz-first", P, age=1), pa("shop/aa-second", D, age=2)],
            "shop",
            "shop/zz-first",
            T0 + timedelta(days=1),
            id="edits-the-oldest-of-several",
        ),
        pytest.param(
            [pa("shop/web", P, selector={"app": "web"})], "shop", "shop/default", None, id="adds-one-when-none"
        ),
        pytest.param(
            [pa("istio-system/mesh", P, age=2)], ROOT, "istio-system/mesh", T0 + timedelta(days=2), id="root-edits-mesh"
        ),
    ],
)
def test_wide_strict(
    existing: list[PeerAuthentication], scope: str, want_ref: str, want_created: datetime | None
) -> None:
    engine = PolicyEngine(existing)
    proposal = engine.wide_strict(scope)
    assert proposal.ref == want_ref
    assert proposal.mode is S
    assert proposal.selector == {}
    assert proposal.hypothetical
    if want_created is not None:
        assert proposal.created == want_created
    after = engine.with_applied([proposal])
    decided = after.mesh_policy() if scope == ROOT else after.namespace_policy(scope)
    assert decided is not None and decided.ref == want_ref and decided.mode is S
    assert after.ignored_policies() == engine.ignored_policies()


@pytest.mark.parametrize(
    ("existing", "labels", "want"),
    [
        pytest.param([pa("shop/default", P)], WEB, (S, "shop/default", NAMESPACE), id="namespace-becomes-strict"),
        pytest.param(
            [pa("shop/default", P), pa("shop/web", P, selector={"app": "web"})],
            WEB,
            (P, "shop/web", WORKLOAD),
            id="workload-policy-still-decides",
        ),
        pytest.param(
            [pa("shop/web", U, selector={"app": "web"}, ports={8080: P})],
            WEB,
            (S, "shop/default", NAMESPACE),
            id="unset-workload-policy-inherits-new-strict",
        ),
    ],
)
def test_applying_wide_strict(
    existing: list[PeerAuthentication], labels: dict[str, str], want: tuple[Mode, str, str]
) -> None:
    engine = PolicyEngine(existing)
    got = engine.with_applied([engine.wide_strict("shop")]).resolve("shop", labels)
    assert (got.mode, got.source, got.level) == want


# -- misconfiguration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policies", "root", "ignored", "words"),
    [
        pytest.param(
            [pa("istio-system/default", S), pa("shop/default", P), pa("shop/web", D, selector={"app": "web"})],
            ROOT,
            [],
            [],
            id="clean",
        ),
        pytest.param(
            [pa("istio-system/web", S, selector={"app": "web"})],
            ROOT,
            ["istio-system/web"],
            ["root namespace"],
            id="root-namespace-selector",
        ),
        pytest.param(
            [pa("shop/newer", S, age=2), pa("shop/older", P, age=1)],
            ROOT,
            ["shop/newer"],
            ["shop/older", "namespace-wide"],
            id="newer-duplicate-namespace-policy",
        ),
        pytest.param(
            [pa("shop/b", S), pa("shop/a", P), pa("shop/c", D)],
            ROOT,
            ["shop/b", "shop/c"],
            ["shop/a"],
            id="tie-duplicates-all-but-smallest-name",
        ),
        pytest.param(
            [pa("istio-system/newer", S, age=2), pa("istio-system/older", P, age=1)],
            ROOT,
            ["istio-system/newer"],
            ["mesh-wide"],
            id="newer-duplicate-mesh-policy",
        ),
        pytest.param(
            [pa("shop/default", S, ports={8080: P})],
            ROOT,
            ["shop/default"],
            ["portLevelMtls"],
            id="port-level-without-selector",
        ),
        pytest.param(
            [pa("shop/all", S, selector={}, ports={8080: P})],
            ROOT,
            ["shop/all"],
            ["portLevelMtls"],
            id="port-level-with-empty-selector",
        ),
        pytest.param(
            [pa("shop/older", S, selector={"app": "web"}, age=1), pa("shop/newer", P, selector={"app": "web"}, age=2)],
            ROOT,
            [],
            [],
            id="shadowed-workload-policies-are-per-workload-not-here",
        ),
        pytest.param(
            [pa("istio-system/web", S, selector={"app": "web"}), pa("mesh-root/web", S, selector={"app": "web"})],
            "mesh-root",
            ["mesh-root/web"],
            ["mesh-root"],
            id="custom-root-only-its-selector-policies",
        ),
        pytest.param(
            [pa("istio-system/a", S, age=1), pa("istio-system/b", S, age=2)],
            "mesh-root",
            ["istio-system/b"],
            ["namespace-wide"],
            id="custom-root-istio-system-duplicates-are-namespace-level",
        ),
    ],
)
def test_ignored_policies(policies: list[PeerAuthentication], root: str, ignored: list[str], words: list[str]) -> None:
    notes = PolicyEngine(policies, root_namespace=root).ignored_policies()
    assert sorted(refs(notes)) == sorted(ignored)
    for word in words:
        assert any(word in note for note in notes), (word, notes)


@pytest.mark.parametrize(
    ("policies", "ns", "labels", "shadowed"),
    [
        pytest.param([], "shop", WEB, [], id="none"),
        pytest.param([pa("shop/web", S, selector={"app": "web"})], "shop", WEB, [], id="single-match"),
        pytest.param(
            [
                pa("shop/c", D, selector={"app": "web"}, age=3),
                pa("shop/a", S, selector={"app": "web"}, age=1),
                pa("shop/b", P, selector={"version": "v1"}, age=2),
            ],
            "shop",
            WEB,
            ["shop/b", "shop/c"],
            id="all-but-oldest-in-age-order",
        ),
        pytest.param(
            [pa("shop/b", D, selector={"app": "web"}), pa("shop/a", S, selector={"app": "web"})],
            "shop",
            WEB,
            ["shop/b"],
            id="tie-larger-name-is-shadowed",
        ),
        pytest.param(
            [pa("shop/a", S, selector={"app": "web"}, age=1), pa("shop/b", D, selector={"app": "api"}, age=2)],
            "shop",
            WEB,
            [],
            id="non-matching-is-not-shadowed",
        ),
        pytest.param(
            [pa("shop/default", S, age=1), pa("shop/web", S, selector={"app": "web"}, age=2)],
            "shop",
            WEB,
            [],
            id="namespace-policy-does-not-shadow",
        ),
        pytest.param(
            [pa("istio-system/a", S, selector={"app": "web"}), pa("istio-system/b", S, selector={"app": "web"})],
            ROOT,
            WEB,
            [],
            id="root-namespace-selectors-are-ignored-not-shadowed",
        ),
    ],
)
def test_shadowed_workload_policies(
    policies: list[PeerAuthentication], ns: str, labels: dict[str, str], shadowed: list[str]
) -> None:
    assert PolicyEngine(policies).shadowed_workload_policies(ns, labels) == shadowed


def test_wide_strict_never_takes_the_name_of_a_workload_policy():
    workload_default = PeerAuthentication(
        namespace="shop", name="default", created=datetime(2026, 1, 1, tzinfo=UTC), selector={"app": "cart"}
    )
    engine = PolicyEngine([workload_default], "istio-system")
    proposal = engine.wide_strict("shop")
    assert proposal.name != "default"
    assert not proposal.selector
    simulated = engine.with_applied([proposal])
    assert simulated.workload_policy("shop", {"app": "cart"}) is not None  # the workload policy survives
    assert simulated.resolve("shop", {"app": "web"}).source == proposal.ref
