"""What the traffic side of attribution asks Prometheus (docs/attribution.md): the peer-address
label of a Telemetry override, the client-side TCP series, and Prometheus's own scrape targets.

Read strictly like every other answer; a failure degrades that attribution source with a
warning and never touches a verdict.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analyzer.collect import queries
from analyzer.collect.answers import QueryFailed, _envelope, clip
from analyzer.model.clients import (
    CLIENT_SIDE,
    PEER_ADDRESS,
    SCRAPE_TARGETS,
    ClientSideEdge,
    ClientTraffic,
    PeerAddress,
    ScrapeTarget,
)

log = logging.getLogger("mtls_readiness")

DEFAULT_PEER_LABEL = "source_address"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def valid_label(name: str) -> bool:
    return bool(_LABEL_NAME.match(name))


@dataclass(frozen=True, slots=True)
class PeerAddresses:
    """Non-mTLS volume per destination and peer address, where the Telemetry override adds it."""

    label: str
    window: timedelta

    def promql(self) -> str:
        names = "|".join(queries.METRICS)
        sel = (
            f'{{__name__=~"{names}", {queries.SERVER_SIDE}, connection_security_policy!="mutual_tls", '
            f'{self.label}!=""}}'
        )
        by = f"destination_workload_namespace, destination_workload, {self.label}"
        return f"sum by ({by}) (increase({sel}[{queries.duration(self.window)}]))"


@dataclass(frozen=True, slots=True)
class ClientSideTcp:
    """TCP connections as the client's own sidecar reports them: the sender names itself there."""

    window: timedelta

    def promql(self) -> str:
        by = "source_workload_namespace, source_workload, destination_workload_namespace, destination_workload"
        sel = f'{queries.TCP_OPENED}{{reporter="source"}}'
        return f"sum by ({by}) (increase({sel}[{queries.duration(self.window)}]))"


def _value(item: dict) -> float:
    value = float(item["value"][1])
    if value != value or value in (float("inf"), float("-inf")):
        raise QueryFailed("a sample is not a finite number")
    return value


def seconds(text: str) -> float | None:
    """A Prometheus duration ("15s", "1m30s") in seconds; None when unreadable."""
    match = _DURATION.match(text or "")
    if not match or not any(match.groups()):
        return None
    h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def read_targets(body: bytes) -> list[ScrapeTarget]:
    """The active targets of /api/v1/targets; raises QueryFailed for an answer it cannot trust."""
    data = _envelope(body)
    active = data.get("activeTargets") if isinstance(data, dict) else None
    if not isinstance(active, list):
        raise QueryFailed("targets answer has no activeTargets list")
    out = []
    for t in active:
        if not isinstance(t, dict):
            raise QueryFailed("a target is not a JSON object")
        labels: dict = t["labels"] if isinstance(t.get("labels"), dict) else {}
        discovered: dict = t["discoveredLabels"] if isinstance(t.get("discoveredLabels"), dict) else {}
        url = str(t.get("scrapeUrl") or "")
        address = url.split("://", 1)[-1].split("/", 1)[0] if url else ""
        address = address or str(discovered.get("__address__") or labels.get("instance") or "")
        job = str(labels.get("job") or t.get("scrapePool") or "")
        out.append(ScrapeTarget(address, job, seconds(str(t.get("scrapeInterval") or "")), str(t.get("health", ""))))
    return out


def collect(
    client: Any,
    window_start: datetime,
    window_end: datetime,
    peer_label: str,
    describe: Callable[[Exception], str] = str,
) -> ClientTraffic:
    """The traffic half of attribution from `client` (a PrometheusClient). `describe` words a
    failure for a warning without the URL (prometheus.describe)."""
    window = window_end - window_start
    out = ClientTraffic(peer_label=peer_label)
    if peer_label:
        try:
            answer = client.instant(PeerAddresses(peer_label, window).promql(), window_end)
            out.peer_addresses = [
                PeerAddress(
                    i["metric"].get("destination_workload_namespace", ""),
                    i["metric"].get("destination_workload", ""),
                    i["metric"].get(peer_label, ""),
                    _value(i),
                )
                for i in answer
            ]
        except Exception as exc:
            _degrade(out, PEER_ADDRESS, "the peer-address query", exc, describe)
    try:
        answer = client.instant(ClientSideTcp(window).promql(), window_end)
        out.client_side = [
            ClientSideEdge(
                i["metric"].get("source_workload_namespace", ""),
                i["metric"].get("source_workload", ""),
                i["metric"].get("destination_workload_namespace", ""),
                i["metric"].get("destination_workload", ""),
                "tcp",
                _value(i),
            )
            for i in answer
        ]
    except Exception as exc:
        _degrade(out, CLIENT_SIDE, "the client-side query", exc, describe)
    try:
        out.targets = read_targets(client._send("GET", "targets", {"state": "active"}))
    except Exception as exc:
        _degrade(out, SCRAPE_TARGETS, "/api/v1/targets", exc, describe)
    return out


def _degrade(out: ClientTraffic, source: str, what: str, exc: Exception, describe: Callable[[Exception], str]) -> None:
    reason = f"{what} failed ({clip(describe(exc) or type(exc).__name__, 160)})"
    out.degraded[source] = reason
    log.warning("attribution: %s", reason)
