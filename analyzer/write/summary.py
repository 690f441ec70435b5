"""summary.json: the run's headline for scripts, dashboards and the history page."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from analyzer.model.report import Changes, RunResult
from analyzer.write.registry import writer
from analyzer.write.tabular import iso

# summary.json keeps long lists short; result.json, the CSV files and the page have the rest.
LIST_LIMIT = 500
_CHANGE_LISTS = ("new_plaintext_clients", "plaintext_clients_gone", "regressions", "newly_ready", "newly_enforced")


def changes_document(changes: Changes, limit: int = LIST_LIMIT) -> dict[str, Any]:
    """The `changes` key of summary.json: counts always, lists up to `limit` items."""
    out: dict[str, Any] = {
        "previous_run_id": changes.previous_run_id,
        "previous_generated_at": iso(changes.previous_generated_at) if changes.previous_generated_at else None,
        "mesh_verdict_before": changes.mesh_verdict_before,
        "verdict_delta": changes.verdict_delta,
        "namespace_verdict_delta": changes.namespace_verdict_delta,
        "blockers_delta": changes.blockers_delta,
        "mtls_share_delta": changes.mtls_share_delta,
    }
    for name in _CHANGE_LISTS:
        items = getattr(changes, name)
        out[name] = [asdict(i) for i in items[:limit]]
        out[f"{name}_total"] = len(items)
    return out


def summary(run: RunResult) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "generated_at": iso(run.generated_at),
        "lookback": run.lookback,
        "window_start": iso(run.window_start),
        "window_end": iso(run.window_end),
        "source": run.source,
        "root_namespace": run.root_namespace,
        "complete": run.complete,
        "verdicts": run.verdicts,
        "mesh_verdict": run.mesh.verdict.value,
        "namespaces": {n.namespace: n.verdict.value for n in run.namespaces},
        "namespace_verdicts": run.namespace_verdicts,
        "totals": run.totals,
        # share of observed traffic that was mutual TLS, per unit (null: no such traffic)
        "mtls_share": run.mtls_share,
        "blockers": run.blockers,
        "warnings": run.warnings,
        "errors": run.errors,
        "misconfigurations": run.misconfigurations,
        "changes": changes_document(run.changes),
        "blind_spots": [asdict(b) for b in run.blind_spots[:LIST_LIMIT]],
        "blind_spots_total": len(run.blind_spots),
        "lint": [asdict(f) for f in run.lint[:LIST_LIMIT]],
        "lint_total": len(run.lint),
        # what the run looked at; "limited": only some namespaces, so mesh_verdict is never READY
        "scope": {**asdict(run.scope), "limited": run.scope.limited},
    }


@writer("summary")
def write_summary(run: RunResult, folder: Path) -> None:
    (folder / "summary.json").write_text(json.dumps(summary(run), indent=2) + "\n", encoding="utf-8")
