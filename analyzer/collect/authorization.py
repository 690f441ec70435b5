"""AuthorizationPolicy objects (security.istio.io v1, v1beta1) to the typed model.

Shapes declare the fields the engine reads. Unlike the other shapes, a `source` or `operation`
keeps fields it does not know (a newer Istio API): ignoring one would make a rule look broader
or narrower than it is, so the engine treats it as "depends" instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from analyzer.collect import schemas
from analyzer.collect.schemas import Metadata, Shape, Text, WorkloadSelector
from analyzer.model.authorization import Action, AuthorizationPolicy, Condition, Operation, Rule, Source

DRY_RUN = "istio.io/dry-run"

Values = list[Text] | None


class _Open(Shape):
    model_config = ConfigDict(extra="allow", frozen=True)


class SourceShape(_Open):
    principals: Values = None
    notPrincipals: Values = None
    namespaces: Values = None
    notNamespaces: Values = None
    serviceAccounts: Values = None
    notServiceAccounts: Values = None
    trustDomains: Values = None
    notTrustDomains: Values = None
    ipBlocks: Values = None
    notIpBlocks: Values = None
    remoteIpBlocks: Values = None
    notRemoteIpBlocks: Values = None
    requestPrincipals: Values = None
    notRequestPrincipals: Values = None


class OperationShape(_Open):
    hosts: Values = None
    notHosts: Values = None
    ports: Values = None
    notPorts: Values = None
    methods: Values = None
    notMethods: Values = None
    paths: Values = None
    notPaths: Values = None


class FromShape(Shape):
    source: SourceShape | None = None


class ToShape(Shape):
    operation: OperationShape | None = None


class ConditionShape(Shape):
    key: str = Field(min_length=1)
    values: Values = None
    notValues: Values = None


class RuleShape(Shape):
    from_: list[FromShape] | None = Field(default=None, alias="from")
    to: list[ToShape] | None = None
    when: list[ConditionShape] | None = None


class TargetRef(Shape):
    kind: str = ""
    name: str = ""
    group: str | None = None


class Provider(Shape):
    name: str = ""


class AuthorizationPolicySpec(Shape):
    selector: WorkloadSelector | None = None
    targetRef: TargetRef | None = None
    targetRefs: list[TargetRef] | None = None
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] | None = None
    provider: Provider | None = None
    rules: list[RuleShape] | None = None


class AuthorizationPolicyObject(Shape):
    metadata: Metadata
    spec: AuthorizationPolicySpec | None = None


def _t(values: list[str] | None) -> tuple[str, ...] | None:
    # An empty list generates no matcher in istiod (model.go `len(or) > 0`): the same as absent.
    return tuple(values) if values else None


def _source(shape: SourceShape) -> Source:
    extra = tuple(sorted(schemas.short(k) for k in (shape.model_extra or {})))
    return Source(
        principals=_t(shape.principals),
        not_principals=_t(shape.notPrincipals),
        namespaces=_t(shape.namespaces),
        not_namespaces=_t(shape.notNamespaces),
        service_accounts=_t(shape.serviceAccounts),
        not_service_accounts=_t(shape.notServiceAccounts),
        trust_domains=_t(shape.trustDomains),
        not_trust_domains=_t(shape.notTrustDomains),
        ip_blocks=_t(shape.ipBlocks),
        not_ip_blocks=_t(shape.notIpBlocks),
        remote_ip_blocks=_t(shape.remoteIpBlocks),
        not_remote_ip_blocks=_t(shape.notRemoteIpBlocks),
        request_principals=_t(shape.requestPrincipals),
        not_request_principals=_t(shape.notRequestPrincipals),
        unknown_fields=extra,
    )


def _operation(shape: OperationShape) -> Operation:
    extra = tuple(sorted(schemas.short(k) for k in (shape.model_extra or {})))
    return Operation(
        hosts=_t(shape.hosts),
        not_hosts=_t(shape.notHosts),
        ports=_t(shape.ports),
        not_ports=_t(shape.notPorts),
        methods=_t(shape.methods),
        not_methods=_t(shape.notMethods),
        paths=_t(shape.paths),
        not_paths=_t(shape.notPaths),
        unknown_fields=extra,
    )


def _rule(shape: RuleShape) -> Rule:
    # An entry without `source` (or `operation`) is a source that matches anything.
    return Rule(
        sources=tuple(_source(f.source or SourceShape()) for f in shape.from_ or []),
        operations=tuple(_operation(t.operation or OperationShape()) for t in shape.to or []),
        conditions=tuple(
            Condition(key=c.key, values=_t(c.values), not_values=_t(c.notValues)) for c in shape.when or []
        ),
    )


def _target(ref: TargetRef) -> str:
    return f"{schemas.short(ref.kind) or '?'}/{schemas.short(ref.name, 253) or '?'}"


def read_authorization_policy(
    obj: Any, default_namespace: str, validate: Any, created: Any
) -> tuple[AuthorizationPolicy, list[str]]:
    """The policy and what is worth a warning about it. `validate` and `created` are the
    manifests reader's (one path for every object); ObjectError on a malformed one."""
    shape: AuthorizationPolicyObject = validate(AuthorizationPolicyObject, obj)
    meta, spec = shape.metadata, shape.spec or AuthorizationPolicySpec()
    notes = []
    if spec.selector is not None and spec.selector.matchExpressions is not None:
        notes.append(
            "selector.matchExpressions is ignored: an AuthorizationPolicy selects with matchLabels only"
            + ("" if spec.selector.matchLabels else ", so this policy applies to the whole namespace")
        )
    targets = [*(spec.targetRefs or []), *([spec.targetRef] if spec.targetRef else [])]
    if targets and spec.selector is not None:
        notes.append("sets both selector and targetRefs, which Istio rejects; treated as targetRefs only")
    action = Action(spec.action or "ALLOW")
    if action is Action.CUSTOM and not (spec.provider and spec.provider.name):
        notes.append("action CUSTOM without provider.name, which Istio rejects")
    policy = AuthorizationPolicy(
        namespace=meta.namespace or default_namespace,
        name=meta.name,
        created=created(meta),
        action=action,
        selector=dict(spec.selector.matchLabels or {}) if spec.selector else {},
        target_refs=tuple(_target(t) for t in targets),
        rules=tuple(_rule(r) for r in spec.rules or []) if spec.rules is not None else (),
        provider=spec.provider.name if spec.provider else "",
        dry_run=str((meta.annotations or {}).get(DRY_RUN, "")).lower() == "true",
    )
    return policy, notes
