"""The one result: result.json round trips, matches its published schema, and feeds every writer."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from analyzer import api, cli, pipeline
from analyzer.analyse.changes import baseline, compare
from analyzer.analyse.figures import summarise
from analyzer.analyse.readiness import Settings, analyse
from analyzer.collect.run_store import load_run, without_timeline
from analyzer.config import ReportConfig
from analyzer.errors import UserError
from analyzer.model import document
from analyzer.model.document import from_json, to_document, to_json
from analyzer.model.report import SCHEMA_VERSION, EdgeResult, NamespaceResult, RunResult, Verdict, WorkloadResult
from analyzer.write.publish import publish
from analyzer.write.registry import writers
from analyzer.write.result_json import schema_text

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "result.schema.json"


@pytest.fixture(scope="module")
def demo(now: datetime) -> RunResult:
    return api.analyse_sample("demo", now=now)


def _write(run: RunResult, folder: Path, *names: str) -> Path:
    """Only the writers a test reads (the page and its charts take seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        writers()[name](run, folder)
    return folder


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# -- round trip and schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", ["demo", "walkthrough"])
def test_a_published_run_loads_back_equal(tmp_path: Path, mesh: str) -> None:
    config = ReportConfig(output_dir=tmp_path)
    first, _ = pipeline.report(config, sample=mesh)
    result, folder = pipeline.report(config, sample=mesh)  # the second night carries changes
    assert result.changes.previous_run_id == first.run_id
    assert result.timeline and result.edges and result.namespaces
    loaded = load_run(folder)
    assert loaded == result
    assert loaded.complete == result.complete
    assert load_run(tmp_path) == result  # the output dir reads its latest run
    document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert document["schema_version"] == SCHEMA_VERSION and document["complete"] is result.complete
    assert document["totals"] == result.totals and document["blockers"] == result.blockers


def test_result_json_validates_against_the_published_schema(tmp_path: Path, demo: RunResult) -> None:
    folder = _write(demo, tmp_path, "json")
    document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    validator = _validator()
    validator.validate(document)
    broken = copy.deepcopy(document)
    broken["workloads"][0]["verdict"] = "MAYBE"
    assert not validator.is_valid(broken)
    del broken["workloads"][0]["verdict"]
    assert not validator.is_valid(broken)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "regenerate it: python -m analyzer.write.result_json > docs/result.schema.json"
    )


def test_label_values_round_trip_as_they_were(tmp_path: Path, demo: RunResult) -> None:
    # A CSV cell is neutralised ('=...), result.json keeps the value itself: comparisons need no un-escaping.
    run = copy.deepcopy(demo)
    run.edges[0].source_workload = '=HYPERLINK("x")\u202e'
    folder = _write(run, tmp_path, "json", "csv")
    assert load_run(folder).edges[0].source_workload == run.edges[0].source_workload
    assert "'=HYPERLINK" in (folder / "edges.csv").read_text(encoding="utf-8")
    assert compare(load_run(folder), run).new_plaintext_clients == []


def test_an_old_run_without_result_json_is_a_clear_error(tmp_path: Path, demo: RunResult) -> None:
    folder = publish(demo, tmp_path)
    (folder / "result.json").unlink()  # as 0.1 wrote it: summary.json and the CSV files
    with pytest.raises(UserError, match=r"0\.1 \(no result\.json\)"):
        load_run(folder)
    # ... and the next night still publishes, without changes.
    result, _ = pipeline.report(ReportConfig(output_dir=tmp_path), sample="demo")
    assert not result.changes.has_previous


def test_a_damaged_result_json_is_a_clear_error(tmp_path: Path, demo: RunResult) -> None:
    folder = tmp_path
    document = to_document(demo)
    document["mesh"]["verdict"] = "MAYBE"
    (folder / "result.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UserError, match="not a result this version reads"):
        load_run(folder)
    with pytest.raises(ValueError, match="newer"):
        from_json(json.dumps({**to_document(demo), "schema_version": SCHEMA_VERSION + 1}))


def test_doubts_are_stored_with_their_scope_and_round_trip(now: datetime) -> None:
    inventory, source = pipeline.sample_inputs("demo", now)
    traffic = source.collect(now - timedelta(days=7), now)
    traffic.namespace_doubts = {"shop": ["part of a split query failed"]}
    traffic.destination_doubts = {("edge", "gateway-api"): ["counts contradict each other"]}
    inventory.policy_doubts = {"payments": ["a PeerAuthentication could not be read"]}
    run = analyse(inventory, traffic, Settings(run_id="r", generated_at=now, lookback="7d"))
    assert [(d.scope, d.name) for d in run.doubts] == [
        ("namespace", "shop"),
        ("workload", "edge/gateway-api"),
        ("policies", "payments"),
    ]
    assert from_json(to_json(run)).doubts == run.doubts
    assert {n.namespace: n.verdict for n in run.namespaces}["shop"] is Verdict.UNKNOWN  # never READY


# -- writers ---------------------------------------------------------------------------------------------


def test_writers_are_registered_by_name_and_need_only_the_result(tmp_path: Path, demo: RunResult) -> None:
    registered = writers()
    assert set(registered) == {"json", "summary", "csv", "metrics", "html"}
    files = {
        "json": {"result.json"},
        "summary": {"summary.json"},
        "csv": {"edges.csv", "workloads.csv"},
        "metrics": {"metrics.prom"},
    }
    for name, want in files.items():
        folder = tmp_path / name
        folder.mkdir()
        registered[name](demo, folder)
        assert want <= {p.name for p in folder.iterdir()}, name


def test_summary_json_reads_the_stored_figures(tmp_path: Path, demo: RunResult) -> None:
    run = replace(demo, blockers=12345, totals={**demo.totals, "mtls_requests": 42.0})
    writers()["summary"](run, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["blockers"] == 12345 and summary["totals"]["mtls_requests"] == 42.0
    assert summary["verdicts"] == demo.verdicts and summary["changes"]["previous_run_id"] is None


# -- -o json / -o table ----------------------------------------------------------------------------------


def test_output_json_prints_the_result_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--output-dir", str(tmp_path), "-o", "json"]) == 0
    out = capsys.readouterr()
    document = json.loads(out.out)  # stdout holds the document only; the receipt went to stderr
    assert "report:" in out.err
    folder = tmp_path / "runs" / document["run_id"]
    assert document == json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert from_json(out.out) == load_run(folder)
    _validator().validate(document)


def test_output_table_lists_namespaces_by_urgency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--output-dir", str(tmp_path), "-o", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "VERDICT", "MODE", "WORKLOADS", "BLOCKED", "READY", "PLAINTEXT"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:] if line.strip() and not line.startswith("mesh")}
    assert rows["orders"] == "BLOCKED" and rows["payments"] == "ENFORCED" and rows["shop"] == "READY"
    assert lines[1].split()[1] == "BLOCKED"
    assert lines[-1].startswith("mesh BLOCKED") and "incomplete" in lines[-1]


# -- compare ----------------------------------------------------------------------------------------------


def _with_verdict(run: RunResult, namespace: str, workload: str, verdict: Verdict) -> RunResult:
    out = copy.deepcopy(run)
    for w in out.workloads:
        if (w.namespace, w.workload) == (namespace, workload):
            w.verdict = verdict
    return summarise(out)


def test_compare_with_no_previous_run_is_empty(demo: RunResult) -> None:
    changes = compare(None, demo)
    assert not changes.has_previous and changes.regressions == [] and changes.verdict_delta == {}


def test_compare_with_itself_moves_nothing(demo: RunResult) -> None:
    changes = compare(demo, demo)
    assert changes.previous_run_id == demo.run_id and changes.previous_generated_at == demo.generated_at
    assert (changes.new_plaintext_clients, changes.plaintext_clients_gone) == ([], [])
    assert (changes.regressions, changes.newly_ready, changes.newly_enforced) == ([], [], [])
    assert set(changes.verdict_delta.values()) == {0} and changes.blockers_delta == 0
    assert changes.mtls_share_delta == {"requests": 0.0, "connections": 0.0}


def test_compare_finds_a_regression_and_a_newly_ready_workload(demo: RunResult) -> None:
    before = _with_verdict(demo, "shop", "cart", Verdict.BLOCKED)  # BLOCKED -> READY: newly ready
    before = _with_verdict(before, "orders", "billing", Verdict.READY)  # READY -> BLOCKED: a regression
    changes = compare(before, demo)
    assert [(c.scope, c.name, c.before, c.after) for c in changes.newly_ready] == [
        ("workload", "shop/cart", "BLOCKED", "READY")
    ]
    regression = [(c.name, c.before, c.after, c.why) for c in changes.regressions]
    assert regression == [("orders/billing", "READY", "BLOCKED", "plaintext arrived")]
    assert changes.verdict_delta["READY"] == 0 and changes.verdict_delta["BLOCKED"] == 0


def test_compare_calls_a_lifted_strict_a_regression(demo: RunResult) -> None:
    before = _with_verdict(demo, "shop", "cart", Verdict.ENFORCED)
    changes = compare(before, demo)
    assert [(c.name, c.why) for c in changes.regressions] == [("shop/cart", "no longer STRICT")]
    assert changes.verdict_delta == {**{v: 0 for v in demo.verdicts}, "ENFORCED": -1, "READY": 1}


def test_compare_finds_new_and_gone_plaintext_clients(demo: RunResult) -> None:
    before = copy.deepcopy(demo)
    blocker = next(e for e in before.edges if e.blocker)
    before.edges.remove(blocker)  # a client that sends plaintext tonight only
    quiet = next(e for e in before.edges if e.plaintext_count == 0 and e.mtls_count > 0)
    quiet.plaintext_count, quiet.blocker = 5.0, True  # a client that stopped
    summarise(before)
    changes = compare(before, demo)
    assert [(c.source_workload, c.destination_workload) for c in changes.new_plaintext_clients] == [
        (blocker.source_workload, blocker.destination_workload)
    ]
    gone = changes.plaintext_clients_gone
    assert [(c.source_workload, c.destination_workload, c.plaintext_count) for c in gone] == [
        (quiet.source_workload, quiet.destination_workload, 5.0)
    ]
    assert changes.blockers_delta == 0  # one gone, one new


def test_compare_reports_the_share_moving(demo: RunResult) -> None:
    before = replace(demo, mtls_share={"requests": 0.5, "connections": None})
    changes = compare(before, demo)
    assert changes.mtls_share_delta == {"requests": round(demo.mtls_share["requests"] - 0.5, 4), "connections": None}
    assert compare(replace(demo, generated_at=demo.generated_at - timedelta(days=1)), demo).previous_generated_at


def test_the_baseline_the_job_keeps_compares_like_the_whole_previous_run(demo: RunResult) -> None:
    """The job reads the previous run first and keeps only a Baseline: the changes must not move."""
    before = _with_verdict(copy.deepcopy(demo), "orders", "billing", Verdict.READY)
    before.edges.remove(next(e for e in before.edges if e.blocker))
    before = replace(before, mtls_share={"requests": 0.5, "connections": None})
    kept = baseline(before)
    assert kept is not None and not hasattr(kept, "timeline") and not hasattr(kept, "edges")
    assert compare(kept, demo) == compare(before, demo) != compare(None, demo)
    assert baseline(None) is None


def test_the_previous_run_is_read_without_its_timeline_cut_out_before_parsing(demo: RunResult) -> None:
    run = copy.deepcopy(demo)
    assert len(run.timeline) > 100
    # Hostile label values that spell the markers: JSON escapes their quotes, so they cannot match.
    run.timeline[0].source_workload = '],"warnings":["x"]'
    run.timeline[1].destination_workload = ',"timeline":['
    data = to_json(run)
    cut = without_timeline(data)
    assert len(cut) < len(data) / 2
    assert to_json(from_json(cut)) == to_json(replace(run, timeline=[]))
    assert without_timeline(b'{"timeline": [], "warnings": []}') == b'{"timeline": [], "warnings": []}'
    assert without_timeline(to_json(replace(run, timeline=[]))) == to_json(replace(run, timeline=[]))


def test_load_run_without_the_timeline_reads_everything_else(demo: RunResult, tmp_path: Path) -> None:
    folder = _write(demo, tmp_path, "json")
    lean, whole = load_run(folder, timeline=False), load_run(folder)
    assert lean.timeline == [] and whole.timeline == demo.timeline
    assert replace(whole, timeline=[]) == lean


# -- written piece by piece, read column by column ---------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7, 2000])
def test_result_json_written_in_batches_is_pydantics_whole_document(
    tmp_path: Path, demo: RunResult, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 1 and 7 split the edges and the 1,000 timeline points; 2,000 writes them whole.
    monkeypatch.setattr(document, "BATCH", batch)
    whole = document._adapter().dump_json(demo)
    expected = whole[:-1] + b',"complete":' + (b"true" if demo.complete else b"false") + b"}\n"
    _write(demo, tmp_path, "json")
    assert (tmp_path / "result.json").read_bytes() == expected
    assert to_json(demo) == expected
    assert len(demo.timeline) > 7 * 100 and len(demo.edges) > 7


def test_result_frames_are_the_rows_asdict_gave(demo: RunResult) -> None:
    for items, cls, frame in (
        (demo.edges, EdgeResult, demo.edges_frame()),
        (demo.workloads, WorkloadResult, demo.workloads_frame()),
        (demo.namespaces, NamespaceResult, demo.namespaces_frame()),
    ):
        columns = [f.name for f in fields(cls)]
        pd.testing.assert_frame_equal(frame, pd.DataFrame([asdict(i) for i in items], columns=columns))
    empty = replace(demo, edges=[]).edges_frame()
    assert empty.empty and list(empty.columns) == [f.name for f in fields(EdgeResult)]
    assert all(dtype == "object" for dtype in empty.dtypes)  # as asdict's empty frame, not float64 columns


def test_result_frames_never_share_a_list_with_the_result(demo: RunResult) -> None:
    frame = demo.workloads_frame()
    frame.loc[0, "reasons"].append("changed through the frame")
    assert "changed through the frame" not in demo.workloads[0].reasons
