"""The run printed to stdout for scripts and people: `-o json` (result.json) or `-o table`."""

from __future__ import annotations

from analyzer.model.document import to_json
from analyzer.model.report import VERDICT_ORDER, RunResult

FORMATS = ("text", "json", "table")


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def table(run: RunResult) -> str:
    """Namespaces by urgency with their verdict and counts, then the mesh line."""
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    namespaces = sorted(run.namespaces, key=lambda n: (rank[n.verdict], -n.plaintext_count, n.namespace))
    rows = [["NAMESPACE", "VERDICT", "MODE", "WORKLOADS", "BLOCKED", "READY", "PLAINTEXT"]]
    rows += [
        [n.namespace, n.verdict.value, n.mode, str(n.workloads), str(n.blocked), str(n.ready), f"{n.plaintext_count:g}"]
        for n in namespaces
    ]
    counts = ", ".join(f"{n} {v}" for v, n in run.verdicts.items() if n)
    state = "complete" if run.complete else "incomplete: some verdicts UNKNOWN"
    return f"{_columns(rows)}\n\nmesh {run.mesh.verdict.value} ({run.mesh.mode}); workloads: {counts}; {state}\n"


def render(run: RunResult, output: str) -> str:
    """`output` is one of FORMATS; "text" is the two-line receipt the CLI prints itself."""
    if output == "json":
        return to_json(run).decode("utf-8")
    if output == "table":
        return table(run)
    raise ValueError(f"no console format {output!r}")
