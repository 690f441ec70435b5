"""Failing runs, end to end: the real CLI in a subprocess (exit code and stderr are the contract).

A failed run exits 1 with exactly one line on stderr that says what to do, and leaves the
previous `latest/` (and everything else already published) exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from analyzer.cli import main
from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh, peer_authentication
from tests.support.e2e import LOOKBACK, run_report, short_history, write_policies
from tests.support.prometheus import free_port

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Cli:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def cli(*args: str) -> Cli:
    """`python -m analyzer ...` as a CronJob runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTLS_READINESS_")}
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    return Cli(done.returncode, done.stdout, done.stderr)


def report(url: str, policies: Path, output_dir: Path, *extra: str) -> Cli:
    return cli(
        "report",
        "--prometheus-url",
        url,
        "--policies-from",
        str(policies),
        "--output-dir",
        str(output_dir),
        "--lookback",
        LOOKBACK,
        *extra,
    )


def snapshot(output_dir: Path) -> dict[str, object]:
    """Everything a reader of the output dir could see: where latest points, every file's bytes."""
    files = {
        str(p.relative_to(output_dir)): p.read_bytes()
        for p in sorted(output_dir.rglob("*"))
        if p.is_file() and not p.is_symlink() and "latest" not in p.relative_to(output_dir).parts
    }
    return {"latest": os.readlink(output_dir / "latest"), "files": files}


@dataclass
class Published:
    url: str
    policies: Path
    output_dir: Path
    before: dict[str, object]


@pytest.fixture(scope="module")
def served(
    prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    mesh = short_history(catalogue.walkthrough())
    return prometheus_factory(mesh), write_policies(mesh, tmp_path_factory.mktemp("failures"))


@pytest.fixture(scope="module")
def earlier_run(served: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output dir holding one successful run (made once, in process: it is not under test here)."""
    url, policies = served
    output_dir = tmp_path_factory.mktemp("earlier") / "reports"
    assert run_report(None, url, policies, output_dir).code == 0
    return output_dir


@pytest.fixture
def published(served: tuple[str, Path], earlier_run: Path, tmp_path: Path) -> Published:
    """A fresh copy of the output dir with the earlier run, for one failing run to leave alone."""
    output_dir = tmp_path / "reports"
    shutil.copytree(earlier_run, output_dir, symlinks=True)
    return Published(served[0], served[1], output_dir, snapshot(output_dir))


def assert_failed_cleanly(result: Cli, published: Published) -> None:
    assert result.code == 1, result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    assert result.stderr_lines[0].startswith("mtls-readiness")
    assert result.stdout == ""
    assert snapshot(published.output_dir) == published.before
    # No half-written run was left behind either.
    assert [p.name for p in (published.output_dir / "runs").iterdir()] == [published.before["latest"].split("/")[-1]]


def test_prometheus_unreachable_exits_1_and_keeps_latest(published: Published) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    result = report(nothing_there, published.policies, published.output_dir)
    assert_failed_cleanly(result, published)
    line = result.stderr_lines[0]
    assert "cannot reach Prometheus" in line
    assert nothing_there in line
    assert "--prometheus-url" in line  # what to do


def test_broken_policy_file_exits_1_naming_file_and_line(published: Published, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    shutil.copy(published.policies, folder / "a-good.yaml")
    (folder / "b-broken.yaml").write_text(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n"
        "  namespace: foo\n spec: {mtls: {mode: STRICT}\n",
        encoding="utf-8",
    )
    result = report(published.url, folder, published.output_dir)
    assert_failed_cleanly(result, published)
    line = result.stderr_lines[0]
    assert f"{folder / 'b-broken.yaml'}:6:" in line
    assert "fix the YAML" in line


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--lookback", "7x"], "--lookback"),
        (["--lookback", "0d"], "--lookback"),
        (["--log-level", "LOUD"], "--log-level"),
    ],
    ids=["not a duration", "zero window", "unknown choice"],
)
def test_usage_errors_exit_1_with_one_line(
    published: Published, argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input is exit 1 (argparse's own 2 would mean "report written, incomplete")."""
    common = ["--policies-from", str(published.policies), "--output-dir", str(published.output_dir)]
    if named == "--log-level":
        full = [*argv, "report", "--prometheus-url", published.url, *common]
    else:
        full = ["report", "--prometheus-url", published.url, *common, *argv]
    with pytest.raises(SystemExit) as exited:
        main(full)
    captured = capsys.readouterr()
    assert_failed_cleanly(Cli(exited.value.code, captured.out, captured.err), published)
    assert named in captured.err
    assert "--help" in captured.err


def test_a_missing_prometheus_url_exits_1(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--policies-from", str(published.policies), "--output-dir", str(published.output_dir)])
    captured = capsys.readouterr()
    assert_failed_cleanly(Cli(exited.value.code, captured.out, captured.err), published)
    assert "--prometheus-url" in captured.err


def test_unwritable_output_dir_exits_1(served: tuple[str, Path], tmp_path: Path) -> None:
    url, policies = served
    # A file where the output directory should be: not even root can write below it.
    blocker = tmp_path / "reports"
    blocker.write_text("not a directory\n", encoding="utf-8")
    result = report(url, policies, blocker / "nightly")
    assert result.code == 1, result.stderr
    # Checked before anything is collected: one line, and no query was worth sending.
    assert len(result.stderr_lines) == 1, result.stderr
    assert result.stderr_lines[0].startswith("mtls-readiness: error: cannot write to --output-dir")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert blocker.read_text(encoding="utf-8") == "not a directory\n"


def test_one_bad_object_is_reported_and_skipped(served: tuple[str, Path], tmp_path: Path) -> None:
    url, policies = served
    objects = [*yaml.safe_load_all(policies.read_text(encoding="utf-8"))]
    objects.append(peer_authentication("foo", "too-strict", "STRICTEST"))
    broken = tmp_path / "policies.yaml"
    broken.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    published = run_report(None, url, broken, tmp_path / "reports")
    # It may be the policy that decides foo's mode: foo's verdicts that are not proven become UNKNOWN
    # (an incomplete report, exit 2); bar is untouched.
    assert published.code == 2
    assert (published.verdict("foo/curl"), published.verdict("bar/curl")) == ("UNKNOWN", "NO_TRAFFIC")
    [warning] = [w for w in published.summary["warnings"] if "too-strict" in w]
    assert "STRICTEST" in warning
    assert str(broken) in warning
    # Skipped, not read as STRICT: the walk-through's plaintext still blocks foo.
    assert published.verdict("foo/httpbin") == "BLOCKED"
    assert published.workloads["foo/httpbin"]["mode"] == "PERMISSIVE"
    assert published.summary["mesh_verdict"] == "BLOCKED"


# -- TLS: verification is on unless switched off --------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command line tool."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_prometheus(served: tuple[str, Path], certificate: tuple[Path, Path]) -> Iterator[str]:
    """The test Prometheus behind a TLS proxy with the self-signed certificate."""
    upstream = served[0]

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            answer = requests.request(self.command, upstream + self.path, data=body, headers=headers, timeout=30)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Proxy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_self_signed_certificate_is_refused_by_default(
    tls_prometheus: str, served: tuple[str, Path], tmp_path: Path
) -> None:
    result = report(tls_prometheus, served[1], tmp_path / "reports")
    assert result.code == 1, result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert "TLS verification failed" in line
    assert "self-signed certificate" in line
    assert "--prometheus-ca-file" in line
    assert not (tmp_path / "reports" / "latest").exists()


@pytest.fixture
def system_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """As container images often set it; requests would let it override the session's CA (psf/requests#3829)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)


@pytest.mark.usefixtures("system_ca_bundle")
def test_the_ca_file_makes_the_same_server_trusted(
    tls_prometheus: str, served: tuple[str, Path], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    ca = ("--prometheus-ca-file", str(certificate[0]))
    published = run_report(None, tls_prometheus, served[1], tmp_path / "reports", *ca)
    assert published.code == 0
    assert published.summary["source"] == tls_prometheus
    assert published.summary["warnings"] == []  # every query went through, however it was sent
    assert published.verdict("foo/httpbin") == "BLOCKED"


@pytest.mark.usefixtures("system_ca_bundle")
def test_skipping_verification_takes_an_explicit_flag(
    tls_prometheus: str, served: tuple[str, Path], tmp_path: Path
) -> None:
    published = run_report(None, tls_prometheus, served[1], tmp_path / "reports", "--prometheus-insecure-skip-verify")
    assert published.code == 0
    assert published.verdict("foo/httpbin") == "BLOCKED"


def test_https_to_a_plain_http_server_fails_clearly(served: tuple[str, Path], tmp_path: Path) -> None:
    plain = served[0].replace("http://", "https://")
    result = report(plain, served[1], tmp_path / "reports")
    assert result.code == 1, result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert "TLS handshake" in line
    assert "wrong version number" in line
    assert "use an http:// URL" in line  # it does not speak TLS: no CA file would help
    assert not (tmp_path / "reports" / "latest").exists()
