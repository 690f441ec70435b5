"""Shared fixtures. Seams are real: a Prometheus process, the kubernetes client over HTTP, Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analyzer.sample.mesh import SampleMesh
from tests.support.prometheus import PrometheusServer, serve_mesh

pytest_plugins = ["tests.support.kube_fixtures"]


@pytest.fixture(scope="module")
def now() -> datetime:
    """One 'now' per test module, on a whole minute so sample timestamps line up.

    Per module, not per session: the data ends at this moment while each report's window ends when
    it runs, so a session-wide 'now' would drift by the whole suite's duration on a loaded machine.
    """
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def prometheus_factory(
    tmp_path_factory: pytest.TempPathFactory, now: datetime
) -> Iterator[Callable[[SampleMesh], str]]:
    """Call with a SampleMesh; returns the URL of a real Prometheus holding its series."""
    servers: list[PrometheusServer] = []

    def start(mesh: SampleMesh) -> str:
        server = serve_mesh(mesh, Path(tmp_path_factory.mktemp("prometheus")), now)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()
