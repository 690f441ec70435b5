"""A real single-node VictoriaMetrics on 127.0.0.1, fed the same samples as the test Prometheus.

The sample mesh's OpenMetrics text (seconds) is rewritten as Prometheus text with millisecond
timestamps and posted to `/api/v1/import/prometheus`; `/internal/force_flush` then makes it
searchable at once. A missing binary fails the test (tests/run.sh installs Debian's package).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from analyzer.sample.mesh import SampleMesh, openmetrics_lines
from tests.support import daemon
from tests.support.prometheus import free_port


def prometheus_text(openmetrics: Iterator[str]) -> Iterator[bytes]:
    """OpenMetrics sample lines (`name{labels} value seconds`) as Prometheus text (milliseconds)."""
    for line in openmetrics:
        if line.startswith("#"):
            continue
        # The value and timestamp never hold a space; a label value may, so split from the right.
        series, value, seconds = line.rstrip("\n").rsplit(" ", 2)
        yield f"{series} {value} {round(float(seconds) * 1000)}\n".encode()


@dataclass
class VictoriaMetricsServer:
    workdir: Path
    url: str = ""
    process: subprocess.Popen | None = None

    def start(self) -> str:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            pytest.fail("victoria-metrics not found: run tests through tests/run.sh, which installs Debian's package")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.workdir / "victoria-metrics.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={self.workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-retentionPeriod=400d",
                # Answer with the newest samples at once, and never from a cache filled before an import.
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log_path = self.workdir / "victoria-metrics.log"
        daemon.wait_ready(self.process, f"{self.url}/health", log_path, "victoria-metrics", 0.1)
        return self.url

    def load(self, lines: Iterator[str]) -> None:
        """Import OpenMetrics sample lines and make them searchable before returning."""
        answer = requests.post(f"{self.url}/api/v1/import/prometheus", data=prometheus_text(lines), timeout=300)
        answer.raise_for_status()
        requests.get(f"{self.url}/internal/force_flush", timeout=60).raise_for_status()

    def stop(self) -> None:
        daemon.stop(self.process)
        self.process = None


def serve_mesh(
    mesh: SampleMesh, workdir: Path, now: datetime, scrape: timedelta = timedelta(minutes=5)
) -> VictoriaMetricsServer:
    """Start a VictoriaMetrics holding what `mesh` would have exported up to `now`."""
    server = VictoriaMetricsServer(workdir)
    server.start()
    try:
        server.load(openmetrics_lines(mesh.series(now, scrape)))
    except BaseException:
        server.stop()
        raise
    return server
