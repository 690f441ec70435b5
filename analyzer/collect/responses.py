"""The plaintext-responses query (queries.PlaintextResponses): sent after the main queries, read
strictly like them, and optional: when it fails only "plaintext already denied" becomes unknown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import requests

from analyzer.collect import queries
from analyzer.collect.answers import QueryFailed
from analyzer.model.traffic import RESPONSE_COLUMNS, Traffic

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
        try:
            frames.append(frame(client.instant(query.promql(), window_end)))
        except QueryFailed as exc:
            traffic.responses_failed = f"plaintext responses: {exc}"
        except requests.exceptions.RequestException as exc:
            traffic.responses_failed = f"plaintext responses: {describe(exc, client.settings.timeout)}"
        if traffic.responses_failed:
            log.warning("query %s", traffic.responses_failed)
            traffic.warnings.append(f"query failed: {traffic.responses_failed}; plaintext denials are unknown")
            return
    joined = pd.concat(frames, ignore_index=True)
    key = [c for c in RESPONSE_COLUMNS if c != "count"]
    traffic.plaintext_responses = joined.groupby(key, as_index=False, dropna=False)["count"].sum()[RESPONSE_COLUMNS]
