"""The output folder survives what a night can leave behind: damaged runs, killed runs, two runs at
once, a crash mid-write; and retention keeps the right runs. Real files, real processes, real flock."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analyzer.cli import build_parser
from analyzer.config import ReportConfig
from analyzer.errors import UserError
from analyzer.model.report import RunResult
from analyzer.pipeline import analyse_run, run_id_for, sample_inputs
from analyzer.write import registry
from analyzer.write.publish import output_lock, prunable, publish
from analyzer.write.run_index import RUN_FILES, read_run, run_folders, run_order, summary_problem

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC).replace(microsecond=0)
ROW_LINK = re.compile(r'<td data-v="([^"]+)"><a href="runs/([^"/]+)/index.html">')


@pytest.fixture(scope="module")
def demo_run() -> RunResult:
    inventory, source = sample_inputs("demo", NOW)
    return analyse_run(inventory, source, ReportConfig(), NOW)


def with_id(run: RunResult, moment: datetime) -> RunResult:
    return dataclasses.replace(run, run_id=run_id_for(moment), generated_at=moment)


def fake_run(runs_dir: Path, name: str, template: dict, **summary) -> Path:
    """A published run folder with every file, its summary taken from a real one."""
    folder = runs_dir / name
    folder.mkdir(parents=True)
    moment = datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    data = {**template, "run_id": name, "generated_at": moment.isoformat().replace("+00:00", "Z"), **summary}
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    for file in RUN_FILES[1:]:
        (folder / file).write_text("header\n", encoding="utf-8")
    return folder


def history_rows(output_dir: Path) -> list[str]:
    return [link for _, link in ROW_LINK.findall((output_dir / "index.html").read_text(encoding="utf-8"))]


def snapshot(output_dir: Path) -> tuple[str, bytes, list[str]]:
    return (
        os.readlink(output_dir / "latest"),
        (output_dir / "index.html").read_bytes(),
        sorted(p.name for p in (output_dir / "runs").iterdir()),
    )


@pytest.fixture(scope="module")
def template(demo_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = publish(demo_run, tmp_path_factory.mktemp("template"))
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


# -- damaged earlier runs -----------------------------------------------------------------------------


def test_a_sound_summary_passes(template: dict) -> None:
    assert summary_problem(template) == ""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: [s], "not an object"),
        (lambda s: "a string", "not an object"),
        (lambda s: {**s, "verdicts": "many"}, "'verdicts'"),
        (lambda s: {**s, "verdicts": {"READY": "3"}}, "'verdicts'"),
        (lambda s: {**s, "verdicts": {"READY": True}}, "'verdicts'"),
        (lambda s: {**s, "complete": "yes"}, "'complete'"),
        (lambda s: {**s, "run_id": 20261130}, "'run_id'"),
        (lambda s: {k: v for k, v in s.items() if k != "mesh_verdict"}, "no 'mesh_verdict'"),
        (lambda s: {**s, "mtls_share": {"requests": "99%"}}, "'mtls_share'"),
        (lambda s: {**s, "namespace_verdicts": [1, 2]}, "'namespace_verdicts'"),
        (lambda s: {**s, "blockers": -1}, "'blockers'"),
        (lambda s: {**s, "changes": "none"}, "'changes'"),
        (lambda s: {**s, "changes": {"previous_run_id": "x", "regressions_total": "2"}}, "regressions_total"),
    ],
)
def test_a_wrong_field_type_is_named(template: dict, change, problem: str) -> None:
    assert problem in summary_problem(change(template))


def test_damaged_runs_are_one_warning_each_never_a_row_never_a_failed_night(
    demo_run: RunResult, template: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runs = tmp_path / "runs"
    good = fake_run(runs, run_id_for(NOW - timedelta(days=9)), template).name
    damaged = {}
    for days, how in enumerate(["empty csv", "list", "types", "missing", "json", "binary", "no summary"], start=1):
        folder = fake_run(runs, run_id_for(NOW - timedelta(days=days)), template)
        damaged[folder.name] = how
        if how == "empty csv":
            (folder / "edges.csv").write_text("", encoding="utf-8")
        elif how == "list":
            (folder / "summary.json").write_text("[1, 2]", encoding="utf-8")
        elif how == "types":
            (folder / "summary.json").write_text(json.dumps({**template, "verdicts": "x"}), encoding="utf-8")
        elif how == "missing":
            (folder / "workloads.csv").unlink()
        elif how == "json":
            (folder / "summary.json").write_text('{"run_id": ', encoding="utf-8")
        elif how == "binary":
            (folder / "summary.json").write_bytes(b"\xff\xfe\x00junk")
        else:
            (folder / "summary.json").unlink()
    (runs / "notes.txt").write_text("a stray file\n", encoding="utf-8")
    (runs / "backup").mkdir()
    caplog.set_level(logging.WARNING, logger="mtls_readiness")

    final = publish(demo_run, tmp_path)

    assert os.readlink(tmp_path / "latest") == f"runs/{final.name}"
    assert history_rows(tmp_path) == [final.name, good]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in [*damaged, "notes.txt", "backup"]:
        assert sum(name in m for m in messages) == 1, (name, messages)
    assert all(read_run(runs / name).summary is None for name in damaged)
    # the run's own page (its burndown reads the same folder) was written in full
    assert (final / "index.html").stat().st_size > 10_000


def test_a_damaged_run_through_the_cli_is_a_warning_and_the_night_succeeds(tmp_path: Path, template: dict) -> None:
    fake_run(tmp_path / "runs", run_id_for(NOW - timedelta(days=1)), template)
    (tmp_path / "runs" / run_id_for(NOW - timedelta(days=1)) / "summary.json").write_text("[]", encoding="utf-8")
    done = run_cli("demo", "--output-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr  # demo: published is success
    assert "skipping damaged run" in done.stderr
    assert len(history_rows(tmp_path)) == 1


def test_stale_staging_is_removed_young_staging_kept_and_reserves_its_name(demo_run: RunResult, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    hours_ago = time.time() - 2 * 3600
    stale = runs / f".{run_id_for(NOW - timedelta(days=1))}-abcd1234"
    stale.mkdir()
    (stale / "summary.json").write_text("{}", encoding="utf-8")
    young = runs / f".{demo_run.run_id}-young_01"  # another run writing right now, under this run's id
    young.mkdir()
    stale_tmp = tmp_path / ".tmp-k1ll3d00"
    stale_tmp.write_text("half a history page", encoding="utf-8")
    foreign = runs / ".not-ours"
    foreign.mkdir()
    for path in (stale / "summary.json", stale, stale_tmp, foreign):
        os.utime(path, (hours_ago, hours_ago))

    final = publish(demo_run, tmp_path)

    assert not stale.exists() and not stale_tmp.exists()
    assert young.is_dir() and foreign.is_dir()
    assert final.name == f"{demo_run.run_id}-2"  # the name the young staging folder reserved is not reused


# -- a crash mid-write ---------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("writer bug"), OSError(28, "No space left on device")])
def test_a_crash_mid_write_publishes_nothing_and_keeps_latest(
    demo_run: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    publish(demo_run, tmp_path)
    before = snapshot(tmp_path)

    def half_then_fail(run: RunResult, folder: Path) -> None:
        (folder / "edges.csv").write_text("source_workload\n", encoding="utf-8")
        raise error

    monkeypatch.setitem(registry.WRITERS, "csv", half_then_fail)
    with pytest.raises(UserError if isinstance(error, OSError) else RuntimeError):
        publish(with_id(demo_run, NOW + timedelta(seconds=5)), tmp_path)

    assert snapshot(tmp_path) == before  # latest, history page and runs/ byte for byte; no staging left


def test_an_older_run_finishing_last_does_not_replace_latest(demo_run: RunResult, tmp_path: Path) -> None:
    newer = publish(with_id(demo_run, NOW), tmp_path)
    older = publish(with_id(demo_run, NOW - timedelta(minutes=3)), tmp_path)
    assert os.readlink(tmp_path / "latest") == f"runs/{newer.name}"
    assert history_rows(tmp_path) == [newer.name, older.name]


def test_runs_in_one_second_get_distinct_names_in_time_order(demo_run: RunResult, tmp_path: Path) -> None:
    names = [publish(demo_run, tmp_path).name for _ in range(3)]
    assert names == [demo_run.run_id, f"{demo_run.run_id}-2", f"{demo_run.run_id}-3"]
    assert sorted(names, key=run_order) == names
    assert os.readlink(tmp_path / "latest") == f"runs/{names[-1]}"
    for name in names:
        assert json.loads((tmp_path / "runs" / name / "summary.json").read_text(encoding="utf-8"))["run_id"] == name


def test_a_held_lock_times_out_with_one_clear_line_and_publishes_nothing(demo_run: RunResult, tmp_path: Path) -> None:
    publish(demo_run, tmp_path)
    before = snapshot(tmp_path)
    with output_lock(tmp_path):
        started = time.monotonic()
        with pytest.raises(UserError, match="--lock-timeout"):
            publish(with_id(demo_run, NOW + timedelta(seconds=1)), tmp_path, lock_timeout=0.5)
        assert 0.4 < time.monotonic() - started < 5
        done = run_cli("demo", "--output-dir", str(tmp_path), "--lock-timeout", "1")
    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("mtls-readiness: error")]
    assert len(error_lines) == 1 and "--lock-timeout" in error_lines[0], done.stderr
    assert snapshot(tmp_path) == before


def test_a_waiting_run_publishes_once_the_lock_is_released(demo_run: RunResult, tmp_path: Path) -> None:
    with output_lock(tmp_path):
        waiting = subprocess.Popen(
            [sys.executable, "-m", "analyzer", "demo", "--output-dir", str(tmp_path), "--lock-timeout", "120"],
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(6)  # long enough for the demo to reach its publish step and wait
        assert waiting.poll() is None, waiting.communicate()
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    assert len(history_rows(tmp_path)) == 1


# -- several real processes at once ---------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=180
    )


def test_four_runs_started_together_all_end_well(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "analyzer", "demo", "--output-dir", str(tmp_path)],
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    published = []
    for code, stdout, stderr in outcomes:
        if code == 1:  # refused: said why in one line, published nothing
            assert "another run" in stderr, stderr
            continue
        assert code == 0, stderr  # demo: published is success
        published.append(Path(re.search(r"report: (\S+)/index.html", stdout).group(1)).name)
    assert published and len(set(published)) == len(published)
    on_disk = sorted((p.name for p in (tmp_path / "runs").iterdir()), key=run_order)
    assert sorted(published, key=run_order) == on_disk  # no staging left behind, nothing extra
    assert os.readlink(tmp_path / "latest") == f"runs/{on_disk[-1]}"
    assert history_rows(tmp_path) == on_disk[::-1]  # each once, newest first


# -- retention --------------------------------------------------------------------------------------------


def test_retention_keeps_the_newest_runs_and_prunes_damaged_old_ones(
    demo_run: RunResult, template: dict, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sound = [fake_run(runs, run_id_for(NOW - timedelta(days=d)), template).name for d in range(1, 31)]
    old_damage = fake_run(runs, run_id_for(NOW - timedelta(days=20, hours=1)), template)
    (old_damage / "summary.json").write_text("[]", encoding="utf-8")
    recent_damage = fake_run(runs, run_id_for(NOW - timedelta(days=2, hours=1)), template)
    (recent_damage / "edges.csv").write_text("", encoding="utf-8")
    (runs / "README.txt").write_text("not ours\n", encoding="utf-8")

    final = publish(demo_run, tmp_path, keep_runs=10)

    left = {p.name for p in runs.iterdir()}
    # the damaged run in the newest ten takes a place; the one beyond them goes with the old runs
    assert left == {final.name, *sound[:8], recent_damage.name, "README.txt"}
    assert history_rows(tmp_path) == [final.name, *sound[:8]]
    assert os.readlink(tmp_path / "latest") == f"runs/{final.name}"

    publish(with_id(demo_run, NOW + timedelta(seconds=1)), tmp_path, keep_runs=0, keep_days=5)
    left = {p.name for p in runs.iterdir()}
    assert left == {
        final.name,
        f"{run_id_for(NOW + timedelta(seconds=1))}",
        *sound[:4],
        recent_damage.name,
        "README.txt",
    }


def test_retention_never_removes_latest_or_anything_newer(template: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    names = [fake_run(runs, run_id_for(long_ago - timedelta(days=d)), template).name for d in range(5)]
    newer_damaged = fake_run(runs, run_id_for(long_ago + timedelta(days=1)), template)
    (newer_damaged / "index.html").unlink()
    folders = run_folders(runs, warn=False)
    latest = next(r for r in folders if r.summary is not None)
    assert latest.name == names[0]
    removed = {r.name for r in prunable(folders, latest, keep_runs=1, keep_days=1, now=NOW)}
    assert removed == set(names[1:])  # latest is a year old, yet kept; the damaged newer one too
    assert not prunable(folders, latest, keep_runs=0, keep_days=0, now=NOW)  # 0 and 0: keep everything


def test_demo_and_report_take_the_output_flags_and_their_twins(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--keep-runs", "7", "--keep-days", "30", "--lock-timeout", "2.5"])
    assert (args.keep_runs, args.keep_days, args.lock_timeout) == (7, 30, 2.5)
    monkeypatch.setenv("MTLS_READINESS_KEEP_RUNS", "90")
    monkeypatch.setenv("MTLS_READINESS_LOCK_TIMEOUT", "60")
    args = build_parser().parse_args(["report", "--prometheus-url", "http://p:9090"])
    assert (args.keep_runs, args.keep_days, args.lock_timeout) == (90, 0, 60.0)
    monkeypatch.setenv("MTLS_READINESS_KEEP_RUNS", "-3")
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["demo"])
    assert exit_.value.code == 1 and "--keep-runs" in capsys.readouterr().err
