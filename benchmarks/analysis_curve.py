"""How the analysis phase grows with the mesh: `analyse()` timed at several sizes, in process.

The traffic comes from the built-in simulator (`SampleTrafficSource`, the same frames the
Prometheus source builds), so no Prometheus is needed and only the analysis is timed: each
figure is the faster of two runs, with the garbage collector paced as the CLI paces it. Linear
analysis keeps the time per edge about flat.

    python -m benchmarks.analysis_curve --sizes 500x4000,2500x20000,5000x40000,10000x80000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import UTC, datetime, timedelta

from analyzer.analyse.readiness import Settings, analyse
from analyzer.cli import batch_collection
from analyzer.collect.manifests import build_inventory
from analyzer.sample import catalogue
from analyzer.sample.traffic import SampleTrafficSource

WINDOW = timedelta(hours=2)


def measure(workloads: int, edges: int, repeats: int = 2) -> tuple[int, int, float]:
    """(edge rows in the result, workloads in the result, fastest seconds of `analyse`)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    mesh = catalogue.synthetic(workloads, edges)
    mesh.history = WINDOW + timedelta(hours=1)
    inventory = build_inventory(((m, "synthetic mesh") for m in mesh.manifests()), cluster="")
    traffic = SampleTrafficSource(mesh, now=now).collect(now - WINDOW, now)
    settings = Settings(run_id="curve", generated_at=now, lookback="2h")
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = analyse(inventory, traffic, settings)
        best = min(best, time.perf_counter() - started)
    return len(result.edges), len(result.workloads), best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500x4000,2500x20000,5000x40000,10000x80000")
    args = parser.parse_args(argv)
    head = "edges     result edges  workloads  analyse   µs per edge"
    print(head, flush=True)
    print("-" * len(head), flush=True)
    for size in args.sizes.split(","):
        workloads, _, edges = size.strip().partition("x")
        with batch_collection():
            rows, results, seconds = measure(int(workloads), int(edges))
        print(f"{int(edges):<9} {rows:>12} {results:>10} {seconds:>7.2f}s {seconds / rows * 1e6:>12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
