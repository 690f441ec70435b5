"""A loopback HTTP proxy in front of the real test Prometheus that breaks chosen answers on purpose.

Each test installs faults: a predicate on the request (which query it is) and what goes wrong
(a rewritten JSON answer, an HTTP status, a delay, a reset connection, a cut-off body). Requests
no fault matches are forwarded untouched. Nothing here ever listens beyond 127.0.0.1.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson
import requests

from analyzer.collect.queries import PROXY_LIVE, RBAC_DENIED, MetricsqlProbe


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # e.g. /api/v1/query
    params: dict[str, list[str]]

    @property
    def query(self) -> str:
        return (self.params.get("query") or [""])[0]

    @property
    def kind(self) -> str:
        """check, probe, coverage, presence, totals, timeline, responses, rbac, labels or attribution."""
        q = self.query
        if self.path.startswith("/api/v1/label/"):
            return "labels"
        if self.path.startswith("/api/v1/targets"):  # attribution: what Prometheus scrapes
            return "attribution"
        if q == "vector(1)":
            return "check"
        if q == MetricsqlProbe().promql():
            return "probe"
        if q.startswith("count("):
            return "coverage"
        if PROXY_LIVE in q:  # queries.ProxyPresence: which proxies were scraped
            return "presence"
        if "response_code" in q:  # queries.PlaintextResponses
            return "responses"
        if RBAC_DENIED in q:  # queries.RbacDenials: whose were the plaintext 403s
            return "rbac"
        # Attribution's own queries (analyzer/collect/client_queries.py): peer addresses, client side.
        if q.startswith("sum by (destination_workload_namespace, destination_workload,") or 'reporter="source"' in q:
            return "attribution"
        return "timeline" if self.path == "/api/v1/query_range" else "totals"

    @property
    def namespace_part(self) -> str | None:
        """The destination namespace this query is limited to (a part of a split), or None."""
        marker = 'destination_workload_namespace="'
        if marker not in self.query:
            return None
        return self.query.split(marker, 1)[1].split('"', 1)[0]

    def about(self, kind: str, metric: str | None = None, *, whole: bool | None = None) -> bool:
        if self.kind != kind or (metric is not None and metric not in self.query):
            return False
        return whole is None or whole == (self.namespace_part is None)


@dataclass
class Reply:
    status: int
    body: bytes
    content_length: int | None = None  # None: len(body); more than that announces a body cut off


Upstream = Callable[[], Reply]
Action = Callable[[Request, Upstream], Reply | None]  # None: reset the connection, answer nothing


@dataclass
class Fault:
    matches: Callable[[Request], bool]
    action: Action
    times: int | None = None  # how many matching requests it breaks; None: all
    hits: int = 0


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    upstream_stopped: bool = False  # answer 502 to everything, as a reverse proxy with a dead backend does

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, matches: Callable[[Request], bool], action: Action, times: int | None = None) -> Fault:
        fault = Fault(matches, action, times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
            self.upstream_stopped = False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault_for(self, request: Request) -> Fault | None:
        with self.lock:
            self.seen.append(request)
            for fault in self.faults:
                if fault.matches(request) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            if self.command == "POST":
                params.update(parse_qs(body.decode()))
            request = Request(self.command, url.path, params)

            def upstream() -> Reply:
                if proxy.upstream_stopped:
                    return Reply(502, b"upstream connect error or disconnect/reset before headers")
                answer = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=60,
                )
                return Reply(answer.status_code, answer.content)

            fault = proxy._fault_for(request)
            reply = upstream() if fault is None else fault.action(request, upstream)
            if reply is None:
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            length = len(reply.body) if reply.content_length is None else reply.content_length
            self.send_header("Content-Length", str(length))
            if length != len(reply.body):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return Handler


# -- what goes wrong ------------------------------------------------------------------------------


def rewrite(change: Callable[[dict], object]) -> Action:
    """Edit the upstream's JSON answer in place (`change` may also return a new document)."""

    def action(request: Request, upstream: Upstream) -> Reply:
        reply = upstream()
        document = orjson.loads(reply.body)
        changed = change(document)
        return Reply(reply.status, orjson.dumps(document if changed is None else changed))

    return action


def drop_series(keep: Callable[[dict], bool]) -> Action:
    """Leave out the series whose labels `keep` rejects, and say nothing about it."""

    def change(document: dict) -> None:
        data = document["data"]
        data["result"] = [s for s in data["result"] if keep(s["metric"])]

    return rewrite(change)


def set_values(value: str) -> Action:
    """Every sample of the answer becomes `value` (e.g. "NaN", "+Inf", "abc")."""

    def change(document: dict) -> None:
        for series in document["data"]["result"]:
            if "value" in series:
                series["value"][1] = value
            for pair in series.get("values", []):
                pair[1] = value

    return rewrite(change)


def status(code: int, text: str = "") -> Action:
    """Answer `code` without asking the upstream; a Prometheus-style error body."""
    body = orjson.dumps({"status": "error", "errorType": "fault", "error": text or f"injected {code}"})
    return lambda request, upstream: Reply(code, body)


def delay(seconds: float) -> Action:
    def action(request: Request, upstream: Upstream) -> Reply:
        time.sleep(seconds)
        return upstream()

    return action


def reset_connection() -> Action:
    return lambda request, upstream: None


def truncate(keep: float = 0.5, announce_full_length: bool = True) -> Action:
    """Send only the first `keep` of the body; with `announce_full_length` the headers promise it all."""

    def action(request: Request, upstream: Upstream) -> Reply:
        reply = upstream()
        cut = reply.body[: int(len(reply.body) * keep)]
        return Reply(reply.status, cut, len(reply.body) if announce_full_length else None)

    return action
