"""`what-if` end to end: the CLI in process against a real Prometheus holding the demo mesh
(and, for the answers that rest on the data, a real VictoriaMetrics too).

0 only on evidence that nothing observed is cut off, 3 when an observed client would be cut off
(even when other parts are in doubt), 2 when it cannot tell, 1 on bad input. It follows the
report's rules of doubt, and its answer for a mesh-wide STRICT is the report's headline.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from analyzer import pipeline
from analyzer.cli import main
from analyzer.config import ReportConfig
from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh, peer_authentication
from tests.support.e2e import LOOKBACK, short_history, write_policies
from tests.support.engines import EngineFactory
from tests.support.prometheus import free_port

MESH_STRICT = peer_authentication("istio-system", "default", "STRICT")
SHOP_STRICT = peer_authentication("shop", "default", "STRICT")  # shop is READY: all mTLS
ANALYTICS_STRICT = peer_authentication("analytics", "default", "STRICT")  # its label was dropped


@dataclass
class Answer:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


@dataclass
class Served:
    url: str
    policies: Path


@pytest.fixture(scope="module")
def served(prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory) -> Served:
    """For the tests of how input is read, which do not depend on the query engine."""
    mesh = short_history(catalogue.demo())
    return Served(prometheus_factory(mesh), write_policies(mesh, tmp_path_factory.mktemp("whatif")))


@pytest.fixture(scope="module")
def on_engine(engine_factory: EngineFactory, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The same mesh on each query engine, for the tests whose answer rests on the data."""
    mesh = short_history(catalogue.demo())
    return Served(engine_factory(mesh), write_policies(mesh, tmp_path_factory.mktemp("whatif")))


def proposal(tmp_path: Path, *docs: object, name: str = "proposal.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False), encoding="utf-8")
    return path


def what_if(capsys: pytest.CaptureFixture[str], url: str, policies: Path, apply: Path, *extra: str) -> Answer:
    argv = ["what-if", "--apply", str(apply), "--prometheus-url", url, "--policies-from", str(policies)]
    code = main([*argv, "--lookback", LOOKBACK, *extra])
    captured = capsys.readouterr()
    return Answer(code, captured.out, captured.err)


# -- rules of doubt ------------------------------------------------------------------------------------


def test_a_ready_namespace_is_safe(on_engine: Served, tmp_path: Path, capsys) -> None:
    """The control for the doubts below: the same proposal, nothing in doubt, is 0."""
    answer = what_if(capsys, on_engine.url, on_engine.policies, proposal(tmp_path, SHOP_STRICT), "-o", "json")
    assert answer.code == 0, answer.out
    assert answer.json["verdict"] == "safe"
    assert answer.json["doubts"] == []
    assert answer.json["changed_workloads"] == ["shop/cart", "shop/catalog", "shop/frontend"]


def test_no_istio_data_cannot_tell(engine_factory: EngineFactory, on_engine: Served, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, engine_factory.empty(), on_engine.policies, proposal(tmp_path, SHOP_STRICT))
    assert answer.code == 2, answer.out
    assert "holds no server-side Istio request metrics" in answer.out and "--prometheus-url" in answer.out
    assert "no client observed in the window would be cut off" not in answer.out


def test_an_unreachable_prometheus_is_bad_input(served: Served, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, f"http://127.0.0.1:{free_port()}", served.policies, proposal(tmp_path, SHOP_STRICT))
    assert answer.code == 1
    assert "cannot reach Prometheus" in answer.err


class _FailingTotals(BaseHTTPRequestHandler):
    """Forwards to the real Prometheus, except the window-totals queries, which fail as Prometheus fails."""

    upstream = ""

    def _answer(self, query: dict[str, list[str]], body: bytes | None = None) -> None:
        path = urlsplit(self.path).path
        if path == "/api/v1/query" and "increase(" in query.get("query", [""])[0]:
            status = 503
            answer = json.dumps({"status": "error", "errorType": "execution", "error": "query timed out"}).encode()
        else:
            headers = {"Content-Type": self.headers.get("Content-Type", "application/x-www-form-urlencoded")}
            forwarded = requests.request(
                self.command, f"{self.upstream}{self.path}", data=body, headers=headers, timeout=30
            )
            status, answer = forwarded.status_code, forwarded.content
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self._answer(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(parse_qs(body.decode()), body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_totals(served: Served) -> Iterator[str]:
    handler = type("Handler", (_FailingTotals,), {"upstream": served.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_failed_totals_query_cannot_tell(served: Served, failing_totals: str, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, failing_totals, served.policies, proposal(tmp_path, SHOP_STRICT), "-o", "json")
    assert answer.code == 2, answer.out
    assert answer.json["verdict"] == "cannot_tell"
    assert answer.json["exit_code"] == 2
    assert any(d.startswith("query failed (totals:") for d in answer.json["doubts"]), answer.json


def test_unreadable_labels_on_a_reached_workload_cannot_tell(on_engine: Served, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, on_engine.url, on_engine.policies, proposal(tmp_path, ANALYTICS_STRICT))
    assert answer.code == 2, answer.out
    line = next(x for x in answer.out.splitlines() if x.startswith("cannot tell: analytics/reports"))
    assert "connection_security_policy" in line


def test_a_cut_off_wins_over_doubt_and_says_both(on_engine: Served, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, on_engine.url, on_engine.policies, proposal(tmp_path, MESH_STRICT, ANALYTICS_STRICT))
    assert answer.code == 3, answer.out
    assert "would be cut off" in answer.out
    assert "cannot tell: analytics/reports" in answer.out


def test_a_quiet_workload_is_safe_but_says_there_was_no_evidence(on_engine: Served, tmp_path: Path, capsys) -> None:
    catalog = peer_authentication("shop", "catalog-strict", "STRICT", selector={"app": "catalog"})
    answer = what_if(capsys, on_engine.url, on_engine.policies, proposal(tmp_path, catalog), "-o", "json")
    assert answer.code == 0
    assert any("no traffic in the window" in w and "no evidence" in w for w in answer.json["warnings"])


# -- the proposal is read strictly ---------------------------------------------------------------------


def _broken(change: Callable[[dict], None]) -> dict:
    doc = json.loads(json.dumps(SHOP_STRICT))
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (_broken(lambda d: d["spec"]["mtls"].update(mode="Strict")), "'Strict'"),
        (_broken(lambda d: d["spec"].update(mtls=["STRICT"])), "spec.mtls must be a map"),
        (_broken(lambda d: d["spec"].update(selector={"matchLabels": {"app": "cart"}}, portLevelMtls={"http": {}})),
         "'http' is not a port number"),
        (_broken(lambda d: d["metadata"].pop("name")), "metadata.name is missing"),
        ("just a string", "not a Kubernetes object"),
    ],
    ids=["mode Strict", "a list where a map belongs", "non-numeric port", "missing name", "not an object"],
)  # fmt: skip
def test_a_malformed_document_is_bad_input_naming_file_and_document(
    served: Served, tmp_path: Path, capsys, doc: object, problem: str
) -> None:
    path = proposal(tmp_path, SHOP_STRICT, doc)
    answer = what_if(capsys, served.url, served.policies, path)
    assert answer.code == 1
    assert answer.out == ""
    line = answer.err.strip()
    assert "\n" not in line
    assert f"--apply {path} (document 2)" in line
    assert problem in line


def test_bad_yaml_names_apply_and_the_line(served: Served, tmp_path: Path, capsys) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: PeerAuthentication\nmetadata: {name: x\n", encoding="utf-8")
    answer = what_if(capsys, served.url, served.policies, path)
    assert answer.code == 1
    assert f"--apply {path}:" in answer.err
    assert "--policies-from" not in answer.err


def test_another_kind_is_ignored_with_a_warning_naming_it(served: Served, tmp_path: Path, capsys) -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "notes", "namespace": "shop"}}
    answer = what_if(capsys, served.url, served.policies, proposal(tmp_path, other, SHOP_STRICT), "-o", "json")
    assert answer.code == 0
    assert any("(document 1): ignored ConfigMap notes" in w for w in answer.json["warnings"]), answer.json


@pytest.mark.parametrize(
    ("doc", "typo"),
    [
        (peer_authentication("shopp", "default", "STRICT"), "namespace shopp has no workload"),
        (peer_authentication("shop", "x", "STRICT", selector={"app": "kart"}), "selector app=kart matches no workload"),
    ],
    ids=["namespace", "selector"],
)
def test_a_target_matching_no_workload_warns(served: Served, tmp_path: Path, capsys, doc: dict, typo: str) -> None:
    answer = what_if(capsys, served.url, served.policies, proposal(tmp_path, doc))
    assert answer.code == 0, answer.out
    assert any(typo in x and "typo?" in x for x in answer.out.splitlines()), answer.out
    assert "the proposal makes no workload stricter" in answer.out


# -- the answer, and the headline ----------------------------------------------------------------------


def test_json_answer_counts_clients_and_edges_apart(on_engine: Served, tmp_path: Path, capsys) -> None:
    answer = what_if(capsys, on_engine.url, on_engine.policies, proposal(tmp_path, MESH_STRICT), "-o", "json")
    assert answer.code == 3
    data = answer.json
    assert data["verdict"] == "cut_off" and data["exit_code"] == 3
    rows = data["cut_off"]
    assert set(rows[0]) == {
        "source", "destination", "protocol", "unit", "plaintext_count", "last_seen",
        "certain", "mode_before", "mode_after", "decided_by",
    }  # fmt: skip
    assert data["clients"] == len({r["source"] for r in rows}) < data["edges"] == len(rows)
    assert sum(r["source"] == "unknown" for r in rows) > 1  # one client, several edges
    assert all(r["last_seen"] and r["plaintext_count"] > 0 for r in rows)
    assert all(r["unit"] == ("connections" if r["protocol"] == "tcp" else "requests") for r in rows)
    assert "legacy-db/mysql" not in {r["destination"] for r in rows}  # its own DISABLE is never touched


def test_the_demo_headline_and_what_if_agree(tmp_path: Path, capsys) -> None:
    config = ReportConfig(output_dir=tmp_path / "reports")
    result, _ = pipeline.report(config, sample="demo")  # what `mtls-readiness demo` runs
    answer = Answer(main(["what-if", "--demo", "--apply", str(proposal(tmp_path, MESH_STRICT)), "-o", "json"]), "", "")
    answer.out = capsys.readouterr().out
    assert answer.code == 3
    mesh = result.mesh
    assert (mesh.cut_off_clients, mesh.cut_off_edges) == (answer.json["clients"], answer.json["edges"])
    assert mesh.cut_off_edges == 6 and mesh.cut_off_clients == 3
    assert mesh.behind_exceptions == 1  # plaintext to legacy-db/mysql, behind its workload-level DISABLE
    assert mesh.exceptions == ["legacy-db/mysql-disable"]
    assert mesh.reasons[0].startswith("a mesh-wide STRICT would cut off 3 client(s) (6 client->destination edge(s))")
