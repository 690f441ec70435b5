"""Kubernetes objects (as plain dicts) to model objects.

Shared by every inventory source: policy files, the live cluster and the sample mesh all
produce the same dicts, so they cannot disagree on how an object is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from analyzer.model.inventory import Dataplane, Inventory, Namespace, Workload
from analyzer.model.policy import DestinationRule, Mode, PeerAuthentication

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob"}
PEER_AUTH_GROUP = "security.istio.io"
DEST_RULE_GROUP = "networking.istio.io"
# istio/istio pkg/kube/util.go: a Job named <cronjob>-<8..10 digit timestamp> belongs to a CronJob.
_CRONJOB_JOB = re.compile(r"^(.+)-\d{8,10}$")


class ObjectError(ValueError):
    """One object could not be read; it is reported and skipped."""


def parse_time(value: Any) -> datetime:
    if not value:
        return EPOCH  # hand-written manifests have none; ties then fall to the name
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ObjectError(f"bad creationTimestamp {value!r}") from None


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ObjectError("metadata.name is missing")
    return meta


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ObjectError(f"{what} must be a map")
    return {str(k): str(v) for k, v in value.items()}


def ref(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "object")
    return f"{kind} {meta.get('namespace', '')}/{meta.get('name', '?')}".replace(" /", " ")


def _mode(value: Any) -> Mode:
    """An mTLS mode exactly as the CRD enum spells it; the API server rejects `strict` or ``."""
    if value is None:
        return Mode.UNSET
    if not isinstance(value, str) or value not in Mode.__members__:
        raise ObjectError(f"unknown mTLS mode {value!r} (expected UNSET, DISABLE, PERMISSIVE or STRICT, in capitals)")
    return Mode(value)


def peer_authentication(obj: dict, default_namespace: str = "default") -> PeerAuthentication:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise ObjectError("spec must be a map")
    try:
        selector = _str_map((spec.get("selector") or {}).get("matchLabels"), "selector.matchLabels")
        mode = _mode((spec.get("mtls") or {}).get("mode"))
        ports = {}
        for port, setting in (spec.get("portLevelMtls") or {}).items():
            number = int(str(port))  # JSON map keys are strings; YAML may give ints
            if not 1 <= number <= 65535:
                raise ObjectError(f"portLevelMtls port {port} is outside 1..65535")
            ports[number] = _mode((setting or {}).get("mode"))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ObjectError(str(exc)) from None
    return PeerAuthentication(
        namespace=meta.get("namespace") or default_namespace,
        name=meta["name"],
        created=parse_time(meta.get("creationTimestamp")),
        selector=selector,
        mode=mode,
        port_modes=ports,
    )


def destination_rule(obj: dict, default_namespace: str = "default") -> DestinationRule:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    host = spec.get("host")
    if not host:
        raise ObjectError("spec.host is missing")
    policy = spec.get("trafficPolicy") or {}
    ports: dict[int, str | None] = {}
    for entry in policy.get("portLevelSettings") or []:
        number = (entry.get("port") or {}).get("number")
        if number is not None:
            # A matching port entry replaces the top-level policy: no tls there means auto mTLS.
            ports[int(number)] = (entry.get("tls") or {}).get("mode")
    return DestinationRule(
        namespace=meta.get("namespace") or default_namespace,
        name=meta["name"],
        created=parse_time(meta.get("creationTimestamp")),
        host=str(host),
        tls_mode=(policy.get("tls") or {}).get("mode"),
        port_tls_modes=ports,
        workload_selector=_str_map((spec.get("workloadSelector") or {}).get("matchLabels"), "workloadSelector"),
        export_to=tuple(spec.get("exportTo") or ()),
    )


def namespace(obj: dict) -> Namespace:
    meta = _meta(obj)
    return Namespace(name=meta["name"], labels=_str_map(meta.get("labels"), "labels"))


def _pod_template(obj: dict) -> tuple[dict, dict]:
    """(metadata, spec) of the pod a workload object runs."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return obj.get("metadata") or {}, spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    return template.get("metadata") or {}, template.get("spec") or {}


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


def dataplane(pod_meta: dict, pod_spec: dict, ns: Namespace | None, *, running_pod: bool) -> Dataplane:
    """Sidecar, ambient, gateway (Istio's own proxies) or none.

    A running pod is judged by what it has (the injector's status annotation or an istio-proxy
    container); a template by whether the injector would act on it.
    """
    labels = pod_meta.get("labels") or {}
    annotations = pod_meta.get("annotations") or {}
    containers = [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]
    if _istio_infrastructure(labels, annotations):
        return Dataplane.GATEWAY
    if "sidecar.istio.io/status" in annotations or any(c.get("name") == "istio-proxy" for c in containers):
        return Dataplane.SIDECAR
    if pod_spec.get("hostNetwork"):
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


def workload_identity(obj: dict, owners: dict[tuple[str, str], dict] | None = None) -> tuple[str, str]:
    """(kind, name) of the workload as Istio names it in metrics (WORKLOAD_NAME)."""
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    name = meta["name"]
    if kind == "ReplicaSet" or kind == "Pod":
        ref_ = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if ref_ is None:
            return kind, name
        owner_kind, owner_name = ref_.get("kind", ""), ref_.get("name", "")
        if owner_kind == "ReplicaSet":
            owner = (owners or {}).get(("ReplicaSet", owner_name))
            if owner is not None:
                return workload_identity(owner, owners)
            # Without the ReplicaSet, strip the pod-template-hash suffix as istio does.
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            if template_hash and owner_name.endswith("-" + template_hash):
                return "Deployment", owner_name[: -len(template_hash) - 1]
            return "ReplicaSet", owner_name
        if owner_kind == "Job":
            match = _CRONJOB_JOB.match(owner_name)
            return ("CronJob", match.group(1)) if match else ("Job", owner_name)
        return owner_kind, owner_name
    if kind == "Job":
        match = _CRONJOB_JOB.match(name)
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "CronJob"), None)
        if owner is not None:
            return "CronJob", owner.get("name", name)
        return ("CronJob", match.group(1)) if match else ("Job", name)
    return kind, name


def _ports(pod_spec: dict) -> tuple[int, ...]:
    ports = {
        int(p["containerPort"])
        for c in pod_spec.get("containers") or []
        if c.get("name") != "istio-proxy"
        for p in c.get("ports") or []
        if isinstance(p, dict) and p.get("containerPort")
    }
    return tuple(sorted(ports))


def workload(
    obj: dict,
    namespaces: dict[str, Namespace],
    *,
    owners: dict[tuple[str, str], dict] | None = None,
    default_namespace: str = "default",
    cluster: str = "",
) -> Workload:
    meta = _meta(obj)
    ns_name = meta.get("namespace") or default_namespace
    kind, name = workload_identity(obj, owners)
    pod_meta, pod_spec = _pod_template(obj)
    if not isinstance(pod_spec, dict) or not isinstance(pod_meta, dict):
        raise ObjectError("pod template is malformed")
    return Workload(
        namespace=ns_name,
        name=name,
        kind=kind,
        labels=_str_map(pod_meta.get("labels"), "pod labels"),
        dataplane=dataplane(pod_meta, pod_spec, namespaces.get(ns_name), running_pod=obj.get("kind") == "Pod"),
        ports=_ports(pod_spec),
        service_account=pod_spec.get("serviceAccountName") or "default",
        cluster=cluster,
    )


def _group(obj: dict) -> str:
    return str(obj.get("apiVersion", "")).split("/")[0]


def build_inventory(objects: Iterable[tuple[dict, str]], *, cluster: str = "") -> Inventory:
    """Read (object, origin) pairs into an Inventory; bad objects land in `problems`."""
    inv = Inventory()
    pending: list[tuple[dict, str]] = []
    owners: dict[tuple[str, str], dict] = {}
    for obj, origin in objects:
        kind = obj.get("kind") if isinstance(obj, dict) else None
        try:
            if kind == "Namespace":
                ns = namespace(obj)
                inv.namespaces[ns.name] = ns
            elif kind == "PeerAuthentication" and _group(obj) == PEER_AUTH_GROUP:
                inv.peer_authentications.append(peer_authentication(obj))
            elif kind == "DestinationRule" and _group(obj) == DEST_RULE_GROUP:
                inv.destination_rules.append(destination_rule(obj))
            elif kind in WORKLOAD_KINDS:
                _meta(obj)
                pending.append((obj, origin))
                if kind == "ReplicaSet":
                    owners[("ReplicaSet", obj["metadata"]["name"])] = obj
        except ObjectError as exc:
            inv.problems.append(f"{origin}: skipped {ref(obj)}: {exc}")
    # Workloads last: they need namespace labels (injection) and their owners. Pods come first
    # because they show what really runs; a ReplicaSet or Job folds into its owner's name.
    pods_first = sorted(pending, key=lambda item: item[0].get("kind") != "Pod")
    for obj, origin in pods_first:
        try:
            wl = workload(obj, inv.namespaces, owners=owners, cluster=cluster)
        except (ObjectError, KeyError, TypeError, ValueError) as exc:
            inv.problems.append(f"{origin}: skipped {ref(obj)}: {exc}")
            continue
        inv.add_workload(wl)
    return inv
