"""The command line's environment twins (CONTRACT.md: every flag has MTLS_READINESS_<FLAG>)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.cli import build_parser, env_name


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
