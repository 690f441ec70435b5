"""AuthorizationPolicy against plaintext, end to end: the real CLI, a real Prometheus (one per
file), the loopback Kubernetes API, and the page in Chromium.

shop/web stays PERMISSIVE with a DENY keyed on the legacy namespace: legacy/batch's plaintext
slips past it. shop/db has an ALLOW on cart's principal only: legacy/batch's plaintext is
answered 403, so it is already denied, and db's pod counts those 403s as Envoy RBAC denials.

legacy/batch's plaintext to store/api and media/files is answered 403 as well, by the
application: api's pod exports Envoy's RBAC counters (older Istio's name) with no denial,
files' pods none at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from analyzer import pipeline
from analyzer.cli import main
from analyzer.model.authorization import Action
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh
from tests.support import fault_proxy as fp
from tests.support import victoria
from tests.support.browser import DESKTOP, BrowserError, Chromium
from tests.support.e2e import LOOKBACK, read_latest, run_report, write_policies
from tests.support.fault_proxy import FaultProxy
from tests.support.kube_api import FORBIDDEN

CART = "cluster.local/ns/shop/sa/cart"


def _ap(namespace: str, name: str, action: str, rules: list, selector: dict) -> dict:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"selector": {"matchLabels": selector}, "action": action, "rules": rules},
    }


DENY_LEGACY = _ap("shop", "deny-legacy", "DENY", [{"from": [{"source": {"namespaces": ["legacy"]}}]}], {"app": "web"})
DB_ALLOW = _ap("shop", "db-allow", "ALLOW", [{"from": [{"source": {"principals": [CART]}}]}], {"app": "db"})


def authz_mesh() -> SampleMesh:
    return SampleMesh(
        workloads=[
            MeshWorkload("shop", "web"),
            MeshWorkload("shop", "db"),
            MeshWorkload("shop", "cart"),
            MeshWorkload("legacy", "batch"),
            MeshWorkload("store", "api"),
            MeshWorkload("media", "files"),
        ],
        flows=[
            Flow("legacy/batch", "shop/web", plaintext=True, per_hour=30),  # e.g. a DestinationRule DISABLE
            Flow("shop/cart", "shop/web", per_hour=60),
            Flow("legacy/batch", "shop/db", plaintext=True, per_hour=20, response_code="403", rbac="denied"),
            Flow("shop/cart", "shop/db", per_hour=60, rbac="allowed"),
            Flow("legacy/batch", "store/api", plaintext=True, per_hour=10, response_code="403", rbac="allowed"),
            Flow("legacy/batch", "media/files", plaintext=True, per_hour=10, response_code="403"),
        ],
        namespace_labels={ns: {"istio-injection": "enabled"} for ns in ("shop", "legacy", "store", "media")},
        policies=[DENY_LEGACY, DB_ALLOW],
        history=timedelta(hours=30),
        rbac_legacy_names=frozenset({"store/api"}),
    )


@dataclass
class Served:
    url: str
    policies: Path
    mesh: SampleMesh


@pytest.fixture(scope="module")
def served(prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory) -> Served:
    mesh = authz_mesh()
    return Served(prometheus_factory(mesh), write_policies(mesh, tmp_path_factory.mktemp("authz")), mesh)


@pytest.fixture(scope="module")
def from_cluster(served: Served, kube_api_factory, tmp_path_factory: pytest.TempPathFactory):
    """One report with the policies read from the loopback Kubernetes API."""
    folder = tmp_path_factory.mktemp("authz-kube")
    api = kube_api_factory(served.mesh)
    kubeconfig = api.write_kubeconfig(folder / "kubeconfig")
    argv = ["report", "--prometheus-url", served.url, "--kubeconfig", str(kubeconfig)]
    code = main([*argv, "--output-dir", str(folder / "out"), "--lookback", LOOKBACK])
    return read_latest(folder / "out", code)


def _result(report) -> dict:
    return json.loads((report.run_folder / "result.json").read_text(encoding="utf-8"))


def _workload(result: dict, ref: str) -> dict:
    return next(w for w in result["workloads"] if f"{w['namespace']}/{w['workload']}" == ref)


def test_a_deny_keyed_on_namespaces_is_reported_as_slipped_past(from_cluster) -> None:
    web = from_cluster.workloads["shop/web"]
    assert web["verdict"] == "BLOCKED" and web["mode"] == "PERMISSIVE"
    assert web["authz_plaintext"] == "open"
    assert web["authz_slipped_rules"] == "shop/deny-legacy rules[0] (from.source.namespaces)"
    assert web["plaintext_denied_clients"] == ""  # its plaintext was answered 200


def test_an_allow_on_principals_with_403s_is_reported_as_already_denied(from_cluster) -> None:
    db = from_cluster.workloads["shop/db"]
    assert db["verdict"] == "BLOCKED"  # plaintext arrives, so STRICT is not safe to claim...
    assert db["authz_plaintext"] == "denied"  # ...but the policy already rejects it
    assert db["plaintext_denied_clients"] == "legacy/batch"
    assert db["authz_slipped_rules"] == ""
    assert "shop/db-allow" in db["authz_reason"]


def test_the_rbac_counters_of_the_pods_say_whose_403s_they_were(from_cluster) -> None:
    # db's pod counted the 403s as RBAC denials: the proxy's, already denied.
    db = from_cluster.workloads["shop/db"]
    assert (db["plaintext_denials_by"], db["plaintext_denied_clients"]) == ("proxy", "legacy/batch")
    assert "the plaintext 403s were the proxy's: its pods' RBAC filters denied" in db["authz_reason"]
    # api's pod exports the counter (older Istio's name) and denied nothing: the application's 403s.
    api = from_cluster.workloads["store/api"]
    assert (api["plaintext_denials_by"], api["plaintext_denied_clients"]) == ("not-proxy", "")
    assert "were the application's" in api["authz_reason"]
    assert "STRICT would cut off legacy/batch" in api["authz_reason"]
    assert api["verdict"] == "BLOCKED" and api["plaintext_sources"] == "legacy/batch"
    # files' pods export no RBAC series: listed as before, with the caveat.
    files = from_cluster.workloads["media/files"]
    assert (files["plaintext_denials_by"], files["plaintext_denied_clients"]) == ("unconfirmed", "legacy/batch")
    assert (
        "unconfirmed that the plaintext 403s were the proxy's (no Envoy RBAC series for its pods"
        in (files["authz_reason"])
    )
    assert from_cluster.workloads["shop/web"]["plaintext_denials_by"] == ""  # no 403 to confirm
    assert _workload(_result(from_cluster), "store/api")["plaintext_denials_by"] == "not-proxy"


def test_without_pods_the_namespace_is_the_evidence_and_the_query_is_scoped(
    served: Served, tmp_path: Path, capsys
) -> None:
    proxy = FaultProxy(served.url)  # no fault: it records what was asked
    try:
        report = run_report(capsys, proxy.url, served.policies, tmp_path / "out")
        asked = [r.query for r in proxy.seen if r.kind == "rbac"]
    finally:
        proxy.close()
    # Only the namespaces whose plaintext was answered 403, one query per part (growth, births).
    assert len(asked) == 2 and all('namespace=~"media|shop|store"' in q for q in asked)
    by = {ref: report.workloads[ref]["plaintext_denials_by"] for ref in ("shop/db", "store/api", "media/files")}
    # The manifests list no pods: shop's denials cannot be tied to db; nothing denied in store at all.
    assert by == {"shop/db": "unconfirmed", "store/api": "not-proxy", "media/files": "unconfirmed"}
    assert report.workloads["shop/db"]["plaintext_denied_clients"] == "legacy/batch"
    assert "namespace-level evidence" in report.workloads["store/api"]["authz_reason"]
    assert "no Envoy RBAC series in namespace media" in report.workloads["media/files"]["authz_reason"]


def test_a_failed_rbac_query_leaves_the_403s_unconfirmed_and_the_report_standing(
    served: Served, kube_api_factory, tmp_path: Path
) -> None:
    api = kube_api_factory(served.mesh)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proxy = FaultProxy(served.url)
    try:
        proxy.add(lambda r: r.kind == "rbac", fp.status(503, "overloaded"))
        argv = ["report", "--prometheus-url", proxy.url, "--kubeconfig", str(kubeconfig)]
        code = main([*argv, "--output-dir", str(tmp_path / "out"), "--lookback", LOOKBACK])
        report = read_latest(tmp_path / "out", code)
    finally:
        proxy.close()
    for ref in ("shop/db", "store/api", "media/files"):
        row = report.workloads[ref]
        assert (row["plaintext_denials_by"], row["plaintext_denied_clients"]) == ("unconfirmed", "legacy/batch")
        assert "the RBAC-denials query failed" in row["authz_reason"] and "503" in row["authz_reason"]
    assert any(w.startswith("query failed: RBAC denials") for w in report.summary["warnings"])
    assert report.code == 0 and report.summary["complete"] is True  # an optional query: nothing is UNKNOWN
    assert report.workloads["shop/web"]["verdict"] == "BLOCKED"
    assert report.workloads["shop/db"]["authz_plaintext"] == "denied"


def test_victoriametrics_gives_the_same_outcomes_with_one_exact_part(
    served: Served, kube_api_factory, tmp_path: Path, now
) -> None:
    (tmp_path / "vm").mkdir()
    server = victoria.serve_mesh(served.mesh, tmp_path / "vm", now)
    proxy = FaultProxy(server.url)
    try:
        kubeconfig = kube_api_factory(served.mesh).write_kubeconfig(tmp_path / "kubeconfig")
        argv = ["report", "--prometheus-url", proxy.url, "--kubeconfig", str(kubeconfig)]
        code = main([*argv, "--output-dir", str(tmp_path / "out"), "--lookback", LOOKBACK])
        report = read_latest(tmp_path / "out", code)
        asked = [r.query for r in proxy.seen if r.kind == "rbac"]
    finally:
        proxy.close()
        server.stop()
    assert len(asked) == 1 and "increase_pure(" in asked[0]
    by = {ref: report.workloads[ref]["plaintext_denials_by"] for ref in ("shop/db", "store/api", "media/files")}
    assert by == {"shop/db": "proxy", "store/api": "not-proxy", "media/files": "unconfirmed"}


def test_an_unmeshed_workload_and_strict_ones_get_no_finding(from_cluster) -> None:
    # cart receives nothing; it is below STRICT (no traffic) and open; no suggestion without plaintext.
    result = _result(from_cluster)
    assert _workload(result, "shop/cart")["authz_plaintext"] == "open"
    assert _workload(result, "shop/cart")["authz_suggestion"] == ""


def _what_if(capsys, served: Served, path: Path) -> tuple[int, dict]:
    argv = ["what-if", "--apply", str(path), "--prometheus-url", served.url, "--policies-from", str(served.policies)]
    code = main([*argv, "--lookback", LOOKBACK, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_suggested_policy_is_valid_and_what_if_predicts_exactly_the_denied_clients(
    served: Served, from_cluster, tmp_path: Path, capsys
) -> None:
    suggestion = _workload(_result(from_cluster), "shop/web")["authz_suggestion"]
    assert suggestion.startswith("# A STARTING POINT TO REVIEW")
    warnings: list[str] = []
    (policy,) = pipeline.read_authz_proposal([(yaml.safe_load(suggestion), "suggestion")], "istio-system", warnings)
    assert warnings == []
    assert (policy.ref, policy.action, policy.selector) == ("shop/web-limit-plaintext", Action.ALLOW, {"app": "web"})
    assert policy.rules[0].sources[0].principals == (CART,)  # the mTLS client's identity is kept
    assert policy.rules[1].sources[0].not_principals == ("*",)
    assert policy.rules[1].operations == ()  # no condition the metrics cannot check...
    assert 'to: [{operation: {ports: ["8000"]}}]' in suggestion  # ...the port limit is offered as a comment

    path = tmp_path / "suggested.yaml"
    path.write_text(suggestion, encoding="utf-8")
    code, answer = _what_if(capsys, served, path)
    # cart keeps its access by principal, legacy/batch its plaintext: what-if knows it, with evidence.
    assert (code, answer["verdict"], answer["cut_off"], answer["doubts"]) == (0, "safe", [], [])
    assert answer["changed_workloads"] == ["shop/web"]
    assert answer["proposal_kind"] == "AuthorizationPolicy"

    # Without rule 2, exactly the plaintext client is denied, and the mTLS client is not.
    doc = yaml.safe_load(suggestion)
    doc["spec"]["rules"] = doc["spec"]["rules"][:1]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, answer = _what_if(capsys, served, path)
    assert (code, answer["verdict"], answer["doubts"]) == (3, "cut_off", [])
    assert [(c["source"], c["destination"], c["mode_after"]) for c in answer["cut_off"]] == [
        ("legacy/batch", "shop/web", "plaintext denied")
    ]


def test_what_if_a_deny_of_all_plaintext_names_only_the_clients_not_already_denied(
    served: Served, tmp_path: Path, capsys
) -> None:
    policy = _ap("shop", "require-mtls", "DENY", [{"from": [{"source": {"notPrincipals": ["*"]}}]}], {})
    del policy["spec"]["selector"]
    path = tmp_path / "deny.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    code, answer = _what_if(capsys, served, path)
    # db's plaintext is already denied by db-allow: the proposal changes nothing for it.
    assert (code, [(c["source"], c["destination"]) for c in answer["cut_off"]]) == (3, [("legacy/batch", "shop/web")])
    assert sorted(answer["changed_workloads"]) == ["shop/cart", "shop/db", "shop/web"]


def test_a_malformed_proposal_is_bad_input(served: Served, tmp_path: Path, capsys) -> None:
    policy = _ap("shop", "bad", "REJECT", [], {"app": "web"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    argv = ["what-if", "--apply", str(path), "--prometheus-url", served.url, "--policies-from", str(served.policies)]
    assert main(argv) == 1
    assert "AuthorizationPolicy bad: spec.action: expected" in capsys.readouterr().err


def test_without_rights_to_list_authorization_policies_findings_are_unknown(
    served: Served, kube_api_factory, tmp_path: Path
) -> None:
    api = kube_api_factory(served.mesh, faults={"/apis/security.istio.io/v1/authorizationpolicies": FORBIDDEN})
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    argv = ["report", "--prometheus-url", served.url, "--kubeconfig", str(kubeconfig)]
    code = main([*argv, "--output-dir", str(tmp_path / "out"), "--lookback", LOOKBACK])
    report = read_latest(tmp_path / "out", code)
    assert {report.workloads[r]["authz_plaintext"] for r in ("shop/web", "shop/db", "shop/cart")} == {"unknown"}
    assert any("authorizationpolicies" in w and "403" in w for w in report.summary["warnings"])
    assert report.workloads["shop/web"]["verdict"] == "BLOCKED"  # the rest of the report stands


def test_an_unreadable_policy_makes_its_namespace_unknown(served: Served, tmp_path: Path, capsys) -> None:
    bad = _ap("shop", "broken", "ALLOW", [{"from": {"source": {}}}], {"app": "web"})  # from must be a list
    policies = tmp_path / "policies.yaml"
    docs = [*yaml.safe_load_all(served.policies.read_text(encoding="utf-8")), bad]
    policies.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    report = run_report(capsys, served.url, policies, tmp_path / "out")
    assert report.workloads["shop/web"]["authz_plaintext"] == "unknown"
    assert "AuthorizationPolicy shop/broken could not be read" in report.workloads["shop/web"]["authz_reason"]
    assert report.workloads["legacy/batch"]["authz_plaintext"] == "open"  # another namespace is unaffected


@pytest.mark.parametrize(
    ("action", "why"),
    [(fp.set_values("NaN"), "finite"), (fp.status(503, "overloaded"), "503")],
    ids=["NaN values", "HTTP 503"],
)
def test_a_bad_responses_answer_leaves_denials_unknown_never_none(
    served: Served, tmp_path: Path, capsys, action: fp.Action, why: str
) -> None:
    proxy = FaultProxy(served.url)
    try:
        proxy.add(lambda r: r.kind == "responses", action)
        report = run_report(capsys, proxy.url, served.policies, tmp_path / "out")
    finally:
        proxy.close()
    db = _workload(_result(report), "shop/db")
    assert db["plaintext_denied_clients"] == [] and why in db["plaintext_denials_unknown"]
    assert db["plaintext_denials_by"] == ""  # no 403 read, none to confirm: the RBAC query is not sent
    assert not [r for r in proxy.seen if r.kind == "rbac"]
    assert db["authz_plaintext"] == "denied"  # the policy verdict does not rest on the 403s
    assert any(w.startswith("query failed: plaintext responses") for w in report.summary["warnings"])
    assert report.workloads["shop/web"]["verdict"] == "BLOCKED"  # the verdicts stand


def test_the_page_section_reads_without_colour_and_passes_axe(from_cluster) -> None:
    try:
        with Chromium() as browser:
            page = browser.page(width=DESKTOP)
            page.open((from_cluster.run_folder / "index.html").resolve().as_uri())
            rows = page.evaluate(
                "[...document.querySelectorAll('#authz-table tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' '))"
            )
            assert page.axe() == []
            assert page.errors() == []
    except BrowserError as exc:  # a missing Chromium fails; it is never a skip
        pytest.fail(str(exc))
    by_workload = {r.split(" ", 1)[0]: r for r in rows}
    assert "plaintext already denied" in by_workload["shop/db"] and "legacy/batch" in by_workload["shop/db"]
    assert "open to plaintext" in by_workload["shop/web"]
    assert "403s from the proxy's RBAC filter" in by_workload["shop/db"]
    assert "403s from the application, not the proxy: not denied" in by_workload["store/api"]
    assert "shop/deny-legacy rules[0]" in by_workload["shop/web"]


def test_a_snapshot_taken_without_the_right_reads_back_as_unknown(served: Served, kube_api_factory, tmp_path) -> None:
    from analyzer.collect.kube import read_objects, write_snapshot
    from analyzer.collect.policy_files import load_inventory

    api = kube_api_factory(served.mesh, faults={"/apis/security.istio.io/v1/authorizationpolicies": FORBIDDEN})
    read = read_objects(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    snapshot = tmp_path / "snapshot.yaml"
    write_snapshot(read, snapshot)
    replay = load_inventory(snapshot)
    assert replay.authorization_policies == [] and "403" in replay.authz_unavailable
    assert replay.problems == []
    # With the right, the snapshot holds the policies themselves.
    api = kube_api_factory(served.mesh)
    write_snapshot(read_objects(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig2"))), snapshot)
    replay = load_inventory(snapshot)
    assert sorted(p.ref for p in replay.authorization_policies) == ["shop/db-allow", "shop/deny-legacy"]
    assert replay.authz_unavailable == ""
