"""Benchmark the report job against the one query it cannot avoid, on synthetic meshes in a real Prometheus.

For each size, in one run (generation and backfill are timed but kept out of every ratio):
1. `benchmarks/job.py` runs the report steps with each phase timed, and lists the requests the
   Prometheus client sent (it also warms Prometheus's caches for what follows);
2. the floor: the single aggregate every answer needs (`FLOOR`, per edge and security policy over
   the window), sent bare; and the job's own requests replayed with plain `requests` through a
   pool as wide as the job's (HTTP round trips and bodies only: no JSON parsing);
3. the real `mtls-readiness report` runs in a fresh process: wall time, peak RSS (VmHWM), sizes;
4. floor and replay run again; each is the faster of its two runs.

With `--baseline CHECKOUT` (another source tree of this project, e.g. a `git worktree` of an
earlier commit), the job from that tree runs too, alternating with this tree's twice each on the
same data, so a change is measured before and after in one run; then both walls are the faster
of two runs, and each job publishes into its own copy of the phased run's folder.

    python -m benchmarks.run --sizes 500x4000 --scrape 30s --history 3h --lookback 2h --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from analyzer.collect.queries import MetricsqlProbe
from analyzer.config import PrometheusSettings, parse_duration
from analyzer.sample import catalogue
from benchmarks.backfill import serve

ROOT = Path(__file__).resolve().parent.parent
# The least any report needs: one aggregate per edge and security policy over the window.
FLOOR = (
    "sum by (source_workload, source_workload_namespace, destination_workload, destination_workload_namespace, "
    'connection_security_policy) (increase(istio_requests_total{{reporter="destination"}}[{window}]))'
)


@dataclass(slots=True)
class Result:
    workloads: int
    edges: int
    scrape: str
    lookback: str
    series: int
    samples: int
    generate_s: float
    requests: int
    floor_s: float
    bare_promql_s: float
    job_wall_s: float
    job_vs_floor: float
    job_vs_promql: float
    promql_vs_floor: float
    html_mib: float
    csv_mib: float
    job_peak_rss_mib: float
    job_exit_code: int
    report_mib: float
    report_files: int
    phases_s: dict[str, float]
    analyse_write_vs_collect: float
    collect_vs_promql: float
    phased_run_peak_rss_mib: float
    phased_run_peak_rss_after_mib: dict[str, float]
    timeline_rows: int
    failed_queries: list[str]
    baseline_wall_s: float | None = None  # the --baseline checkout's job on the same data
    baseline_vs_floor: float | None = None
    baseline_peak_rss_mib: float | None = None
    # With --per-query: each request sent alone, the costliest first (seconds, MiB, what it asks)
    per_query: list[tuple[float, float, str]] | None = None


def _send(session: requests.Session, url: str, path: str, params: dict) -> requests.Response:
    """One of the job's requests as the job sends it: label values by GET, queries as POST bodies."""
    if path.startswith("label/"):
        return session.get(f"{url}/api/v1/{path}", params=params, timeout=600)
    return session.post(f"{url}/api/v1/{path}", data=params, timeout=600)


def replay(url: str, sent: list[tuple[str, dict]], width: int) -> float:
    """Seconds to send every request again and read every answer, `width` at a time."""
    session = requests.Session()

    def one(item: tuple[str, dict]) -> None:
        path, params = item
        answer = _send(session, url, path, params)
        if params.get("query") == MetricsqlProbe().promql() and answer.status_code == 400:
            return  # the MetricsQL probe: Prometheus refuses it, which is the answer the job expects
        answer.raise_for_status()
        _ = answer.content

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=width) as pool:
        list(pool.map(one, sent))
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def per_query(url: str, sent: list[tuple[str, dict]]) -> list[tuple[float, float, str]]:
    """Each request alone, the faster of two sends: (seconds, answer MiB, what it asks), costliest first."""
    session = requests.Session()
    out = []
    for path, params in sent:
        best, size = float("inf"), 0
        for _ in range(2):
            started = time.perf_counter()
            answer = _send(session, url, path, params)
            best, size = min(best, time.perf_counter() - started), len(answer.content)
        what = " ".join((params.get("query") or "").split())
        what = re.sub(r"\b(by|on|ignoring) \([^)]*\)", r"\1 (…)", what)  # the label lists, not the shape
        out.append((round(best, 3), round(size / 2**20, 2), f"{path} {what}".strip()))
    session.close()
    return sorted(out, reverse=True)


def run_measured(module_args: list[str], log: Path, tree: Path = ROOT) -> tuple[float, int, float]:
    """Wall seconds, exit code and peak RSS (MiB) of `python -m MODULE ARGS` in a fresh process,
    importing the project from `tree` (`-m` puts the working directory first on the path)."""
    peak = log.with_suffix(".peak.json")
    command = [sys.executable, "-m", "benchmarks.peak", str(peak), *module_args]
    with log.open("w") as out:
        started = time.perf_counter()
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=tree, check=False).returncode
        elapsed = time.perf_counter() - started
    return elapsed, code, json.loads(peak.read_text())["peak_rss_mib"]


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def bench_size(
    workloads: int,
    edges: int,
    scrape: str,
    lookback: str,
    width: int,
    workdir: Path,
    history: str,
    baseline: Path | None = None,
    each_query: bool = False,
) -> Result:
    print(f"[{workloads}/{edges}] generating and backfilling", file=sys.stderr, flush=True)
    started = time.perf_counter()
    mesh = catalogue.synthetic(workloads, edges)
    mesh.history = parse_duration(history)
    policies = workdir / "policies"
    policies.mkdir(parents=True)
    # As the API server answers (JSON, one List), so the phase measures what a cluster run does;
    # the YAML reader is for hand-written files.
    listing = {"apiVersion": "v1", "kind": "List", "items": list(mesh.manifests())}
    (policies / "mesh.json").write_text(json.dumps(listing), encoding="utf-8")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    loaded = serve(mesh, workdir / "prometheus", now, parse_duration(scrape))
    generate_s = time.perf_counter() - started
    url = loaded.server.url
    try:
        print(f"[{workloads}/{edges}] phased run", file=sys.stderr, flush=True)
        job = ["benchmarks.job", "--prometheus-url", url, "--policies-from", str(policies)]
        # Into the folder the measured job publishes to: that job then runs as a second night does,
        # reading a previous run to compare with.
        job += ["--output-dir", str(workdir / "reports"), "--lookback", lookback, "--max-parallel", str(width)]
        _, code, phased_rss = run_measured(job, workdir / "phased.log")
        if code != 0:
            raise RuntimeError(f"benchmarks.job failed: {(workdir / 'phased.log').read_text()[-2000:]}")
        phased = json.loads((workdir / "phased.log").read_text().strip().splitlines()[-1])
        sent = [tuple(item) for item in phased["requests_sent"]]

        print(f"[{workloads}/{edges}] floor and replay, report job, floor and replay", file=sys.stderr, flush=True)
        window = f"{int(parse_duration(lookback).total_seconds())}s"
        floor = [("query", {"query": FLOOR.format(window=window), "time": f"{time.time():.3f}"})]
        first_floor = replay(url, floor, 1)
        first = replay(url, sent, width)

        def report_job(tree: Path, output: str) -> tuple[float, float, int]:
            cli = ["analyzer", "--log-level", "WARNING", "report", "--prometheus-url", url]
            cli += ["--policies-from", str(policies), "--output-dir", str(workdir / output), "--lookback", lookback]
            log = workdir / f"{output}.log"
            wall, code, rss = run_measured(cli, log, tree)
            if code not in (0, 2):  # 2: a complete run that found incomplete data
                raise RuntimeError(f"report from {tree} failed ({code}): {log.read_text()[-2000:]}")
            return wall, rss, code

        before: list[tuple[float, float, int]] = []
        if baseline is not None:
            shutil.copytree(workdir / "reports", workdir / "reports-baseline", symlinks=True)
        job_s, job_rss, job_code = report_job(ROOT, "reports")
        if baseline is not None:
            before.append(report_job(baseline, "reports-baseline"))
            again = report_job(ROOT, "reports")
            job_s, job_rss = min(job_s, again[0]), max(job_rss, again[1])  # the exit code: the first run's
            before.append(report_job(baseline, "reports-baseline"))
        bare = min(first, replay(url, sent, width))
        floor_s = min(first_floor, replay(url, floor, 1))
        costs = per_query(url, sent) if each_query else None
    finally:
        loaded.server.stop()
    run_folder = (workdir / "reports" / "latest").resolve()
    size, files = folder_size(run_folder)
    html = (run_folder / "index.html").stat().st_size
    csvs = sum(p.stat().st_size for p in run_folder.glob("*.csv"))
    phases = {k: round(v, 3) for k, v in phased["phases_s"].items()}
    return Result(
        workloads=workloads,
        edges=edges,
        scrape=scrape,
        lookback=lookback,
        series=loaded.series,
        samples=loaded.samples,
        generate_s=round(generate_s, 1),
        requests=len(sent),
        floor_s=round(floor_s, 3),
        bare_promql_s=round(bare, 3),
        job_wall_s=round(job_s, 3),
        job_vs_floor=round(job_s / floor_s, 2),
        job_vs_promql=round(job_s / bare, 2),
        promql_vs_floor=round(bare / floor_s, 2),
        html_mib=round(html / 2**20, 2),
        csv_mib=round(csvs / 2**20, 2),
        job_peak_rss_mib=round(job_rss, 1),
        job_exit_code=job_code,
        report_mib=round(size / 2**20, 2),
        report_files=files,
        phases_s=phases,
        analyse_write_vs_collect=round((phases["analyse"] + phases["write"]) / phases["collect"], 2),
        collect_vs_promql=round(phases["collect"] / bare, 2),
        phased_run_peak_rss_mib=round(phased_rss, 1),
        phased_run_peak_rss_after_mib=phased["peak_rss_after_mib"],
        timeline_rows=phased["timeline_rows"],
        failed_queries=phased["failed_queries"],
        baseline_wall_s=round(min(b[0] for b in before), 3) if before else None,
        baseline_vs_floor=round(min(b[0] for b in before) / floor_s, 2) if before else None,
        baseline_peak_rss_mib=max(b[1] for b in before) if before else None,
        per_query=costs,
    )


def table(results: list[Result]) -> str:
    head = "edges    lookback scrape  floor     job PromQL  job wall  job/floor  job/PromQL  peak RSS  HTML      CSV"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.edges:<8} {r.lookback:<8} {r.scrape:<6} {r.floor_s:>6.2f}s {r.bare_promql_s:>10.2f}s "
            f"{r.job_wall_s:>8.2f}s {r.job_vs_floor:>8.1f}x {r.job_vs_promql:>10.1f}x "
            f"{r.job_peak_rss_mib:>5.0f} MiB {r.html_mib:>5.1f} MiB {r.csv_mib:>5.1f} MiB"
        )
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in r.phases_s.items())
        lines.append(f"{'':9}{r.workloads} workloads, {r.series} series, {r.samples} samples; phases: {phases}")
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in r.phased_run_peak_rss_after_mib.items())
        lines.append(
            f"{'':9}peak RSS (MiB) after: {peaks}; timeline rows {r.timeline_rows}; "
            f"generation+backfill {r.generate_s:.0f}s (not measured)"
        )
        if r.baseline_wall_s is not None:
            lines.append(
                f"{'':9}baseline checkout, same data: job wall {r.baseline_wall_s:.2f}s, "
                f"job/floor {r.baseline_vs_floor:.1f}x, peak RSS {r.baseline_peak_rss_mib:.0f} MiB"
            )
        for seconds, mib, what in (r.per_query or [])[:10]:
            lines.append(f"{'':9}{seconds:>7.2f}s {mib:>6.1f} MiB  {what[:160]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500x4000,5000x40000", help="WORKLOADSxEDGES, comma-separated")
    parser.add_argument("--scrape", default="1h", help="sample interval of the synthetic data (default: 1h)")
    parser.add_argument("--lookback", default="7d", help="the job's --lookback")
    parser.add_argument("--history", default="8d", help="how far back the synthetic data goes (default: 8d)")
    parser.add_argument("--max-parallel", type=int, default=PrometheusSettings(url="").max_parallel)
    parser.add_argument("--out", type=Path, required=True, help="where to write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (TSDB, reports, logs)")
    parser.add_argument("--per-query", action="store_true", help="also time each of the job's requests alone")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout of this project whose job runs too, on the same data"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mtls-bench-"))
    results: list[Result] = []
    try:
        for size in args.sizes.split(","):
            workloads, _, edges = size.strip().partition("x")
            folder = workdir / size.strip()
            results.append(
                bench_size(
                    int(workloads),
                    int(edges),
                    args.scrape,
                    args.lookback,
                    args.max_parallel,
                    folder,
                    args.history,
                    args.baseline.resolve() if args.baseline else None,
                    args.per_query,
                )
            )
            if not args.keep:
                shutil.rmtree(folder / "prometheus", ignore_errors=True)
            _write(args.out, results)  # after each size: a long run keeps what it measured
            print(table(results[-1:]), file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    return 0


def _write(out: Path, results: list[Result]) -> None:
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_average": os.getloadavg()}
    out.write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
