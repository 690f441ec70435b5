"""The query engines the core end-to-end scenarios run against, started the same way.

Each is a real server on 127.0.0.1 fed the same samples (docs/backends.md says what differs).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from analyzer.sample.mesh import SampleMesh
from tests.support import victoria
from tests.support.prometheus import PrometheusServer, serve_mesh

ENGINES = ("prometheus", "victoriametrics")


class EngineFactory:
    """Starts servers of one engine, each fed a mesh's samples; `engine` names it."""

    def __init__(self, engine: str, tmp_path_factory: pytest.TempPathFactory, now: datetime):
        self.engine, self._tmp, self._now = engine, tmp_path_factory, now
        self.servers: list[PrometheusServer | victoria.VictoriaMetricsServer] = []

    def __call__(self, mesh: SampleMesh) -> str:
        workdir = Path(self._tmp.mktemp(self.engine))
        if self.engine == "prometheus":
            server: PrometheusServer | victoria.VictoriaMetricsServer = serve_mesh(mesh, workdir, self._now)
        else:
            server = victoria.serve_mesh(mesh, workdir, self._now)
        self.servers.append(server)
        return server.url

    def empty(self) -> str:
        """A server of this engine holding no data at all."""
        workdir = Path(self._tmp.mktemp(f"{self.engine}-empty"))
        server: PrometheusServer | victoria.VictoriaMetricsServer
        server = PrometheusServer(workdir) if self.engine == "prometheus" else victoria.VictoriaMetricsServer(workdir)
        self.servers.append(server)
        return server.start()
