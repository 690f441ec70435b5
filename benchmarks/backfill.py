"""Load a large SampleMesh into a real Prometheus quickly enough to benchmark against.

promtool (2.42, Debian's) re-reads its whole input once per 2-hour block it writes, so one
file of 8 days costs 96 passes (~10 minutes for 4,000 edges). Here each 2-hour block gets its
own file, aligned as promtool aligns blocks, and the files are backfilled two at a time.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from analyzer.sample.mesh import SampleMesh, openmetrics_labels
from tests.support.prometheus import PrometheusServer

BLOCK_SECONDS = 2 * 3600  # promtool's block length; its blocks start at multiples of it


def merged_series(mesh: SampleMesh, end: datetime, step: timedelta) -> dict[tuple[str, str], dict[float, float]]:
    """(metric, label text) -> {unix time: value}; the mesh already sums flows that share labels."""
    return {
        (series.metric, openmetrics_labels(series.labels)): {t.timestamp(): value for t, value in series.samples}
        for series in mesh.series(end, step)
    }


def write_blocks(merged: dict[tuple[str, str], dict[float, float]], folder: Path) -> list[Path]:
    """One OpenMetrics file per promtool block; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    handles: dict[int, IO[str]] = {}
    metrics = sorted({metric for metric, _ in merged})

    def out(block: int) -> IO[str]:
        if block not in handles:
            handles[block] = (folder / f"block-{block:012d}.om").open("w", encoding="utf-8")
        return handles[block]

    try:
        for metric in metrics:  # a metric family must be contiguous within each file
            started: set[int] = set()
            family = metric.removesuffix("_total")
            for (name, labels), samples in merged.items():
                if name != metric:
                    continue
                for ts in sorted(samples):
                    block = int(ts) // BLOCK_SECONDS
                    handle = out(block)
                    if block not in started:
                        handle.write(f"# TYPE {family} counter\n")
                        started.add(block)
                    # 15 significant digits: `:g` would round big counters to six
                    handle.write(f"{metric}{{{labels}}} {samples[ts]:.15g} {ts:.3f}\n")
    finally:
        for handle in handles.values():
            handle.write("# EOF\n")
            handle.close()
    return sorted(folder / f"block-{b:012d}.om" for b in handles)


@dataclass(frozen=True, slots=True)
class Loaded:
    server: PrometheusServer
    series: int
    samples: int
    openmetrics_bytes: int


def serve(
    mesh: SampleMesh, workdir: Path, now: datetime, scrape: timedelta, extra_args: tuple[str, ...] = ()
) -> Loaded:
    """Start a Prometheus holding what `mesh` would have exported up to `now`, sampled every `scrape`."""
    server = PrometheusServer(workdir, extra_args=extra_args)
    merged = merged_series(mesh, now, scrape)
    files = write_blocks(merged, workdir / "openmetrics")
    size = sum(f.stat().st_size for f in files)
    with ThreadPoolExecutor(max_workers=2) as pool:  # each promtool run writes its own block
        list(pool.map(server.load_file, files))
    server.start()
    wait_for_compaction(workdir / "tsdb")
    return Loaded(server, len(merged), sum(len(s) for s in merged.values()), size)


def wait_for_compaction(tsdb: Path, timeout: float = 900, settled: float = 20) -> int:
    """Wait until Prometheus has merged the 2-hour blocks (its first pass is a minute after start).

    A Prometheus that has held 8 days for a while has a handful of large blocks; querying 96
    small ones is several times slower and would flatter the job against its PromQL."""

    def blocks() -> int:
        return sum(1 for p in tsdb.iterdir() if (p / "meta.json").exists())

    initial = last = blocks()
    changed = started = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(2)
        now = blocks()
        if now != last:
            last, changed = now, time.monotonic()
        elif last < initial and time.monotonic() - changed >= settled:
            return last
        elif initial <= 3 and time.monotonic() - started >= settled:
            return last  # nothing to merge: Prometheus merges three 2-hour blocks at a time
    raise RuntimeError(f"Prometheus still compacting after {timeout:.0f}s ({last} blocks, from {initial})")
