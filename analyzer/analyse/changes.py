"""Night over night: what moved since the previous published run. Pure: a Baseline of it (or the
run itself) and this run in, Changes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analyzer.model.report import Changes, ClientChange, EdgeResult, RunResult, Verdict, VerdictChange

__all__ = ["CLIENT_KEY", "Baseline", "Changes", "ClientChange", "VerdictChange", "baseline", "compare"]

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


@dataclass(frozen=True, slots=True)
class Baseline:
    """What `compare` reads of the previous run: small next to the run itself (no timeline, no
    per-edge rows), so the job can read it first and drop the rest before collecting."""

    run_id: str
    generated_at: datetime
    mesh_verdict: str
    clients: dict[tuple, ClientChange]
    scopes: dict[str, dict[tuple, tuple[str, str]]]
    verdicts: dict[str, int]
    namespace_verdicts: dict[str, int]
    blockers: int
    mtls_share: dict[str, float | None]

    @classmethod
    def of(cls, run: RunResult) -> Baseline:
        return cls(
            run.run_id,
            run.generated_at,
            run.mesh.verdict.value,
            _plaintext_clients(run.edges),
            _scopes(run),
            dict(run.verdicts),
            dict(run.namespace_verdicts),
            run.blockers,
            dict(run.mtls_share),
        )


def baseline(previous: RunResult | None) -> Baseline | None:
    return None if previous is None else Baseline.of(previous)


def _share_delta(previous: Baseline, current: RunResult, unit: str) -> float | None:
    now, was = current.mtls_share.get(unit), previous.mtls_share.get(unit)
    return round(now - was, 4) if now is not None and was is not None else None


def compare(previous: RunResult | Baseline | None, current: RunResult) -> Changes:
    """What moved from `previous` (None: this is the first run) to `current`."""
    if previous is None:
        return Changes()
    was = previous if isinstance(previous, Baseline) else Baseline.of(previous)
    changes = Changes(
        previous_run_id=was.run_id,
        previous_generated_at=was.generated_at,
        mesh_verdict_before=was.mesh_verdict,
    )
    now_clients = _plaintext_clients(current.edges)
    by_volume = lambda c: (not c.blocker, -c.plaintext_count)  # noqa: E731
    changes.new_plaintext_clients = sorted((c for k, c in now_clients.items() if k not in was.clients), key=by_volume)
    changes.plaintext_clients_gone = sorted((c for k, c in was.clients.items() if k not in now_clients), key=by_volume)

    for scope, now in _scopes(current).items():
        before = {key: verdict for key, (_, verdict) in was.scopes[scope].items()}
        moves = _moves(scope, now, before)
        changes.regressions += moves["regressions"]
        changes.newly_ready += moves["newly_ready"]
        changes.newly_enforced += moves["newly_enforced"]

    changes.verdict_delta = _delta(current.verdicts, was.verdicts)
    changes.namespace_verdict_delta = _delta(current.namespace_verdicts, was.namespace_verdicts)
    changes.blockers_delta = current.blockers - was.blockers
    changes.mtls_share_delta = {unit: _share_delta(was, current, unit) for unit in UNITS}
    return changes
