"""A mesh description and what Istio would record for it.

One model serves the demo, the tests and the benchmarks: a `SampleMesh` yields Kubernetes
manifests (read back through the ordinary manifest reader) and the Prometheus series that
sidecars and ztunnel would export (docs/semantics.md, sections 3, 4 and 8). The series can be
written as OpenMetrics for a real Prometheus, or answered in process by `SampleTrafficSource`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

from analyzer.analyse.policy_engine import PolicyEngine
from analyzer.collect.manifests import build_inventory
from analyzer.model.inventory import Dataplane
from analyzer.model.policy import Mode

REQUESTS = "istio_requests_total"
TCP_OPENED = "istio_tcp_connections_opened_total"
CREATED = "2026-01-01T00:00:00Z"
REWRITE = "sidecar.istio.io/rewriteAppHTTPProbers"
NODE = "node-1"
PEER_LABEL = "source_address"
OUTSIDE = "203.0.113.7"  # a caller outside the cluster (documentation range)
NODE_IP = "10.0.0.10"


@dataclass(frozen=True, slots=True)
class MeshWorkload:
    namespace: str
    name: str
    dataplane: Dataplane = Dataplane.SIDECAR
    kind: str = "Deployment"
    ports: tuple[int, ...] = (8000,)
    labels: dict[str, str] = field(default_factory=dict)
    # What attribution reads (docs/attribution.md): (probe, handler, port, periodSeconds) per
    # probe, the pods' rewriteAppHTTPProbers annotation (None: unset), the CronJob schedule, the
    # pods' addresses (default: derived from their names) and host networking.
    probes: tuple[tuple[str, str, int, int], ...] = ()
    rewrite_probes: bool | None = None
    schedule: str = "0 3 * * *"
    pod_ips: tuple[str, ...] = ()
    host_network: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pod_labels(self) -> dict[str, str]:
        return {"app": self.name, **self.labels}


@dataclass(frozen=True, slots=True)
class Flow:
    """Traffic from `source` ("ns/name", or None for a caller outside the cluster: node, load
    balancer, kubelet) to `destination`, at `per_hour`, between `start` and `stop` ago."""

    source: str | None
    destination: str
    protocol: str = "http"  # http, grpc or tcp
    per_hour: float = 60.0
    plaintext: bool | None = None  # None: what auto mTLS does; True: e.g. a DestinationRule DISABLE
    start: timedelta | None = None  # None: since the data begins
    stop: timedelta | None = None  # None: until now
    drop_security_label: bool = False  # a Telemetry API override removed connection_security_policy
    response_code: str = "200"  # e.g. "403": what a server-side AuthorizationPolicy answers
    # "denied" or "allowed": the destination sidecar's RBAC filter decided this flow (an
    # AuthorizationPolicy applies), so its first pod exports Envoy's RBAC counters: "denied" adds
    # the flow to `authz_enforce_result="denied"` (the proxy's 403), "allowed" to "allowed" (a 403
    # then is the application's). "" (default): no RBAC series for this flow.
    rbac: str = ""


@dataclass(slots=True)
class SampleMesh:
    workloads: list[MeshWorkload]
    flows: list[Flow]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    policies: list[dict] = field(default_factory=list)  # PeerAuthentication / DestinationRule manifests
    cluster: str = "Kubernetes"
    trust_domain: str = "cluster.local"
    root_namespace: str = "istio-system"
    history: timedelta = timedelta(days=8)  # how far back the exported data goes
    # Destination namespaces with the Telemetry override that adds the peer address
    # (docs/attribution.md): their server-side series carry PEER_LABEL.
    peer_address_namespaces: frozenset[str] = frozenset()
    # Destination refs whose RBAC counters carry the listener in the name, as older Istio releases
    # export them (envoy_http_inbound_0_0_0_0_8000_rbac); others get current Istio's name,
    # envoy_http_rbac{http_conn_manager_prefix="inbound_0.0.0.0_8000"} (docs/authorization.md).
    rbac_legacy_names: frozenset[str] = frozenset()

    def workload(self, ref: str) -> MeshWorkload:
        return next(w for w in self.workloads if w.ref == ref)

    # -- the cluster side ---------------------------------------------------------------------

    def manifests(self) -> list[dict]:
        namespaces = sorted({w.namespace for w in self.workloads} | set(self.namespace_labels))
        objects: list[dict] = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": dict(self.namespace_labels.get(ns, {}))},
            }
            for ns in namespaces
        ]
        objects += [_deployment(w) for w in self.workloads]
        return objects + [dict(p) for p in self.policies]

    def cluster_objects(self, replicas: int = 2) -> list[dict]:
        """What a live API server would list for this mesh: namespaces, policies, the controllers
        and the pods they run, linked by ownerReferences the way the controllers link them.

        Pods carry what the injector or istio-cni leaves on them (docs/semantics.md):
        a classic `istio-proxy` container for Deployments and DaemonSets, a native-sidecar init
        container for StatefulSets and Jobs, the ambient redirection annotation. Objects also carry
        managedFields and pod env, as the API server sends them, so snapshot tests can check they go.
        """
        objects: list[dict] = []
        for ns in self.manifests():
            if ns["kind"] == "Namespace":
                ns = {**ns, "metadata": {**ns["metadata"], "creationTimestamp": CREATED, "uid": _uid(ns)}}
                objects.append(ns)
        objects += [dict(p) for p in self.policies]
        for w in self.workloads:
            objects += _running(w, replicas)
        return [*objects, node_object()]

    # -- the Prometheus side --------------------------------------------------------------------

    def series(self, end: datetime, step: timedelta = timedelta(minutes=5)) -> Iterator[Series]:
        """Every counter series Istio would export, sampled every `step` up to `end`.

        Flows that share all labels (say two sidecar-less callers of one workload, both
        `unknown` at the server) are one counter in the proxy, so their samples are summed.
        """
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], dict[datetime, float]] = {}
        for s in self._flow_series(end, step):
            samples = merged.setdefault((s.metric, tuple(sorted(s.labels.items()))), {})
            for t, value in s.samples:
                samples[t] = samples.get(t, 0.0) + value
        for (metric, labels), samples in merged.items():
            yield Series(metric, dict(labels), sorted(samples.items()))

    def _flow_series(self, end: datetime, step: timedelta) -> Iterator[Series]:
        inventory = build_inventory((m, "sample mesh") for m in self.manifests())
        engine = PolicyEngine(inventory.peer_authentications, self.root_namespace)
        begin = end - self.history
        times = [begin + step * i for i in range(int(self.history / step) + 1)]
        by_ref = {w.ref: w for w in self.workloads}
        for flow in self.flows:
            dest = by_ref[flow.destination]
            src = by_ref[flow.source] if flow.source else None
            dest_mode = engine.resolve(dest.namespace, dest.pod_labels)
            plaintext = flow.plaintext
            if plaintext is None:  # auto mTLS: needs a client sidecar and a server that accepts mTLS
                plaintext = not (
                    src is not None
                    and src.dataplane is not Dataplane.NONE
                    and dest.dataplane is not Dataplane.NONE
                    and dest_mode.mode is not Mode.DISABLE
                )
            values = _counter(flow, times, end)
            if not values:
                continue
            metric = TCP_OPENED if flow.protocol == "tcp" else REQUESTS
            server_rejects = plaintext and dest_mode.everywhere(Mode.STRICT)
            if dest.dataplane is not Dataplane.NONE and not server_rejects:
                labels = self._server_labels(flow, src, dest, plaintext)
                if dest.namespace in self.peer_address_namespaces:
                    labels[PEER_LABEL] = peer_address(src)
                yield Series(metric, labels, values)
                if flow.rbac and dest.dataplane is Dataplane.SIDECAR and flow.protocol != "tcp":
                    yield from self._rbac_series(flow.rbac, dest, times, values)
            if src is not None and src.dataplane is Dataplane.SIDECAR:
                labels = self._client_labels(flow, src, dest, plaintext, server_rejects)
                yield Series(metric, labels, values)

    def _rbac_series(
        self, result: str, dest: MeshWorkload, times: list[datetime], values: list[tuple[datetime, float]]
    ) -> Iterator[Series]:
        """Envoy's RBAC counters on the destination's first pod: both exist (at 0) from the pod's start,
        and the flow's requests add to `result` (series() sums what several flows add)."""
        port = (dest.ports or (80,))[0]
        labels = {"namespace": dest.namespace, "pod": _running(dest, 1)[-1]["metadata"]["name"]}
        if dest.ref in self.rbac_legacy_names:
            metric = f"envoy_http_inbound_0_0_0_0_{port}_rbac"
        else:
            metric = "envoy_http_rbac"
            labels["http_conn_manager_prefix"] = f"inbound_0.0.0.0_{port}"
        for each in ("allowed", "denied"):
            yield Series(metric, {**labels, "authz_enforce_result": each}, [(t, 0.0) for t in times])
        yield Series(metric, {**labels, "authz_enforce_result": result}, values)

    def _principal(self, w: MeshWorkload) -> str:
        return f"spiffe://{self.trust_domain}/ns/{w.namespace}/sa/{w.name}"

    def _common(self, flow: Flow, dest: MeshWorkload) -> dict[str, str]:
        labels = {
            "destination_workload": dest.name,
            "destination_workload_namespace": dest.namespace,
            "destination_app": dest.name,
            "destination_cluster": self.cluster,
            "destination_service": f"{dest.name}.{dest.namespace}.svc.cluster.local",
            "destination_service_name": dest.name,
            "destination_service_namespace": dest.namespace,
            "request_protocol": flow.protocol,
            "response_flags": "-",
        }
        if flow.protocol != "tcp":
            labels["response_code"] = flow.response_code
            labels["grpc_response_status"] = "0" if flow.protocol == "grpc" else ""
        return labels

    def _server_labels(
        self, flow: Flow, src: MeshWorkload | None, dest: MeshWorkload, plaintext: bool
    ) -> dict[str, str]:
        labels = {"reporter": "destination", **self._common(flow, dest)}
        ambient = dest.dataplane is Dataplane.AMBIENT
        if ambient:  # ztunnel: names any in-cluster source by address; never "none"
            known = src is not None
            labels["connection_security_policy"] = "unknown" if plaintext else "mutual_tls"
        else:  # sidecar: peer metadata travels in HTTP headers only, or over mTLS for TCP
            known = src is not None and (
                not plaintext or (flow.protocol != "tcp" and src.dataplane is Dataplane.SIDECAR)
            )
            labels["connection_security_policy"] = "none" if plaintext else "mutual_tls"
        labels["source_workload"] = src.name if known and src else "unknown"
        labels["source_workload_namespace"] = src.namespace if known and src else "unknown"
        labels["source_app"] = src.name if known and src else "unknown"
        labels["source_cluster"] = self.cluster if known else "unknown"
        labels["source_principal"] = self._principal(src) if src and not plaintext else "unknown"
        labels["destination_principal"] = self._principal(dest) if not plaintext or ambient else "unknown"
        if flow.drop_security_label:
            del labels["connection_security_policy"]
        return labels

    def _client_labels(
        self, flow: Flow, src: MeshWorkload, dest: MeshWorkload, plaintext: bool, rejected: bool
    ) -> dict[str, str]:
        labels = {"reporter": "source", **self._common(flow, dest)}
        labels.update(
            source_workload=src.name,
            source_workload_namespace=src.namespace,
            source_app=src.name,
            source_cluster=self.cluster,
            source_principal="unknown" if plaintext else self._principal(src),
            destination_principal="unknown" if plaintext else self._principal(dest),
            connection_security_policy="unknown",
        )
        if rejected and flow.protocol != "tcp":
            labels.update(response_code="503", response_flags="UC")
        return labels

    def write_openmetrics(self, stream: IO[str], end: datetime, step: timedelta = timedelta(minutes=5)) -> None:
        """OpenMetrics for promtool, streamed: large meshes never hold the whole text in memory."""
        stream.writelines(openmetrics_lines(self.series(end, step)))


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    labels: dict[str, str]
    samples: list[tuple[datetime, float]]


def _counter(flow: Flow, times: list[datetime], end: datetime) -> list[tuple[datetime, float]]:
    """Cumulative counter samples; the series appears with the first request (as Envoy's do)."""
    start = end - flow.start if flow.start is not None else None
    stop = end - flow.stop if flow.stop is not None else None
    samples: list[tuple[datetime, float]] = []
    exact = 0.0
    previous = times[0]
    for t in times:
        active_from = max(previous, start) if start else previous
        active_to = min(t, stop) if stop else t
        if active_to > active_from:
            exact += flow.per_hour * (active_to - active_from).total_seconds() / 3600
        previous = t
        value = math.floor(exact + 1e-9)
        if value > 0 or samples:
            samples.append((t, float(value)))
    return samples


def openmetrics_lines(series: Iterator[Series]) -> Iterator[str]:
    """OpenMetrics text for `promtool tsdb create-blocks-from openmetrics` (one family block each)."""
    by_metric: dict[str, list[Series]] = {}
    for s in series:
        by_metric.setdefault(s.metric, []).append(s)
    for metric, group in by_metric.items():
        family = metric.removesuffix("_total")
        yield f"# TYPE {family} counter\n"
        for s in group:
            label_text = openmetrics_labels(s.labels)
            for t, value in s.samples:
                # 15 significant digits: `:g` would round a big counter to six
                yield f"{metric}{{{label_text}}} {value:.15g} {t.timestamp():.3f}\n"
    yield "# EOF\n"


def openmetrics_labels(labels: dict[str, str]) -> str:
    """`k="v",...` in a stable order, values escaped as the exposition format requires."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _deployment(w: MeshWorkload) -> dict:
    pod_meta: dict = {"labels": w.pod_labels}
    if w.dataplane is Dataplane.SIDECAR:
        pod_meta["annotations"] = {"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'}
    elif w.dataplane is Dataplane.AMBIENT:
        pod_meta["labels"] = {**w.pod_labels, "istio.io/dataplane-mode": "ambient"}
    else:  # opted out, as a Job or an ingress controller in an injected namespace would be
        pod_meta["labels"] = {**w.pod_labels, "sidecar.istio.io/inject": "false"}
    if w.rewrite_probes is not None:
        pod_meta.setdefault("annotations", {})[REWRITE] = "true" if w.rewrite_probes else "false"
    container: dict = {"name": w.name, "image": f"example/{w.name}", "ports": [{"containerPort": p} for p in w.ports]}
    for probe, handler, port, period in w.probes:
        action: dict[str, dict] = {
            "http": {"httpGet": {"path": "/healthz", "port": port}},
            "tcp": {"tcpSocket": {"port": port}},
            "grpc": {"grpc": {"port": port}},
        }
        container[f"{probe}Probe"] = {**action[handler], "periodSeconds": period}
    pod_spec: dict = {"serviceAccountName": w.name, "containers": [container]}
    if w.host_network:
        pod_spec["hostNetwork"] = True
    spec: dict = {"selector": {"matchLabels": {"app": w.name}}, "template": {"metadata": pod_meta, "spec": pod_spec}}
    if w.kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": w.name, "namespace": w.namespace, "creationTimestamp": CREATED, **pod_meta},
            "spec": pod_spec,
        }
    if w.kind == "CronJob":
        spec = {"schedule": w.schedule, "jobTemplate": {"spec": {"template": spec["template"]}}}
        api = "batch/v1"
    elif w.kind == "Job":
        spec = {"template": spec["template"]}
        api = "batch/v1"
    else:
        api = "apps/v1"
    return {
        "apiVersion": api,
        "kind": w.kind,
        "metadata": {"name": w.name, "namespace": w.namespace, "creationTimestamp": CREATED},
        "spec": spec,
    }


def peer_authentication(
    namespace: str,
    name: str,
    mode: str | None,
    *,
    selector: dict[str, str] | None = None,
    ports: dict[int, str] | None = None,
    created: str = CREATED,
) -> dict:
    """A PeerAuthentication manifest, as a user would write it."""
    spec: dict = {}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if mode:
        spec["mtls"] = {"mode": mode}
    if ports:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec,
    }


def destination_rule_disable(namespace: str, name: str, host: str) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"host": host, "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
    }


# -- what the controllers and the injector make of a workload ----------------------------------

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated name suffixes
CRONJOB_RUN = 29_400_180  # minutes since the epoch of a 2025 run: CronJob Jobs are <name>-<minutes>


def _suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def _uid(obj: dict) -> str:
    meta = obj["metadata"]
    digest = hashlib.sha256(f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _owner(obj: dict) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _object(api: str, kind: str, name: str, namespace: str, manager: str, **extra: object) -> dict:
    obj: dict = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        **extra,
    }
    obj["metadata"]["uid"] = _uid(obj)
    obj["metadata"]["managedFields"] = [
        {"manager": manager, "operation": "Update", "apiVersion": api, "time": CREATED, "fieldsType": "FieldsV1"}
    ]
    return obj


def _pod(w: MeshWorkload, template: dict, name: str, owner: dict | None, extra_labels: dict[str, str]) -> dict:
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels = {**(meta.get("labels") or {}), **extra_labels}
    annotations = dict(meta.get("annotations") or {})
    containers = [
        {**c, "env": [{"name": "LOG_LEVEL", "value": "info"}], "args": ["--port", str((w.ports or (0,))[0])]}
        for c in spec.get("containers") or []
    ]
    init: list[dict] = []
    proxy = {
        "name": "istio-proxy",
        "image": "docker.io/istio/proxyv2:1.27.0",
        "args": ["proxy", "sidecar"],
        "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "env": [{"name": "ISTIO_META_WORKLOAD_NAME", "value": w.name}],
    }
    if w.dataplane is Dataplane.SIDECAR:
        labels.update({"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": w.name})
        if w.kind in ("StatefulSet", "Job", "CronJob"):  # native sidecar (Kubernetes >= 1.29): lets Jobs finish
            init.append({**proxy, "restartPolicy": "Always"})
            status = '{"initContainers":["istio-validation","istio-proxy"],"containers":null}'
        else:
            containers.append(proxy)
            status = '{"initContainers":["istio-validation"],"containers":["istio-proxy"]}'
        annotations["sidecar.istio.io/status"] = status
    elif w.dataplane is Dataplane.AMBIENT:
        annotations["ambient.istio.io/redirection"] = "enabled"
    pod = _object("v1", "Pod", name, w.namespace, "kubelet")
    pod["metadata"].update(labels=labels, annotations=annotations)
    if owner is not None:
        pod["metadata"]["ownerReferences"] = [owner]
    pod["spec"] = {"serviceAccountName": spec.get("serviceAccountName", "default"), "containers": containers}
    pod["spec"]["nodeName"] = NODE
    if spec.get("hostNetwork"):
        pod["spec"]["hostNetwork"] = True
    if init:
        pod["spec"]["initContainers"] = init
    ip = NODE_IP if spec.get("hostNetwork") else pod_ip(w, name)
    pod["status"] = {
        "phase": "Succeeded" if w.kind in ("Job", "CronJob") else "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
    }
    return pod


def pod_ip(w: MeshWorkload, pod_name: str) -> str:
    """The address of one pod: the workload's own list in pod order, else derived from the name."""
    if w.pod_ips:
        return w.pod_ips[int(hashlib.sha256(pod_name.encode()).hexdigest(), 16) % len(w.pod_ips)]
    digest = hashlib.sha256(f"{w.ref}/{pod_name}".encode()).digest()
    return f"10.{16 + digest[0] % 16}.{digest[1]}.{1 + digest[2] % 254}"


def peer_address(src: MeshWorkload | None) -> str:
    """source.address as Envoy writes it (ip:port) for a flow's caller: its first pod."""
    if src is None:
        return f"{OUTSIDE}:40000"
    if src.host_network:
        return f"{NODE_IP}:40000"
    first = _running(src, 1)[-1]["status"]["podIP"]
    return f"{first}:40000"


def node_object() -> dict:
    """The one node every sample pod runs on."""
    node = _object("v1", "Node", NODE, "", "kubelet")
    del node["metadata"]["namespace"]
    node["status"] = {"addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE}]}
    return node


def _running(w: MeshWorkload, replicas: int) -> list[dict]:
    """The controller objects and pods of one workload, as a cluster holds them."""
    manifest = _deployment(w)
    if w.kind == "Pod":
        return [_pod(w, {"metadata": manifest["metadata"], "spec": manifest["spec"]}, w.name, None, {})]
    controller = _object(manifest["apiVersion"], w.kind, w.name, w.namespace, "kubectl", spec=manifest["spec"])
    if w.kind == "CronJob":
        template = manifest["spec"]["jobTemplate"]["spec"]["template"]
    else:
        template = manifest["spec"]["template"]
    objects = [controller]
    if w.kind == "Deployment":
        pod_hash = _suffix(f"{w.ref}/template", 10)
        rs = _object(
            "apps/v1",
            "ReplicaSet",
            f"{w.name}-{pod_hash}",
            w.namespace,
            "kube-controller-manager",
            spec={"replicas": replicas, "template": template},
        )
        rs["metadata"]["labels"] = {**w.pod_labels, "pod-template-hash": pod_hash}
        rs["metadata"]["ownerReferences"] = [_owner(controller)]
        objects.append(rs)
        for i in range(replicas):
            name = f"{rs['metadata']['name']}-{_suffix(f'{w.ref}/{i}', 5)}"
            objects.append(_pod(w, template, name, _owner(rs), {"pod-template-hash": pod_hash}))
    elif w.kind == "StatefulSet":
        revision = f"{w.name}-{_suffix(f'{w.ref}/revision', 10)}"
        for i in range(replicas):
            labels = {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{w.name}-{i}"}
            objects.append(_pod(w, template, f"{w.name}-{i}", _owner(controller), labels))
    elif w.kind == "DaemonSet":
        for i in range(replicas):
            name = f"{w.name}-{_suffix(f'{w.ref}/{i}', 5)}"
            objects.append(_pod(w, template, name, _owner(controller), {"pod-template-generation": "1"}))
    elif w.kind in ("CronJob", "Job"):
        # A CronJob keeps its last runs (successfulJobsHistoryLimit); each Job ran one pod.
        runs = [f"{w.name}-{CRONJOB_RUN - 1440 * i}" for i in range(replicas)] if w.kind == "CronJob" else [w.name]
        for job_name in runs:
            job = _object(
                "batch/v1", "Job", job_name, w.namespace, "kube-controller-manager", spec={"template": template}
            )
            if w.kind == "CronJob":
                job["metadata"]["ownerReferences"] = [_owner(controller)]
                objects.append(job)
            else:
                objects[0] = job  # the Job is the controller itself
            job_labels = {"batch.kubernetes.io/job-name": job_name, "job-name": job_name}
            objects.append(_pod(w, template, f"{job_name}-{_suffix(job_name, 5)}", _owner(job), job_labels))
    return objects
