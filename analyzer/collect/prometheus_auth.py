"""How the job authenticates to Prometheus: TLS (CA bundle, client certificate), one way of
authorization (bearer token, basic auth, or AWS SigV4 for Amazon Managed Prometheus), and extra
headers. Every secret is read from a file at each run, so a mounted Secret can carry it; none
is ever logged or written (`describe` names the methods, never their values).
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from analyzer.config import PrometheusSettings
from analyzer.errors import UserError

SIGV4_SERVICE = "aps"  # Amazon Managed Service for Prometheus


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"{flag} {path}: {exc.strerror}; mount the file or fix the path") from None


def _header(text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise UserError(f"{flag} {name.strip()[:40]!r}...: expected 'Name: value'")
    return name.strip(), value.strip()


def _header_files(spec: str) -> dict[str, str]:
    """`Name: /path` (the file holds the value), or a folder: one header per file, named by it.
    A Secret mounted as a folder also holds `..data` links: names starting with a dot are skipped."""
    flag = "--prometheus-header-file"
    folder = Path(spec)
    if folder.is_dir():
        return {f.name: _read(f, flag) for f in sorted(folder.iterdir()) if not f.name.startswith(".") and f.is_file()}
    name, path = _header(spec, flag)
    return {name: _read(Path(path), flag)}


def headers(settings: PrometheusSettings) -> dict[str, str]:
    """Headers sent with every query: extra headers, headers from files, tenant, bearer token."""
    out: dict[str, str] = {}
    for text in settings.headers:
        name, value = _header(text, "--prometheus-header")
        out[name] = value
    for spec in settings.header_files:
        out.update(_header_files(spec))
    if settings.tenant:
        out["X-Scope-OrgID"] = settings.tenant
    if settings.bearer_token_file:
        out["Authorization"] = "Bearer " + _read(settings.bearer_token_file, "--prometheus-bearer-token-file")
    return out


def _authorizations(settings: PrometheusSettings) -> list[str]:
    parts = urlsplit(settings.url)
    used = {
        "--prometheus-bearer-token-file": bool(settings.bearer_token_file),
        "user:password@ in --prometheus-url": bool(parts.username),
        "--prometheus-username-file/--prometheus-password-file": bool(settings.username_file or settings.password_file),
        "--prometheus-sigv4-region": bool(settings.sigv4_region),
    }
    return [name for name, on in used.items() if on]


def _aws_credentials() -> tuple[str, str, str | None]:
    """The standard AWS sources, in the SDKs' order: environment variables, then the shared
    credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else ~/.aws/credentials; `AWS_PROFILE`)."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret, os.environ.get("AWS_SESSION_TOKEN") or None
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    profile = os.environ.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
        section = parser[profile]
        return section["aws_access_key_id"], section["aws_secret_access_key"], section.get("aws_session_token")
    except (OSError, KeyError, configparser.Error):
        raise UserError(
            "--prometheus-sigv4-region needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(and AWS_SESSION_TOKEN), or profile {profile!r} in {path}"
        ) from None


def configure(session: requests.Session, settings: PrometheusSettings) -> None:
    """TLS and authorization on the session every query goes through."""
    methods = _authorizations(settings)
    if len(methods) > 1:
        raise UserError(f"{' and '.join(methods)} both set the Authorization header; keep one")
    if settings.insecure_skip_verify:
        session.verify = False
    elif settings.ca_file:
        if not settings.ca_file.is_file():
            raise UserError(
                f"--prometheus-ca-file {settings.ca_file}: no such file; mount the CA bundle or fix the path"
            )
        session.verify = str(settings.ca_file)
    if settings.key_file and not settings.cert_file:
        raise UserError("--prometheus-key-file needs --prometheus-cert-file; give the client certificate too")
    if settings.cert_file:
        for path, flag in (
            (settings.cert_file, "--prometheus-cert-file"),
            (settings.key_file, "--prometheus-key-file"),
        ):
            if path is not None and not path.is_file():
                raise UserError(f"{flag} {path}: no such file; mount the client certificate or fix the path")
        session.cert = (
            (str(settings.cert_file), str(settings.key_file)) if settings.key_file else str(settings.cert_file)
        )
    parts = urlsplit(settings.url)
    if parts.username:
        session.auth = (unquote(parts.username), unquote(parts.password or ""))
    elif settings.username_file or settings.password_file:
        if not (settings.username_file and settings.password_file):
            raise UserError("--prometheus-username-file and --prometheus-password-file go together; give both")
        session.auth = (
            _read(settings.username_file, "--prometheus-username-file"),
            _read(settings.password_file, "--prometheus-password-file"),
        )
    elif settings.sigv4_region:
        from requests_aws4auth import AWS4Auth

        key, secret, token = _aws_credentials()
        session.auth = AWS4Auth(key, secret, settings.sigv4_region, SIGV4_SERVICE, session_token=token)


def describe(settings: PrometheusSettings) -> str:
    """Which methods are in use, for logs: names only, never values."""
    used = _authorizations(settings)
    if settings.cert_file:
        used.append("client certificate")
    if settings.header_files or settings.headers:
        used.append(f"{len(settings.header_files) + len(settings.headers)} extra header source(s)")
    return ", ".join(used) or "no authentication"
