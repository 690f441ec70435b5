"""summary.json: the run's headline for scripts, dashboards and the history page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analyzer.analyse.changes import mtls_shares, traffic_totals
from analyzer.model.report import RunResult, Verdict
from analyzer.write.tabular import iso


def totals(run: RunResult) -> dict[str, float]:
    return traffic_totals(run.edges)


def summary(run: RunResult) -> dict[str, Any]:
    volume = totals(run)
    return {
        "run_id": run.run_id,
        "generated_at": iso(run.generated_at),
        "lookback": run.lookback,
        "window_start": iso(run.window_start),
        "window_end": iso(run.window_end),
        "source": run.source,
        "root_namespace": run.root_namespace,
        "complete": run.complete,
        "verdicts": run.verdict_counts(),
        "mesh_verdict": run.mesh.verdict.value,
        "namespaces": {n.namespace: n.verdict.value for n in run.namespaces},
        "namespace_verdicts": {v.value: sum(1 for n in run.namespaces if n.verdict is v) for v in Verdict},
        "totals": volume,
        # share of observed traffic that was mutual TLS, per unit (null: no such traffic)
        "mtls_share": mtls_shares(volume),
        "blockers": sum(1 for e in run.edges if e.blocker),
        "warnings": run.warnings,
        "errors": run.errors,
        "misconfigurations": run.misconfigurations,
    }


def write_summary(run: RunResult, folder: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`extra` adds keys computed outside the run, e.g. `changes` (night over night)."""
    data = {**summary(run), **(extra or {})}
    (folder / "summary.json").write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return data
