"""Inventory from the live cluster through the official kubernetes client (`--policies-from kube`).

Objects are read as the raw JSON the API server sends, trimmed to an allow-list of the fields
the analysis needs (`trim`), and handed to `manifests.build_inventory`: the cluster, a snapshot
of it and hand-written YAML go through one reader and cannot disagree. Lists are paginated
(`limit`/`continue`), so a 5,000-pod cluster costs ten pod calls, not 5,000.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from analyzer.collect.manifests import ROOT_NAMESPACE, UNAVAILABLE_KIND, build_inventory
from analyzer.errors import UserError
from analyzer.model.inventory import Inventory

log = logging.getLogger("mtls_readiness")

PAGE_SIZE = 500
SECURITY_CRDS_MISSING = "Istio security CRDs not found"
NETWORKING_CRDS_MISSING = "Istio networking CRDs not found"
# Annotations kept in objects: only what says how Istio treats a pod or namespace. Anything else
# (kubectl's last-applied-configuration, vault templates, tokens some tools park there) is dropped.
KEPT_ANNOTATION_PREFIXES = (
    "sidecar.istio.io/",
    "ambient.istio.io/",
    "traffic.sidecar.istio.io/",
    "istio.io/rev",
    "inject.istio.io/templates",  # marks gateway pods
    "istio.io/dry-run",  # an AuthorizationPolicy that is only a shadow
)


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    versions: tuple[str, ...]  # tried in order; a 404 moves to the next
    plural: str
    kind: str
    optional: bool = False  # a CRD: absent where Istio is not installed, which is reported, not fatal
    # Set for lists only a blind-spot check needs: a 403 (or a missing CRD) costs that check, with
    # this warning, never the run.
    degrades: str = ""

    def rbac_rule(self) -> str:
        return f'apiGroups: ["{self.group}"], resources: ["{self.plural}"], verbs: ["list"]'


NAMESPACES = Resource("", ("v1",), "namespaces", "Namespace")
PODS = Resource("", ("v1",), "pods", "Pod")
REPLICA_SETS = Resource("apps", ("v1",), "replicasets", "ReplicaSet")
# PeerAuthentication is v1 from Istio 1.22, v1beta1 before; DestinationRule has been served as
# v1alpha3 since 1.0, v1beta1 since 1.8 and v1 since 1.22.
PEER_AUTHENTICATIONS = Resource(
    "security.istio.io", ("v1", "v1beta1"), "peerauthentications", "PeerAuthentication", optional=True
)
DESTINATION_RULES = Resource(
    "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "destinationrules", "DestinationRule", optional=True
)
SERVICES = Resource(
    "", ("v1",), "services", "Service", degrades="headless services and DestinationRule hosts cannot be checked"
)
# Telemetry is v1 from Istio 1.22, v1alpha1 before.
TELEMETRIES = Resource(
    "telemetry.istio.io",
    ("v1", "v1alpha1"),
    "telemetries",
    "Telemetry",
    optional=True,
    degrades="Telemetry resources that disable or filter request metrics cannot be found",
)
# AuthorizationPolicy: v1 from Istio 1.22, v1beta1 before. Optional in a stronger sense: without
# it (no CRD, no RBAC) only the authorization findings are lost, and they say "unknown".
AUTHORIZATION_POLICIES = Resource(
    "security.istio.io", ("v1", "v1beta1"), "authorizationpolicies", "AuthorizationPolicy", optional=True
)
# Pod owners are only needed for ReplicaSet -> Deployment. Job -> CronJob is read from the Job's
# name as istiod does (manifests.workload_identity): Jobs are listed only for attribution, below.
RESOURCES = (
    NAMESPACES,
    PEER_AUTHENTICATIONS,
    DESTINATION_RULES,
    AUTHORIZATION_POLICIES,
    REPLICA_SETS,
    PODS,
    SERVICES,
    TELEMETRIES,
)
# What attribution reads (docs/attribution.md): a refused or failed list degrades the attribution
# source it feeds, with a warning naming the RBAC rule, and the run goes on.
JOBS = Resource("batch", ("v1",), "jobs", "Job")
CRONJOBS = Resource("batch", ("v1",), "cronjobs", "CronJob")
NODES = Resource("", ("v1",), "nodes", "Node")
ATTRIBUTION_RESOURCES = (JOBS, CRONJOBS, NODES)
_FEEDS = {"jobs": "jobs", "cronjobs": "jobs", "nodes": "nodes"}  # plural -> attribution source


@dataclass(slots=True)
class ClusterObjects:
    """What was read: trimmed objects in reading order, and warnings for the report."""

    objects: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    where: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)  # blind-spot checks that cannot run (also in warnings)
    authz_unavailable: str = ""  # why AuthorizationPolicies could not be listed
    degraded: dict[str, str] = field(default_factory=dict)  # attribution source -> why it is missing


# -- connecting -------------------------------------------------------------------------------


def _default_kubeconfig() -> str | None:
    """$KUBECONFIG (possibly several files) or ~/.kube/config, if any of them exists."""
    env = os.environ.get("KUBECONFIG", "")
    if env and any(Path(p).expanduser().is_file() for p in env.split(os.pathsep) if p):
        return env
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.is_file() else None


def connect(context: str | None = None, kubeconfig: str | None = None) -> tuple[Any, str]:
    """An ApiClient for the kubeconfig (explicit file, $KUBECONFIG, ~/.kube/config) or, when
    there is none, the in-cluster service account. Returns (client, description for messages)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    source = kubeconfig or _default_kubeconfig()
    try:
        if source is not None:
            if kubeconfig and not Path(kubeconfig).expanduser().is_file():
                raise UserError(f"--kubeconfig {kubeconfig}: no such file; give a readable kubeconfig")
            # persist_config=False: never write refreshed credentials back into the user's file.
            config.load_kube_config(
                config_file=source, context=context, client_configuration=configuration, persist_config=False
            )
            name = context or config.list_kube_config_contexts(config_file=source)[1].get("name", "")
            where = f"kubeconfig context {name}"
        elif context:
            raise UserError(f"--context {context}: no kubeconfig found; pass --kubeconfig or set KUBECONFIG")
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            where = "the in-cluster service account"
        else:
            raise UserError(
                "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a pod; "
                "pass --kubeconfig and --context, or read YAML with --policies-from PATH"
            )
    except ConfigException as exc:
        detail = " ".join(str(exc).split())
        raise UserError(f"cannot use the kubeconfig ({detail}); check --kubeconfig and --context") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the kubeconfig ({exc}); check --kubeconfig") from None
    # One attempt per call: the per-call timeout then bounds the run, and a nightly CronJob retries as a whole.
    configuration.retries = 0
    return client.ApiClient(configuration), f"{configuration.host} ({where})"


# -- listing ----------------------------------------------------------------------------------


class _Missing(Exception):
    """Every served version answered 404: the resource (a CRD) is not installed."""


class _Forbidden(Exception):
    """403 on a list only a blind-spot check needs (Resource.degrades)."""


def _lister(api_client: Any, resource: Resource, version: str) -> Callable[..., Any]:
    from kubernetes import client

    if resource is NAMESPACES:
        return client.CoreV1Api(api_client).list_namespace
    if resource is PODS:
        return client.CoreV1Api(api_client).list_pod_for_all_namespaces
    if resource is REPLICA_SETS:
        return client.AppsV1Api(api_client).list_replica_set_for_all_namespaces
    if resource is SERVICES:
        return client.CoreV1Api(api_client).list_service_for_all_namespaces
    if resource is JOBS:
        return client.BatchV1Api(api_client).list_job_for_all_namespaces
    if resource is CRONJOBS:
        return client.BatchV1Api(api_client).list_cron_job_for_all_namespaces
    if resource is NODES:
        return client.CoreV1Api(api_client).list_node
    custom = client.CustomObjectsApi(api_client)

    def list_custom(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(resource.group, version, resource.plural, **kwargs)

    return list_custom


def _api_error(exc: Any, resource: Resource, where: str) -> UserError:
    status = getattr(exc, "status", 0)
    message = ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):  # a body that is not a Status
        message = json.loads(exc.body or "{}").get("message", "")
    detail = f" ({message})" if message else ""
    if status == 403:
        name = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        return UserError(
            f"the Kubernetes API refused to list {name} (403 Forbidden{': ' + message if message else ''}); "
            f"grant the job's identity a ClusterRole rule {{{resource.rbac_rule()}}}"
        )
    if status == 401:
        return UserError(
            f"the Kubernetes API at {where} rejected the credentials (401 Unauthorized); "
            "refresh the kubeconfig login or the service account token"
        )
    if status == 0:  # the client's wrapping of TLS failures
        reason = " ".join(str(getattr(exc, "reason", "")).split())
        return UserError(f"cannot talk to the Kubernetes API at {where} ({reason}); check the kubeconfig's CA")
    return UserError(
        f"the Kubernetes API at {where} failed to list {resource.plural} ({status} {getattr(exc, 'reason', '')})"
        f"{detail}; check the API server's health and retry"
    )


def _network_error(exc: Exception, resource: Resource, where: str, timeout: float) -> UserError:
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    # NewConnectionError subclasses ConnectTimeoutError (urllib3 compatibility), so it goes first.
    if isinstance(cause, NewConnectionError):
        reason = str(cause).rsplit("]", 1)[-1].strip() or "connection failed"  # "Connection refused", DNS...
    elif isinstance(cause, ConnectTimeoutError):
        reason = f"no connection within {timeout:g}s"
    elif isinstance(cause, Urllib3Timeout):
        return UserError(
            f"the Kubernetes API at {where} did not answer listing {resource.plural} within {timeout:g}s; "
            "check the API server's health or raise --kube-timeout"
        )
    else:
        reason = " ".join(str(cause).split())
    return UserError(
        f"cannot reach the Kubernetes API at {where} ({reason}); check --kubeconfig/--context and the network path, "
        "or read a saved snapshot with --policies-from PATH"
    )


def list_pages(
    api_client: Any, resource: Resource, *, where: str, timeout: float, page_size: int = PAGE_SIZE
) -> Iterator[dict]:
    """Every item of `resource` cluster-wide, page by page, with kind and apiVersion filled in."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    for index, version in enumerate(resource.versions):
        started, calls, count = time.monotonic(), 0, 0
        token: str | None = None
        api_version = f"{resource.group}/{version}" if resource.group else version
        call = _lister(api_client, resource, version)
        try:
            while True:
                kwargs: dict[str, Any] = {"limit": page_size, "_request_timeout": timeout, "_preload_content": False}
                if token:
                    kwargs["_continue"] = token
                response = call(**kwargs)
                calls += 1
                page = json.loads(response.data)
                for item in page.get("items") or []:
                    # Lists of built-in kinds leave kind and apiVersion to the list itself.
                    item.setdefault("kind", resource.kind)
                    item.setdefault("apiVersion", api_version)
                    count += 1
                    yield item
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
        except ApiException as exc:
            if exc.status == 404 and calls == 0 and resource.optional:
                log.debug("%s %s: not served (404)", resource.plural, api_version)
                if index + 1 < len(resource.versions):
                    continue
                raise _Missing(resource.plural) from None
            if exc.status == 403 and resource.degrades:
                raise _Forbidden(str(_api_error(exc, resource, where))) from None
            raise _api_error(exc, resource, where) from None
        except HTTPError as exc:
            raise _network_error(exc, resource, where, timeout) from None
        except ValueError as exc:  # JSON
            raise UserError(
                f"{where} answered listing {resource.plural} with something that is not Kubernetes JSON ({exc}); "
                "check that the kubeconfig server is the API server"
            ) from None
        log.info(
            "listed %d %s (%s) in %d call(s), %.1fs",
            count,
            resource.plural,
            api_version,
            calls,
            time.monotonic() - started,
        )
        return


# -- trimming ---------------------------------------------------------------------------------


def _kept_annotation(key: str) -> bool:
    return key.startswith(KEPT_ANNOTATION_PREFIXES)


def _metadata(meta: dict, *, owners: bool = False) -> dict:
    out = {k: meta[k] for k in ("name", "namespace", "creationTimestamp") if meta.get(k)}
    if meta.get("labels"):
        out["labels"] = meta["labels"]  # selectors match on them; a wrong type is reported by the reader
    raw = meta.get("annotations") or {}
    annotations = {k: v for k, v in raw.items() if _kept_annotation(str(k))} if isinstance(raw, dict) else {}
    if annotations:
        out["annotations"] = annotations
    if owners and meta.get("ownerReferences"):
        out["ownerReferences"] = [
            {k: ref[k] for k in ("apiVersion", "kind", "name", "controller") if k in ref}
            for ref in meta["ownerReferences"]
        ]
    return out


def _container(container: dict) -> dict:
    # Name, image and ports only: env, args and mounts can hold secrets and are never needed.
    out = {k: container[k] for k in ("name", "image", "restartPolicy") if container.get(k)}
    ports = [
        {k: p[k] for k in ("name", "containerPort", "protocol") if k in p}
        for p in container.get("ports") or []
        if isinstance(p, dict)
    ]
    if ports:
        out["ports"] = ports
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(key)
        if isinstance(probe, dict):  # the port and period only: headers and exec commands may hold secrets
            kept = {
                h: {"port": probe[h].get("port")}
                for h in ("httpGet", "tcpSocket", "grpc")
                if isinstance(probe.get(h), dict)
            }
            if "periodSeconds" in probe:
                kept["periodSeconds"] = probe["periodSeconds"]
            out[key] = kept
    return out


def _template(template: Any) -> dict:
    """A pod template, trimmed as a pod is: what says how Istio treats it, its ports and probes."""
    if not isinstance(template, dict):
        return {}
    spec = template.get("spec") or {}
    pod_spec: dict[str, Any] = {
        k: [_container(c) for c in spec[k] if isinstance(c, dict)]
        for k in ("initContainers", "containers")
        if spec.get(k)
    }
    if spec.get("hostNetwork"):
        pod_spec["hostNetwork"] = True
    return {"metadata": _metadata(template.get("metadata") or {}), "spec": pod_spec}


def trim(obj: dict) -> dict:
    """The allow-listed part of an object: what the analysis reads, nothing secret-like.

    Drops managedFields, status (except a pod's phase), environment, commands, volumes and every
    annotation that does not tell how Istio treats the object."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": kind}
    if kind == "Pod":
        spec = obj.get("spec") or {}
        pod_spec: dict[str, Any] = {}
        if spec.get("serviceAccountName"):
            pod_spec["serviceAccountName"] = spec["serviceAccountName"]
        if spec.get("hostNetwork"):
            pod_spec["hostNetwork"] = True
        if spec.get("nodeName"):
            pod_spec["nodeName"] = spec["nodeName"]
        for key in ("initContainers", "containers"):
            if spec.get(key):
                pod_spec[key] = [_container(c) for c in spec[key] if isinstance(c, dict)]
        out["metadata"] = _metadata(meta, owners=True)
        out["spec"] = pod_spec
        status = obj.get("status") or {}
        kept_status = {k: status[k] for k in ("phase", "podIP", "podIPs") if status.get(k)}
        if kept_status:
            out["status"] = kept_status
    elif kind == "Job":
        out["metadata"] = _metadata(meta, owners=True)
        out["spec"] = {"template": _template((obj.get("spec") or {}).get("template"))}
        status = obj.get("status") or {}
        out["status"] = {k: status[k] for k in ("startTime", "completionTime") if status.get(k)}
    elif kind == "CronJob":
        spec = obj.get("spec") or {}
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        out["metadata"] = _metadata(meta)
        out["spec"] = {k: spec[k] for k in ("schedule", "timeZone", "suspend") if k in spec}
        out["spec"]["jobTemplate"] = {"spec": {"template": _template(job_spec.get("template"))}}
    elif kind == "Node":
        out["metadata"] = {"name": meta.get("name")}
        addresses = (obj.get("status") or {}).get("addresses") or []
        out["status"] = {
            "addresses": [{k: a[k] for k in ("type", "address") if k in a} for a in addresses if isinstance(a, dict)]
        }
    elif kind == "ReplicaSet":
        out["metadata"] = _metadata(meta, owners=True)
    elif kind == "Namespace":
        out["metadata"] = _metadata(meta)
    elif kind == "Service":
        spec = obj.get("spec") or {}
        out["metadata"] = _metadata(meta)
        out["spec"] = {k: spec[k] for k in ("type", "clusterIP", "selector") if spec.get(k)}
        ports = [
            {k: p[k] for k in ("name", "port", "targetPort", "protocol") if k in p}
            for p in spec.get("ports") or []
            if isinstance(p, dict)
        ]
        if ports:
            out["spec"]["ports"] = ports
    else:  # PeerAuthentication, DestinationRule: the spec is the policy
        out["metadata"] = _metadata(meta)
        out["spec"] = obj.get("spec") or {}
    return out


# -- reading ----------------------------------------------------------------------------------


def read_objects(
    *,
    context: str | None = None,
    kubeconfig: str | None = None,
    timeout: float = 30.0,
    page_size: int = PAGE_SIZE,
) -> ClusterObjects:
    """Every object the analysis needs, trimmed, in the order build_inventory wants them."""
    api_client, where = connect(context, kubeconfig)
    started = time.monotonic()
    read = ClusterObjects(where=where)
    log.info("reading the cluster at %s", where)
    try:
        by_kind: dict[str, list[dict]] = {}
        for resource in RESOURCES:
            try:
                by_kind[resource.kind] = [
                    trim(o) for o in list_pages(api_client, resource, where=where, timeout=timeout, page_size=page_size)
                ]
            except _Missing:
                by_kind[resource.kind] = []
                read.warnings.append(_missing_warning(resource))  # the CLI logs it with the report's warnings
                if resource.degrades:
                    read.unavailable.append(read.warnings[-1])
                if resource is AUTHORIZATION_POLICIES:
                    read.authz_unavailable = "the AuthorizationPolicy CRD is not served"
            except _Forbidden as exc:
                by_kind[resource.kind] = []
                read.warnings.append(f"blind-spot check skipped: {exc}; until then {resource.degrades}")
                read.unavailable.append(read.warnings[-1])
            except UserError as exc:
                if resource is not AUTHORIZATION_POLICIES:
                    raise
                by_kind[resource.kind] = []
                read.authz_unavailable = str(exc)
                read.warnings.append(f"authorization findings are unknown: {exc}")
        for resource in ATTRIBUTION_RESOURCES:
            by_kind[resource.kind] = _read_optional(api_client, resource, read, where, timeout, page_size)
    finally:
        api_client.close()
    # Only the ReplicaSets that own a pod: old revisions (ten per Deployment by default) name nothing.
    owning = {
        (o["metadata"].get("namespace"), ref.get("name"))
        for o in by_kind["Pod"]
        for ref in o["metadata"].get("ownerReferences") or []
        if ref.get("kind") == "ReplicaSet"
    }
    by_kind["ReplicaSet"] = [
        rs for rs in by_kind["ReplicaSet"] if (rs["metadata"].get("namespace"), rs["metadata"]["name"]) in owning
    ]
    for resource in (*RESOURCES, *ATTRIBUTION_RESOURCES):
        read.objects += by_kind[resource.kind]
        read.counts[resource.plural] = len(by_kind[resource.kind])
    log.info(
        "read %s from the cluster in %.1fs",
        ", ".join(f"{n} {plural}" for plural, n in read.counts.items()),
        time.monotonic() - started,
    )
    return read


def _read_optional(
    api_client: Any, resource: Resource, read: ClusterObjects, where: str, timeout: float, page_size: int
) -> list[dict]:
    """A list only attribution needs: refused (403) or failed, it degrades that source with a warning."""
    try:
        return [trim(o) for o in list_pages(api_client, resource, where=where, timeout=timeout, page_size=page_size)]
    except (UserError, _Missing) as exc:
        why = str(exc) if isinstance(exc, UserError) else f"{resource.plural} not served"
        note = f"attribution without {resource.plural}: {why}"
        log.warning("%s", note)
        read.warnings.append(note)
        read.degraded[_FEEDS[resource.plural]] = f"{resource.plural} could not be listed"
        return []


def _missing_warning(resource: Resource) -> str:
    versions = " or ".join(resource.versions)
    if resource.degrades:
        name = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        return f"blind-spot check skipped: no {name} {versions} served; {resource.degrades}"
    if resource is PEER_AUTHENTICATIONS:
        return (
            f"{SECURITY_CRDS_MISSING} (no peerauthentications.security.istio.io {versions}): every workload has the "
            "default mode PERMISSIVE; check --context points at the mesh's cluster and that Istio is installed"
        )
    if resource is AUTHORIZATION_POLICIES:
        return f"no authorizationpolicies.security.istio.io {versions}: the authorization findings are unknown"
    return (
        f"{NETWORKING_CRDS_MISSING} (no destinationrules.networking.istio.io {versions}): DestinationRules that "
        "disable TLS cannot be named as causes"
    )


def inventory_from(read: ClusterObjects, *, cluster: str = "", root_namespace: str = ROOT_NAMESPACE) -> Inventory:
    inventory = build_inventory(((o, "cluster") for o in read.objects), cluster=cluster, root_namespace=root_namespace)
    inventory.warnings[:0] = read.warnings
    inventory.unavailable_checks += read.unavailable
    if read.authz_unavailable:
        inventory.authz_unavailable = read.authz_unavailable
    inventory.clients.degraded.update(read.degraded)
    return inventory


def read_cluster(
    *,
    context: str | None = None,
    kubeconfig: str | None = None,
    timeout: float = 30.0,
    cluster: str = "",
    root_namespace: str = ROOT_NAMESPACE,
) -> Inventory:
    """`--policies-from kube`: the inventory of the cluster behind the kubeconfig or service account."""
    read = read_objects(context=context, kubeconfig=kubeconfig, timeout=timeout)
    return inventory_from(read, cluster=cluster, root_namespace=root_namespace)


# -- snapshots --------------------------------------------------------------------------------


def snapshot_text(read: ClusterObjects, *, taken: datetime | None = None) -> str:
    """Multi-document YAML that `--policies-from FILE` reads back into the same inventory."""
    taken = taken or datetime.now(UTC)
    header = [
        "# mtls-readiness snapshot: the Kubernetes objects a report reads, trimmed of secrets and managedFields.",
        f"# Taken {taken.strftime('%Y-%m-%dT%H:%M:%SZ')}: "
        + ", ".join(f"{n} {plural}" for plural, n in read.counts.items()),
        "# Reproduce a run with: mtls-readiness report --policies-from THIS_FILE --prometheus-url ...",
    ]
    header += [f"# warning: {w}" for w in read.warnings]
    objects = list(read.objects)
    if read.authz_unavailable:  # read back as "unknown", never as "no AuthorizationPolicy exists"
        objects.append(
            {"kind": UNAVAILABLE_KIND, "resource": "authorizationpolicies", "reason": read.authz_unavailable}
        )
    body = yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def write_snapshot(read: ClusterObjects, output: str | Path) -> None:
    """Write the snapshot to `output` ('-': stdout), atomically so a failed write leaves no half file."""
    text = snapshot_text(read)
    if str(output) == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    tmp_name = ""
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as tmp:
            tmp_name = tmp.name
            tmp.write(text)
        os.replace(tmp_name, path)
    except OSError as exc:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        raise UserError(f"cannot write the snapshot to {path}: {exc.strerror}; choose a writable --output") from None
