"""A run limited to some namespaces (--namespace, --exclude-namespace): what it may claim.

Traffic is kept by its destination: a client outside the scope that sends plaintext into it is
still a blocker. The mesh verdict is a claim about every namespace, so a limited run never makes
it from part of the mesh: BLOCKED stays (the blockers it saw are real, and a mesh-wide STRICT
would cut them off), anything else becomes UNKNOWN, and the verdict over the namespaces in scope
is given beside it as the scope's own (`Scope.verdict`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import pandas as pd

from analyzer.model.report import Doubt, MeshResult, Verdict
from analyzer.model.scope import Scope


def in_scope(frame: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """Rows whose destination namespace is in scope (all rows when the scope is unlimited)."""
    if not scope.limited or frame.empty:
        return frame
    names = frame["destination_namespace"].astype(str)
    keep = {ns: scope.includes(ns) for ns in names.unique()}
    return frame[names.map(keep).astype(bool)]


def judge_mesh(mesh: MeshResult, scope: Scope, known_namespaces: Iterable[str]) -> tuple[MeshResult, Scope]:
    """The mesh verdict a limited run may state, and the scope as the result records it."""
    known = sorted(set(known_namespaces))
    recorded = replace(
        scope,
        namespaces_in_scope=[ns for ns in known if scope.includes(ns)],
        namespaces_left_out=[ns for ns in known if not scope.includes(ns)],
        verdict=mesh.verdict.value if scope.limited else "",
    )
    if not scope.limited:
        return mesh, recorded
    seen = f"only {scope.describe()} examined ({len(recorded.namespaces_left_out)} known namespace(s) left out)"
    if mesh.verdict is Verdict.BLOCKED:
        note = f"{seen}: these blockers are real; more may sit outside the scope"
        return replace(mesh, reasons=[note, *mesh.reasons]), recorded
    note = (
        f"{seen}: a mesh-wide STRICT cannot be judged from part of the mesh; "
        f"the namespaces in scope are {mesh.verdict.value}"
    )
    return replace(mesh, verdict=Verdict.UNKNOWN, reasons=[note, *mesh.reasons], remediation=""), recorded


def keep_doubts(doubts: list[Doubt], scope: Scope) -> list[Doubt]:
    """Doubts about namespaces outside the scope are not this run's to report; mesh-wide ones stay."""
    return [d for d in doubts if d.scope == "mesh" or scope.includes(d.name.split("/", 1)[0])]


_POLICY_NOTE = re.compile(r"PeerAuthentication ([^/\s]+)/")


def keep_notes(notes: list[str], scope: Scope, root_namespace: str) -> list[str]:
    """Notes on policies of namespaces outside the scope go; the root namespace's reach every one."""
    kept = []
    for note in notes:
        found = _POLICY_NOTE.match(note)
        ns = found.group(1) if found else ""
        if not found or ns == root_namespace or scope.includes(ns):
            kept.append(note)
    return kept
