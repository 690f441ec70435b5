"""The HTML report in a real headless Chromium: no console errors, nothing fetched but the page
itself, sortable tables, hostile label values shown as text, night-over-night changes, and the
size budget at 5,000 workloads and 40,000 edges. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from analyzer import pipeline
from analyzer.analyse.readiness import Settings, analyse
from analyzer.collect.manifests import build_inventory
from analyzer.config import ReportConfig
from analyzer.model.inventory import Dataplane
from analyzer.model.report import RunResult
from analyzer.model.traffic import OBSERVATION_COLUMNS, TIMELINE_COLUMNS, Traffic
from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh
from analyzer.write import charts
from analyzer.write.html import BLOCKER_ROWS, render_report
from analyzer.write.publish import publish
from analyzer.write.summary import summary as summarise
from tests.support.browser import BrowserError, Chromium, Page

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SIZE_BUDGET = 5_000_000  # bytes for the page of a 5,000-workload, 40,000-edge mesh


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    try:
        chromium = Chromium()
        with chromium:
            yield chromium
    except BrowserError as exc:  # a missing or broken chromium fails the suite; it is never skipped
        pytest.fail(str(exc))


def _next_second() -> None:
    """Run ids have one-second resolution: two runs in the same second would share one."""
    time.sleep(1.05 - (time.time() % 1))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nights of `mtls-readiness demo`, so the second report has a previous run and a history."""
    out = tmp_path_factory.mktemp("demo")
    for _ in range(2):
        _next_second()
        done = subprocess.run(
            [sys.executable, "-m", "analyzer", "demo", "--output-dir", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr  # demo exits 0 once published
    return out


def _open(browser: Chromium, path: Path) -> tuple[Page, str]:
    page = browser.page()
    url = path.resolve().as_uri()
    page.open(url)
    return page, url


def _assert_clean(page: Page, url: str) -> None:
    assert page.errors() == []
    assert page.requests() == [url], "the page must fetch nothing but itself"


# -- the demo report --------------------------------------------------------------------------------


def test_demo_report_opens_clean_with_charts_and_screenshot(browser: Chromium, demo_dir: Path) -> None:
    page, url = _open(browser, demo_dir / "latest" / "index.html")
    _assert_clean(page, url)
    facts = page.evaluate(
        """({
        h1: document.querySelector("h1").innerText,
        sortButtons: document.querySelectorAll("table.sortable th button.sort").length,
        scripts: document.scripts.length,
        charts: Array.from(document.querySelectorAll("figure[role=img]")).map(f => ({
            label: f.getAttribute("aria-label"), svg: !!f.querySelector(".chart-wide svg"),
            phone: !!f.querySelector(".chart-phone svg")})),
        headersWithoutScope: document.querySelectorAll("thead th:not([scope])").length,
        blockerRows: document.querySelectorAll("#blockers-table tbody tr").length,
        sections: document.querySelectorAll("details[id^=ns-]").length,
        text: document.body.innerText,
    })"""
    )
    assert "BLOCKED" in facts["h1"]
    assert facts["sortButtons"] > 20, "the inline script ran (its CSP hash matches)"
    assert facts["scripts"] == 1
    assert [bool(c["svg"] and c["phone"]) for c in facts["charts"]] == [True] * 4
    assert all(len(c["label"]) > 40 for c in facts["charts"]), "every chart describes itself"
    assert facts["headersWithoutScope"] == 0
    assert facts["blockerRows"] == json.loads((demo_dir / "latest" / "summary.json").read_text())["blockers"]
    assert facts["sections"] == 13
    for expected in (
        "Requests over mTLS",
        "TCP connections over mTLS",
        "Since the previous run",
        "Mesh coverage",
        "data/etl",  # the sidecar-less CronJob
        "kind: PeerAuthentication",
        "keep observing",
    ):
        assert expected in facts["text"]
    page.screenshot(ARTIFACTS / "report-top.png", full_page=False)
    shot = page.screenshot(ARTIFACTS / "report.png")
    assert shot.stat().st_size > 50_000


def test_report_prints_with_every_section_open(browser: Chromium, demo_dir: Path) -> None:
    page, _ = _open(browser, demo_dir / "latest" / "index.html")
    page.evaluate(
        "addEventListener('beforeprint', () => { window.closedAtPrint = "
        "document.querySelectorAll('details:not([open])').length; }); true"
    )
    pdf = page.pdf(ARTIFACTS / "report.pdf")
    assert pdf.stat().st_size > 20_000
    assert page.evaluate("window.closedAtPrint") == 0, "collapsed sections open for printing"
    assert page.evaluate("document.querySelectorAll('details[open]').length") < page.evaluate(
        "document.querySelectorAll('details').length"
    ), "and close again afterwards"
    assert page.errors() == []


def test_tables_sort_when_a_header_is_clicked(browser: Chromium, demo_dir: Path) -> None:
    page, _ = _open(browser, demo_dir / "latest" / "index.html")
    column = """(table, n) => Array.from(document.querySelectorAll(`#${table} tbody tr`))
        .map(r => r.cells[n].getAttribute("data-v") ?? r.cells[n].innerText.trim())"""
    click = """(table, label) => Array.from(document.querySelectorAll(`#${table} thead th`))
        .find(th => th.innerText.trim().startsWith(label)).querySelector("button").click()"""
    script = f"const column = {column}; const click = {click};"

    def numbers(table: str, label: str, index: int) -> list[float]:
        values = page.evaluate(
            f"(() => {{ {script} click('{table}', '{label}'); return column('{table}', {index}); }})()"
        )
        return [float(v or 0) for v in values]

    first = numbers("blockers-table", "Plaintext", 3)
    assert first == sorted(first, reverse=True) and len(set(first)) > 1, "numbers: largest first"
    again = numbers("blockers-table", "Plaintext", 3)
    assert again == sorted(again)
    assert (
        page.evaluate("document.querySelector('#blockers-table th[aria-sort]').getAttribute('aria-sort')")
        == "ascending"
    )

    names = page.evaluate(
        f"(() => {{ {script} click('namespaces-table', 'Namespace'); return column('namespaces-table', 0); }})()"
    )
    in_order = page.evaluate(
        f"(names => names.every((n, i) => i === 0 || names[i - 1].localeCompare(n, undefined, "
        f"{{numeric: true, sensitivity: 'base'}}) <= 0))({json.dumps(names)})"
    )
    assert in_order and names[0] != names[-1]
    assert page.errors() == []


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.hrefs.append(str(found["href"]))


def _assert_links_resolve(page: Path) -> list[str]:
    """Every link is relative and lands on a file or an anchor that exists (file:// and nginx alike)."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    for href in parser.hrefs:
        assert "://" not in href and not href.startswith("/"), href
        target, _, anchor = href.partition("#")
        if target:
            assert (page.parent / target).exists(), href
        elif anchor:
            assert anchor in parser.ids, href
    return parser.hrefs


def test_links_point_at_files_of_the_run(demo_dir: Path) -> None:
    report = (demo_dir / "latest" / "index.html").resolve()
    hrefs = _assert_links_resolve(report)
    for name in (
        "edges.csv",
        "workloads.csv",
        "namespaces.csv",
        "summary.json",
        "remediation.yaml",
        "../../index.html",
    ):
        assert name in hrefs
    assert (report.parent / "remediation.yaml").read_text().count("kind: PeerAuthentication") >= 2
    _assert_links_resolve(demo_dir / "index.html")


def test_history_page_lists_every_run_with_headline_figures(browser: Chromium, demo_dir: Path) -> None:
    page, url = _open(browser, demo_dir / "index.html")
    _assert_clean(page, url)
    rows = page.evaluate(
        "Array.from(document.querySelectorAll('#runs-table tbody tr')).map(r => r.innerText.replace(/\\s+/g, ' '))"
    )
    runs = sorted(p.name for p in (demo_dir / "runs").iterdir())
    assert len(rows) == len(runs) == 2
    assert runs[-1] in rows[0], "newest first"
    assert "BLOCKED" in rows[0] and "%" in rows[0]
    assert page.evaluate("document.querySelectorAll('figure[role=img] .chart-wide svg').length") == 1
    page.screenshot(ARTIFACTS / "history.png")
    summary = json.loads((demo_dir / "latest" / "summary.json").read_text())
    assert summary["changes"]["previous_run_id"] == runs[0]
    assert summary["mtls_share"]["requests"] == pytest.approx(
        summary["totals"]["mtls_requests"]
        / (summary["totals"]["mtls_requests"] + summary["totals"]["plaintext_requests"]),
        abs=1e-4,
    )


# -- night over night -------------------------------------------------------------------------------


def test_night_over_night_regressions_new_clients_and_newly_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The legacy client of Istio's walk-through stops, comes back, and stops again."""
    nights = [
        catalogue.walkthrough(legacy_stopped=timedelta(days=10)),  # foo and bar READY
        catalogue.walkthrough(),  # legacy/curl calls again: READY -> BLOCKED
        catalogue.walkthrough(legacy_stopped=timedelta(days=10)),
    ]
    summaries = []
    for mesh in nights:
        monkeypatch.setitem(catalogue.MESHES, "night", lambda mesh=mesh: mesh)
        _next_second()
        _, folder = pipeline.report(ReportConfig(output_dir=tmp_path), sample="night")
        summaries.append(json.loads((folder / "summary.json").read_text()))

    first, second, third = (s["changes"] for s in summaries)
    assert first["previous_run_id"] is None
    assert second["previous_run_id"] == summaries[0]["run_id"]
    regressions = {(c["scope"], c["name"], c["before"], c["after"]) for c in second["regressions"]}
    assert {("workload", "foo/httpbin", "READY", "BLOCKED"), ("namespace", "bar", "READY", "BLOCKED")} <= regressions
    assert ("mesh", "mesh", "READY", "BLOCKED") in regressions
    new = {
        (c["source_workload"], c["destination_namespace"], c["destination_workload"])
        for c in second["new_plaintext_clients"]
    }
    assert new == {("unknown", "foo", "httpbin"), ("unknown", "bar", "httpbin")}
    assert second["blockers_delta"] == 2 and second["verdict_delta"]["BLOCKED"] == 2
    assert second["mtls_share_delta"]["requests"] < 0

    ready = {(c["scope"], c["name"]) for c in third["newly_ready"]}
    assert {("workload", "foo/httpbin"), ("namespace", "foo"), ("mesh", "mesh")} <= ready
    assert third["plaintext_clients_gone_total"] == 2 and third["regressions"] == []

    page = (tmp_path / "runs" / summaries[1]["run_id"] / "index.html").read_text()
    assert "Regressions" in page and "New plaintext clients" in page
    history = (tmp_path / "index.html").read_text()
    assert all(s["run_id"] in history for s in summaries)


# -- hostile label values ---------------------------------------------------------------------------

HOSTILE_NAMESPACE = '=HYPERLINK("http://evil.example/","$\\frac{1}{2}$")'
HOSTILE_WORKLOAD = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_SERVICE = '</script><script>document.title="pwned"</script>'


class HostileSource:
    """The demo's traffic plus a plaintext client whose peer-metadata labels are attacker-chosen."""

    def __init__(self, inner: pipeline.TrafficSource) -> None:
        self.inner = inner
        self.source = inner.source

    def collect(self, window_start: datetime, window_end: datetime) -> Traffic:
        traffic = self.inner.collect(window_start, window_end)
        edge = {
            "source_cluster": "Kubernetes",
            "source_namespace": HOSTILE_NAMESPACE,
            "source_workload": HOSTILE_WORKLOAD,
            "source_principal": "unknown",
            "destination_cluster": "Kubernetes",
            "destination_namespace": "foo",
            "destination_workload": "httpbin",
            "destination_service": HOSTILE_SERVICE,
            "protocol": "http",
            "connection_security_policy": "none",
        }
        observation = pd.DataFrame([{**edge, "reporter": "destination", "count": 500.0}])[OBSERVATION_COLUMNS]
        steps = pd.DataFrame(
            [{**edge, "timestamp": window_end - timedelta(hours=h), "count": 50.0} for h in (1, 2, 30)]
        )[TIMELINE_COLUMNS].astype({"timestamp": "datetime64[ns, UTC]"})
        traffic.observations = pd.concat([traffic.observations, observation], ignore_index=True)
        traffic.timeline = pd.concat([traffic.timeline, steps], ignore_index=True)
        return traffic


def test_hostile_label_values_are_shown_as_text(browser: Chromium, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    inventory, source = pipeline.sample_inputs("demo", now)
    run = pipeline.analyse_run(inventory, HostileSource(source), ReportConfig(output_dir=tmp_path), now)
    folder = publish(run, tmp_path)

    page, url = _open(browser, folder / "index.html")
    _assert_clean(page, url)  # an injected script or handler would run, or be refused with a CSP error
    facts = page.evaluate(
        """({title: document.title, images: document.images.length, scripts: document.scripts.length,
        text: document.body.innerText})"""
    )
    assert "pwned" not in facts["title"]
    assert facts["images"] == 0 and facts["scripts"] == 1
    for value in (HOSTILE_WORKLOAD, HOSTILE_SERVICE, HOSTILE_NAMESPACE):
        assert value in facts["text"], f"{value!r} is shown as text"

    edges = pd.read_csv(folder / "edges.csv", dtype=str, keep_default_na=False)
    hostile = edges[edges["source_workload"] == HOSTILE_WORKLOAD]
    assert list(hostile["source_namespace"]) == ["'" + HOSTILE_NAMESPACE], "a spreadsheet must not run it"


# -- scale ------------------------------------------------------------------------------------------


def synthetic_traffic(mesh: SampleMesh, now: datetime, window: timedelta) -> Traffic:
    """What the sample source would collect for `mesh`, built straight from its flows.

    Sampling 40,000 flows' counters every few minutes takes minutes; the totals and a 6-hour
    timeline follow the same rules (auto mTLS needs sidecars on both ends; plaintext TCP and
    sidecar-less callers arrive as source "unknown")."""
    by_ref = {w.ref: w for w in mesh.workloads}
    steps = [now - window + timedelta(hours=6) * i for i in range(1, int(window / timedelta(hours=6)) + 1)]
    observations, timeline = [], []
    for flow in mesh.flows:
        src, dst = by_ref[flow.source], by_ref[flow.destination]
        plaintext = flow.plaintext if flow.plaintext is not None else src.dataplane is Dataplane.NONE
        known = not plaintext or (flow.protocol != "tcp" and src.dataplane is Dataplane.SIDECAR)
        labels = [
            mesh.cluster if known else "unknown",
            src.namespace if known else "unknown",
            src.name if known else "unknown",
            "unknown" if plaintext else f"spiffe://cluster.local/ns/{src.namespace}/sa/{src.name}",
            mesh.cluster,
            dst.namespace,
            dst.name,
            f"{dst.name}.{dst.namespace}.svc.cluster.local",
            flow.protocol,
        ]
        security = "none" if plaintext else "mutual_tls"
        observations.append([*labels, "destination", security, flow.per_hour * window / timedelta(hours=1)])
        if plaintext:
            timeline += [[*labels, security, t, flow.per_hour * 6] for t in steps]
    keys = [c for c in OBSERVATION_COLUMNS if c != "count"]
    totals = pd.DataFrame(observations, columns=OBSERVATION_COLUMNS).groupby(keys, as_index=False)["count"].sum()
    steps_frame = pd.DataFrame(timeline, columns=TIMELINE_COLUMNS).astype({"timestamp": "datetime64[ns, UTC]"})
    return Traffic(now - window, now, "synthetic", observations=totals, timeline=steps_frame)


def test_5000_workloads_and_40000_edges_stay_within_the_size_budget(browser: Chromium, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    mesh = catalogue.synthetic(5000, 40000)
    inventory = build_inventory(((m, "synthetic") for m in mesh.manifests()), cluster="")
    traffic = synthetic_traffic(mesh, now, timedelta(days=7))
    run = analyse(inventory, traffic, Settings(run_id=pipeline.run_id_for(now), generated_at=now, lookback="7d"))
    assert len(run.workloads) == 5000 and len(run.edges) > 39_000
    folder = publish(run, tmp_path)

    page_file = folder / "index.html"
    size = page_file.stat().st_size
    assert size < SIZE_BUDGET, f"{size:,} bytes"
    html = page_file.read_text(encoding="utf-8")
    blockers = sum(1 for e in run.edges if e.blocker)
    assert f"Blockers: clients sending plaintext ({blockers:,})" in html
    assert f"Showing {BLOCKER_ROWS} of {blockers:,} blockers" in html
    for csv in ("edges.csv", "workloads.csv", "namespaces.csv"):
        assert f'href="{csv}"' in html
    _assert_links_resolve(page_file)

    page, url = _open(browser, page_file)
    _assert_clean(page, url)
    loaded_ms = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()"
    )
    assert loaded_ms < 10_000, f"the page took {loaded_ms:.0f} ms to load"
    page.screenshot(ARTIFACTS / "report-5000-workloads-top.png", full_page=False)


# -- what the page says -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    now = datetime.now(UTC).replace(microsecond=0)
    inventory, source = pipeline.sample_inputs("demo", now)
    return pipeline.analyse_run(inventory, source, ReportConfig(output_dir=tmp_path_factory.mktemp("run")), now)


def _page(run: RunResult, history: list[dict] | None = None) -> str:
    return render_report(run, summarise(run), history or [])


def test_namespaces_table_counts_every_verdict_and_names_exceptions(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    shop = next(n for n in run.namespaces if n.namespace == "shop")
    shop.exceptions = ["shop/keep-metrics-port-open"]
    html = _page(run)
    table = html[html.index('id="namespaces-table"') : html.index("</table>", html.index('id="namespaces-table"'))]
    for header in ("Unknown", "Disabled", "Exceptions"):
        assert f">{header}</th>" in table
    assert "shop/keep-metrics-port-open" in table
    analytics = next(n for n in run.namespaces if n.namespace == "analytics")
    assert analytics.unknown == 1
    headers = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', table)
    row = table[table.rindex("<tr>", 0, table.index("analytics</bdi></a>")) :].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert len(cells) == len(headers)
    assert cells[headers.index("Unknown")] == str(analytics.unknown)
    assert cells[headers.index("Disabled")] == str(analytics.disabled)


def test_headline_shows_stored_cut_off_clients_and_edges_apart(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    assert run.mesh.verdict.value == "BLOCKED"
    run.mesh.cut_off_clients, run.mesh.cut_off_edges, run.mesh.behind_exceptions = 4, 6, 1
    html = _page(run)
    card = html[html.index("Clients a mesh-wide STRICT would cut off") :].split('<div class="card">')[0]
    assert '<div class="big">4</div>' in card and "6 client → destination edges" in card
    assert "1 more behind exceptions" in card
    run.mesh.cut_off_clients = run.mesh.cut_off_edges = 0  # a BLOCKED mesh with nothing stored: no false 0
    card = _page(run)[html.index("Clients a mesh-wide STRICT would cut off") :].split('<div class="card">')[0]
    assert '<div class="big">0</div>' not in card and "not counted" in card


def test_the_banner_counts_clients_and_edges_as_the_card_does(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    run.mesh.cut_off_clients, run.mesh.cut_off_edges, run.mesh.behind_exceptions = 4, 6, 1
    banner = _page(run).split('<nav class="toc"')[0]
    assert "would cut off 4 observed plaintext clients on 6 client → destination edges" in banner
    assert "1 more edge stays open behind namespace- or workload-level exceptions" in banner


def test_unknown_workloads_are_named_once(demo_run: RunResult) -> None:
    html = _page(demo_run)
    warnings = html[html.index('aria-label="Warnings"') : html.index("</section>", html.index('aria-label="Warnings"'))]
    assert "1 workload UNKNOWN" in warnings and "<bdi>analytics/reports</bdi>" in warnings
    assert "workload(s) are UNKNOWN" not in warnings, "the count-only warning is replaced by the named one"
    assert any("workload(s) are UNKNOWN" in w for w in demo_run.warnings)


def test_bidi_controls_are_neutralised_and_label_values_isolated(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    blocker = next(e for e in run.edges if e.blocker)
    blocker.source_workload = "invoice\u202ecod.exe"  # displays as "invoiceexe.doc" if left to act
    blocker.destination_service = "\u2066svc\u2069"
    html = _page(run)
    assert not any(c in html for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "<bdi>invoice[U+202E]cod.exe</bdi>" in html
    assert "[U+2066]svc[U+2069]" in html


def test_captions_say_only_what_is_true() -> None:
    one = [{"run_id": "a", "generated_at": "2026-12-01T02:00:00Z", "verdicts": {"ENFORCED": 0, "BLOCKED": 3}}]
    text = charts.burndown(one).description
    assert "went from" not in text and "only run" in text
    two = [
        {"run_id": "b", "generated_at": "2026-12-01T02:00:40Z", "verdicts": {"ENFORCED": 1, "BLOCKED": 3}},
        {"run_id": "a", "generated_at": "2026-12-01T02:00:05Z", "verdicts": {"ENFORCED": 0, "BLOCKED": 3}},
    ]
    text = charts.burndown(two).description
    assert "ENFORCED went from 0 to 1" in text and "BLOCKED stayed at 3" in text
    labels = charts._run_labels([r["generated_at"] for r in reversed(two)])
    assert len(set(labels)) == 2, "two runs in one minute get their seconds"


def test_volume_caption_names_no_winner_on_a_tie(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    requests = [e for e in run.edges if e.unit == "requests" and e.plaintext_count > 0]
    top = max(e.plaintext_count for e in requests)
    for e in run.edges:
        if e.unit == "requests" and e.destination_namespace in ("foo", "bar"):
            e.plaintext_count = 0.0
    first = next(e for e in requests if e.destination_namespace == "foo")
    second = next(e for e in requests if e.destination_namespace == "bar")
    first.plaintext_count = second.plaintext_count = top  # foo and bar tie for most plaintext
    others = [e for e in run.edges if e.plaintext_count >= top and e not in (first, second)]
    for e in others:
        e.plaintext_count = top / 2
    text = charts.volume_by_namespace(run).description
    assert "Most plaintext goes to" not in text
    assert "bar, foo" in text


def test_heatmap_gives_connections_their_own_scale(demo_run: RunResult) -> None:
    """The nightly job's 13 plaintext TCP connections, beside 200k requests, must be a coloured cell."""
    chart = charts.plaintext_heatmap(demo_run)
    assert "one per unit with its own scale" in chart.description
    assert "plaintext connections" in chart.description and "plaintext requests" in chart.description
    data = next(e for e in demo_run.edges if e.destination_namespace == "data" and e.plaintext_count > 0)
    assert data.unit == "connections" and data.plaintext_count < 100
    floor = charts.heatmap_colour(0.0)
    assert min(floor[:3]) < 0.9, "the lowest non-zero colour is visibly orange, not near-white"
