"""The authorization engine against the rules of docs/authorization.md, one named row per rule.

Policies are written as the YAML an operator writes and go through the report's own reader, so a
row also fails when a field is read wrongly. Every row states the whole answer (outcome, and the
rules it names) so that an engine right for the wrong reason still fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from analyzer.analyse.authz_engine import (
    ALLOWED,
    DENIED,
    DEPENDS,
    UNKNOWN_IDENTITY,
    AuthzEngine,
    Request,
    plaintext_finding,
    string_match,
)
from analyzer.collect.manifests import ObjectError, read_authorization_policy
from analyzer.model.authorization import AuthorizationPolicy

ROOT = "istio-system"
WEB = {"app": "web", "version": "v1"}
CART = "spiffe://cluster.local/ns/shop/sa/cart"
LEGACY = "spiffe://cluster.local/ns/legacy/sa/batch"

PLAIN_HTTP = Request(None, "http")
PLAIN_TCP = Request(None, "tcp")


def ap(
    ref: str,
    action: str | None = "ALLOW",
    rules: list | None = None,
    *,
    selector: dict | None = None,
    annotations: dict | None = None,
    **spec: object,
) -> AuthorizationPolicy:
    namespace, name = ref.split("/")
    body: dict = dict(spec)
    if action:
        body["action"] = action
    if rules is not None:
        body["rules"] = rules
    if selector is not None:
        body["selector"] = {"matchLabels": selector}
    meta: dict = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    obj = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": meta, "spec": body}
    return read_authorization_policy(obj)[0]


def src(**fields: object) -> list:
    return [{"from": [{"source": fields}]}]


@dataclass(frozen=True)
class Case:
    policies: list[AuthorizationPolicy]
    request: Request
    outcome: str
    by: tuple[str, ...] = ()
    ns: str = "shop"
    labels: dict | None = None


R0 = "shop/p rules[0]"
CASES = {
    # -- which policies apply --------------------------------------------------------------------------
    "root namespace without selector applies mesh-wide": Case(
        [ap("istio-system/p", rules=src(principals=["*"]))], PLAIN_HTTP, DENIED, ("istio-system/p",)
    ),
    "own namespace applies": Case([ap("shop/p", rules=src(principals=["*"]))], PLAIN_HTTP, DENIED, ("shop/p",)),
    "another namespace does not apply": Case([ap("other/p", rules=src(principals=["*"]))], PLAIN_HTTP, ALLOWED),
    "selector subset of the labels applies": Case(
        [ap("shop/p", rules=src(principals=["*"]), selector={"app": "web"})], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "selector not matching does not apply": Case(
        [ap("shop/p", rules=src(principals=["*"]), selector={"app": "db"})], PLAIN_HTTP, ALLOWED
    ),
    "root namespace selector applies in every namespace": Case(
        [ap("istio-system/p", rules=src(principals=["*"]), selector={"app": "web"})],
        PLAIN_HTTP,
        DENIED,
        ("istio-system/p",),
    ),
    "targetRefs never apply to a sidecar": Case(
        [ap("shop/p", rules=src(principals=["*"]), targetRefs=[{"kind": "Service", "name": "web"}])],
        PLAIN_HTTP,
        ALLOWED,
    ),
    "dry-run is never enforced": Case(
        [ap("shop/p", rules=src(principals=["*"]), annotations={"istio.io/dry-run": "true"})], PLAIN_HTTP, ALLOWED
    ),
    # -- how actions combine ---------------------------------------------------------------------------
    "no policy allows": Case([], PLAIN_HTTP, ALLOWED),
    "a matching DENY wins over a matching ALLOW": Case(
        [ap("shop/a", rules=[{}]), ap("shop/p", "DENY", [{}])], PLAIN_HTTP, DENIED, (R0,)
    ),
    "ALLOW policies and none matches denies": Case(
        [ap("shop/p", rules=src(principals=[CART[9:]]))], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "any matching ALLOW allows": Case(
        [ap("shop/x", rules=src(principals=["*"])), ap("shop/p", rules=src(notPrincipals=["*"]))],
        PLAIN_HTTP,
        ALLOWED,
        (R0,),
    ),
    "AUDIT never decides": Case([ap("shop/p", "AUDIT", [{}])], PLAIN_HTTP, ALLOWED),
    "a matching CUSTOM leaves it to the external authorizer": Case(
        [ap("shop/p", "CUSTOM", [{}], provider={"name": "opa"})], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "CUSTOM cannot override a DENY": Case(
        [ap("shop/c", "CUSTOM", [{}], provider={"name": "opa"}), ap("shop/p", "DENY", [{}])], PLAIN_HTTP, DENIED, (R0,)
    ),
    "ALLOW without rules allows nothing": Case([ap("shop/p")], PLAIN_HTTP, DENIED, ("shop/p",)),
    "DENY without rules does nothing": Case([ap("shop/p", "DENY")], PLAIN_HTTP, ALLOWED),
    "ALLOW with one empty rule allows all": Case([ap("shop/p", rules=[{}])], PLAIN_HTTP, ALLOWED, (R0,)),
    "DENY with one empty rule denies all": Case([ap("shop/p", "DENY", [{}])], PLAIN_TCP, DENIED, (R0,)),
    "action defaults to ALLOW": Case([ap("shop/p", None, src(principals=["*"]))], PLAIN_HTTP, DENIED, ("shop/p",)),
    "a DENY that may match makes an allowed request depend": Case(
        [ap("shop/p", "DENY", src(ipBlocks=["10.0.0.0/8"]))], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    # -- what plaintext can match ---------------------------------------------------------------------
    "ALLOW on principals denies plaintext": Case(
        [ap("shop/p", rules=src(principals=[CART[9:]]))], PLAIN_TCP, DENIED, ("shop/p",)
    ),
    "principals * never matches plaintext": Case([ap("shop/p", "DENY", src(principals=["*"]))], PLAIN_HTTP, ALLOWED),
    "DENY on namespaces does not stop plaintext": Case(
        [ap("shop/p", "DENY", src(namespaces=["legacy"]))], PLAIN_HTTP, ALLOWED
    ),
    "DENY notPrincipals * denies all plaintext": Case(
        [ap("shop/p", "DENY", src(notPrincipals=["*"]))], PLAIN_HTTP, DENIED, (R0,)
    ),
    "DENY notNamespaces * denies all plaintext": Case(
        [ap("shop/p", "DENY", src(notNamespaces=["*"]))], PLAIN_TCP, DENIED, (R0,)
    ),
    "ALLOW notNamespaces admits plaintext": Case(
        [ap("shop/p", rules=src(notNamespaces=["legacy"]))], PLAIN_HTTP, ALLOWED, (R0,)
    ),
    "serviceAccounts never match plaintext": Case(
        [ap("shop/p", rules=src(serviceAccounts=["shop/cart"]))], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "trustDomains never match plaintext": Case(
        [ap("shop/p", rules=src(trustDomains=["cluster.local"]))], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "ipBlocks depend on the peer address": Case(
        [ap("shop/p", rules=src(ipBlocks=["10.0.0.0/8"]))], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "notIpBlocks depend on the peer address": Case(
        [ap("shop/p", "DENY", src(notIpBlocks=["10.0.0.0/8"]))], PLAIN_TCP, DEPENDS, (R0,)
    ),
    "remoteIpBlocks depend on the client address": Case(
        [ap("shop/p", rules=src(remoteIpBlocks=["1.2.3.4"]))], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "requestPrincipals depend on a JWT over HTTP": Case(
        [ap("shop/p", rules=src(requestPrincipals=["*"]))], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "requestPrincipals on TCP drop the ALLOW rule": Case(
        [ap("shop/p", rules=src(requestPrincipals=["*"]))], PLAIN_TCP, DENIED, ("shop/p",)
    ),
    "requestPrincipals on TCP widen a DENY rule": Case(
        [ap("shop/p", "DENY", src(requestPrincipals=["*"]))], PLAIN_TCP, DENIED, (R0,)
    ),
    "paths depend over HTTP": Case(
        [ap("shop/p", rules=[{"to": [{"operation": {"paths": ["/health"]}}]}])], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "methods on TCP drop the ALLOW rule": Case(
        [ap("shop/p", rules=[{"to": [{"operation": {"methods": ["GET"]}}]}])], PLAIN_TCP, DENIED, ("shop/p",)
    ),
    "methods on TCP widen a DENY to all TCP": Case(
        [ap("shop/p", "DENY", [{"to": [{"operation": {"methods": ["GET"]}}]}])], PLAIN_TCP, DENIED, (R0,)
    ),
    "HTTP-only fields depend when the protocol is unknown": Case(
        [ap("shop/p", rules=[{"to": [{"operation": {"methods": ["GET"]}}]}])], Request(None, ""), DEPENDS, (R0,)
    ),
    "ports depend: no port label in the metrics": Case(
        [ap("shop/p", rules=[{"to": [{"operation": {"ports": ["8080"]}}]}])], PLAIN_TCP, DEPENDS, (R0,)
    ),
    "when source.principal never matches plaintext": Case(
        [ap("shop/p", "DENY", [{"when": [{"key": "source.principal", "values": ["*"]}]}])], PLAIN_HTTP, ALLOWED
    ),
    "when source.namespace notValues matches plaintext": Case(
        [ap("shop/p", "DENY", [{"when": [{"key": "source.namespace", "notValues": ["shop"]}]}])],
        PLAIN_HTTP,
        DENIED,
        (R0,),
    ),
    "when connection.sni never matches plaintext": Case(
        [ap("shop/p", rules=[{"when": [{"key": "connection.sni", "values": ["*"]}]}])], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "when request.headers depends over HTTP": Case(
        [ap("shop/p", rules=[{"when": [{"key": "request.headers[x-id]", "values": ["a"]}]}])],
        PLAIN_HTTP,
        DEPENDS,
        (R0,),
    ),
    "when request.auth on TCP drops the ALLOW rule": Case(
        [ap("shop/p", rules=[{"when": [{"key": "request.auth.claims[iss]", "values": ["a"]}]}])],
        PLAIN_TCP,
        DENIED,
        ("shop/p",),
    ),
    "when source.ip depends": Case(
        [ap("shop/p", rules=[{"when": [{"key": "source.ip", "values": ["10.0.0.1"]}]}])], PLAIN_TCP, DEPENDS, (R0,)
    ),
    "a source field this reader does not know depends": Case(
        [ap("shop/p", "DENY", src(newField=["x"]))], PLAIN_HTTP, DEPENDS, (R0,)
    ),
    "an empty value list is the same as an absent field": Case(
        [ap("shop/p", "DENY", src(principals=[]))], PLAIN_HTTP, DENIED, (R0,)
    ),
    "fields of one source are ANDed": Case(
        [ap("shop/p", rules=src(notPrincipals=["*"], principals=["*"]))], PLAIN_HTTP, DENIED, ("shop/p",)
    ),
    "sources of one rule are ORed": Case(
        [ap("shop/p", rules=[{"from": [{"source": {"principals": ["*"]}}, {"source": {"notPrincipals": ["*"]}}]}])],
        PLAIN_HTTP,
        ALLOWED,
        (R0,),
    ),
    "ambient: HTTP-only fields depend (ztunnel is L4)": Case(
        [ap("shop/p", rules=[{"to": [{"operation": {"methods": ["GET"]}}]}])],
        Request(None, "tcp", ambient=True),
        DEPENDS,
        (R0,),
    ),
    # -- requests over mTLS (what-if) ----------------------------------------------------------------
    "mTLS principal matches without spiffe://": Case(
        [ap("shop/p", rules=src(principals=[CART[9:]]))], Request(CART, "http"), ALLOWED, (R0,)
    ),
    "mTLS principal not listed is denied": Case(
        [ap("shop/p", rules=src(principals=[CART[9:]]))], Request(LEGACY, "http"), DENIED, ("shop/p",)
    ),
    "mTLS namespace is read from the principal": Case(
        [ap("shop/p", "DENY", src(namespaces=["legacy"]))], Request(LEGACY, "tcp"), DENIED, (R0,)
    ),
    "mTLS principal suffix match": Case(
        [ap("shop/p", rules=src(principals=["*/sa/cart"]))], Request(CART, "http"), ALLOWED, (R0,)
    ),
    "mTLS with a principal the metrics do not name depends": Case(
        [ap("shop/p", rules=src(principals=[CART[9:]]))], Request(UNKNOWN_IDENTITY, "http"), DEPENDS, (R0,)
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_decision(case: Case) -> None:
    engine = AuthzEngine(case.policies, ROOT)
    decision = engine.decide(case.ns, case.labels or WEB, case.request)
    assert (decision.outcome, decision.by) == (case.outcome, case.by), decision.why


@pytest.mark.parametrize(
    ("pattern", "value", "want"),
    [("*", "a", True), ("*", "", False), ("ab*", "abc", True), ("*bc", "abc", True), ("abc", "abcd", False)],
    ids=["any non-empty", "empty is not present", "prefix", "suffix", "exact"],
)
def test_string_match(pattern: str, value: str, want: bool) -> None:
    assert string_match(pattern, value) is want


def test_deny_rules_keyed_on_identity_are_named_as_slipped_past() -> None:
    policies = [
        ap("shop/deny-legacy", "DENY", [{"to": [{"operation": {"methods": ["POST"]}}]}, *src(namespaces=["legacy"])]),
        ap("shop/deny-plaintext", "DENY", src(notPrincipals=["*"])),  # the safe pattern: not slipped past
        ap("shop/by-principal", "DENY", [{"when": [{"key": "source.principal", "values": [LEGACY[9:]]}]}]),
    ]
    finding = plaintext_finding(AuthzEngine(policies, ROOT), "shop", WEB, {"http"}, False)
    assert [s.describe() for s in finding.slipped] == [
        "shop/by-principal rules[0] (when source.principal)",
        "shop/deny-legacy rules[1] (from.source.namespaces)",
    ]
    assert finding.status == "denied"  # deny-plaintext denies every plaintext request


def test_finding_over_protocols_that_disagree_depends() -> None:
    # Rule dropped on TCP (denied), JWT-dependent over HTTP (depends).
    policies = [ap("shop/p", rules=src(requestPrincipals=["*"]))]
    engine = AuthzEngine(policies, ROOT)
    assert plaintext_finding(engine, "shop", WEB, {"tcp"}, False).status == "denied"
    assert plaintext_finding(engine, "shop", WEB, {"tcp", "http"}, False).status == "depends"
    assert plaintext_finding(engine, "shop", WEB, set(), False).status == "depends"  # protocol unknown
    assert plaintext_finding(AuthzEngine([], ROOT), "shop", WEB, {"tcp", "http"}, False).status == "open"


def test_policies_that_do_not_apply_are_explained() -> None:
    policies = [
        ap("shop/gw", rules=[{}], targetRefs=[{"kind": "Gateway", "name": "gw"}]),
        ap("shop/shadow", "DENY", [{}], annotations={"istio.io/dry-run": "true"}),
    ]
    finding = plaintext_finding(AuthzEngine(policies, ROOT), "shop", WEB, {"http"}, False)
    assert finding.status == "open" and finding.policies == []
    assert [n.split(" ", 1)[0] for n in finding.not_applied] == ["shop/gw", "shop/shadow"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"action": "REJECT"}, "spec.action: expected 'ALLOW', 'DENY', 'AUDIT' or 'CUSTOM'"),
        (
            {"rules": [{"from": [{"source": {"principals": "a"}}]}]},
            "spec.rules.0.from.0.source.principals: expected a list",
        ),
        ({"rules": {"from": []}}, "spec.rules: expected a list"),
        ({"rules": [{"when": [{"values": ["a"]}]}]}, "spec.rules.0.when.0.key: is missing"),
    ],
    ids=["unknown action", "values not a list", "rules not a list", "when without key"],
)
def test_malformed_policies_are_one_error_naming_the_field(spec: dict, message: str) -> None:
    obj = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p"}, "spec": spec}
    with pytest.raises(ObjectError) as info:
        read_authorization_policy(obj)
    assert str(info.value).startswith(message)
