"""The command line: environment twins (every flag has MTLS_READINESS_<FLAG>), help, global flags."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from analyzer.cli import BATCH_GC_THRESHOLD, batch_collection, build_parser, env_name


def parse(argv: list[str]):
    return build_parser().parse_args(argv)


def test_env_name_follows_the_contract() -> None:
    assert env_name("--prometheus-url") == "MTLS_READINESS_PROMETHEUS_URL"
    assert env_name("--prometheus-insecure-skip-verify") == "MTLS_READINESS_PROMETHEUS_INSECURE_SKIP_VERIFY"


def test_a_required_flag_is_satisfied_by_its_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTLS_READINESS_PROMETHEUS_URL", "http://prometheus:9090")
    assert parse(["report"]).prometheus_url == "http://prometheus:9090"


def test_the_command_line_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTLS_READINESS_LOOKBACK", "14d")
    monkeypatch.setenv("MTLS_READINESS_PROMETHEUS_URL", "http://from-env:9090")
    args = parse(["report", "--prometheus-url", "http://from-flag:9090"])
    assert args.prometheus_url == "http://from-flag:9090"
    assert args.lookback == "14d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("1", True, id="one"),
        pytest.param("false", False, id="false"),
    ],
)
def test_boolean_twins(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("MTLS_READINESS_PROMETHEUS_INSECURE_SKIP_VERIFY", value)
    assert parse(["report", "--prometheus-url", "http://p:9090"]).prometheus_insecure_skip_verify is expected


def test_repeatable_flags_take_one_value_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTLS_READINESS_PROMETHEUS_HEADER", "X-Scope-OrgID: team-a\n\nX-Extra: 1\n")
    args = parse(["report", "--prometheus-url", "http://p:9090"])
    assert args.prometheus_header == ["X-Scope-OrgID: team-a", "X-Extra: 1"]


def test_typed_twins_are_converted_and_validated(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MTLS_READINESS_OUTPUT_DIR", "/srv/reports")
    monkeypatch.setenv("MTLS_READINESS_KUBE_TIMEOUT", "5")
    args = parse(["demo"])
    assert args.output_dir == Path("/srv/reports")
    monkeypatch.setenv("MTLS_READINESS_LOOKBACK", "a week")
    with pytest.raises(SystemExit) as exited:
        parse(["demo"])
    assert exited.value.code == 1
    assert "not a Prometheus duration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "required"),
    [
        pytest.param("report", {"PROMETHEUS_URL": "http://p:9090"}, id="report"),
        pytest.param("what-if", {"APPLY": "proposal.yaml"}, id="what-if"),
        pytest.param("snapshot", {"OUTPUT": "snapshot.yaml"}, id="snapshot"),
    ],
)
def test_required_flags_of_every_command_come_from_twins(
    monkeypatch: pytest.MonkeyPatch, command: str, required: dict[str, str]
) -> None:
    for name, value in required.items():
        monkeypatch.setenv(f"MTLS_READINESS_{name}", value)
    args = parse([command])
    assert args.command == command


def test_importing_the_cli_loads_no_heavy_library():
    """`mtls-readiness --help` and usage errors must answer at once, in a CronJob log too."""
    import subprocess
    import sys

    code = (
        "import sys, analyzer.cli; "
        "heavy = sorted(m for m in ('pandas', 'matplotlib', 'kubernetes', 'prometheus_api_client', 'requests') "
        "if m in sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        pytest.param("report", ("0", "1", "2"), id="report"),
        pytest.param("demo", ("0", "1"), id="demo"),
        pytest.param("what-if", ("0", "1", "2", "3"), id="what-if"),
        pytest.param("snapshot", ("0", "1"), id="snapshot"),
    ],
)
def test_every_command_explains_itself(command: str, codes: tuple[str, ...], capsys) -> None:
    text = _help(command, capsys)
    usage, _, rest = text.partition("\n\n")
    purpose = rest.strip().splitlines()[0]
    assert len(purpose) > 30 and not purpose.startswith("options"), purpose
    assert f"mtls-readiness {command} " in text.split("examples:", 1)[1], "an example invocation"
    listed = [line.split()[0] for line in text.split("exit codes:", 1)[1].splitlines() if line.strip()]
    assert tuple(listed) == codes
    # Every long flag's help names its environment twin.
    flags = {word.split("=")[0] for word in usage.replace("[", " ").replace("]", " ").split() if word.startswith("--")}
    flags -= {"--help"}
    assert flags
    for flag in flags:
        assert env_name(flag) in " ".join(text.split()), f"{flag} does not name {env_name(flag)}"


def test_help_shows_defaults(capsys) -> None:
    text = " ".join(_help("report", capsys).split())
    assert "default: 7d; env MTLS_READINESS_LOOKBACK" in text
    assert "default: istio-system; env MTLS_READINESS_ROOT_NAMESPACE" in text


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--log-level", "DEBUG", "demo"], id="before"),
        pytest.param(["demo", "--log-level", "DEBUG"], id="after"),
        pytest.param(["demo", "--log-level", "debug"], id="lower-case"),
    ],
)
def test_global_flags_work_before_and_after_the_command(argv: list[str]) -> None:
    assert parse(argv).log_level == "DEBUG"


def test_a_global_flag_before_the_command_is_not_reset_after_it() -> None:
    assert parse(["--log-level", "ERROR", "report", "--prometheus-url", "http://p:9090"]).log_level == "ERROR"
    assert parse(["demo"]).log_level == "INFO"


def test_demo_exits_0_once_published_and_says_its_unknown_is_on_purpose(tmp_path: Path, capsys, caplog) -> None:
    import logging

    from analyzer.cli import main

    caplog.set_level(logging.INFO, logger="mtls_readiness")
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "latest" / "index.html").is_file()
    assert "report: " in captured.out
    assert any("on purpose" in r.getMessage() for r in caplog.records)


def test_a_run_paces_the_collector_for_a_batch_and_restores_it_even_when_it_fails() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError), batch_collection():
        assert gc.get_threshold() == (BATCH_GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > frozen  # what was loaded before the run is scanned no more
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
