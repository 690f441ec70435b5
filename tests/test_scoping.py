"""A run limited to some namespaces: what its mesh verdict may claim (analyse/scoping.py), table-driven."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzer.analyse.scoping import in_scope, judge_mesh
from analyzer.model.report import MeshResult, Verdict
from analyzer.model.scope import Scope

LIMITED = Scope(namespaces=["team-*"], exclude_namespaces=["team-old"])
KNOWN = ["team-a", "team-old", "shop", "istio-system"]

# verdict over the namespaces seen -> the mesh verdict a limited run states
MESH_CASES = {
    "BLOCKED stays: the blockers it saw are real": (Verdict.BLOCKED, Verdict.BLOCKED),
    "READY from part of the mesh is UNKNOWN": (Verdict.READY, Verdict.UNKNOWN),
    "ENFORCED in scope says nothing of the rest": (Verdict.ENFORCED, Verdict.UNKNOWN),
    "NO_TRAFFIC in scope is UNKNOWN": (Verdict.NO_TRAFFIC, Verdict.UNKNOWN),
    "UNKNOWN stays UNKNOWN": (Verdict.UNKNOWN, Verdict.UNKNOWN),
    "NOT_MESHED in scope is UNKNOWN": (Verdict.NOT_MESHED, Verdict.UNKNOWN),
}


@pytest.mark.parametrize("seen, stated", MESH_CASES.values(), ids=MESH_CASES.keys())
def test_limited_scope_mesh_verdict(seen, stated):
    mesh = MeshResult(seen, "PERMISSIVE", "default", ["why"], remediation="kind: PeerAuthentication")
    out, scope = judge_mesh(mesh, LIMITED, KNOWN)
    assert out.verdict is stated
    assert scope.verdict == seen.value, "the scope's own verdict is kept beside the mesh's"
    assert out.reasons[0].startswith("only namespaces team-*; excluding team-old examined (3 known")
    assert out.reasons[1:] == ["why"]
    assert (out.remediation != "") is (stated is Verdict.BLOCKED), "no mesh-wide YAML from part of the mesh"
    assert scope.namespaces_in_scope == ["team-a"]
    assert scope.namespaces_left_out == ["istio-system", "shop", "team-old"]


@pytest.mark.parametrize("seen", list(Verdict))
def test_unlimited_scope_changes_nothing(seen):
    mesh = MeshResult(seen, "PERMISSIVE", "default", ["why"])
    out, scope = judge_mesh(mesh, Scope(prometheus_selector=['cluster="prod"']), KNOWN)
    assert out == mesh
    assert scope.verdict == "" and not scope.limited
    assert scope.namespaces_in_scope == sorted(KNOWN) and scope.namespaces_left_out == []


def test_traffic_is_kept_by_its_destination():
    frame = pd.DataFrame(
        {
            "source_namespace": ["shop", "team-a", "team-a", "shop"],
            "destination_namespace": ["team-a", "shop", "team-old", ""],
            "count": [1.0, 2.0, 3.0, 4.0],
        }
    )
    kept = in_scope(frame, LIMITED)
    assert kept["count"].tolist() == [1.0], "a client outside the scope calling into it stays; the rest goes"
    only_excluded = in_scope(frame, Scope(exclude_namespaces=["team-*"]))
    assert only_excluded["count"].tolist() == [2.0, 4.0], "as Prometheus's !~ keeps series without the label"


INCLUDES = {
    "no globs: everything": (Scope(), "anything", True),
    "glob matches": (LIMITED, "team-a", True),
    "excluded wins over included": (LIMITED, "team-old", False),
    "not included": (LIMITED, "shop", False),
    "case-sensitive": (LIMITED, "Team-a", False),
    "unnamed namespace is not in an include list": (LIMITED, "", False),
}


@pytest.mark.parametrize("scope, namespace, expected", INCLUDES.values(), ids=INCLUDES.keys())
def test_scope_includes(scope, namespace, expected):
    assert scope.includes(namespace) is expected


def test_doubts_outside_the_scope_are_left_out_mesh_wide_ones_stay():
    from analyzer.analyse.scoping import keep_doubts
    from analyzer.model.report import Doubt

    doubts = [
        Doubt("mesh", "mesh", "a totals query failed"),
        Doubt("namespace", "team-a", "its split part failed"),
        Doubt("namespace", "shop", "its split part failed"),
        Doubt("workload", "team-old/api", "contradiction"),
        Doubt("workload", "team-a/api", "contradiction"),
        Doubt("policies", "shop", "unreadable"),
    ]
    assert [(d.scope, d.name) for d in keep_doubts(doubts, LIMITED)] == [
        ("mesh", "mesh"),
        ("namespace", "team-a"),
        ("workload", "team-a/api"),
    ]


def test_policy_notes_outside_the_scope_are_left_out_the_root_namespace_stays():
    from analyzer.analyse.scoping import keep_notes

    notes = [
        "PeerAuthentication istio-system/x is ignored: a selector in the root namespace",
        "PeerAuthentication shop/b is ignored: the older namespace-wide policy shop/a wins",
        "PeerAuthentication team-a/b is ignored: the older namespace-wide policy team-a/a wins",
        "something else entirely",
    ]
    assert keep_notes(notes, LIMITED, "istio-system") == [notes[0], notes[2], notes[3]]
