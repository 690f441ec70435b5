"""Prometheus behind authentication: each method against a loopback gate that requires it.

The gate sits in front of a real Prometheus holding the walkthrough mesh and forwards only what
carries the right credentials: a client certificate from a CA made here with openssl, basic auth,
a header, or an AWS SigV4 signature it recomputes with requests-aws4auth and the known secret.
The whole `report` command runs through it, and no secret may reach the logs or the run folder.
"""

from __future__ import annotations

import base64
import http.server
import logging
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from requests_aws4auth import AWS4Auth

from analyzer.cli import EXIT_FAILED, EXIT_OK, main
from analyzer.sample import catalogue
from tests.support.prometheus import serve_mesh

Check = Callable[[http.server.BaseHTTPRequestHandler, bytes], bool]
SECRET = "s3cret-Zq8"  # every credential below contains it; none may be written anywhere
AWS_KEY, AWS_SECRET, REGION = "AKIDEXAMPLE", f"wJalrXUtnFEMI/{SECRET}", "eu-west-1"


class Gate(http.server.ThreadingHTTPServer):
    def __init__(self, upstream: str, check: Check, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream, self.check, self.rejected = upstream, check, 0
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    server: Gate

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.server.check(self, body):
            self.server.rejected += 1
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = requests.request(
            self.command,
            self.server.upstream + self.path,
            data=body,
            headers={"Content-Type": self.headers.get("Content-Type", "")},
            timeout=30,
        )
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def gate(upstream: str, check: Check, tls: ssl.SSLContext | None = None) -> Iterator[Gate]:
    server = Gate(upstream, check, tls)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[str]:
    mesh = catalogue.walkthrough()
    mesh.history = timedelta(days=2)
    server = serve_mesh(mesh, tmp_path_factory.mktemp("prometheus"), now)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policies") / "mesh.yaml"
    path.write_text(yaml.safe_dump_all(catalogue.walkthrough().manifests()))
    return path


def _report(url: str, policies: Path, out: Path, *flags: str) -> int:
    args = ["--log-level", "DEBUG", "report", "--prometheus-url", url, "--policies-from", str(policies)]
    return main([*args, "--lookback", "1d", "--output-dir", str(out), *flags])


def _assert_no_secret(tmp: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    written = [p for folder in ("reports", "other") for p in (tmp / folder).rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


def _secret_file(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    path.write_text(value + "\n")
    return path


def _published(out: Path) -> dict:
    return yaml.safe_load((out / "latest" / "summary.json").read_text())


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_basic_auth_from_files(prometheus, policies, tmp_path, capsys, debug_logs) -> None:
    expected = "Basic " + base64.b64encode(f"reader:{SECRET}".encode()).decode()
    user = _secret_file(tmp_path, "username", "reader")
    password = _secret_file(tmp_path, "password", SECRET)
    files = ["--prometheus-username-file", str(user), "--prometheus-password-file", str(password)]
    with gate(prometheus, lambda h, _: h.headers.get("Authorization") == expected) as g:
        out = tmp_path / "reports"
        assert _report(g.url, policies, out, *files) == EXIT_OK
        assert g.rejected == 0
        assert _published(out)["verdicts"]["BLOCKED"] == 2
        password.write_text("wrong")
        assert _report(g.url, policies, tmp_path / "other", *files) == EXIT_FAILED
        assert g.rejected > 0
        assert "401" in capsys.readouterr().err
    _assert_no_secret(tmp_path, capsys, debug_logs)


def test_headers_from_a_file_and_from_a_mounted_secret_folder(prometheus, policies, tmp_path, capsys, debug_logs):
    value = _secret_file(tmp_path, "key", SECRET)
    folder = tmp_path / "secret"
    folder.mkdir()
    _secret_file(folder, "X-Api-Key", SECRET)
    (folder / "..data").mkdir()  # what a Secret volume also holds: skipped
    _secret_file(folder, ".hidden", "not a header")
    with gate(prometheus, lambda h, _: h.headers.get("X-Api-Key") == SECRET) as g:
        out = tmp_path / "reports"
        assert _report(g.url, policies, out, "--prometheus-header-file", f"X-Api-Key: {value}") == EXIT_OK
        assert _report(g.url, policies, out, "--prometheus-header-file", str(folder)) == EXIT_OK
        assert g.rejected == 0
        assert _report(g.url, policies, out) == EXIT_FAILED
        assert g.rejected > 0
    _assert_no_secret(tmp_path, capsys, debug_logs)


def _sigv4_valid(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> bool:
    """Recompute the signature the way Amazon Managed Prometheus does, from the known secret."""
    sent = handler.headers.get("Authorization", "")
    if not sent.startswith("AWS4-HMAC-SHA256 ") or f"/{REGION}/aps/aws4_request" not in sent:
        return False
    signed = sent.split("SignedHeaders=")[1].split(",")[0].split(";")
    host = handler.headers["Host"]
    request = requests.Request(
        handler.command,
        f"http://{host}{handler.path}",
        data=body,
        headers={h: handler.headers[h] for h in signed if h != "host" and h in handler.headers},
    ).prepare()
    AWS4Auth(AWS_KEY, AWS_SECRET, REGION, "aps")(request)  # keeps the request's x-amz-date
    return request.headers["Authorization"] == sent


def test_sigv4_for_amazon_managed_prometheus(prometheus, policies, tmp_path, capsys, debug_logs, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with gate(prometheus, _sigv4_valid) as g:
        out = tmp_path / "reports"
        assert _report(g.url, policies, out, "--prometheus-sigv4-region", REGION) == EXIT_OK
        assert g.rejected == 0
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong" + SECRET)
        assert _report(g.url, policies, tmp_path / "other", "--prometheus-sigv4-region", REGION) == EXIT_FAILED
        assert g.rejected > 0
        # From the shared credentials file when the environment has none.
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        creds = tmp_path / "aws-credentials"
        creds.write_text(f"[nightly]\naws_access_key_id = {AWS_KEY}\naws_secret_access_key = {AWS_SECRET}\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
        monkeypatch.setenv("AWS_PROFILE", "nightly")
        assert _report(g.url, policies, out, "--prometheus-sigv4-region", REGION) == EXIT_OK
    _assert_no_secret(tmp_path, capsys, debug_logs)


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl not found: run tests through tests/run.sh, which installs it")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _pki(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "1", "-subj", "/CN=test CA", cwd=folder)  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip


def test_client_certificate(prometheus, policies, tmp_path, capsys) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    _pki(pki)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki / "server.crt", pki / "server.key")
    tls.load_verify_locations(pki / "ca.crt")
    tls.verify_mode = ssl.CERT_REQUIRED
    with gate(prometheus, lambda h, _: True, tls) as g:
        ca = ["--prometheus-ca-file", str(pki / "ca.crt")]
        out = tmp_path / "reports"
        cert = ["--prometheus-cert-file", str(pki / "client.crt"), "--prometheus-key-file", str(pki / "client.key")]
        assert _report(g.url, policies, out, *ca, *cert) == EXIT_OK
        assert _published(out)["verdicts"]["BLOCKED"] == 2
        capsys.readouterr()
        assert _report(g.url, policies, tmp_path / "other", *ca) == EXIT_FAILED
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "client certificate" in err[0] and "--prometheus-cert-file" in err[0]
    key = (pki / "client.key").read_text().splitlines()[1]
    assert all(key.encode() not in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_one_authorization_method_at_a_time(tmp_path, capsys) -> None:
    token = _secret_file(tmp_path, "token", SECRET)
    args = ["report", "--prometheus-url", "http://127.0.0.1:9", "--prometheus-bearer-token-file", str(token)]
    code = main([*args, "--prometheus-sigv4-region", REGION, "--policies-from", str(tmp_path), "--output-dir",
                 str(tmp_path / "r")])  # fmt: skip
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert "keep one" in err and SECRET not in err
