"""Strict reading of a Prometheus query API answer: anything we cannot fully trust is a failed query.

A false READY hides in answers that look fine: HTTP 200 with `status: "error"`, a Thanos partial
answer (`status: success` plus `warnings`), a VictoriaMetrics cluster one (`isPartial: true`),
NaN or Inf samples, a scalar where a vector was asked for. Each of these raises `QueryFailed`
with a short reason; nothing is silently dropped. See docs/semantics.md for what each answer
field means, docs/backends.md for the engines.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

# Longest piece of server text we repeat in a warning: enough to read, never unbounded.
TEXT_LIMIT = 200
# Prometheus 2.x/3.x annotations of this kind are hints about the PromQL ("metric might not be a
# counter"); they never mean data was left out. Any other info (e.g. a partial response) does.
HARMLESS_INFO = "PromQL info:"


class QueryFailed(Exception):
    """A query whose answer cannot be trusted. `status` is the HTTP status when there was one."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.status = status


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """One line, at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(body: bytes) -> str:
    """What a non-200 answer says: Prometheus's `error` field, else the start of the body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return clip(body.decode("utf-8", "replace"))
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return clip(parsed["error"])
    return clip(body.decode("utf-8", "replace"))


def _envelope(body: bytes) -> Any:
    """The `data` of a successful answer, after the checks every endpoint shares."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise QueryFailed(f"answer is not valid JSON ({clip(str(exc), 80)}); truncated?") from None
    if not isinstance(parsed, dict):
        raise QueryFailed("answer is not a JSON object")
    status = parsed.get("status")
    if status != "success":
        detail = parsed.get("error") or parsed.get("errorType") or "no error text"
        raise QueryFailed(f"status {clip(str(status), 40)!r}: {clip(str(detail))}")
    # VictoriaMetrics cluster: some vmstorage nodes did not answer. Anything but an explicit false
    # (or no field, as single-node VictoriaMetrics and Prometheus send) counts as partial.
    if parsed.get("isPartial", False) is not False:
        raise QueryFailed(
            f"answer is partial (isPartial: {clip(repr(parsed['isPartial']), 20)}): a storage node did not answer"
        )
    warnings = parsed.get("warnings") or []
    if warnings:
        raise QueryFailed(f"answer carries warnings (data may be partial): {clip('; '.join(map(str, warnings)))}")
    lost = [str(i) for i in parsed.get("infos") or [] if not str(i).startswith(HARMLESS_INFO)]
    if lost:
        raise QueryFailed(f"answer carries infos (data may be partial): {clip('; '.join(lost))}")
    if "data" not in parsed:
        raise QueryFailed("answer has no data")
    return parsed["data"]


def _number(value: Any, what: str) -> float:
    """A finite float from a sample value ("1.5") or timestamp (1.7e9); anything else fails."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryFailed(f"{what} is {clip(repr(value), 40)}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise QueryFailed(f"{what} is {clip(repr(value), 40)}, not a number") from None
    if not math.isfinite(number):
        raise QueryFailed(f"{what} is {value!r}: only finite numbers count as evidence")
    return number


def _sample(pair: Any) -> tuple[float, float]:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise QueryFailed(f"sample {clip(repr(pair), 40)} is not [timestamp, value]")
    return _number(pair[0], "sample timestamp"), _number(pair[1], "sample value")


def _metric(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise QueryFailed(f"series {clip(repr(item), 40)} is not an object")
    metric = item.get("metric")
    if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
        raise QueryFailed(f"series has no readable labels: {clip(repr(metric), 80)}")
    return metric


def read_query(body: bytes, expected: str) -> list[dict]:
    """The `result` of a /query ("vector") or /query_range ("matrix") answer, every sample checked.

    Returns the series as Prometheus sent them, with each sample value already known to be a
    finite number, so callers may `float()` them freely.
    """
    data = _envelope(body)
    if not isinstance(data, dict):
        raise QueryFailed("answer data is not an object")
    kind = data.get("resultType")
    if kind != expected:
        raise QueryFailed(f"resultType {clip(repr(kind), 40)}, expected {expected!r}")
    result = data.get("result")
    if not isinstance(result, list):
        raise QueryFailed("answer has no result list")
    for item in result:
        metric = _metric(item)
        if "histogram" in item or "histograms" in item:
            raise QueryFailed(f"series {clip(repr(metric), 80)} holds native histograms, expected floats")
        if expected == "vector":
            if "value" not in item:
                raise QueryFailed(f"series {clip(repr(metric), 80)} has no value")
            _sample(item["value"])
        else:
            values = item.get("values")
            if not isinstance(values, list) or not values:
                raise QueryFailed(f"series {clip(repr(metric), 80)} has no values")
            for pair in values:
                _sample(pair)
    return result


def read_label_values(body: bytes) -> list[str]:
    """The `data` of a /label/<name>/values answer: a list of strings."""
    data = _envelope(body)
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise QueryFailed("label values answer is not a list of strings")
    return data
