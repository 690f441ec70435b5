"""Night over night: what moved since the previous published run. Pure: two RunResults in, Changes out."""

from __future__ import annotations

from analyzer.model.report import Changes, ClientChange, EdgeResult, RunResult, Verdict, VerdictChange

__all__ = ["CLIENT_KEY", "Changes", "ClientChange", "VerdictChange", "compare"]

# Who talks to whom over which protocol: a plaintext client is "new" when this key had no plaintext before.
CLIENT_KEY = [
    "source_cluster",
    "source_namespace",
    "source_workload",
    "destination_cluster",
    "destination_namespace",
    "destination_workload",
    "protocol",
]
UNITS = ("requests", "connections")
_GOOD = {Verdict.READY.value, Verdict.ENFORCED.value}


def _plaintext_clients(edges: list[EdgeResult]) -> dict[tuple, ClientChange]:
    clients: dict[tuple, ClientChange] = {}
    for e in edges:
        if e.plaintext_count <= 0:
            continue
        key = tuple(getattr(e, c) for c in CLIENT_KEY)
        seen = clients.get(key)
        if seen is not None:  # one client, several principals or services: one line
            seen.plaintext_count = round(seen.plaintext_count + e.plaintext_count, 3)
            seen.blocker = seen.blocker or e.blocker
            continue
        clients[key] = ClientChange(
            source_namespace=e.source_namespace,
            source_workload=e.source_workload,
            destination_namespace=e.destination_namespace,
            destination_workload=e.destination_workload,
            protocol=e.protocol,
            unit=e.unit,
            plaintext_count=e.plaintext_count,
            blocker=e.blocker,
            client_kind=e.client_kind,
        )
    return clients


def _scopes(run: RunResult) -> dict[str, dict[tuple, tuple[str, str]]]:
    """Per scope: key -> (display name, verdict)."""
    return {
        "mesh": {("mesh",): ("mesh", run.mesh.verdict.value)},
        "namespace": {(n.namespace,): (n.namespace, n.verdict.value) for n in run.namespaces},
        "workload": {
            (w.cluster, w.namespace, w.workload): (f"{w.namespace}/{w.workload}", w.verdict.value)
            for w in run.workloads
        },
    }


def _moves(scope: str, now: dict[tuple, tuple[str, str]], before: dict[tuple, str]) -> dict[str, list[VerdictChange]]:
    """Sort verdict changes into regressions, newly READY and newly ENFORCED.

    `now` maps a key to (display name, verdict). A regression is READY/ENFORCED -> BLOCKED, or
    ENFORCED -> anything short of STRICT (someone lifted the policy); UNKNOWN and NOT_MESHED
    are not progress either way.
    """
    out: dict[str, list[VerdictChange]] = {"regressions": [], "newly_ready": [], "newly_enforced": []}
    for key, (name, after) in now.items():
        was = before.get(key, "")
        if was == after:
            continue
        if was in _GOOD and after == Verdict.BLOCKED.value:
            out["regressions"].append(VerdictChange(scope, name, was, after, "plaintext arrived"))
        elif was == Verdict.ENFORCED.value and after in (Verdict.READY, Verdict.NO_TRAFFIC, Verdict.DISABLED):
            out["regressions"].append(VerdictChange(scope, name, was, after, "no longer STRICT"))
        elif after == Verdict.READY.value:
            out["newly_ready"].append(VerdictChange(scope, name, was, after, "" if was else "new"))
        elif after == Verdict.ENFORCED.value:
            out["newly_enforced"].append(VerdictChange(scope, name, was, after, "" if was else "new"))
    return out


def _delta(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in now.items()}


def _share_delta(previous: RunResult, current: RunResult, unit: str) -> float | None:
    now, was = current.mtls_share.get(unit), previous.mtls_share.get(unit)
    return round(now - was, 4) if now is not None and was is not None else None


def compare(previous: RunResult | None, current: RunResult) -> Changes:
    """What moved from `previous` (None: this is the first run) to `current`."""
    if previous is None:
        return Changes()
    changes = Changes(
        previous_run_id=previous.run_id,
        previous_generated_at=previous.generated_at,
        mesh_verdict_before=previous.mesh.verdict.value,
    )
    now_clients, was_clients = _plaintext_clients(current.edges), _plaintext_clients(previous.edges)
    by_volume = lambda c: (not c.blocker, -c.plaintext_count)  # noqa: E731
    changes.new_plaintext_clients = sorted((c for k, c in now_clients.items() if k not in was_clients), key=by_volume)
    changes.plaintext_clients_gone = sorted((c for k, c in was_clients.items() if k not in now_clients), key=by_volume)

    was_scopes = _scopes(previous)
    for scope, now in _scopes(current).items():
        before = {key: verdict for key, (_, verdict) in was_scopes[scope].items()}
        moves = _moves(scope, now, before)
        changes.regressions += moves["regressions"]
        changes.newly_ready += moves["newly_ready"]
        changes.newly_enforced += moves["newly_enforced"]

    changes.verdict_delta = _delta(current.verdicts, previous.verdicts)
    changes.namespace_verdict_delta = _delta(current.namespace_verdicts, previous.namespace_verdicts)
    changes.blockers_delta = current.blockers - previous.blockers
    changes.mtls_share_delta = {unit: _share_delta(previous, current, unit) for unit in UNITS}
    return changes
