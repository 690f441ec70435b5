"""Istio AuthorizationPolicies, reduced to what decides a request without a peer identity.

Field names follow the Istio API (security.istio.io AuthorizationPolicy); docs/authorization.md
says how each one meets a plaintext request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Action(enum.StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"
    CUSTOM = "CUSTOM"


@dataclass(frozen=True, slots=True)
class Source:
    """One `from.source`: every field set here must match (AND); values inside a field are ORed."""

    principals: tuple[str, ...] | None = None
    not_principals: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    not_namespaces: tuple[str, ...] | None = None
    service_accounts: tuple[str, ...] | None = None
    not_service_accounts: tuple[str, ...] | None = None
    trust_domains: tuple[str, ...] | None = None
    not_trust_domains: tuple[str, ...] | None = None
    ip_blocks: tuple[str, ...] | None = None
    not_ip_blocks: tuple[str, ...] | None = None
    remote_ip_blocks: tuple[str, ...] | None = None
    not_remote_ip_blocks: tuple[str, ...] | None = None
    request_principals: tuple[str, ...] | None = None
    not_request_principals: tuple[str, ...] | None = None
    # Fields of a newer API this reader does not know: the source is decided by data it cannot see.
    unknown_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    """One `to.operation`."""

    hosts: tuple[str, ...] | None = None
    not_hosts: tuple[str, ...] | None = None
    ports: tuple[str, ...] | None = None
    not_ports: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    not_methods: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    not_paths: tuple[str, ...] | None = None
    unknown_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when` entry."""

    key: str
    values: tuple[str, ...] | None = None
    not_values: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[Source, ...] = ()  # empty: `from` absent, any source
    operations: tuple[Operation, ...] = ()  # empty: `to` absent, any operation
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    namespace: str
    name: str
    created: datetime
    action: Action = Action.ALLOW
    selector: dict[str, str] = field(default_factory=dict)
    # `kind/name` of each targetRef; a policy with targetRefs never applies to a sidecar.
    target_refs: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    provider: str = ""  # CUSTOM only
    dry_run: bool = False  # annotation istio.io/dry-run: shadow rules, never enforced
    hypothetical: bool = False  # exists only in a what-if

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())
