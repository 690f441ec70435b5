"""The plaintext-responses query (queries.PlaintextResponses): sent after the main queries, read
strictly like them, and optional: when it fails only "plaintext already denied" becomes unknown.

When some plaintext was answered 403, the RBAC-denials query (queries.RbacDenials) follows, for
those namespaces only: it tells the proxy's 403s from the application's. Optional as well: when it
fails, the 403s stay unconfirmed (today's reading), with a warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import requests

from analyzer.collect import queries
from analyzer.collect.answers import QueryFailed
from analyzer.model.traffic import FORBIDDEN, RESPONSE_COLUMNS, Traffic

if TYPE_CHECKING:
    from analyzer.collect.prometheus import PrometheusClient

log = logging.getLogger("mtls_readiness")


def frame(result: list[dict]) -> pd.DataFrame:
    labels = queries.RESPONSE_LABELS
    rows = [[item["metric"].get(label, "") for label in labels] + [float(item["value"][1])] for item in result]
    return pd.DataFrame(rows, columns=RESPONSE_COLUMNS).astype({"count": "float64"})


def collect(
    client: PrometheusClient,
    traffic: Traffic,
    window_start: datetime,
    window_end: datetime,
    describe: Callable[[requests.exceptions.RequestException, float], str],
    parts: tuple[str, ...] = queries.PARTS,
) -> None:
    """Fill traffic.plaintext_responses, or traffic.responses_failed with why it could not be.

    `parts` as for the totals: PromQL's two on Prometheus, MetricsQL's one exact part on
    VictoriaMetrics, where PromQL's would count a new counter's first value twice."""
    frames = []
    for part in parts:
        query = queries.PlaintextResponses(window_end - window_start, part)
        result, traffic.responses_failed = _ask(client, query.promql(), window_end, "plaintext responses", describe)
        if result is None:
            _warn(traffic, traffic.responses_failed, "plaintext denials are unknown")
            return
        frames.append(frame(result))
    joined = pd.concat(frames, ignore_index=True)
    key = [c for c in RESPONSE_COLUMNS if c != "count"]
    traffic.plaintext_responses = joined.groupby(key, as_index=False, dropna=False)["count"].sum()[RESPONSE_COLUMNS]
    namespaces = forbidden_namespaces(traffic.plaintext_responses)
    if namespaces:
        rbac_denials(client, traffic, namespaces, window_start, window_end, describe, parts)


def forbidden_namespaces(responses: pd.DataFrame) -> tuple[str, ...]:
    """Destination namespaces where some plaintext request was answered 403, sorted."""
    forbidden = responses[(responses["response_code"] == FORBIDDEN) & (responses["count"] > 0)]
    return tuple(sorted({str(ns) for ns in forbidden["destination_namespace"]}))


def read_denials(result: list[dict]) -> dict[tuple[str, str], float]:
    """(namespace, pod) -> denials; a series without a namespace names nowhere and is dropped, which
    can only leave a 403 unconfirmed, never confirm one."""
    out: dict[tuple[str, str], float] = {}
    for item in result:
        labels = item["metric"]
        namespace, pod = labels.get("namespace", ""), labels.get("pod", "")
        if namespace:
            out[(namespace, pod)] = out.get((namespace, pod), 0.0) + float(item["value"][1])
    return out


def rbac_denials(
    client: PrometheusClient,
    traffic: Traffic,
    namespaces: tuple[str, ...],
    window_start: datetime,
    window_end: datetime,
    describe: Callable[[requests.exceptions.RequestException, float], str],
    parts: tuple[str, ...],
) -> None:
    """Fill traffic.rbac_denials, or traffic.rbac_failed with why it could not be. All parts or nothing:
    growth without the counters born in the window would miss a new pod's denials."""
    found: dict[tuple[str, str], float] = {}
    for part in parts:
        query = queries.RbacDenials(window_end - window_start, namespaces, part)
        result, traffic.rbac_failed = _ask(client, query.promql(), window_end, "RBAC denials", describe)
        if result is None:
            _warn(traffic, traffic.rbac_failed, "whether plaintext 403s were the proxy's is unconfirmed")
            return
        for key, value in read_denials(result).items():
            found[key] = found.get(key, 0.0) + value
    traffic.rbac_denials = found


def _ask(
    client: PrometheusClient,
    promql: str,
    at: datetime,
    what: str,
    describe: Callable[[requests.exceptions.RequestException, float], str],
) -> tuple[list[dict] | None, str]:
    """The answer of one optional query, or None and why it failed ("what: reason")."""
    try:
        return client.instant(promql, at), ""
    except QueryFailed as exc:
        return None, f"{what}: {exc}"
    except requests.exceptions.RequestException as exc:
        return None, f"{what}: {describe(exc, client.settings.timeout)}"


def _warn(traffic: Traffic, failed: str, consequence: str) -> None:
    log.warning("query %s", failed)
    traffic.warnings.append(f"query failed: {failed}; {consequence}")
