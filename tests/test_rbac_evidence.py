"""Whose 403s: the RBAC-denials query, its reading, and the three outcomes (analyse/rbac_evidence.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
import requests

from analyzer.analyse import authz_findings
from analyzer.analyse.authz_engine import AuthzEngine
from analyzer.analyse.rbac_evidence import NOT_PROXY, PROXY, UNCONFIRMED, RbacEvidence
from analyzer.collect import matchers, queries, responses
from analyzer.collect.answers import QueryFailed
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.traffic import RESPONSE_COLUMNS, Traffic

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


# -- the query ------------------------------------------------------------------------------------


def test_the_query_counts_denials_per_pod_in_the_namespaces_asked_for() -> None:
    query = queries.RbacDenials(DAY, ("media", "shop"))
    assert query.promql() == (
        'sum by (namespace, pod) (increase({__name__=~"envoy_http_(.*_)?rbac", authz_enforce_result="denied", '
        'namespace=~"media|shop"}[86400s]))'
    )
    born = queries.RbacDenials(DAY, ("shop",), queries.BORN).promql()
    assert "min_over_time(" in born and "unless last_over_time(" in born and "offset 86400s" in born
    assert "increase_pure(" in queries.RbacDenials(DAY, ("shop",), queries.WHOLE).promql()


def test_namespace_values_are_matched_literally_and_quoted() -> None:
    assert queries.regex_literal("a.b|c") == "a\\.b\\|c"
    hostile = queries.RbacDenials(DAY, ('x"}) or vector(1) #', "a.b")).promql()
    # Regex-escaped, then quoted as a PromQL string: the quote and the brace stay inside it.
    assert 'namespace=~"x\\"\\\\}\\\\) or vector\\\\(1\\\\) #|a\\\\.b"' in hostile
    assert hostile.count('"') - hostile.count('\\"') == 6  # three string literals, nothing broke out


def test_the_selector_reaches_it_but_not_the_istio_namespace_scope() -> None:
    # Envoy's own stats carry no destination_workload_namespace: that scope would match nothing.
    promql = queries.RbacDenials(DAY, ("shop",)).promql()
    sent = matchers.inject(promql, ['cluster="prod"'], ['destination_workload_namespace=~"shop"'])
    assert 'namespace=~"shop", cluster="prod"}' in sent and "destination_workload_namespace" not in sent


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("envoy_http_rbac", True),  # current Istio: the listener is a tag
        ("envoy_http_inbound_0_0_0_0_8000_rbac", True),  # older Istio: in the name
        ("envoy_tcp_rbac", False),  # a denied TCP connection is never a 403
        ("envoy_http_rbac_extra", False),
        ("envoy_http_inbound_0_0_0_0_8000_ext_authz", False),
    ],
)
def test_the_name_regex(name: str, matches: bool) -> None:
    # Prometheus anchors =~ as fullmatch does; RE2 and Python agree on this regex.
    assert bool(re.fullmatch(queries.RBAC_NAMES, name)) is matches


# -- collecting -----------------------------------------------------------------------------------


def _responses(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(destination namespace, destination workload, code, count) from legacy/batch."""
    data = [["legacy", "batch", ns, wl, code, count] for ns, wl, code, count in rows]
    return pd.DataFrame(data, columns=RESPONSE_COLUMNS).astype({"count": "float64"})


def _item(labels: dict[str, str], value: str) -> dict:
    return {"metric": labels, "value": [NOW.timestamp(), value]}


class _Client:
    """Answers the responses query with `codes` and the RBAC query with `rbac` (or raises it)."""

    settings = SimpleNamespace(timeout=5.0)  # stands in for PrometheusSettings

    def __init__(self, codes: list[dict], rbac: list[dict] | Exception):
        self.codes, self.rbac, self.sent = codes, rbac, []

    def instant(self, promql: str, at: datetime) -> list[dict]:
        self.sent.append(promql)
        if queries.RBAC_DENIED not in promql:
            return self.codes
        if isinstance(self.rbac, Exception):
            raise self.rbac
        return self.rbac


def _codes(*pairs: tuple[str, str]) -> list[dict]:
    labels = {"source_workload_namespace": "legacy", "source_workload": "batch", "destination_workload": "db"}
    return [_item({**labels, "destination_workload_namespace": ns, "response_code": code}, "10") for ns, code in pairs]


def _collect(client: _Client) -> Traffic:
    traffic = Traffic(window_start=NOW - DAY, window_end=NOW, source="test")
    responses.collect(client, traffic, NOW - DAY, NOW, lambda exc, timeout: "refused")  # type: ignore[arg-type]
    return traffic


def test_without_a_403_the_rbac_query_is_not_sent() -> None:
    client = _Client(_codes(("shop", "200")), [])
    traffic = _collect(client)
    assert len(client.sent) == 2 and not any(queries.RBAC_DENIED in q for q in client.sent)
    assert traffic.rbac_denials is None and traffic.rbac_failed == ""


def test_with_403s_it_asks_only_their_namespaces_and_adds_the_parts() -> None:
    rbac = [_item({"namespace": "shop", "pod": "db-1"}, "4"), _item({"pod": "nowhere"}, "9")]
    client = _Client(_codes(("shop", "403"), ("store", "200"), ("media", "403")), rbac)
    traffic = _collect(client)
    sent = [q for q in client.sent if queries.RBAC_DENIED in q]
    assert len(sent) == 2 and all('namespace=~"media|shop"' in q for q in sent)
    # Both parts answered the same series: added. A series without a namespace names nowhere.
    assert traffic.rbac_denials == {("shop", "db-1"): 8.0}


@pytest.mark.parametrize(
    "failure", [QueryFailed("answer carries warnings (data may be partial): x"), requests.ConnectionError("no")]
)
def test_a_failed_rbac_query_leaves_a_warning_and_no_denials(failure: Exception) -> None:
    traffic = _collect(_Client(_codes(("shop", "403")), failure))
    assert traffic.rbac_denials is None and traffic.rbac_failed.startswith("RBAC denials: ")
    assert traffic.plaintext_responses is not None  # the responses stand
    assert any(w.startswith("query failed: RBAC denials") and "unconfirmed" in w for w in traffic.warnings)


# -- judging --------------------------------------------------------------------------------------


def _inventory(pods: dict[tuple[str, str], tuple[str, str]] | None = None) -> Inventory:
    inv = Inventory()
    for ns, name in [("shop", "db"), ("shop", "web"), ("store", "api")]:
        inv.add_workload(Workload(ns, name, "Deployment", {"app": name}, Dataplane.SIDECAR))
    inv.pod_workloads.update(pods or {})
    return inv


PODS = {("shop", "db-1"): ("shop", "db"), ("shop", "db-2"): ("shop", "db"), ("shop", "web-1"): ("shop", "web")}


def _evidence(denials: dict[tuple[str, str], float] | None, pods=PODS, failed: str = "") -> RbacEvidence:
    traffic = Traffic(window_start=NOW - DAY, window_end=NOW, source="test")
    traffic.rbac_denials, traffic.rbac_failed = denials, failed
    return RbacEvidence.of(traffic, _inventory(pods))


@pytest.mark.parametrize(
    ("denials", "by", "why"),
    [
        ({("shop", "db-1"): 15.0, ("shop", "db-2"): 5.0}, PROXY, "denied 20 requests for 20 plaintext 403s"),
        ({("shop", "db-1"): 19.0}, PROXY, "denied 19"),  # increase() extrapolates: within 10 %
        ({("shop", "db-1"): 50.0, ("shop", "web-1"): 0.0}, PROXY, "denied 50"),  # mTLS denials count too
        ({("shop", "db-1"): 0.0, ("shop", "db-2"): 0.0}, NOT_PROXY, "denied no request"),
        ({("shop", "db-1"): 5.0}, UNCONFIRMED, "fewer than its 20 plaintext 403s"),
        ({("shop", "db-1"): 0.0, ("shop", "db-old"): 20.0}, UNCONFIRMED, "pods the inventory does not list"),
        ({("shop", "web-1"): 20.0}, UNCONFIRMED, "no Envoy RBAC series for its pods"),  # another workload's
        ({}, UNCONFIRMED, "no Envoy RBAC series for its pods"),
    ],
    ids=["proxy", "proxy-extrapolated", "proxy-more", "not-proxy", "too-few", "unlisted-pod", "other", "none"],
)
def test_by_pods(denials: dict, by: str, why: str) -> None:
    judged = _evidence(denials).judge("shop", "db", 20.0)
    assert (judged.by, why in judged.why) == (by, True), judged


@pytest.mark.parametrize(
    ("denials", "by", "why"),
    [
        ({("shop", "db-1"): 0.0, ("shop", ""): 0.0}, NOT_PROXY, "namespace-level evidence"),
        ({("shop", "db-1"): 20.0}, UNCONFIRMED, "no pods of this workload to tie them to it"),
        ({("store", "api-1"): 0.0}, UNCONFIRMED, "no Envoy RBAC series in namespace shop"),
    ],
    ids=["nothing-denied", "denied-somewhere", "no-series"],
)
def test_without_pods_the_namespace_is_the_evidence(denials: dict, by: str, why: str) -> None:
    judged = _evidence(denials, pods={}).judge("shop", "db", 20.0)
    assert (judged.by, why in judged.why) == (by, True), judged


def test_a_failed_or_missing_query_is_unconfirmed() -> None:
    assert _evidence(None, failed="RBAC denials: HTTP 503").judge("shop", "db", 1.0).by == UNCONFIRMED
    assert "HTTP 503" in _evidence(None, failed="RBAC denials: HTTP 503").judge("shop", "db", 1.0).why
    assert _evidence(None).judge("shop", "db", 1.0).by == UNCONFIRMED


# -- the findings ---------------------------------------------------------------------------------


def _observations() -> pd.DataFrame:
    rows = []
    for dest in ("db", "web"):
        rows.append(
            {"source_namespace": "legacy", "source_workload": "batch", "source_principal": "unknown"}
            | {"destination_namespace": "shop", "destination_workload": dest, "protocol": "http"}
            | {"count": 20.0, "security": "plaintext"}
        )
    return pd.DataFrame(rows)


def _findings(denials: dict | None, failed: str = "") -> dict:
    traffic = Traffic(window_start=NOW - DAY, window_end=NOW, source="test")
    traffic.plaintext_responses = _responses([("shop", "db", "403", 20.0), ("shop", "web", "200", 20.0)])
    traffic.rbac_denials, traffic.rbac_failed = denials, failed
    inventory = _inventory(PODS)
    engine = AuthzEngine([], "istio-system")
    below = [("shop", "db"), ("shop", "web")]
    return authz_findings.findings(inventory, traffic, _observations(), engine, below, "istio-system")


def test_the_application_s_403s_take_the_clients_off_already_denied() -> None:
    found = _findings({("shop", "db-1"): 0.0})
    db = found[("shop", "db")]
    assert (db.denials_by, db.denied_clients) == (NOT_PROXY, [])
    assert "were the application's" in db.reason and "STRICT would cut off legacy/batch" in db.reason
    web = found[("shop", "web")]  # answered 200: nothing to confirm
    assert (web.denials_by, web.denied_clients) == ("", [])


@pytest.mark.parametrize(
    ("denials", "failed", "by"),
    [({("shop", "db-1"): 20.0}, "", PROXY), (None, "RBAC denials: HTTP 503", UNCONFIRMED), ({}, "", UNCONFIRMED)],
)
def test_proxy_or_unconfirmed_keep_today_s_listing(denials: dict | None, failed: str, by: str) -> None:
    db = _findings(denials, failed)[("shop", "db")]
    assert (db.denials_by, db.denied_clients) == (by, ["legacy/batch"])
    lead = "were the proxy's" if by == PROXY else "unconfirmed that the plaintext 403s were the proxy's"
    assert lead in db.reason


@pytest.mark.parametrize(
    "denials",
    [None, {}, {("shop", "db-1"): 0.0}, {("shop", "db-1"): 5.0}, {("shop", "db-1"): 20.0}, {("shop", ""): 0.0}],
)
def test_the_evidence_never_adds_a_client_to_already_denied(denials: dict | None) -> None:
    today = authz_findings.denied_by_destination(_responses([("shop", "db", "403", 20.0)]))
    for key, finding in _findings(denials).items():
        assert set(finding.denied_clients) <= set(today.get(key, []))
