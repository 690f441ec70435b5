"""Queries too big for Prometheus are asked again per destination namespace, through the bounded pool.

A real Prometheus started with a low --query.max-samples refuses the whole-mesh queries (HTTP 422)
and answers the per-namespace ones. A loopback proxy in front of it counts requests in flight.
"""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import requests

from analyzer.analyse.readiness import Settings, analyse
from analyzer.collect import queries
from analyzer.collect.manifests import build_inventory
from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource
from analyzer.config import PrometheusSettings
from analyzer.model.report import Verdict
from analyzer.model.traffic import Traffic
from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh
from tests.support.prometheus import PrometheusServer, serve_mesh

WINDOW = timedelta(hours=10)
# Measured on this mesh: whole-mesh totals and timeline need 1,600-3,000 samples, every
# namespace alone at most 800 (timeline) and 200 (totals); 100 is too few even per namespace.
FITS_PER_NAMESPACE = 800
TOO_FEW_EVEN_SPLIT = 100
MAX_PARALLEL = 3


def small_mesh() -> SampleMesh:
    """Eight namespaces, half a day of history (backfill time grows with history)."""
    mesh = catalogue.synthetic(48, 250, namespaces=8, unmeshed_every=10**6)
    mesh.history = timedelta(hours=12)
    return mesh


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards to Prometheus; remembers the most requests it had in flight at once, and each request."""

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.seen: list[dict] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Forward(http.server.BaseHTTPRequestHandler):
    server: CountingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        proxy = self.server
        with proxy.lock:
            proxy.in_flight += 1
            proxy.peak = max(proxy.peak, proxy.in_flight)
            proxy.seen.append(
                {
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "url_params": parse_qs(urlsplit(self.path).query),
                    "form": parse_qs(body.decode()),
                    "content_type": self.headers.get("Content-Type", ""),
                }
            )
        try:
            time.sleep(0.05)  # hold each request a little, so requests that may overlap do
            answer = requests.request(
                self.command,
                proxy.upstream + self.path,
                data=body,
                headers={"Content-Type": self.headers.get("Content-Type", "")},
                timeout=30,
            )
        finally:
            with proxy.lock:
                proxy.in_flight -= 1
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def mesh() -> SampleMesh:
    return small_mesh()


@pytest.fixture(scope="module")
def tsdb(tmp_path_factory: pytest.TempPathFactory, mesh: SampleMesh, now: datetime) -> Iterator[Path]:
    """One backfill; each test starts its own Prometheus on it with the flags it needs."""
    workdir = tmp_path_factory.mktemp("prometheus")
    serve_mesh(mesh, workdir, now).stop()
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def prometheus(workdir: Path, *flags: str) -> Iterator[CountingProxy]:
    server = PrometheusServer(workdir, extra_args=flags)
    server.start()
    proxy = CountingProxy(server.url)
    try:
        yield proxy
    finally:
        proxy.close()
        server.stop()


def collect(url: str, now: datetime) -> tuple[Traffic, PrometheusClient]:
    client = PrometheusClient(PrometheusSettings(url=url, max_parallel=MAX_PARALLEL))
    return PrometheusTrafficSource(client).collect(now - WINDOW, now), client


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_split_queries_return_what_the_whole_queries_return(tsdb: Path, now: datetime) -> None:
    with prometheus(tsdb) as proxy:
        whole, _ = collect(proxy.url, now)
    assert whole.failed_queries == []
    assert whole.destination_doubts == {} and whole.namespace_doubts == {}  # totals and timeline agree
    assert len(whole.observations) > 200 and len(whole.timeline) > 0

    with prometheus(tsdb, f"--query.max-samples={FITS_PER_NAMESPACE}") as proxy:
        split, client = collect(proxy.url, now)

    assert split.failed_queries == []
    assert split.destination_doubts == {} and split.namespace_doubts == {} and split.incomplete == []
    pd.testing.assert_frame_equal(_sorted(split.observations), _sorted(whole.observations))
    pd.testing.assert_frame_equal(_sorted(split.timeline), _sorted(whole.timeline))
    per_namespace = [q for q in client.queries_sent if 'destination_workload_namespace="team-' in q]
    assert len(per_namespace) >= 2 * 8, "totals and timeline of istio_requests_total, each once per namespace"
    assert any(path.startswith("label/destination_workload_namespace") for path, _ in client.requests_sent)
    # The bound holds through the split, and the pool does use it.
    assert 2 <= proxy.peak <= MAX_PARALLEL


def test_a_query_too_big_even_per_namespace_fails_and_no_verdict_is_ready(
    tsdb: Path, mesh: SampleMesh, now: datetime
) -> None:
    with prometheus(tsdb, f"--query.max-samples={TOO_FEW_EVEN_SPLIT}") as proxy:
        traffic, _ = collect(proxy.url, now)
    assert proxy.peak <= MAX_PARALLEL
    totals = f"totals:{queries.REQUESTS}"
    # Either the whole query failed, or every namespace whose part failed is in doubt.
    whole = [q for q in traffic.failed_queries if q.startswith(f"{totals}: too big, and asked per namespace")]
    parts = {ns for ns, reasons in traffic.namespace_doubts.items() if any(totals in r for r in reasons)}
    assert whole or parts

    inventory = build_inventory((m, "small mesh") for m in mesh.manifests())
    result = analyse(inventory, traffic, Settings(run_id="t", generated_at=now, lookback="10h"))
    verdicts = {w.verdict for w in result.workloads}
    assert Verdict.READY not in verdicts and Verdict.UNKNOWN in verdicts
    for w in result.workloads:
        if w.namespace in parts:
            assert w.verdict in (Verdict.UNKNOWN, Verdict.BLOCKED), w


def test_every_query_goes_in_a_form_body_with_partial_response_off(tsdb: Path, now: datetime) -> None:
    """Proxies in front of Prometheus cut long request lines; Thanos answers partially unless told not to."""
    short = f"sum by (destination_workload_namespace) ({queries.server_side(queries.REQUESTS)})"
    # The same question made long: exclude names that no workload has.
    names = "|".join(f"no-such-workload-{i}" for i in range(400))
    long = short.replace("}", f', destination_workload!~"{names}"}}')
    assert len(long) > 8192

    with prometheus(tsdb) as proxy:
        client = PrometheusClient(PrometheusSettings(url=proxy.url))
        want = client.instant(short, now)
        got = client.instant(long, now)
        got_range = client.range(long, now - timedelta(hours=1), now, timedelta(minutes=10))
        want_range = client.range(short, now - timedelta(hours=1), now, timedelta(minutes=10))

    def by_namespace(result: list[dict]) -> dict[str, object]:
        return {r["metric"]["destination_workload_namespace"]: r.get("value", r.get("values")) for r in result}

    assert len(want) == 8
    assert by_namespace(got) == by_namespace(want)
    assert by_namespace(got_range) == by_namespace(want_range)
    sent = [r for r in proxy.seen if r["path"] in ("/api/v1/query", "/api/v1/query_range")]
    assert len(sent) == 4
    for request in sent:
        assert request["method"] == "POST" and request["url_params"] == {}
        assert request["content_type"] == "application/x-www-form-urlencoded"
        assert request["form"]["partial_response"] == ["false"]
        assert request["form"]["deny_partial_response"] == ["1"]  # VictoriaMetrics cluster's name for it
