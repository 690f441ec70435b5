"""A Kubernetes API server on 127.0.0.1 that the real `kubernetes` client can list from.

It speaks the list part of the API the way kube-apiserver does: `/api/v1/...` and
`/apis/<group>/<version>/...`, cluster-wide and per namespace, `limit`/`continue` pagination
with an opaque token, items of built-in kinds without `kind`/`apiVersion` (custom resources keep
theirs), `Status` bodies for errors, and bearer-token authentication. Faults are set per path
prefix: an HTTP status (403, 404, 500...) and/or a delay that outlasts the client's timeout.
Every request lands in `calls`, so tests can count round trips.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

TOKEN = "fake-kube-reader-token"
# (group, plural) -> (kind, served versions, namespaced). Istio CRDs serve every stored version
# through conversion, as the real CRDs do; a 404 fault on one version mimics an older Istio.
RESOURCES: dict[tuple[str, str], tuple[str, tuple[str, ...], bool]] = {
    ("", "namespaces"): ("Namespace", ("v1",), False),
    ("", "nodes"): ("Node", ("v1",), False),
    ("", "pods"): ("Pod", ("v1",), True),
    ("", "services"): ("Service", ("v1",), True),
    ("", "secrets"): ("Secret", ("v1",), True),
    ("apps", "replicasets"): ("ReplicaSet", ("v1",), True),
    ("apps", "deployments"): ("Deployment", ("v1",), True),
    ("apps", "statefulsets"): ("StatefulSet", ("v1",), True),
    ("apps", "daemonsets"): ("DaemonSet", ("v1",), True),
    ("batch", "jobs"): ("Job", ("v1",), True),
    ("batch", "cronjobs"): ("CronJob", ("v1",), True),
    ("security.istio.io", "peerauthentications"): ("PeerAuthentication", ("v1", "v1beta1"), True),
    ("security.istio.io", "authorizationpolicies"): ("AuthorizationPolicy", ("v1", "v1beta1"), True),
    ("networking.istio.io", "destinationrules"): ("DestinationRule", ("v1", "v1beta1", "v1alpha3"), True),
    ("telemetry.istio.io", "telemetries"): ("Telemetry", ("v1", "v1alpha1"), True),
}
BUILT_IN_GROUPS = {"", "apps", "batch"}


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to requests under a path prefix: wait `delay` seconds, then answer `status`."""

    status: int | None = None
    delay: float = 0.0
    message: str = ""


FORBIDDEN = Fault(status=403)
NOT_FOUND = Fault(status=404)


def slow(seconds: float) -> Fault:
    return Fault(delay=seconds)


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    query: dict[str, str]
    status: int


@dataclass
class FakeKubeAPI:
    objects: list[dict]
    faults: dict[str, Fault] = field(default_factory=dict)
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeKubeAPI:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def write_kubeconfig(self, path: Path, *, context: str = "fake", current_context: str | None = None) -> Path:
        """A kubeconfig whose `context` points here with a bearer token.

        `current_context` other than `context` adds that context too, pointing at a closed port,
        so a test can prove `--context` is honoured."""
        current = current_context or context
        clusters = [{"name": context, "cluster": {"server": self.url}}]
        contexts = [{"name": context, "context": {"cluster": context, "user": "reader", "namespace": "default"}}]
        if current != context:
            clusters.append({"name": current, "cluster": {"server": "http://127.0.0.1:1"}})
            contexts.append({"name": current, "context": {"cluster": current, "user": "reader"}})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "users": [{"name": "reader", "user": {"token": self.token}}],
            "contexts": contexts,
            "current-context": current,
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    # -- serving ----------------------------------------------------------------------------

    def _fault(self, path: str) -> Fault | None:
        for prefix, fault in self.faults.items():
            prefix = prefix.rstrip("/")
            if path == prefix or path.startswith(prefix + "/"):
                return fault
        return None

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        """Log the call on arrival (a slow answer may never be read), wait out a delay, answer."""
        status, body = self._response(path, query, authorization)
        with self._lock:
            self.calls.append(Call(path, query, status))
        fault = self._fault(path)
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        return status, body

    def _response(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        if authorization != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        fault = self._fault(path)
        route = _route(path)
        if fault is not None and fault.status:
            resource = route[2] if route else path
            group = route[0] if route else ""
            return fault.status, _fault_status(fault, resource, group)
        if route is None:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        group, version, plural, namespace = route
        kind, versions, namespaced = RESOURCES[(group, plural)]
        if version not in versions or (namespace is not None and not namespaced):
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        return 200, self._list(group, version, kind, namespace, query)

    def _list(self, group: str, version: str, kind: str, namespace: str | None, query: dict[str, str]) -> dict:
        api_version = f"{group}/{version}" if group else version
        items = [
            o
            for o in self.objects
            if o.get("kind") == kind
            and str(o.get("apiVersion", "")).split("/")[0] == (group or "v1")
            and (namespace is None or (o.get("metadata") or {}).get("namespace") == namespace)
        ]
        items.sort(key=_key)  # etcd key order: namespace, then name
        start = 0
        if query.get("continue"):
            after = json.loads(base64.urlsafe_b64decode(query["continue"]))["start"]
            start = next((i for i, o in enumerate(items) if _key(o) > tuple(after)), len(items))
        limit = int(query.get("limit") or 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        metadata: dict = {"resourceVersion": "4711"}
        if limit > 0 and start + limit < len(items):
            token = json.dumps({"rv": 4711, "start": list(_key(page[-1]))}).encode()
            metadata["continue"] = base64.urlsafe_b64encode(token).decode()
            metadata["remainingItemCount"] = len(items) - start - limit
        built_in = group in BUILT_IN_GROUPS
        out = []
        for obj in page:
            item = dict(obj)
            if built_in:  # kube-apiserver leaves these to the list's own kind/apiVersion
                item.pop("kind", None)
                item.pop("apiVersion", None)
            else:  # custom resources are served at the requested version
                item["apiVersion"] = api_version
            out.append(item)
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata, "items": out}


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _route(path: str) -> tuple[str, str, str, str | None] | None:
    """(group, version, plural, namespace or None) of a list path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if len(rest) == 1:
        namespace, plural = None, rest[0]
    elif len(rest) == 3 and rest[0] == "namespaces":
        namespace, plural = rest[1], rest[2]
    else:
        return None
    if (group, plural) not in RESOURCES:
        return None
    return group, version, plural, namespace


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    body.update(reason=reason, code=code)
    if details:
        body["details"] = details
    return body


def _fault_status(fault: Fault, resource: str, group: str) -> dict:
    code = fault.status or 500
    if code == 403:
        message = fault.message or (
            f'{resource} is forbidden: User "system:serviceaccount:istio-system:mtls-readiness" cannot list '
            f'resource "{resource}" in API group "{group}" at the cluster scope'
        )
        return _status(403, "Forbidden", message, {"kind": resource, "group": group})
    if code == 404:
        return _status(404, "NotFound", fault.message or "the server could not find the requested resource")
    return _status(code, "InternalError", fault.message or "an error on the server has prevented the request")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubeAPI

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, body = self.fake.answer(parts.path, query, self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a slow fault): that is the point

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_objects(objects: list[dict], *, faults: dict[str, Fault | int] | None = None) -> FakeKubeAPI:
    """Start a fake API server listing `objects`. `faults` maps a path prefix (e.g. `/api/v1/pods`,
    `/apis/security.istio.io`) to a Fault, or to a bare HTTP status."""
    normalised = {path: Fault(status=f) if isinstance(f, int) else f for path, f in (faults or {}).items()}
    return FakeKubeAPI(objects=list(objects), faults=normalised).start()
