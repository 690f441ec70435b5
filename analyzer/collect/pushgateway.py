"""Push a run's gauges to a Prometheus Pushgateway, grouped by `job`.

A PUT replaces the whole group, so gauges of an older run never linger next to the new ones.
Credentials (bearer token, basic auth) are read from files at each run and never logged; TLS is
verified (system CAs, or `ca_file`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, push_to_gateway

from analyzer.config import PushgatewaySettings
from analyzer.errors import UserError

log = logging.getLogger("mtls_readiness")


class _Rejected(Exception):
    """The Pushgateway answered with an HTTP error."""


def _read_secret(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"{flag} {path}: {exc.strerror}; mount the file or fix the path") from None


def _handler(settings: PushgatewaySettings) -> Callable[..., Callable[[], None]]:
    """prometheus_client's push handler, sent through requests (CA bundle, auth, timeout)."""
    auth_headers: dict[str, str] = {}
    if settings.bearer_token_file:
        token = _read_secret(settings.bearer_token_file, "--pushgateway-bearer-token-file")
        auth_headers["Authorization"] = f"Bearer {token}"
    auth = None
    if settings.username_file or settings.password_file:
        if not (settings.username_file and settings.password_file):
            raise UserError("--pushgateway-username-file and --pushgateway-password-file go together; give both")
        auth = (
            _read_secret(settings.username_file, "--pushgateway-username-file"),
            _read_secret(settings.password_file, "--pushgateway-password-file"),
        )
    verify: bool | str = str(settings.ca_file) if settings.ca_file else True

    def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
        def send() -> None:
            response = requests.request(
                method,
                url,
                data=data,
                headers={**dict(headers), **auth_headers},
                auth=auth,
                verify=verify,
                timeout=timeout,
            )
            if response.status_code >= 400:
                raise _Rejected(f"HTTP {response.status_code}")

        return send

    return handler


def push(reg: CollectorRegistry, settings: PushgatewaySettings) -> None:
    """Replace the job's group on the Pushgateway. Raises UserError with what to do."""
    handler = _handler(settings)
    try:
        push_to_gateway(settings.url, job=settings.job, registry=reg, timeout=settings.timeout, handler=handler)
    except requests.exceptions.SSLError:
        raise UserError(
            f"cannot push metrics to {settings.url}: TLS verification failed; give --pushgateway-ca-file"
        ) from None
    except (_Rejected, requests.exceptions.RequestException) as exc:
        reason = str(exc) if isinstance(exc, _Rejected) else type(exc).__name__
        raise UserError(
            f"cannot push metrics to {settings.url} ({reason}); check --pushgateway-url and its credentials"
        ) from None
