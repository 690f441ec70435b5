"""pytest fixtures for the fake Kubernetes API (tests/support/kube_api.py).

Registered from tests/conftest.py with `pytest_plugins = ["tests.support.kube_fixtures"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from analyzer.sample.mesh import SampleMesh
from tests.support.kube_api import FakeKubeAPI, Fault, serve_objects

KubeAPIFactory = Callable[..., FakeKubeAPI]


@pytest.fixture(scope="module")
def kube_api_factory() -> Iterator[KubeAPIFactory]:
    """Call with a SampleMesh (served as `mesh.cluster_objects()`) or a list of objects, and
    optionally `faults={path prefix: Fault or HTTP status}`; returns a started FakeKubeAPI."""
    servers: list[FakeKubeAPI] = []

    def start(objects: SampleMesh | list[dict], *, faults: dict[str, Fault | int] | None = None) -> FakeKubeAPI:
        if isinstance(objects, SampleMesh):
            objects = objects.cluster_objects()
        server = serve_objects(objects, faults=faults)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
