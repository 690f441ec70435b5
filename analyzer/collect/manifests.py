"""Kubernetes objects (as plain dicts) to model objects.

Shared by every inventory source: policy files, the live cluster and the sample mesh all
produce the same dicts, so they cannot disagree on how an object is read. Each object is first
validated against its typed shape (`schemas`); one path turns any validation error into one
warning naming the object, and the object is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from analyzer.collect import client_facts, schemas
from analyzer.collect.schemas import Metadata, PodMetadata, PodSpec, WorkloadObject
from analyzer.config import ReportConfig
from analyzer.model.authorization import AuthorizationPolicy
from analyzer.model.inventory import Dataplane, Inventory, Namespace, Workload
from analyzer.model.observability import MetricsOverride, MetricsRule, Service, ServicePort, Telemetry
from analyzer.model.policy import DestinationRule, Mode, PeerAuthentication

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REASON = 240
WORKLOAD_KINDS = set(schemas.WORKLOAD_SHAPES)
PEER_AUTH_GROUP = "security.istio.io"
DEST_RULE_GROUP = "networking.istio.io"
# istio/istio pkg/kube/util.go: a Job named <cronjob>-<8..10 digit timestamp> belongs to a CronJob.
_CRONJOB_JOB = re.compile(r"^(.+)-\d{8,10}$")
ROOT_NAMESPACE = ReportConfig().root_namespace  # callers with settings pass theirs
TELEMETRY_GROUP = "telemetry.istio.io"
EXCLUDE_INBOUND = "traffic.sidecar.istio.io/excludeInboundPorts"
INCLUDE_INBOUND = "traffic.sidecar.istio.io/includeInboundPorts"
_Shape = TypeVar("_Shape", bound=schemas.Shape)


class ObjectError(ValueError):
    """One object could not be read; it is reported and skipped."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A document of an input that holds no readable object (a list, a scalar, an alias bomb).

    Sources yield it in place of an object so the one reader reports it with everything else."""

    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth a warning about an input that is still read (e.g. a duplicate YAML key)."""

    text: str


Item = dict | Unreadable | Notice


def validate(shape: type[_Shape], obj: Any) -> _Shape:
    """The one path from a malformed object to ObjectError: a short field path and what was expected."""
    try:
        return shape.model_validate(obj)
    except ValidationError as exc:
        raise ObjectError(schemas.describe(exc)) from None
    except RecursionError:  # a self-referencing document (YAML aliases)
        raise ObjectError("the object refers to itself") from None


def _created(meta: Metadata) -> datetime:
    value = meta.creationTimestamp
    if value is None:
        return EPOCH  # hand-written manifests have none; ties then fall to the name
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ref(obj: Any) -> str:
    """`Kind namespace/name` of a possibly malformed object, bounded and printable."""
    if not isinstance(obj, dict):
        return "object"
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    name = meta.get("name")
    namespace = meta.get("namespace")
    where = f"{schemas.short(namespace, 63)}/" if isinstance(namespace, str) and namespace else ""
    return f"{schemas.short(kind)} {where}{schemas.short(name, 253) if isinstance(name, str) and name else '?'}"


def _selector(value: schemas.WorkloadSelector | None) -> dict[str, str]:
    return dict(value.matchLabels or {}) if value else {}


def read_peer_authentication(obj: Any, default_namespace: str = "default") -> tuple[PeerAuthentication, list[str]]:
    """The policy and what is worth a warning about it (fields Istio ignores)."""
    shape = validate(schemas.PeerAuthenticationObject, obj)
    meta, spec = shape.metadata, shape.spec or schemas.PeerAuthenticationSpec()
    notes = []
    if spec.selector is not None and spec.selector.matchExpressions is not None:
        notes.append(
            "selector.matchExpressions is ignored: a PeerAuthentication selects with matchLabels only"
            + ("" if spec.selector.matchLabels else ", so this policy applies to the whole namespace")
        )
    policy = PeerAuthentication(
        namespace=meta.namespace or default_namespace,
        name=meta.name,
        created=_created(meta),
        selector=_selector(spec.selector),
        mode=(spec.mtls.mode if spec.mtls else None) or Mode.UNSET,
        port_modes={port: (s.mode if s else None) or Mode.UNSET for port, s in (spec.portLevelMtls or {}).items()},
    )
    return policy, notes


def peer_authentication(obj: Any, default_namespace: str = "default") -> PeerAuthentication:
    return read_peer_authentication(obj, default_namespace)[0]


def destination_rule(obj: Any, default_namespace: str = "default") -> DestinationRule:
    shape = validate(schemas.DestinationRuleObject, obj)
    meta, spec = shape.metadata, shape.spec
    policy = spec.trafficPolicy or schemas.TrafficPolicy()
    ports: dict[int, str | None] = {}
    for entry in policy.portLevelSettings or []:
        if entry.port is not None and entry.port.number is not None:
            # A matching port entry replaces the top-level policy: no tls there means auto mTLS.
            ports[entry.port.number] = entry.tls.mode if entry.tls else None
    return DestinationRule(
        namespace=meta.namespace or default_namespace,
        name=meta.name,
        created=_created(meta),
        host=spec.host,
        tls_mode=policy.tls.mode if policy.tls else None,
        port_tls_modes=ports,
        workload_selector=_selector(spec.workloadSelector),
        export_to=tuple(spec.exportTo or ()),
    )


def namespace(obj: Any) -> Namespace:
    meta = validate(schemas.NamespaceObject, obj).metadata
    return Namespace(name=meta.name, labels=dict(meta.labels or {}))


def _injected(labels: dict, annotations: dict, ns_labels: dict) -> bool:
    """Would the sidecar injector inject this pod template?

    First, whether the API server calls the injector at all: the four webhooks of istio's
    mutatingwebhook.yaml select on labels only (namespace `istio-injection=enabled`; namespace
    `istio.io/rev`; pod `istio.io/rev`; pod `sidecar.istio.io/inject=true`). Then the injector's
    injectRequired: the pod label wins over the legacy annotation, empty means yes, and only
    y/yes/true/on (any case) mean yes.
    """
    pod_inject = labels.get("sidecar.istio.io/inject")
    if "istio-injection" in ns_labels:
        called = ns_labels["istio-injection"] == "enabled" and pod_inject != "false"
    elif "istio.io/rev" in ns_labels or "istio.io/rev" in labels:
        called = pod_inject != "false"
    else:
        called = pod_inject == "true"
    value = pod_inject if pod_inject is not None else annotations.get("sidecar.istio.io/inject", "")
    return called and (value == "" or str(value).lower() in {"y", "yes", "true", "on"})


# Gateways, waypoints and ztunnel run a container named istio-proxy too, but PeerAuthentication
# does not govern their listeners (Gateway TLS settings do), so they are not sidecars.
_GATEWAY_LABELS = ("gateway.networking.k8s.io/gateway-name", "gateway.istio.io/managed", "istio.io/gateway-name")


def _istio_infrastructure(labels: dict, annotations: dict) -> bool:
    return (
        any(key in labels for key in _GATEWAY_LABELS)
        or labels.get("istio") in {"ingressgateway", "egressgateway", "eastwestgateway"}
        or labels.get("app") == "ztunnel"
        or "gateway" in str(annotations.get("inject.istio.io/templates", "")).split(",")
    )


def dataplane(pod_meta: PodMetadata, pod_spec: PodSpec, ns: Namespace | None, *, running_pod: bool) -> Dataplane:
    """Sidecar, ambient, gateway (Istio's own proxies) or none.

    A running pod is judged by what it has (the injector's status annotation or an istio-proxy
    container); a template by whether the injector would act on it.
    """
    labels = pod_meta.labels or {}
    annotations = pod_meta.annotations or {}
    containers = [*(pod_spec.containers or []), *(pod_spec.initContainers or [])]
    if _istio_infrastructure(labels, annotations):
        return Dataplane.GATEWAY
    if "sidecar.istio.io/status" in annotations or any(c.name == "istio-proxy" for c in containers):
        return Dataplane.SIDECAR
    if pod_spec.hostNetwork:
        return Dataplane.NONE  # neither the injector nor istio-cni touches host-network pods
    if not running_pod and _injected(labels, annotations, ns.labels if ns else {}):
        return Dataplane.SIDECAR
    if annotations.get("ambient.istio.io/redirection") == "enabled":
        return Dataplane.AMBIENT
    if not running_pod:
        mode = labels.get("istio.io/dataplane-mode")
        if mode == "ambient" or (mode != "none" and ns is not None and ns.ambient_enabled):
            return Dataplane.AMBIENT
    return Dataplane.NONE


# ReplicaSets by (namespace, name): a pod's owner, to name the Deployment behind it.
Owners = dict[tuple[str, str], Metadata]


def workload_identity(kind: str, meta: Metadata, owners: Owners | None = None) -> tuple[str, str]:
    """(kind, name) of the workload as Istio names it in metrics (WORKLOAD_NAME)."""
    name = meta.name
    if kind == "ReplicaSet" or kind == "Pod":
        ref_ = next((r for r in meta.ownerReferences or [] if r.controller), None)
        if ref_ is None:
            return kind, name
        owner_kind, owner_name = ref_.kind, ref_.name
        if owner_kind == "ReplicaSet":
            owner = (owners or {}).get((meta.namespace or "", owner_name))
            if owner is not None and owner is not meta:
                return workload_identity("ReplicaSet", owner, None)
            # Without the ReplicaSet, strip the pod-template-hash suffix as istio does.
            template_hash = (meta.labels or {}).get("pod-template-hash")
            if template_hash and owner_name.endswith("-" + template_hash):
                return "Deployment", owner_name[: -len(template_hash) - 1]
            return "ReplicaSet", owner_name
        if owner_kind == "Job":
            match = _CRONJOB_JOB.match(owner_name)
            return ("CronJob", match.group(1)) if match else ("Job", owner_name)
        return owner_kind, owner_name
    if kind == "Job":
        match = _CRONJOB_JOB.match(name)
        cronjob = next((r for r in meta.ownerReferences or [] if r.kind == "CronJob"), None)
        if cronjob is not None:
            return "CronJob", cronjob.name or name
        return ("CronJob", match.group(1)) if match else ("Job", name)
    return kind, name


def _ports(pod_spec: PodSpec) -> tuple[int, ...]:
    ports = {
        p.containerPort
        for c in pod_spec.containers or []
        if c.name != "istio-proxy"
        for p in c.ports or []
        if p.containerPort is not None
    }
    return tuple(sorted(ports))


def read_workload(obj: Any) -> tuple[str, WorkloadObject]:
    """(kind, typed object) of a workload; ObjectError when its shape is wrong."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if not isinstance(kind, str) or kind not in schemas.WORKLOAD_SHAPES:
        raise ObjectError("not a workload kind")
    return kind, validate(schemas.WORKLOAD_SHAPES[kind], obj)


def workload(
    obj: Any,
    namespaces: dict[str, Namespace],
    *,
    owners: Owners | None = None,
    default_namespace: str = "default",
    cluster: str = "",
) -> Workload:
    kind, shape = read_workload(obj)
    return _workload(kind, shape, namespaces, owners, default_namespace, cluster)


def _workload(
    kind: str,
    shape: WorkloadObject,
    namespaces: dict[str, Namespace],
    owners: Owners | None,
    default_namespace: str,
    cluster: str,
) -> Workload:
    ns_name = shape.metadata.namespace or default_namespace
    identity_kind, name = workload_identity(kind, shape.metadata, owners)
    pod_meta, pod_spec = schemas.pod_template(shape)
    return Workload(
        namespace=ns_name,
        name=name,
        kind=identity_kind,
        labels=dict(pod_meta.labels or {}),
        dataplane=dataplane(pod_meta, pod_spec, namespaces.get(ns_name), running_pod=kind == "Pod"),
        ports=_ports(pod_spec),
        service_account=pod_spec.serviceAccountName or "default",
        cluster=cluster,
        host_network=bool(pod_spec.hostNetwork),
        exclude_inbound_ports=(pod_meta.annotations or {}).get(EXCLUDE_INBOUND),
        include_inbound_ports=(pod_meta.annotations or {}).get(INCLUDE_INBOUND),
    )


def _live(pod: schemas.PodObject) -> bool:
    """A pod Prometheus should be scraping: not finished (Istio's sample job drops Succeeded/Failed)."""
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed")


def service(obj: Any, default_namespace: str = "default") -> Service:
    shape = validate(schemas.ServiceObject, obj)
    spec = shape.spec or schemas.ServiceSpec()
    return Service(
        namespace=shape.metadata.namespace or default_namespace,
        name=shape.metadata.name,
        type=spec.type or "ClusterIP",
        headless=spec.clusterIP == "None",
        selector=dict(spec.selector or {}),
        ports=tuple(ServicePort(p.port, p.targetPort or "", p.name or "") for p in spec.ports or []),
    )


def telemetry(obj: Any, default_namespace: str = "default") -> Telemetry:
    shape = validate(schemas.TelemetryObject, obj)
    spec = shape.spec or schemas.TelemetrySpec()
    rules = []
    for entry in spec.metrics or []:
        overrides = []
        for o in entry.overrides or []:
            match = o.match or schemas.MetricSelector()
            removed = tuple(
                sorted(k for k, v in (o.tagOverrides or {}).items() if v is not None and v.operation == "REMOVE")
            )
            overrides.append(
                MetricsOverride(
                    # A custom metric is none of the standard ones we read.
                    metric=match.metric or ("CUSTOM" if match.customMetric else "ALL_METRICS"),
                    mode=match.mode or "CLIENT_AND_SERVER",
                    disabled=bool(o.disabled),
                    removed_tags=removed,
                )
            )
        rules.append(MetricsRule(tuple(p.name for p in entry.providers or []), tuple(overrides)))
    return Telemetry(
        namespace=shape.metadata.namespace or default_namespace,
        name=shape.metadata.name,
        selector=_selector(spec.selector),
        has_target_refs=bool(spec.targetRefs) or spec.targetRef is not None,
        metrics=tuple(rules),
    )


def _group(obj: dict) -> str:
    api = obj.get("apiVersion")
    return api.split("/")[0] if isinstance(api, str) else ""


def _pa_namespace(obj: dict, default_namespace: str) -> str | None:
    """The namespace an unreadable PeerAuthentication would govern, or None when even that is unreadable."""
    meta = obj.get("metadata")
    if meta is None:
        return default_namespace
    if not isinstance(meta, dict):
        return None
    namespace = meta.get("namespace")
    if namespace is None or namespace == "":
        return default_namespace
    return namespace if isinstance(namespace, str) else None


def _doubt_unread_policy(inv: Inventory, unscoped: list[str], obj: dict, why: str, default_namespace: str) -> None:
    scope = _pa_namespace(obj, default_namespace)
    reason = f"PeerAuthentication {ref(obj).split(' ', 1)[1]} could not be read ({why})"
    if scope is None:
        unscoped.append(reason)
    else:
        inv.policy_doubts.setdefault(scope, []).append(reason)


# A snapshot taken without the right to list AuthorizationPolicies says so in a document of this
# kind, so reading it back never takes "none listed" for "none exist".
UNAVAILABLE_KIND = "MtlsReadinessUnavailable"


def read_authorization_policy(obj: Any, default_namespace: str = "default") -> tuple[AuthorizationPolicy, list[str]]:
    """The AuthorizationPolicy and what is worth a warning about it; ObjectError when malformed."""
    from analyzer.collect.authorization import read_authorization_policy as read

    return read(obj, default_namespace, validate, _created)


def _authorization_policy(inv: Inventory, obj: dict, origin: str, default_namespace: str, root: str) -> None:
    try:
        policy, notes = read_authorization_policy(obj, default_namespace)
    except ObjectError as exc:
        scope = _pa_namespace(obj, default_namespace) or root
        inv.authz_doubts.setdefault(scope, []).append(
            f"AuthorizationPolicy {ref(obj).split(' ', 1)[1]} could not be read ({exc})"
        )
        raise
    inv.authorization_policies.append(policy)
    inv.warnings += [f"{origin}: {ref(obj)}: {note}" for note in notes]


def build_inventory(
    objects: Iterable[tuple[Item, str]],
    *,
    cluster: str = "",
    default_namespace: str = "default",
    root_namespace: str = ROOT_NAMESPACE,
) -> Inventory:
    """Read (object, origin) pairs into an Inventory; each bad object is one line in `problems`.

    A PeerAuthentication that cannot be read might be the one deciding its namespace's mode (the
    oldest), so its namespace (the whole mesh for the root namespace) gets a policy doubt. When not
    even its namespace (or the document) can be read, the root namespace gets it: the whole mesh."""
    inv = Inventory()
    pending: list[tuple[str, WorkloadObject]] = []
    owners: Owners = {}
    unscoped: list[str] = []
    facts: list[tuple[str, dict, str]] = []  # read again for attribution (client_facts)
    for obj, origin in objects:
        if isinstance(obj, Notice):
            inv.warnings.append(f"{origin}: {obj.text}")
            continue
        if isinstance(obj, Unreadable):
            inv.problems.append(f"{origin}: skipped: {obj.reason}")
            unscoped.append(f"{origin} could not be read ({obj.reason}); it may hold a PeerAuthentication")
            inv.authz_doubts.setdefault(root_namespace, []).append(
                f"{origin} could not be read ({obj.reason}); it may hold an AuthorizationPolicy"
            )
            continue
        kind = obj.get("kind") if isinstance(obj, dict) else None
        try:
            if kind == "PeerAuthentication" and not isinstance(obj.get("apiVersion"), str):
                _doubt_unread_policy(inv, unscoped, obj, "apiVersion is missing or not a string", default_namespace)
            if not isinstance(kind, str) or not kind:
                raise ObjectError("kind is missing or not a string")
            if kind == "AuthorizationPolicy" and not isinstance(obj.get("apiVersion"), str):
                scope = _pa_namespace(obj, default_namespace) or root_namespace
                inv.authz_doubts.setdefault(scope, []).append(f"{ref(obj)} could not be read (no apiVersion)")
            if kind in ("PeerAuthentication", "DestinationRule", "AuthorizationPolicy") and not isinstance(
                obj.get("apiVersion"), str
            ):
                raise ObjectError("apiVersion is missing or not a string")  # whose policy it is cannot be told
            if kind == "Namespace":
                ns = namespace(obj)
                inv.namespaces[ns.name] = ns
            elif kind == "PeerAuthentication" and _group(obj) == PEER_AUTH_GROUP:
                try:
                    policy, notes = read_peer_authentication(obj, default_namespace)
                except ObjectError as exc:
                    _doubt_unread_policy(inv, unscoped, obj, str(exc), default_namespace)
                    raise
                inv.peer_authentications.append(policy)
                inv.warnings += [f"{origin}: {ref(obj)}: {note}" for note in notes]
            elif kind == "AuthorizationPolicy" and _group(obj) == PEER_AUTH_GROUP:
                _authorization_policy(inv, obj, origin, default_namespace, root_namespace)
            elif kind == UNAVAILABLE_KIND and obj.get("resource") == "authorizationpolicies":
                inv.authz_unavailable = schemas.short(obj.get("reason") or "not listed", MAX_REASON)
            elif kind == "DestinationRule" and _group(obj) == DEST_RULE_GROUP:
                inv.destination_rules.append(destination_rule(obj, default_namespace))
            elif kind == "Service" and _group(obj) in ("", "v1"):
                inv.services.append(service(obj, default_namespace))
            elif kind == "Telemetry" and _group(obj) == TELEMETRY_GROUP:
                try:
                    inv.telemetries.append(telemetry(obj, default_namespace))
                except ObjectError as exc:
                    # It may disable the metrics its namespace's verdicts rest on (the whole mesh
                    # from the root namespace): those verdicts cannot be READY.
                    scope = _pa_namespace(obj, default_namespace) or root_namespace
                    inv.policy_doubts.setdefault(scope, []).append(
                        f"Telemetry {ref(obj).split(' ', 1)[1]} could not be read ({exc}); it may disable metrics"
                    )
                    raise
            elif kind == "Node":
                facts.append((kind, obj, origin))
            elif kind in WORKLOAD_KINDS:
                kind, shape = read_workload(obj)
                pending.append((kind, shape))
                facts.append((kind, obj, origin))
                if kind == "ReplicaSet":
                    owners[(shape.metadata.namespace or "", shape.metadata.name)] = shape.metadata
        except ObjectError as exc:
            inv.problems.append(f"{origin}: skipped {ref(obj)}: {exc}")
    # Workloads last: they need namespace labels (injection) and their owners. Pods come first
    # because they show what really runs; a ReplicaSet or Job folds into its owner's name.
    for kind, shape in sorted(pending, key=lambda item: item[0] != "Pod"):
        found = _workload(kind, shape, inv.namespaces, owners, default_namespace, cluster)
        inv.add_workload(found)
        if isinstance(shape, schemas.PodObject) and _live(shape):
            inv.pod_workloads[(found.namespace, shape.metadata.name)] = found.key
    if unscoped:
        inv.policy_doubts.setdefault(root_namespace, []).extend(unscoped)
    inv.clients, problems = client_facts.read_facts(facts, _identity(inv, owners, default_namespace))
    inv.problems += problems
    return inv


def _identity(inv: Inventory, owners: Owners, default_namespace: str) -> client_facts.Identity:
    """(namespace, Istio workload name, meshed) of an object already read as a workload."""

    def identity(kind: str, obj: Any) -> tuple[str, str, bool]:
        shape = validate(schemas.WORKLOAD_SHAPES[kind], obj)
        namespace = shape.metadata.namespace or default_namespace
        name = workload_identity(kind, shape.metadata, owners)[1]
        found = inv.workload(namespace, name)
        return namespace, name, bool(found and found.meshed)

    return identity
