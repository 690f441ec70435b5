"""The run's outcome as `mtls_readiness_*` gauges, for alerting on a nightly job.

A batch job has nobody to scrape it: the gauges go to a Pushgateway (`--pushgateway-url`) and into
`metrics.prom` in the run folder (node_exporter's textfile collector format). Both are built here
from the RunResult and the night-over-night changes, so they always agree with the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from analyzer.model.report import VERDICT_ORDER, RunResult
from analyzer.write.registry import writer

METRICS_FILE = "metrics.prom"
REGRESSION_SCOPES = ("mesh", "namespace", "workload")


def registry(run: RunResult, duration_seconds: float | None = None) -> CollectorRegistry:
    """Every gauge of one run, night-over-night changes included. `duration_seconds` defaults to
    the time since the run started."""
    reg = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"mtls_readiness_{name}", doc, labels, registry=reg)

    workloads = gauge("workloads", "Destination workloads by verdict in the last run.", ("verdict",))
    for verdict, count in run.verdict_counts().items():
        workloads.labels(verdict).set(count)
    namespaces = gauge("namespaces", "Namespaces by verdict in the last run.", ("verdict",))
    mesh = gauge("mesh_verdict", "1 for the mesh's verdict in the last run, 0 for every other verdict.", ("verdict",))
    for verdict in VERDICT_ORDER:
        namespaces.labels(verdict.value).set(sum(n.verdict is verdict for n in run.namespaces))
        mesh.labels(verdict.value).set(int(run.mesh.verdict is verdict))

    plaintext = {(e.source_cluster, e.source_namespace, e.source_workload) for e in run.edges if e.plaintext_count > 0}
    gauge("plaintext_clients", "Distinct client workloads that sent plaintext in the window.").set(len(plaintext))
    gauge("blocker_edges", "Plaintext client -> destination edges that block STRICT.").set(
        sum(e.blocker for e in run.edges)
    )

    changes = run.changes
    # NaN, not 0, when there is no previous run to compare with: "no news" is not "no regression".
    compared = changes.has_previous
    new_clients = gauge("new_plaintext_clients", "Plaintext client edges absent from the previous run (NaN: none).")
    new_clients.set(len(changes.new_plaintext_clients) if compared else float("nan"))
    regressions = gauge(
        "regressions", "Verdicts that got worse since the previous run (e.g. READY -> BLOCKED).", ("scope",)
    )
    for scope in REGRESSION_SCOPES:
        count = sum(r.scope == scope for r in changes.regressions)
        regressions.labels(scope).set(count if compared else float("nan"))

    gauge("complete", "1 when the last run's data was complete (exit 0), 0 when some verdicts are UNKNOWN.").set(
        int(run.complete)
    )
    gauge("last_success_timestamp_seconds", "When the last run that published a report started (Unix time).").set(
        run.generated_at.timestamp()
    )
    if duration_seconds is None:
        duration_seconds = max(0.0, time.time() - run.generated_at.timestamp())
    gauge("run_duration_seconds", "How long the last run took, collection to publication.").set(duration_seconds)
    return reg


def render(run: RunResult, duration_seconds: float | None = None) -> str:
    """The gauges in the Prometheus text format (what a textfile collector reads)."""
    return generate_latest(registry(run, duration_seconds)).decode("utf-8")


@writer("metrics")
def write_metrics(run: RunResult, folder: Path) -> None:
    """`metrics.prom` in the run folder."""
    (folder / METRICS_FILE).write_text(render(run), encoding="utf-8")
