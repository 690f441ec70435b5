"""Run settings and the small parsers they need."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> timedelta:
    """Prometheus duration syntax: `7d`, `1h30m`, `2w`."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 7d, 36h, 1h30m)")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    url: str
    bearer_token_file: Path | None = None
    ca_file: Path | None = None
    headers: tuple[str, ...] = ()  # "Name: value"
    header_files: tuple[str, ...] = ()  # "Name: /path/to/value", or a folder of files named by header
    cert_file: Path | None = None  # client certificate (PEM), for Prometheus behind mTLS
    key_file: Path | None = None
    username_file: Path | None = None  # basic auth
    password_file: Path | None = None
    sigv4_region: str | None = None  # Amazon Managed Prometheus: requests signed with AWS SigV4
    tenant: str | None = None  # Mimir / Cortex X-Scope-OrgID
    insecure_skip_verify: bool = False
    timeout: float = 120.0
    retries: int = 3
    max_parallel: int = 2  # bounded: krr users saw unbounded fan-out OOM-kill Prometheus
    extra_params: dict[str, str] = field(default_factory=dict)
    # Matchers added to every selector of every query (collect/matchers.py), e.g. 'cluster="prod"'.
    selector: tuple[str, ...] = ()
    # Namespace-scope matchers, added to selectors of Istio metrics only.
    scope_matchers: tuple[str, ...] = ()
    # The label a Telemetry override adds with the peer's address (docs/attribution.md); "" reads none.
    peer_address_label: str = "source_address"


@dataclass(frozen=True, slots=True)
class PushgatewaySettings:
    url: str
    job: str = "mtls-readiness"  # the grouping key: one group per job, replaced at each push
    bearer_token_file: Path | None = None
    username_file: Path | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class ReportConfig:
    lookback: str = "7d"
    policies_from: str = "kube"
    root_namespace: str = "istio-system"
    output_dir: Path = Path("reports")
    cluster: str = ""  # CLUSTER_ID whose policies are read; "" accepts any
    kube_context: str | None = None
    kubeconfig: str | None = None
    kube_timeout: float = 30.0
    prometheus: PrometheusSettings | None = None
    keep_runs: int = 60  # retention: newest runs kept (0: all); sized for the shipped 1 Gi volume
    keep_days: int = 0  # retention: runs older than this many days go too (0: no age limit)
    lock_timeout: float = 300.0  # seconds to wait for another run publishing into the same folder
    pushgateway: PushgatewaySettings | None = None
    namespaces: tuple[str, ...] = ()  # --namespace globs; empty: every namespace
    exclude_namespaces: tuple[str, ...] = ()  # --exclude-namespace globs
    extra: dict = field(default_factory=dict)

    @property
    def window(self) -> timedelta:
        return parse_duration(self.lookback)
