"""What the AuthorizationPolicies of a workload decide for a request, above all one without a
peer identity (plaintext), judged the way Istio's sidecar builds and Envoy evaluates them.

Reference: docs/authorization.md (each rule with its source in istio/istio and envoyproxy/envoy).
Three answers per condition: it matches (YES), it cannot match (NO), or it is decided by data
that Istio's standard metrics do not carry (MAYBE: paths, methods, headers, JWTs, addresses,
ports). Pure: never talks to the cluster.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from analyzer.model.authorization import Action, AuthorizationPolicy, Condition, Operation, Rule, Source

ALLOWED, DENIED, DEPENDS = "allowed", "denied", "depends"
HTTP_PROTOCOLS = {"http", "grpc"}
# A request over mTLS whose principal the metrics do not name.
UNKNOWN_IDENTITY = "?"


class Match(enum.Enum):
    NO = 0
    MAYBE = 1
    YES = 2


def _all(matches: Iterable[Match]) -> Match:
    return min(matches, key=lambda m: m.value, default=Match.YES)


def _any(matches: Iterable[Match]) -> Match:
    return max(matches, key=lambda m: m.value, default=Match.NO)


def _not(match: Match) -> Match:
    return {Match.YES: Match.NO, Match.NO: Match.YES, Match.MAYBE: Match.MAYBE}[match]


class _DropRule(Exception):
    """An ALLOW rule with an HTTP-only attribute on a TCP chain: istiod drops the whole rule."""


@dataclass(frozen=True, slots=True)
class Request:
    """What the metrics tell about one request or connection.

    identity: None for plaintext (no peer certificate), the peer's SPIFFE principal for mTLS,
    or UNKNOWN_IDENTITY. protocol: http, grpc, tcp, or "" when unknown. ambient: enforced by
    ztunnel (L4 only), where the HTTP-only attributes are handled differently."""

    identity: str | None = None
    protocol: str = ""
    ambient: bool = False

    @property
    def plaintext(self) -> bool:
        return self.identity is None


def string_match(pattern: str, value: str) -> bool:
    """Istio's string matching: "*" is any non-empty value, "x*" a prefix, "*x" a suffix."""
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


_SPIFFE = re.compile(r"^(?P<td>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")


def _identity_part(request: Request, part: str) -> str | None:
    """principal (without spiffe://), td, ns or sa of the peer; None when it cannot be told."""
    if request.identity is None or request.identity == UNKNOWN_IDENTITY:
        return None
    principal = request.identity.removeprefix("spiffe://")
    if part == "principal":
        return principal
    match = _SPIFFE.match(principal)
    if match is None:
        return None
    return f"{match['ns']}/{match['sa']}" if part == "sa" else match[part]


def _peer(request: Request, values: Sequence[str], part: str) -> Match:
    """A field on the peer identity: never matches plaintext (Envoy's authenticated matcher is
    false without a TLS connection); decided by the principal for mTLS."""
    if request.plaintext:
        return Match.NO
    value = _identity_part(request, part)
    if value is None:
        return Match.MAYBE
    return Match.YES if any(string_match(p, value) for p in values) else Match.NO


def _http_only(request: Request, action: Action) -> Match:
    """A field only HTTP carries (paths, methods, headers, hosts, JWT claims)."""
    if request.ambient or request.protocol not in (*HTTP_PROTOCOLS, "tcp"):
        return Match.MAYBE
    if request.protocol in HTTP_PROTOCOLS:
        return Match.MAYBE  # the metrics carry none of them
    if action is Action.ALLOW:
        raise _DropRule
    return Match.YES  # DENY/AUDIT/CUSTOM on TCP: the condition is dropped, the rule is broader


_PEER_FIELDS = (
    ("principals", "not_principals", "principal"),
    ("namespaces", "not_namespaces", "ns"),
    ("service_accounts", "not_service_accounts", "sa"),
    ("trust_domains", "not_trust_domains", "td"),
)
# Decided by the peer address, which the standard metrics do not carry.
_ADDRESS_FIELDS = ("ip_blocks", "not_ip_blocks", "remote_ip_blocks", "not_remote_ip_blocks")


def source_match(source: Source, request: Request, action: Action) -> Match:
    parts: list[Match] = []
    for positive, negative, part in _PEER_FIELDS:
        values = getattr(source, positive)
        if values is not None:
            parts.append(_peer(request, values, part))
        values = getattr(source, negative)
        if values is not None:
            parts.append(_not(_peer(request, values, part)))
    parts += [Match.MAYBE for name in _ADDRESS_FIELDS if getattr(source, name) is not None]
    for name in ("request_principals", "not_request_principals"):
        if getattr(source, name) is not None:
            parts.append(_http_only(request, action))
    parts += [Match.MAYBE for _ in source.unknown_fields]
    return _all(parts)


def operation_match(operation: Operation, request: Request, action: Action) -> Match:
    parts: list[Match] = []
    for name in ("hosts", "not_hosts", "methods", "not_methods", "paths", "not_paths"):
        if getattr(operation, name) is not None:
            parts.append(_http_only(request, action))
    # No port label in the standard metrics.
    parts += [Match.MAYBE for name in ("ports", "not_ports") if getattr(operation, name) is not None]
    parts += [Match.MAYBE for _ in operation.unknown_fields]
    return _all(parts)


_CONDITION_PEER = {"source.principal": "principal", "source.namespace": "ns", "source.serviceAccount": "sa"}


def _condition_values(key: str, values: Sequence[str], request: Request, action: Action) -> Match:
    if key in _CONDITION_PEER:
        return _peer(request, values, _CONDITION_PEER[key])
    if key == "connection.sni":
        return Match.NO if request.plaintext else Match.MAYBE  # no SNI without TLS
    if key.startswith("request."):
        return _http_only(request, action)
    return Match.MAYBE  # source.ip, remote.ip, destination.ip/port, experimental.*, unknown keys


def condition_match(condition: Condition, request: Request, action: Action) -> Match:
    parts = []
    if condition.values is not None:
        parts.append(_condition_values(condition.key, condition.values, request, action))
    if condition.not_values is not None:
        parts.append(_not(_condition_values(condition.key, condition.not_values, request, action)))
    return _all(parts)


def rule_match(rule: Rule, request: Request, action: Action) -> Match:
    """(any from) AND (any to) AND (every when); an absent part matches anything."""
    try:
        sources = _any(source_match(s, request, action) for s in rule.sources) if rule.sources else Match.YES
        operations = (
            _any(operation_match(o, request, action) for o in rule.operations) if rule.operations else Match.YES
        )
        conditions = _all(condition_match(c, request, action) for c in rule.conditions)
    except _DropRule:
        return Match.NO
    return _all((sources, operations, conditions))


def policy_match(policy: AuthorizationPolicy, request: Request) -> tuple[Match, list[int]]:
    """How the policy's rules meet the request, and the indexes of the rules that match or may.
    No rules: never matches (an ALLOW then allows nothing; a DENY does nothing)."""
    results = [rule_match(r, request, policy.action) for r in policy.rules]
    return _any(results), [i for i, m in enumerate(results) if m is not Match.NO]


def slips_past(rule: Rule) -> list[str]:
    """The peer-identity fields of a rule that plaintext can never match (positive principals,
    namespaces...): a DENY keyed on them does not stop plaintext."""
    named = []
    for s in rule.sources:
        named += [f"from.source.{_api(p)}" for p, _, _ in _PEER_FIELDS if getattr(s, p) is not None]
    named += [
        f"when {c.key}"
        for c in rule.conditions
        if c.values is not None and (c.key in _CONDITION_PEER or c.key == "connection.sni")
    ]
    return sorted(set(named))


def _api(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # allowed, denied, depends
    why: str
    by: tuple[str, ...] = ()  # "ns/name rules[i]" of the rules that decided it


@dataclass(frozen=True, slots=True)
class SlippedRule:
    policy: str
    rule: int
    fields: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.policy} rules[{self.rule}] ({', '.join(self.fields)})"


class AuthzEngine:
    """The AuthorizationPolicies of a mesh, and what they decide for a workload."""

    def __init__(self, policies: Iterable[AuthorizationPolicy], root_namespace: str = "istio-system"):
        self.root_namespace = root_namespace
        # Oldest first, as istiod sorts them; the order does not change the decision.
        self.policies = sorted(policies, key=lambda p: (p.created, p.name, p.namespace))

    def applicable(self, namespace: str, labels: dict[str, str]) -> list[AuthorizationPolicy]:
        """Enforced policies on a sidecar or ambient workload: root (mesh-wide) or own namespace,
        a selector that is a subset of its labels (or none), no targetRefs, not dry-run."""
        return [
            p
            for p in self.policies
            if p.namespace in (self.root_namespace, namespace)
            and not p.target_refs
            and not p.dry_run
            and p.selects(labels)
        ]

    def not_applied(self, namespace: str, labels: dict[str, str]) -> list[str]:
        """Policies that look as if they applied but do not: targetRefs (gateways, waypoints), dry-run."""
        notes = []
        for p in self.policies:
            if p.namespace not in (self.root_namespace, namespace) or not p.selects(labels):
                continue
            if p.target_refs and namespace == p.namespace:
                notes.append(f"{p.ref} uses targetRefs ({', '.join(p.target_refs)}): not enforced by a sidecar")
            elif p.dry_run and not p.target_refs:
                notes.append(f"{p.ref} is dry-run (istio.io/dry-run): logged, never enforced")
        return notes

    def decide(self, namespace: str, labels: dict[str, str], request: Request) -> Decision:
        return decide(self.applicable(namespace, labels), request)

    def slipped_deny_rules(self, namespace: str, labels: dict[str, str]) -> list[SlippedRule]:
        """DENY rules a plaintext request does not meet because they are keyed on peer identity."""
        out = []
        for p in self.applicable(namespace, labels):
            if p.action is not Action.DENY:
                continue
            for index, rule in enumerate(p.rules):
                named = slips_past(rule)
                if named and rule_match(rule, Request(None, ""), Action.DENY) is Match.NO:
                    out.append(SlippedRule(p.ref, index, tuple(named)))
        return out

    def with_applied(self, proposed: Iterable[AuthorizationPolicy]) -> AuthzEngine:
        """The engine after `kubectl apply` of `proposed` (same namespace/name replaces)."""
        by_ref = {p.ref: p for p in self.policies}
        now = max([datetime.now(UTC), *(p.created + timedelta(seconds=1) for p in self.policies)])
        for p in proposed:
            existing = by_ref.get(p.ref)
            by_ref[p.ref] = replace(p, created=existing.created if existing else now, hypothetical=True)
        return AuthzEngine(by_ref.values(), self.root_namespace)


def _rules(policy: AuthorizationPolicy, indexes: list[int]) -> list[str]:
    return [f"{policy.ref} rules[{i}]" for i in indexes]


def decide(policies: Sequence[AuthorizationPolicy], request: Request) -> Decision:
    """CUSTOM, then DENY, then ALLOW, as the inbound filter chain orders them; AUDIT never decides.
    Any DENY match denies; with no ALLOW policy the request is allowed; else an ALLOW must match."""
    deny: list[tuple[Match, list[str]]] = []
    allow: list[tuple[Match, list[str]]] = []
    custom: list[tuple[Match, list[str]]] = []
    for p in policies:
        match, indexes = policy_match(p, request)
        target = {Action.DENY: deny, Action.ALLOW: allow, Action.CUSTOM: custom}.get(p.action)
        if target is not None:
            target.append((match, _rules(p, indexes)))
    denied_by = [r for m, rules in deny if m is Match.YES for r in rules]
    if denied_by:
        return Decision(DENIED, "a DENY rule matches", tuple(denied_by))
    maybe_denied = [r for m, rules in deny if m is Match.MAYBE for r in rules]
    by: tuple[str, ...] = ()
    if not allow:
        outcome, why = ALLOWED, "no ALLOW policy applies"
    elif any(m is Match.YES for m, _ in allow):
        outcome, why = ALLOWED, "an ALLOW rule matches"
        by = tuple(r for m, rules in allow if m is Match.YES for r in rules)
    elif any(m is Match.MAYBE for m, _ in allow):
        outcome, why = DEPENDS, "an ALLOW rule may match, on fields the metrics do not carry"
        by = tuple(r for m, rules in allow if m is Match.MAYBE for r in rules)
    else:
        refs = tuple(f"{p.ref}" for p in policies if p.action is Action.ALLOW)
        return Decision(DENIED, "ALLOW policies apply and none of their rules can match", refs)
    if maybe_denied:
        return Decision(DEPENDS, "a DENY rule may match, on fields the metrics do not carry", tuple(maybe_denied))
    custom_rules = [r for m, rules in custom if m is not Match.NO for r in rules]
    if outcome == ALLOWED and custom_rules:
        return Decision(DEPENDS, "a CUSTOM (external) authorizer decides", tuple(custom_rules))
    return Decision(outcome, why, by)


@dataclass(slots=True)
class PlaintextFinding:
    """What the policies mean for plaintext on one workload below STRICT."""

    status: str  # open, denied, depends
    why: str
    by: tuple[str, ...] = ()
    slipped: list[SlippedRule] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)  # the enforced policies that apply
    not_applied: list[str] = field(default_factory=list)


OPEN, ALREADY_DENIED = "open", "denied"


def plaintext_finding(
    engine: AuthzEngine, namespace: str, labels: dict[str, str], protocols: Iterable[str], ambient: bool
) -> PlaintextFinding:
    """The plaintext verdict for a workload over the protocols its plaintext was seen on (or an
    unknown protocol when none was seen): open, denied, or depends when they disagree."""
    policies = engine.applicable(namespace, labels)
    decisions = [decide(policies, Request(None, p, ambient)) for p in sorted(set(protocols)) or [""]]
    outcomes = {d.outcome for d in decisions}
    first = decisions[0]
    if outcomes == {ALLOWED}:
        status, why = OPEN, first.why
    elif outcomes == {DENIED}:
        status, why = ALREADY_DENIED, first.why
    else:
        status = DEPENDS
        why = next((d.why for d in decisions if d.outcome == DEPENDS), "the protocols seen are decided differently")
    return PlaintextFinding(
        status=status,
        why=why,
        by=tuple(dict.fromkeys(r for d in decisions for r in d.by)),
        slipped=engine.slipped_deny_rules(namespace, labels),
        policies=[p.ref for p in policies],
        not_applied=engine.not_applied(namespace, labels),
    )
