"""One report run with its phases timed; benchmarks/run.py starts it in a fresh process.

The steps are those of `pipeline.report` (policies, collect, analyse, publish), called one by one
so each can be timed; the traffic source is wrapped only to time `collect`. Prints JSON: phase
seconds, this process's peak RSS, and every request the Prometheus client sent (for replay).
"""

from __future__ import annotations

import time

_started = time.perf_counter()

import argparse  # noqa: E402 (imports are timed too)
import json  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from analyzer import pipeline  # noqa: E402
from analyzer.cli import batch_collection  # noqa: E402
from analyzer.collect.prometheus import PrometheusTrafficSource  # noqa: E402
from analyzer.config import PrometheusSettings, ReportConfig  # noqa: E402
from analyzer.model.traffic import Traffic  # noqa: E402
from analyzer.write.publish import publish  # noqa: E402
from benchmarks.peak import peak_rss_mib  # noqa: E402

IMPORTS_S = time.perf_counter() - _started


class TimedSource:
    """The real traffic source, with the time its collect() took."""

    def __init__(self, inner: PrometheusTrafficSource):
        self.inner = inner
        self.source = inner.source
        self.seconds = 0.0

    def collect(self, window_start: datetime, window_end: datetime) -> Traffic:
        started = time.perf_counter()
        try:
            return self.inner.collect(window_start, window_end)
        finally:
            self.seconds += time.perf_counter() - started


def _peak_mib() -> float:
    return peak_rss_mib()  # VmHWM: ru_maxrss would count the parent's memory from before exec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus-url", required=True)
    parser.add_argument("--policies-from", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--lookback", default="7d")
    parser.add_argument("--max-parallel", type=int, default=PrometheusSettings(url="").max_parallel)
    args = parser.parse_args()
    with batch_collection():  # as the CLI runs a report
        run(args)


def run(args: argparse.Namespace) -> None:
    config = ReportConfig(
        lookback=args.lookback,
        policies_from=args.policies_from,
        output_dir=args.output_dir,
        prometheus=PrometheusSettings(url=args.prometheus_url, max_parallel=args.max_parallel),
    )
    phases = {"imports": IMPORTS_S}
    peaks = {"imports": _peak_mib()}  # the process's peak so far, after each phase

    started = time.perf_counter()
    inventory = pipeline.load_policies(config)
    phases["policies"] = time.perf_counter() - started
    peaks["policies"] = _peak_mib()

    inner = pipeline.prometheus_source(config)
    assert isinstance(inner, PrometheusTrafficSource)
    source = TimedSource(inner)
    started = time.perf_counter()
    result = pipeline.analyse_run(inventory, source, config, datetime.now(UTC))
    phases["collect"] = source.seconds
    phases["analyse"] = time.perf_counter() - started - source.seconds
    peaks["collect+analyse"] = _peak_mib()

    started = time.perf_counter()
    folder = publish(result, config.output_dir)
    phases["write"] = time.perf_counter() - started
    peaks["write"] = _peak_mib()

    print(
        json.dumps(
            {
                "phases_s": phases,
                "peak_rss_mib": _peak_mib(),
                "peak_rss_after_mib": peaks,
                "workloads": len(result.workloads),
                "edges": len(result.edges),
                "timeline_rows": len(result.timeline),
                "failed_queries": [w for w in result.warnings if w.startswith("query failed")],
                "requests_sent": inner.client.requests_sent,
                "folder": str(folder),
            }
        )
    )


if __name__ == "__main__":
    main()
