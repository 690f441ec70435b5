"""Pod and node addresses, probes, replicas, Jobs and CronJobs: the inventory half of attribution.

Read from the same objects as the inventory (cluster, snapshot, YAML, sample mesh). Each object's
fields are checked against a typed shape; a bad field is one warning naming the object, and only
its attribution facts are skipped (the workload itself is still read by `manifests`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from analyzer.collect import schemas
from analyzer.collect.schemas import Shape, Text
from analyzer.model.clients import ClientInventory, CronSchedule, JobRun, NodeFacts, PodFacts, Probe, WorkloadFacts

FACT_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Node"}
REWRITE = "sidecar.istio.io/rewriteAppHTTPProbers"
_PROBE_FIELDS = (("livenessProbe", "liveness"), ("readinessProbe", "readiness"), ("startupProbe", "startup"))


class _PortRef(Shape):
    port: int | str | None = None


class _ProbeShape(Shape):
    httpGet: _PortRef | None = None
    tcpSocket: _PortRef | None = None
    grpc: _PortRef | None = None
    periodSeconds: int | None = None


class _NamedPort(Shape):
    name: str | None = None
    containerPort: int | None = None


class _ContainerShape(Shape):
    name: str = ""
    ports: list[_NamedPort] | None = None
    livenessProbe: _ProbeShape | None = None
    readinessProbe: _ProbeShape | None = None
    startupProbe: _ProbeShape | None = None


class _PodSpecShape(Shape):
    containers: list[_ContainerShape] | None = None
    hostNetwork: bool | None = None
    nodeName: str | None = None


class _PodIP(Shape):
    ip: str = ""


class _PodStatus(Shape):
    podIP: str | None = None
    podIPs: list[_PodIP] | None = None
    phase: str | None = None


class _Template(Shape):
    metadata: schemas.PodMetadata | None = None
    spec: _PodSpecShape | None = None


class _ControllerSpec(Shape):
    replicas: int | None = None
    template: _Template | None = None
    schedule: Text | None = None  # CronJob
    timeZone: str | None = None
    suspend: bool | None = None
    jobTemplate: dict[str, Any] | None = None


class _JobStatus(Shape):
    startTime: datetime | None = None
    completionTime: datetime | None = None


class _Address(Shape):
    type: str = ""
    address: str = ""


class _NodeStatus(Shape):
    addresses: list[_Address] | None = None


class _Object(Shape):
    metadata: schemas.Metadata
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def probes(spec: _PodSpecShape) -> tuple[Probe, ...]:
    out = []
    for c in spec.containers or []:
        if c.name == "istio-proxy":
            continue
        named = {p.name: p.containerPort for p in c.ports or [] if p.name and p.containerPort}
        for attr, kind in _PROBE_FIELDS:
            probe: _ProbeShape | None = getattr(c, attr)
            if probe is None:
                continue
            for handler, ref in (("http", probe.httpGet), ("tcp", probe.tcpSocket), ("grpc", probe.grpc)):
                if ref is None:
                    continue
                port = ref.port if isinstance(ref.port, int) else named.get(str(ref.port))
                out.append(Probe(c.name, kind, handler, port, float(probe.periodSeconds or 10)))
    return tuple(out)


def _rewrite(meta: schemas.PodMetadata | schemas.Metadata | None) -> bool | None:
    value = ((meta.annotations if meta else None) or {}).get(REWRITE)
    return None if value is None else str(value).lower() == "true"


Identity = Callable[[str, Any], tuple[str, str, bool]]  # (kind, raw object) -> (namespace, workload, meshed)


def read_facts(objects: list[tuple[str, dict, str]], identity: Identity) -> tuple[ClientInventory, list[str]]:
    """The attribution facts of (kind, object, origin) triples, and one warning per unreadable object."""
    facts = ClientInventory()
    problems: list[str] = []
    templates: dict[tuple[str, str], WorkloadFacts] = {}
    pod_probes: dict[tuple[str, str], tuple[Probe, ...]] = {}
    pod_rewrite: dict[tuple[str, str], bool | None] = {}
    running: dict[tuple[str, str], int] = defaultdict(int)
    for kind, obj, origin in objects:
        try:
            shape = _Object.model_validate(obj)
            meta, spec, status = shape.metadata, shape.spec or {}, shape.status or {}
            if kind == "Node":
                node_status = _NodeStatus.model_validate(status)
                addresses = tuple(a.address for a in node_status.addresses or [] if a.address)
                facts.nodes.append(NodeFacts(meta.name, addresses))
                continue
            namespace, workload, meshed = identity(kind, obj)
            if kind == "Pod":
                pod_spec = _PodSpecShape.model_validate(spec)
                pod_status = _PodStatus.model_validate(status)
                ips = tuple(dict.fromkeys([*(p.ip for p in pod_status.podIPs or [] if p.ip), pod_status.podIP or ""]))
                facts.pods.append(
                    PodFacts(
                        namespace,
                        meta.name,
                        workload,
                        tuple(ip for ip in ips if ip),
                        bool(pod_spec.hostNetwork),
                        pod_spec.nodeName or "",
                        meshed,
                    )
                )
                if pod_status.phase in (None, "Running", "Pending"):
                    running[(namespace, workload)] += 1
                pod_probes.setdefault((namespace, workload), probes(pod_spec))
                pod_rewrite.setdefault((namespace, workload), _rewrite(meta))
                continue
            controller = _ControllerSpec.model_validate(spec)
            if kind == "Job":
                job_status = _JobStatus.model_validate(status)
                facts.jobs.append(
                    JobRun(namespace, meta.name, workload, _utc(job_status.startTime), _utc(job_status.completionTime))
                )
            if kind == "CronJob" and controller.schedule:
                facts.cronjobs.append(
                    CronSchedule(
                        namespace, meta.name, controller.schedule, controller.timeZone, bool(controller.suspend)
                    )
                )
            template = controller.template
            if kind == "CronJob":
                job_spec = (controller.jobTemplate or {}).get("spec") or {}
                template = _ControllerSpec.model_validate(job_spec).template
            if template is not None and template.spec is not None and (namespace, workload) not in templates:
                replicas = controller.replicas if controller.replicas is not None else 1
                templates[(namespace, workload)] = WorkloadFacts(
                    namespace, workload, replicas, probes(template.spec), _rewrite(template.metadata)
                )
        except ValidationError as exc:
            problems.append(f"{origin}: attribution facts of {kind} {_name(obj)} skipped: {schemas.describe(exc)}")
    for key in {*templates, *pod_probes}:
        base = templates.get(key)
        found_probes = pod_probes.get(key, base.probes if base else ())
        rewrite = pod_rewrite.get(key, base.rewrite_probes if base else None) if key in pod_probes else None
        if base is not None and key not in pod_probes:
            rewrite = base.rewrite_probes
        replicas = running[key] if running.get(key) else (base.replicas if base else 1)
        facts.workloads[key] = WorkloadFacts(key[0], key[1], replicas, found_probes, rewrite)
    return facts, problems


def _name(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    where = f"{schemas.short(namespace, 63)}/" if isinstance(namespace, str) and namespace else ""
    return f"{where}{schemas.short(name, 253) if isinstance(name, str) else '?'}"
