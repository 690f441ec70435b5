"""A real Prometheus on 127.0.0.1, fed by `promtool tsdb create-blocks-from openmetrics`.

Missing binaries fail the test (tests/run.sh installs them); they are never a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from analyzer.sample.mesh import SampleMesh
from tests.support import daemon

CONFIG = "global:\n  scrape_interval: 1m\nscrape_configs: []\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run tests through tests/run.sh, which installs Debian's prometheus")
    return path


@dataclass
class PrometheusServer:
    workdir: Path
    url: str = ""
    process: subprocess.Popen | None = None
    extra_args: tuple[str, ...] = ()  # more prometheus flags, e.g. "--query.max-samples=1000"
    config: str = CONFIG  # prometheus.yml: a test may give it scrape jobs of its own

    def load_file(self, data: Path) -> None:
        """Backfill from an OpenMetrics file (which is then deleted): big meshes are streamed to disk."""
        tsdb = self.workdir / "tsdb"
        tsdb.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(data), str(tsdb)],
            check=True,
            capture_output=True,
            text=True,
        )
        data.unlink()

    def start(self) -> str:
        config = self.workdir / "prometheus.yml"
        config.write_text(self.config, encoding="utf-8")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=400d",
                "--log.level=warn",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        daemon.wait_ready(self.process, f"{self.url}/-/ready", self.workdir / "prometheus.log", "prometheus", 0.2)
        return self.url

    def stop(self) -> None:
        daemon.stop(self.process)
        self.process = None


def serve_mesh(
    mesh: SampleMesh,
    workdir: Path,
    now: datetime,
    scrape: timedelta = timedelta(minutes=5),
    extra_args: tuple[str, ...] = (),
    config: str = CONFIG,
) -> PrometheusServer:
    """Start a Prometheus holding what `mesh` would have exported up to `now`."""
    server = PrometheusServer(workdir, extra_args=extra_args, config=config)
    data = workdir / "data.om"
    with data.open("w", encoding="utf-8") as stream:
        mesh.write_openmetrics(stream, now, scrape)
    server.load_file(data)
    server.start()
    return server
