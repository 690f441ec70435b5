"""What the run folder holds (docs/contract.md: CSV files, summary.json, output layout).

End to end: a mesh whose label values are hostile (peer-metadata headers are unauthenticated, so a
client can call itself anything) goes through a real Prometheus and the real CLI, twice into one
output dir. Unit: crafted observation rows through the real analysis and writers, for characters
that cannot travel through OpenMetrics (tab, carriage return).
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from analyzer.analyse.readiness import Settings, analyse
from analyzer.collect.manifests import build_inventory
from analyzer.model.traffic import OBSERVATION_COLUMNS, TIMELINE_COLUMNS, Traffic
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh
from analyzer.write.publish import publish
from analyzer.write.tabular import cell
from tests.support.e2e import Report, read_csv, run_report, short_history, write_policies

SCRIPT = "<script>alert(1)</script>"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd", "-2+3", "@SUM(A1)"]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PLAIN_NUMBER = re.compile(r"^\d+(\.\d+)?$")
RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")

CONTRACT_COLUMNS = {
    "edges.csv": [
        "source_cluster", "source_namespace", "source_workload", "source_principal", "destination_cluster",
        "destination_namespace", "destination_workload", "destination_service", "protocol", "unit",
        "mtls_count", "plaintext_count", "plaintext_share", "last_plaintext_seen", "destination_mode", "blocker",
    ],
    "workloads.csv": [
        "cluster", "namespace", "workload", "mode", "mode_source", "port_modes", "mtls_count",
        "plaintext_count", "plaintext_sources", "verdict",
    ],
    "namespaces.csv": [
        "cluster", "namespace", "mode", "workloads", "enforced", "ready", "blocked", "no_traffic",
        "plaintext_count", "verdict",
    ],
}  # fmt: skip
NUMBER_COLUMNS = {
    "edges.csv": ["mtls_count", "plaintext_count", "plaintext_share"],
    "workloads.csv": ["mtls_count", "plaintext_count"],
    "namespaces.csv": ["workloads", "enforced", "ready", "blocked", "no_traffic", "plaintext_count"],
}
SUMMARY_KEYS = [
    "generated_at", "lookback", "window_start", "window_end", "source", "verdicts", "mesh_verdict",
    "namespaces", "warnings", "errors",
]  # fmt: skip


def hostile_mesh() -> SampleMesh:
    clients = [MeshWorkload("shop", name, ports=()) for name in FORMULAS]
    return SampleMesh(
        workloads=[
            MeshWorkload("shop", SCRIPT, ports=(8080,)),
            MeshWorkload("shop", "frontend", ports=(8080,)),
            MeshWorkload("shop", "cart", ports=(8080,)),
            *clients,
        ],
        flows=[
            # Meshed clients sending plaintext HTTP: the server names them from their headers.
            *[Flow(c.ref, f"shop/{SCRIPT}", per_hour=60, plaintext=True) for c in clients],
            Flow("shop/frontend", "shop/cart", per_hour=100_000),  # millions a day: never 2.4e+06
        ],
        namespace_labels={"shop": {"istio-injection": "enabled"}},
    )


@dataclass
class TwoRuns:
    output_dir: Path
    url: str
    first: Report
    second: Report


@pytest.fixture(scope="module")
def two_runs(prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    mesh = short_history(hostile_mesh())
    url = prometheus_factory(mesh)
    folder = tmp_path_factory.mktemp("outputs")
    policies = write_policies(mesh, folder)
    # Credentials in the URL: Prometheus ignores them, the report must never show them.
    with_secret = url.replace("http://", "http://reader:s3cret@")
    output_dir = folder / "reports"
    first = run_report(None, with_secret, policies, output_dir)
    time.sleep(1.1 - time.time() % 1)  # run ids have one-second resolution
    second = run_report(None, with_secret, policies, output_dir)
    return TwoRuns(output_dir, url, first, second)


def test_both_runs_succeeded(two_runs: TwoRuns) -> None:
    assert (two_runs.first.code, two_runs.second.code) == (0, 0)
    assert two_runs.second.verdict(f"shop/{SCRIPT}") == "BLOCKED"
    assert two_runs.second.verdict("shop/cart") == "READY"


def test_csv_headers_keep_the_contract_columns_in_order(two_runs: TwoRuns) -> None:
    for name, contract in CONTRACT_COLUMNS.items():
        with (two_runs.second.run_folder / name).open(encoding="utf-8", newline="") as stream:
            header = next(csv.reader(stream))
        assert [c for c in header if c in contract] == contract, name


def test_numbers_are_plain(two_runs: TwoRuns) -> None:
    folder = two_runs.second.run_folder
    for name, columns in NUMBER_COLUMNS.items():
        rows = read_csv(folder / name)
        assert rows, name
        for row in rows:
            for column in columns:
                assert PLAIN_NUMBER.match(row[column]), (name, column, row[column])
    [cart] = two_runs.second.edges_to("shop/cart")
    assert float(cart["mtls_count"]) > 2_000_000
    assert "e" not in cart["mtls_count"].lower()
    for row in two_runs.second.edges:
        assert row["blocker"] in ("true", "false")


def test_timestamps_are_iso_8601_utc(two_runs: TwoRuns) -> None:
    summary = two_runs.second.summary
    for key in ("generated_at", "window_start", "window_end"):
        assert ISO_UTC.match(summary[key]), (key, summary[key])
    window_start = datetime.fromisoformat(summary["window_start"].replace("Z", "+00:00"))
    window_end = datetime.fromisoformat(summary["window_end"].replace("Z", "+00:00"))
    seen = [e for e in two_runs.second.edges if e["blocker"] == "true"]
    assert len(seen) == len(FORMULAS)
    for edge in seen:
        for column in ("last_plaintext_seen", "first_plaintext_seen"):
            assert ISO_UTC.match(edge[column]), (column, edge[column])
            moment = datetime.fromisoformat(edge[column].replace("Z", "+00:00"))
            assert window_start <= moment <= window_end + timedelta(minutes=1)


def test_formula_like_label_values_are_neutralised(two_runs: TwoRuns) -> None:
    report = two_runs.second
    sources = sorted(e["source_workload"] for e in report.edges_to(f"shop/{SCRIPT}"))
    assert sources == sorted("'" + name for name in FORMULAS)
    # Listed from the inventory too, as destinations nobody calls.
    for name in FORMULAS:
        assert report.workloads[f"shop/'{name}"]["verdict"] == "NO_TRAFFIC"
    # Ordinary values are left alone, and a value that merely contains a sign is not touched.
    assert report.workloads["shop/cart"]["workload"] == "cart"
    assert report.workloads[f"shop/{SCRIPT}"]["plaintext_sources"] == ";".join(
        sorted(f"shop/{name}" for name in FORMULAS)
    )


def test_html_escapes_label_values(two_runs: TwoRuns) -> None:
    html = (two_runs.second.run_folder / "index.html").read_text(encoding="utf-8")
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'HYPERLINK("http' not in html  # the quote is escaped too
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_summary_json_has_the_contract_keys(two_runs: TwoRuns) -> None:
    report = two_runs.second
    summary = report.summary
    assert [k for k in summary if k in SUMMARY_KEYS] == SUMMARY_KEYS
    assert summary["lookback"] == "1d"
    assert summary["source"] == two_runs.url  # without the credentials
    assert summary["verdicts"]["BLOCKED"] == 1
    assert sum(summary["verdicts"].values()) == len(report.workloads)
    for verdict, count in summary["verdicts"].items():
        assert count == sum(1 for w in report.workloads.values() if w["verdict"] == verdict), verdict
    assert summary["namespaces"] == {ns: row["verdict"] for ns, row in report.namespaces.items()}
    assert summary["mesh_verdict"] == "BLOCKED"
    assert (summary["warnings"], summary["errors"]) == ([], [])


def test_credentials_appear_nowhere(two_runs: TwoRuns) -> None:
    for path in two_runs.output_dir.rglob("*"):
        if path.is_file():
            assert "s3cret" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_run_folders_sort_by_time_and_latest_is_the_newest(two_runs: TwoRuns) -> None:
    runs_dir = two_runs.output_dir / "runs"
    names = sorted(p.name for p in runs_dir.iterdir())
    assert len(names) == 2  # and no staging folder left behind
    assert all(RUN_ID.match(n) for n in names), names
    first, second = (json.loads((runs_dir / n / "summary.json").read_text(encoding="utf-8")) for n in names)
    assert [first["run_id"], second["run_id"]] == names
    assert first["generated_at"] < second["generated_at"]
    assert datetime.strptime(names[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == datetime.fromisoformat(
        second["generated_at"].replace("Z", "+00:00")
    )
    # latest is a relative link, so the output dir can be copied or served as is.
    assert os.readlink(two_runs.output_dir / "latest") == f"runs/{names[1]}"
    assert two_runs.second.run_folder == (runs_dir / names[1]).resolve()
    assert sorted(p.name for p in two_runs.output_dir.iterdir()) == [".lock", "index.html", "latest", "runs"]
    contract_files = {"index.html", "edges.csv", "workloads.csv", "namespaces.csv", "summary.json"}
    for n in names:
        files = {p.name for p in (runs_dir / n).iterdir()}
        assert contract_files <= files, n  # more may be added
        assert not [f for f in files if f.startswith(".")], n  # nothing half-written


def test_history_lists_every_run_newest_first(two_runs: TwoRuns) -> None:
    history = (two_runs.output_dir / "index.html").read_text(encoding="utf-8")
    older, newer = sorted(p.name for p in (two_runs.output_dir / "runs").iterdir())
    assert f'href="runs/{older}/index.html"' in history
    assert f'href="runs/{newer}/index.html"' in history
    assert history.index(newer) < history.index(older)


# -- unit: crafted rows through the real analysis and writers --------------------------------------

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
# "row\r=2+2": a carriage return inside a value must not start a new, un-neutralised CSV row.
HOSTILE = ["=1+1", "+1", "-1", "@A1", "\tTAB", "\rCR", "row\r=2+2", "<img src=x onerror=alert(1)>", "plain"]


def crafted_run(tmp_path: Path, run_id: str = "20261130T020000Z", generated_at: datetime = NOW) -> Path:
    mesh = SampleMesh(workloads=[MeshWorkload("shop", "api", ports=(8080,))], flows=[], namespace_labels={"shop": {}})
    inventory = build_inventory((m, "test") for m in mesh.manifests())
    rows = []
    for i, name in enumerate(HOSTILE):
        edge = ["Kubernetes", "shop", name, "unknown", "Kubernetes", "shop", "api", "api.shop.svc.cluster.local"]
        rows.append([*edge, "http", "destination", "none", 1_234_567.0 + i])
    observations = pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
    timeline = pd.DataFrame(
        [[*r[:9], "none", pd.Timestamp(NOW - timedelta(hours=1)), r[-1]] for r in rows], columns=TIMELINE_COLUMNS
    )
    traffic = Traffic(
        window_start=generated_at - timedelta(days=7),
        window_end=generated_at,
        source="crafted",
        observations=observations,
        timeline=timeline,
    )
    result = analyse(inventory, traffic, Settings(run_id=run_id, generated_at=generated_at, lookback="7d"))
    return publish(result, tmp_path)


def test_crafted_hostile_values_are_neutralised_in_csv(tmp_path: Path) -> None:
    folder = crafted_run(tmp_path)
    rows = read_csv(folder / "edges.csv")
    assert len(rows) == len(HOSTILE)
    edges = {e["source_workload"]: e for e in rows}
    for name in HOSTILE:
        expected = "'" + name if name[0] in "=+-@\t\r" else name
        assert expected in edges, (name, list(edges))
        assert edges[expected]["plaintext_count"] == str(1_234_567 + HOSTILE.index(name))
        assert edges[expected]["last_plaintext_seen"] == "2026-11-30T01:00:00Z"
    [api] = read_csv(folder / "workloads.csv")
    assert api["verdict"] == "BLOCKED"
    assert api["plaintext_count"] == str(sum(1_234_567 + i for i in range(len(HOSTILE))))


def test_crafted_hostile_values_are_escaped_in_html(tmp_path: Path) -> None:
    html = (crafted_run(tmp_path) / "index.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_runs_in_the_same_second_still_sort_in_order(tmp_path: Path) -> None:
    first = crafted_run(tmp_path)
    second = crafted_run(tmp_path)
    assert (first.name, second.name) == ("20261130T020000Z", "20261130T020000Z-2")
    assert sorted([second.name, first.name]) == [first.name, second.name]
    assert os.readlink(tmp_path / "latest") == "runs/20261130T020000Z-2"
    history = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert history.index("runs/20261130T020000Z-2/") < history.index("runs/20261130T020000Z/")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (2_400_000.0, "2400000"),
        (1e21, "1000000000000000000000"),
        (0.0001, "0.0001"),
        (12.5, "12.5"),
        (7, 7),
        (datetime(2026, 11, 30, 2, 0, 5, tzinfo=UTC), "2026-11-30T02:00:05Z"),
        (datetime(2026, 11, 30, 4, 0, 5, tzinfo=timezone(timedelta(hours=2))), "2026-11-30T02:00:05Z"),
        (pd.Timestamp("2026-11-30T02:00:05Z"), "2026-11-30T02:00:05Z"),
        ({8080: "STRICT", 9090: "PERMISSIVE"}, "8080=STRICT;9090=PERMISSIVE"),
        (["b/x", "a/y"], "b/x;a/y"),
        ("=cmd", "'=cmd"),
        ("+cmd", "'+cmd"),
        ("-cmd", "'-cmd"),
        ("@cmd", "'@cmd"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        (["=a", "b"], "'=a;b"),
        ("a=b", "a=b"),
        ("", ""),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_cell(value: object, expected: object) -> None:
    assert cell(value) == expected
