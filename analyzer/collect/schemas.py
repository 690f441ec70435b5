"""Typed shapes of the Kubernetes and Istio objects the analysis reads, and nothing more.

Only the fields read are declared; anything else is ignored. A wrong type anywhere in them (a
list where a map belongs, a port that is not a number, a mode the CRD enum does not allow) is a
ValidationError, which `manifests` turns into one warning naming the object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from analyzer.model.policy import Mode

MAX_MESSAGE = 240  # characters of a validation message; field paths come from hostile keys
_PART = 40  # characters of one part of a field path


def _scalar_text(value: Any) -> Any:
    """Label values as strings: hand-written YAML says `version: 2`; maps and lists stay errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a port number, not true/false")
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
StrMap = dict[Text, Text]
Port = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=65535)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OwnerReference(Shape):
    kind: str = ""
    name: str = ""
    controller: bool | None = None


class Metadata(Shape):
    name: str = Field(min_length=1)
    namespace: str | None = None
    creationTimestamp: datetime | None = None
    labels: StrMap | None = None
    annotations: StrMap | None = None
    ownerReferences: list[OwnerReference] | None = None


class PodMetadata(Shape):
    """A pod template's metadata: no name required."""

    labels: StrMap | None = None
    annotations: StrMap | None = None


# -- PeerAuthentication (security.istio.io v1, v1beta1) ----------------------------------------


class MtlsSetting(Shape):
    mode: Mode | None = None


class WorkloadSelector(Shape):
    matchLabels: StrMap | None = None
    # Not part of Istio's selector (matchLabels only): read so it can be warned about.
    matchExpressions: Any = None


class PeerAuthenticationSpec(Shape):
    selector: WorkloadSelector | None = None
    mtls: MtlsSetting | None = None
    portLevelMtls: dict[Port, MtlsSetting | None] | None = None


class PeerAuthenticationObject(Shape):
    metadata: Metadata
    spec: PeerAuthenticationSpec | None = None


# -- DestinationRule (networking.istio.io) -----------------------------------------------------

TlsMode = Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]


class ClientTls(Shape):
    mode: TlsMode | None = None


class PortSelector(Shape):
    number: Port | None = None


class PortTrafficPolicy(Shape):
    port: PortSelector | None = None
    tls: ClientTls | None = None


class TrafficPolicy(Shape):
    tls: ClientTls | None = None
    portLevelSettings: list[PortTrafficPolicy] | None = None


class DestinationRuleSpec(Shape):
    host: str = Field(min_length=1)
    trafficPolicy: TrafficPolicy | None = None
    workloadSelector: WorkloadSelector | None = None
    exportTo: list[str] | None = None


class DestinationRuleObject(Shape):
    metadata: Metadata
    spec: DestinationRuleSpec


# -- Service (core v1) and Telemetry (telemetry.istio.io v1, v1alpha1): blind-spot checks ------


class ServicePortShape(Shape):
    port: Port
    name: str | None = None
    targetPort: Text | None = None  # a number or a port name


class ServiceSpec(Shape):
    type: str | None = None
    clusterIP: str | None = None
    selector: StrMap | None = None
    ports: list[ServicePortShape] | None = None


class ServiceObject(Shape):
    metadata: Metadata
    spec: ServiceSpec | None = None


TagOperation = Literal["UPSERT", "REMOVE"]


class TagOverride(Shape):
    operation: TagOperation | None = None
    value: str | None = None


class MetricSelector(Shape):
    metric: str | None = None
    customMetric: str | None = None
    mode: Literal["CLIENT_AND_SERVER", "CLIENT", "SERVER"] | None = None


class MetricsOverrideShape(Shape):
    match: MetricSelector | None = None
    disabled: bool | None = None
    tagOverrides: dict[str, TagOverride | None] | None = None


class ProviderRef(Shape):
    name: str = ""


class MetricsShape(Shape):
    providers: list[ProviderRef] | None = None
    overrides: list[MetricsOverrideShape] | None = None


class TelemetrySpec(Shape):
    selector: WorkloadSelector | None = None
    targetRef: Any = None
    targetRefs: list[Any] | None = None
    metrics: list[MetricsShape] | None = None


class TelemetryObject(Shape):
    metadata: Metadata
    spec: TelemetrySpec | None = None


# -- Namespace and workloads -------------------------------------------------------------------


class NamespaceObject(Shape):
    metadata: Metadata


class ContainerPort(Shape):
    containerPort: Port | None = None


class Container(Shape):
    name: str = ""
    ports: list[ContainerPort] | None = None


class PodSpec(Shape):
    containers: list[Container] | None = None
    initContainers: list[Container] | None = None
    hostNetwork: bool | None = None
    serviceAccountName: str | None = None


class PodTemplate(Shape):
    metadata: PodMetadata | None = None
    spec: PodSpec | None = None


class TemplateSpec(Shape):
    """The spec of a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job."""

    template: PodTemplate | None = None


class JobTemplate(Shape):
    spec: TemplateSpec | None = None


class CronJobSpec(Shape):
    jobTemplate: JobTemplate | None = None


class PodStatus(Shape):
    phase: str | None = None


class PodObject(Shape):
    metadata: Metadata
    spec: PodSpec | None = None
    status: PodStatus | None = None


class ControllerObject(Shape):
    """A Deployment, StatefulSet, DaemonSet, ReplicaSet or Job."""

    metadata: Metadata
    spec: TemplateSpec | None = None


class CronJobObject(Shape):
    metadata: Metadata
    spec: CronJobSpec | None = None


WorkloadObject = PodObject | ControllerObject | CronJobObject
WORKLOAD_SHAPES: dict[str, type[WorkloadObject]] = {
    "Pod": PodObject,
    "CronJob": CronJobObject,
    **{kind: ControllerObject for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")},
}


def pod_template(obj: WorkloadObject) -> tuple[PodMetadata, PodSpec]:
    """(metadata, spec) of the pod a workload object runs; a bare pod is its own template."""
    if isinstance(obj, PodObject):
        return PodMetadata(labels=obj.metadata.labels, annotations=obj.metadata.annotations), obj.spec or PodSpec()
    if isinstance(obj, CronJobObject):
        job = obj.spec.jobTemplate if obj.spec else None
        template = job.spec.template if job and job.spec else None
    else:
        template = obj.spec.template if obj.spec else None
    template = template or PodTemplate()
    return template.metadata or PodMetadata(), template.spec or PodSpec()


# -- messages ----------------------------------------------------------------------------------


def short(value: Any, limit: int = _PART) -> str:
    """A hostile string made printable and bounded for a message; other types by type name."""
    if not isinstance(value, str | int):
        return f"<{type(value).__name__}>"
    text = "".join(c if c.isprintable() else "?" for c in str(value)[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


_EXPECTED = {
    "dict_type": "expected a map",
    "model_type": "expected a map",
    "model_attributes_type": "expected a map",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected a number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "missing": "is missing",
    "string_too_short": "is empty",
    "greater_than_equal": "must be within 1..65535",
    "less_than_equal": "must be within 1..65535",
}


_SHOWN = {"enum", "literal_error", "int_parsing", "int_from_float", "greater_than_equal", "less_than_equal"}


def _where(loc: tuple[Any, ...]) -> str:
    parts = [short(p) for p in loc if p != "[key]" and not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts) or "object"


def describe(error: ValidationError) -> str:
    """The first problem as `field.path: what was expected`, never the value itself."""
    first = error.errors(include_url=False)[0]
    what = _EXPECTED.get(first["type"])
    if what is None:
        if first["type"] == "enum" or first["type"] == "literal_error":
            what = "expected " + first["ctx"].get("expected", "one of the allowed values") + " (exact spelling)"
        elif first["type"] == "value_error":
            what = str(first["msg"]).removeprefix("Value error, ")
        else:
            what = str(first["msg"])
    value = first.get("input")
    if first["type"] in _SHOWN and isinstance(value, str | int | float) and not isinstance(value, bool):
        what += f", got {short(str(value))!r}"  # bounded: the value comes from the input
    more = error.error_count() - 1
    text = f"{_where(first['loc'])}: {what}" + (f" (and {more} more)" if more else "")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
