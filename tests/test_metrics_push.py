"""Alerting on the nightly job: its gauges reach a real Pushgateway, a real Prometheus scraping it
evaluates the shipped alert rules, and `promtool test rules` checks those rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from analyzer.api import analyse_sample
from analyzer.cli import EXIT_OK, main
from analyzer.collect.pushgateway import push
from analyzer.config import PushgatewaySettings
from analyzer.model.report import Changes, ClientChange, VerdictChange
from analyzer.write.metrics import registry, render
from tests.support import daemon
from tests.support.prometheus import free_port

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "cronjob" / "monitoring"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run tests through tests/run.sh, which installs it from Debian")
    return path


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "pushgateway.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        daemon.wait_ready(process, f"{url}/-/ready", log, "pushgateway", 0.1)
        yield url
    finally:
        daemon.stop(process)


def _changes(previous: str, new_clients: int, regressions: list[str]) -> Changes:
    client = ClientChange("legacy", "curl", "foo", "httpbin", "http", "requests", 3.0, True, "unmeshed")
    return Changes(
        previous_run_id=previous,
        new_plaintext_clients=[client] * new_clients,
        regressions=[VerdictChange(scope, "x", "READY", "BLOCKED") for scope in regressions],
    )


def _gauges(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("mtls_readiness_"):
                labels = frozenset((k, v) for k, v in s.labels.items() if k not in ("instance",))
                out[(s.name, labels)] = s.value
    return out


def test_gauges_follow_the_run_result() -> None:
    run = analyse_sample("demo", now=datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    run.changes = _changes("20261129T020000Z", 3, ["namespace", "workload", "workload"])
    g = _gauges(render(run, duration_seconds=12.5))
    for verdict, count in run.verdict_counts().items():
        assert g[("mtls_readiness_workloads", frozenset({("verdict", verdict)}))] == count
    mesh = {dict(k[1])["verdict"]: v for k, v in g.items() if k[0] == "mtls_readiness_mesh_verdict"}
    assert mesh[run.mesh.verdict.value] == 1 and sum(mesh.values()) == 1 and len(mesh) == 7
    ns = {dict(k[1])["verdict"]: v for k, v in g.items() if k[0] == "mtls_readiness_namespaces"}
    assert sum(ns.values()) == len(run.namespaces)
    assert g[("mtls_readiness_blocker_edges", frozenset())] == sum(e.blocker for e in run.edges) > 0
    clients = {(e.source_namespace, e.source_workload) for e in run.edges if e.plaintext_count > 0}
    assert g[("mtls_readiness_plaintext_clients", frozenset())] == len(clients) > 0
    assert g[("mtls_readiness_new_plaintext_clients", frozenset())] == 3
    assert g[("mtls_readiness_regressions", frozenset({("scope", "namespace")}))] == 1
    assert g[("mtls_readiness_regressions", frozenset({("scope", "workload")}))] == 2
    assert g[("mtls_readiness_complete", frozenset())] == int(run.complete)
    assert g[("mtls_readiness_run_duration_seconds", frozenset())] == 12.5
    assert g[("mtls_readiness_last_success_timestamp_seconds", frozenset())] == run.generated_at.timestamp()
    # The first run compares with nothing: NaN, which no `> 0` alert fires on.
    run.changes = Changes()
    first = _gauges(render(run))
    assert (
        first[("mtls_readiness_new_plaintext_clients", frozenset())]
        != first[("mtls_readiness_new_plaintext_clients", frozenset())]
    )


def test_demo_pushes_what_it_publishes(pushgateway: str, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    args = ["demo", "--mesh", "walkthrough", "--output-dir", str(out), "--pushgateway-url", pushgateway]
    assert main([*args, "--pushgateway-job", "nightly"]) == EXIT_OK
    summary = json.loads((out / "latest" / "summary.json").read_text())
    pushed = _gauges(requests.get(f"{pushgateway}/metrics", timeout=5).text)
    written = _gauges((out / "latest" / "metrics.prom").read_text())
    key = ("mtls_readiness_workloads", frozenset({("verdict", "BLOCKED"), ("job", "nightly")}))
    assert pushed[key] == summary["verdicts"]["BLOCKED"] > 0
    assert written[("mtls_readiness_workloads", frozenset({("verdict", "BLOCKED")}))] == pushed[key]
    assert pushed[("mtls_readiness_complete", frozenset({("job", "nightly")}))] == int(summary["complete"])
    mesh_key = ("mtls_readiness_mesh_verdict", frozenset({("verdict", summary["mesh_verdict"]), ("job", "nightly")}))
    assert pushed[mesh_key] == 1


def test_a_failed_push_warns_and_keeps_the_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "reports"
    closed = f"http://127.0.0.1:{free_port()}"
    assert main(["demo", "--mesh", "walkthrough", "--output-dir", str(out)]) == EXIT_OK
    args = ["demo", "--mesh", "walkthrough", "--output-dir", str(out), "--pushgateway-url", closed]
    # `report` exits 2 then (the run's errors name the lost push); `demo` exits 0 once published.
    assert main(args) == EXIT_OK
    assert len(list((out / "runs").iterdir())) == 2
    assert (out / "latest" / "index.html").is_file() and (out / "latest" / "metrics.prom").is_file()
    assert any("cannot push metrics" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_pushgateway_credentials_come_from_files(tmp_path: Path) -> None:
    """A Pushgateway that requires a bearer token (a loopback stand-in that checks it)."""
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200 if self.headers.get("Authorization") == "Bearer s3cret" else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        token = tmp_path / "token"
        token.write_text("s3cret\n")
        run = analyse_sample("walkthrough")
        push(registry(run), PushgatewaySettings(url=url, bearer_token_file=token))
        token.write_text("wrong")
        from analyzer.errors import UserError

        with pytest.raises(UserError, match="HTTP 401") as err:
            push(registry(run), PushgatewaySettings(url=url, bearer_token_file=token))
        assert "wrong" not in str(err.value)
        assert seen == ["Bearer s3cret", "Bearer wrong"]
    finally:
        server.shutdown()
        server.server_close()


def _rules_file(folder: Path) -> Path:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def test_promtool_unit_tests_of_the_alert_rules(tmp_path: Path) -> None:
    _rules_file(tmp_path)
    shutil.copy(MONITORING / "prometheusrule.test.yaml", tmp_path)
    done = subprocess.run(
        [_binary("promtool"), "test", "rules", "prometheusrule.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_prometheus_scraping_the_pushgateway_fires_the_alerts(pushgateway: str, tmp_path: Path) -> None:
    # A run two days old, one new plaintext client, one namespace regression, incomplete data.
    run = analyse_sample("demo", now=datetime.now(UTC) - timedelta(days=2))
    run.errors.append("timeline query failed")
    run.changes = _changes("x", 1, ["namespace"])
    push(registry(run, duration_seconds=3.0), PushgatewaySettings(url=pushgateway))

    rules = _rules_file(tmp_path)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,
                        "static_configs": [{"targets": [pushgateway.removeprefix("http://")]}],
                    }
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        daemon.wait_ready(process, f"{url}/-/ready", log, "prometheus", 0.1)
        expected = {
            "MtlsReadinessNewPlaintextClient",
            "MtlsReadinessNamespaceRegression",
            "MtlsReadinessNotRun",
            "MtlsReadinessRunIncomplete",
        }
        firing: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and firing != expected:
            alerts = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            firing = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
            time.sleep(0.5)
        assert firing == expected
        jobs = {a["labels"].get("job") for a in alerts}
        assert jobs == {"mtls-readiness"}  # honor_labels keeps the pushed job, not "pushgateway"
    finally:
        daemon.stop(process)
