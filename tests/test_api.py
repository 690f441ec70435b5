"""The public API (analyzer.api): same answers as the CLI, on the sample mesh and over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import yaml

import analyzer
from analyzer import api, cli
from analyzer.collect import queries
from analyzer.errors import UserError
from analyzer.model.report import VERDICT_ORDER, RunResult
from analyzer.sample import catalogue
from analyzer.write.charts import VERDICT_COLOURS

ORDERS_STRICT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: orders
spec:
  mtls:
    mode: STRICT
"""


@pytest.fixture(scope="module")
def demo(now: datetime) -> RunResult:
    return api.analyse_sample("demo", now=now)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `mtls-readiness demo` wrote."""
    out = tmp_path_factory.mktemp("reports")
    assert cli.main(["demo", "--output-dir", str(out)]) == 0  # published: its UNKNOWN is on purpose
    return out


# -- analyse_sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workload", "verdict"),
    [
        ("payments/api", "ENFORCED"),  # namespace-wide STRICT; the newer duplicate policy is ignored
        ("shop/cart", "READY"),  # only mTLS observed
        ("shop/catalog", "NO_TRAFFIC"),
        ("orders/billing", "BLOCKED"),  # a meshed client whose DestinationRule disables TLS
        ("orders/web", "BLOCKED"),  # an unmeshed ingress controller
        ("data/postgres", "BLOCKED"),  # one burst of plaintext TCP three days ago
        ("edge/gateway-api", "BLOCKED"),  # ambient: ztunnel's "unknown" security policy is plaintext
        ("edge/ratelimit", "READY"),
        ("legacy-db/mysql", "DISABLED"),
        ("monitoring/prometheus", "NOT_MESHED"),
        ("analytics/reports", "UNKNOWN"),  # the security label was dropped: never READY
    ],
)
def test_analyse_sample_gives_the_verdicts_the_demo_mesh_implies(demo, workload, verdict):
    verdicts = {f"{w.namespace}/{w.workload}": w.verdict.value for w in demo.workloads}
    assert verdicts[workload] == verdict


def test_analyse_sample_uses_the_lookback(now):
    short = api.analyse_sample("demo", lookback="1h", now=now)
    assert short.window_end == now and short.window_end - short.window_start == timedelta(hours=1)
    verdicts = {f"{w.namespace}/{w.workload}": w.verdict.value for w in short.workloads}
    # The ETL burst is three days old: outside a one-hour window postgres has only mTLS clients.
    assert verdicts["data/postgres"] == "READY"
    assert verdicts["orders/web"] == "BLOCKED"


def test_analyse_sample_rejects_an_unknown_mesh():
    with pytest.raises(UserError, match="demo"):
        api.analyse_sample("no-such-mesh")


# -- load_run: what the CLI wrote, read back -------------------------------------------------------


@pytest.mark.parametrize("where", ["output-dir", "latest", "run-folder"])
def test_load_run_round_trips_what_the_cli_wrote(demo, published, where):
    folder = {
        "output-dir": published,
        "latest": published / "latest",
        "run-folder": next((published / "runs").iterdir()),
    }[where]
    run = api.load_run(folder)
    assert isinstance(run, RunResult)
    assert run.verdict_counts() == demo.verdict_counts()
    assert run.mesh.verdict is demo.mesh.verdict
    written = {f"{w.namespace}/{w.workload}": w.verdict for w in run.workloads}
    assert written == {f"{w.namespace}/{w.workload}": w.verdict for w in demo.workloads}
    assert sum(e.plaintext_count for e in run.edges if e.blocker) == pytest.approx(
        sum(e.plaintext_count for e in demo.edges if e.blocker)
    )
    assert api.load_run is analyzer.load_run


def test_tables_are_the_same_for_a_result_and_a_published_run(demo, published):
    from_result, from_run = api.tables(demo), api.tables(api.load_run(published))
    for name in ("edges", "workloads", "namespaces"):
        assert len(from_result[name]) == len(from_run[name]), name
    ns = "namespace"
    left = from_result["namespaces"].set_index(ns)[["plaintext_count", "mtls_count"]].sort_index()
    right = from_run["namespaces"].set_index(ns)[["plaintext_count", "mtls_count"]].sort_index()
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


# -- plaintext_timeline ------------------------------------------------------------------------------


def _step_seconds(result: RunResult) -> float:
    return queries.timeline_step(result.window_end - result.window_start).total_seconds()


def test_timeline_covers_the_window_step_by_step(demo):
    frame = api.plaintext_timeline(demo)
    step = queries.timeline_step(demo.window_end - demo.window_start)
    assert frame.index[0] == demo.window_start and frame.index[-1] == demo.window_end
    assert (frame.index.to_series().diff().dropna() == step).all()
    # Clients by volume; the unnamed callers carry most plaintext in the demo.
    assert list(frame.columns) == ["unknown", "ingress/ingress-nginx", "orders/web"]


@pytest.mark.parametrize(
    ("namespace", "workload", "clients"),
    [
        ("orders", None, ["unknown", "orders/web"]),
        ("orders", "billing", ["orders/web"]),
        ("edge", "gateway-api", ["ingress/ingress-nginx"]),  # ambient: "unknown" security is plaintext
        ("analytics", "reports", []),  # unreadable security label: not proven plaintext
        ("shop", None, []),  # all mTLS
    ],
)
def test_timeline_has_only_plaintext_clients_of_the_selection(demo, namespace, workload, clients):
    assert list(api.plaintext_timeline(demo, namespace, workload).columns) == clients


def test_timeline_is_a_rate_per_second(demo):
    gateway = api.plaintext_timeline(demo, "edge", "gateway-api")["ingress/ingress-nginx"]
    assert gateway.median() == pytest.approx(600 / 3600)  # the flow sends 600 requests an hour
    burst = api.plaintext_timeline(demo, "data", "postgres")["unknown"]
    active = burst[burst > 0]
    assert len(active) == 1  # one nightly run
    assert active.iloc[0] * _step_seconds(demo) == pytest.approx(13)
    assert abs(demo.window_end - active.index[0] - timedelta(days=3)) <= timedelta(hours=1)


def test_a_published_run_keeps_its_timeline(published):
    run = api.load_run(published)
    step = _step_seconds(run)
    gateway = api.plaintext_timeline(run, "edge", "gateway-api")["ingress/ingress-nginx"]
    assert gateway.median() * step == pytest.approx(600 * step / 3600)
    assert list(api.plaintext_timeline(run).columns) == ["unknown", "ingress/ingress-nginx", "orders/web"]


# -- what_if -----------------------------------------------------------------------------------------


def _cut_off(prediction) -> set[tuple[str, str]]:
    return {(c.source, c.destination) for c in prediction.cut_off}


@pytest.mark.parametrize("form", ["yaml-text", "dict", "list-of-dicts", "path", "path-string", "kind-list"])
def test_what_if_takes_a_proposal_in_any_form(tmp_path, now, form):
    manifest = yaml.safe_load(ORDERS_STRICT)
    file = tmp_path / "proposal.yaml"
    file.write_text(ORDERS_STRICT, encoding="utf-8")
    proposal = {
        "yaml-text": ORDERS_STRICT,
        "dict": manifest,
        "list-of-dicts": [manifest],
        "path": file,
        "path-string": str(file),
        "kind-list": {"apiVersion": "v1", "kind": "List", "items": [manifest]},
    }[form]
    prediction = api.what_if(proposal, sample="demo", now=now)
    assert _cut_off(prediction) == {("unknown", "orders/web"), ("orders/web", "orders/billing")}
    assert prediction.changed_workloads == ["orders/billing", "orders/web"]


def test_what_if_agrees_with_the_cli(tmp_path, capsys):
    file = tmp_path / "proposal.yaml"
    file.write_text(ORDERS_STRICT, encoding="utf-8")
    assert cli.main(["what-if", "--demo", "--apply", str(file)]) == 3
    printed = capsys.readouterr().out
    prediction = api.what_if(file, sample="demo")
    assert f"{len(prediction.cut_off)} observed plaintext client(s) would be cut off" in printed
    for source, destination in _cut_off(prediction):
        assert any(line.split()[:2] == [source, destination] for line in printed.splitlines()), printed


def test_what_if_a_ready_namespace_cuts_off_nobody(demo, now):
    suggested = next(n.remediation for n in demo.namespaces if n.namespace == "shop")
    prediction = api.what_if(suggested, sample="demo", now=now)
    assert prediction.cut_off == []
    assert prediction.changed_workloads == ["shop/cart", "shop/catalog", "shop/frontend"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"sample": "demo", "prometheus_url": "http://127.0.0.1:9"}, "exactly one of"),
        ({"sample": "demo", "proposal": "kind: Namespace\nmetadata: {name: x}\n"}, "no PeerAuthentication"),
        ({"sample": "demo", "proposal": "kind: [unclosed\nx: y\n"}, "not valid YAML"),
    ],
    ids=["no-source", "two-sources", "no-peer-authentication", "bad-yaml"],
)
def test_what_if_says_what_is_wrong(kwargs, message):
    proposal = kwargs.pop("proposal", ORDERS_STRICT)
    with pytest.raises(UserError, match=message):
        api.what_if(proposal, **kwargs)


# -- analyse_live: the options reach Prometheus over real HTTP ---------------------------------------


class _RecordingPrometheus(BaseHTTPRequestHandler):
    """Answers every query with an empty result and remembers the headers it was sent."""

    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        self.seen.append(dict(self.headers))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        kind = "matrix" if "query_range" in self.path else "vector"
        body = json.dumps({"status": "success", "data": {"resultType": kind, "result": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_prometheus() -> Iterator[tuple[str, list[dict[str, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingPrometheus)
    _RecordingPrometheus.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _RecordingPrometheus.seen
    server.shutdown()
    server.server_close()


def test_analyse_live_sends_the_prometheus_options(recording_prometheus, tmp_path):
    url, seen = recording_prometheus
    token = tmp_path / "token"
    token.write_text("s3cret\n", encoding="utf-8")
    policies = tmp_path / "mesh.yaml"
    policies.write_text(yaml.safe_dump_all(catalogue.walkthrough().manifests()), encoding="utf-8")
    result = api.analyse_live(
        url,
        policies_from=policies,
        lookback="1d",
        bearer_token_file=str(token),
        headers={"X-Team": "mesh"},
        tenant="platform",
        retries=0,
    )
    assert result.source == url
    assert result.window_end - result.window_start == timedelta(days=1)
    assert seen, "no query reached Prometheus"
    for headers in seen:
        assert headers["Authorization"] == "Bearer s3cret"
        assert headers["X-Team"] == "mesh"
        assert headers["X-Scope-OrgID"] == "platform"
    # Policies came from the file: the walkthrough's workloads are all there, with no traffic to judge.
    assert {f"{w.namespace}/{w.workload}" for w in result.workloads} >= {"foo/httpbin", "bar/httpbin", "legacy/curl"}
    assert result.verdict_counts()["READY"] == 0  # no evidence is never READY


def test_analyse_live_rejects_an_unknown_option():
    with pytest.raises(TypeError, match="bearer_token"):
        api.analyse_live("http://127.0.0.1:9", policies_from="unused", bearer_token="oops")


# -- figures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["workloads", "namespaces"])
def test_plot_verdicts_draws_one_bar_per_verdict(demo, published, level):
    items = demo.workloads if level == "workloads" else demo.namespaces
    want = {v.value: sum(1 for i in items if i.verdict is v) for v in VERDICT_ORDER}
    for source in (demo, api.load_run(published)):
        ax = api.plot_verdicts(source, level=level).axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        widths = [p.get_width() for p in ax.patches]
        assert dict(zip(labels, widths, strict=True)) == want
        assert labels[-1] == "BLOCKED"  # attention first, at the top
        colours = {label: p.get_facecolor() for label, p in zip(labels, ax.patches, strict=True)}
        assert colours["READY"] == pytest.approx(_rgba(VERDICT_COLOURS["READY"]))


def test_plot_namespace_volume_stacks_plaintext_on_mtls_one_panel_per_unit(demo):
    fig = api.plot_namespace_volume(demo)
    edges = demo.edges_frame()
    assert [ax.get_xlabel() for ax in fig.axes] == ["requests in the window", "connections in the window"]
    for ax, unit in zip(fig.axes, ("requests", "connections"), strict=True):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        mtls, plaintext = ax.containers
        by_ns = edges[edges.unit == unit].groupby("destination_namespace")[["mtls_count", "plaintext_count"]].sum()
        assert labels[-1] == by_ns.plaintext_count.idxmax()  # most plaintext on top
        assert "istio-system" not in labels and "ingress" not in labels  # no inbound traffic
        for label, m, p in zip(labels, mtls.patches, plaintext.patches, strict=True):
            assert m.get_width() == pytest.approx(by_ns.loc[label, "mtls_count"])
            assert p.get_width() == pytest.approx(by_ns.loc[label, "plaintext_count"])
            assert p.get_x() == pytest.approx(by_ns.loc[label, "mtls_count"])
    # The connections panel has its own scale: its largest bar spans it, whatever the request volume.
    connections = fig.axes[1]
    widest = max(p.get_x() + p.get_width() for p in connections.patches)
    assert connections.get_xlim()[1] < 2 * widest


def test_plot_plaintext_over_time_draws_a_line_per_client(demo):
    ax = api.plot_plaintext_over_time(demo, "orders").axes[0]
    timeline = api.plaintext_timeline(demo, "orders")
    assert [line.get_label() for line in ax.lines] == ["unknown", "orders/web"]
    assert list(ax.lines[0].get_ydata()) == pytest.approx(list(timeline["unknown"]))
    top_one = api.plot_plaintext_over_time(demo, top=1).axes[0]
    assert [line.get_label() for line in top_one.lines] == ["unknown", "other"]
    other = api.plaintext_timeline(demo).iloc[:, 1:].sum(axis=1)
    assert list(top_one.lines[1].get_ydata()) == pytest.approx(list(other))


def test_plot_plaintext_over_time_says_when_there_is_none(demo):
    ax = api.plot_plaintext_over_time(demo, "shop").axes[0]
    assert list(ax.lines) == []
    assert [t.get_text() for t in ax.texts] == ["No plaintext to shop in the window"]


def _rgba(hex_colour: str) -> tuple[float, ...]:
    from matplotlib.colors import to_rgba

    return to_rgba(hex_colour)


# -- the package ---------------------------------------------------------------------------------------


def test_importing_the_package_stays_light():
    """The CLI imports `analyzer` for its version: the API (pandas, matplotlib) loads on first use."""
    code = (
        "import sys, analyzer; assert 'pandas' not in sys.modules, 'eager'; "
        "f = analyzer.analyse_sample; import analyzer.api as a; assert f is a.analyse_sample; "
        "print(sorted(set(analyzer.__all__) - set(dir(analyzer))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        analyzer.nope  # noqa: B018


def test_plot_plaintext_over_time_in_panels_keeps_a_small_burst_visible(demo):
    frame = pd.DataFrame(
        {
            f"{ns}/{wl}": api.plaintext_timeline(demo, ns, wl)["unknown"]
            for ns, wl in [("orders", "web"), ("data", "postgres")]
        }
    )
    fig = api.plot_plaintext_over_time(frame, panels=True)
    assert [[line.get_label() for line in ax.lines] for ax in fig.axes] == [["orders/web"], ["data/postgres"]]
    busy, burst = fig.axes
    # Each panel has its own scale: the 13-connection burst fills its panel instead of hugging zero.
    assert burst.get_ylim()[1] < busy.get_ylim()[1] / 10
    assert max(burst.lines[0].get_ydata()) > burst.get_ylim()[1] / 2
