"""The PromQL the job sends, built in one place so tests and benchmarks can read it.

Only server-side series count (reporter="destination", or "waypoint"): client-side series
report connection_security_policy="unknown" always, and summing both sides double counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

REQUESTS = "istio_requests_total"
TCP_OPENED = "istio_tcp_connections_opened_total"
METRICS = (REQUESTS, TCP_OPENED)
SERVER_SIDE = 'reporter=~"destination|waypoint"'

# Istio label -> our column. Every query groups by exactly these.
LABELS = {
    "source_cluster": "source_cluster",
    "source_workload_namespace": "source_namespace",
    "source_workload": "source_workload",
    "source_principal": "source_principal",
    "destination_cluster": "destination_cluster",
    "destination_workload_namespace": "destination_namespace",
    "destination_workload": "destination_workload",
    "destination_service": "destination_service",
    "request_protocol": "protocol",
    "reporter": "reporter",
    "connection_security_policy": "connection_security_policy",
}
BY = ", ".join(LABELS)
# A counter counts as born inside a range only if it had no sample in this long before the range.
# An hour covers any scrape interval and Thanos's 5m and 1h downsampling; a shorter look-back
# would take every counter on coarse data for new and add its whole value again.
SEEN_BEFORE = "1h"


def duration(value: timedelta) -> str:
    """A PromQL duration, in whole seconds (`604800s`), exact for any window."""
    return f"{int(value.total_seconds())}s"


def _quote(value: str) -> str:
    """A PromQL string literal (Go escaping): namespaces may come back from Prometheus itself."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def server_side(metric: str) -> str:
    """The series every query reads: `metric` as reported by the server side."""
    return f"{metric}{{{SERVER_SIDE}}}"


def _selector(metric: str, extra: str = "", namespace: str | None = None) -> str:
    parts = [SERVER_SIDE]
    if namespace is not None:
        parts.append(f"destination_workload_namespace={_quote(namespace)}")
    if extra:
        parts.append(extra)
    return f"{metric}{{{', '.join(parts)}}}"


# The two parts every count is made of, sent as separate queries and added up per label set
# by the client (`plan.join`): joining them in PromQL (`(a + b) or a or b`) makes Prometheus
# match every series on all the labels twice, which cost 5x the parts on a 40,000-edge mesh.
GROWN, BORN = "grown", "born"
PARTS = (GROWN, BORN)
# VictoriaMetrics (MetricsQL) instead: its increase() already counts some born counters from 0
# (when the first value is small next to the growth), so GROWN + BORN would count their first
# value twice. increase_pure() counts every counter without an earlier sample from 0, the
# previous sample otherwise: growth and births in one exact query (docs/backends.md).
WHOLE = "whole"
METRICSQL_PARTS = (WHOLE,)


def _part(part: str, sel: str, span: str) -> str:
    if part == GROWN:
        return f"increase({sel}[{span}])"
    if part == WHOLE:
        return f"increase_pure({sel}[{span}])"
    return _born(sel, span)


def _born(sel: str, span: str) -> str:
    """The first value of every series without a sample in the SEEN_BEFORE before the range."""
    return f"min_over_time({sel}[{span}]) unless last_over_time({sel}[{SEEN_BEFORE}] offset {span})"


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Requests or connections per edge and security policy over the whole window: one part.

    `increase()` alone misses a counter that was born inside the window and never moved again,
    e.g. a nightly Job's one burst of plaintext: Prometheus has nothing to subtract its first
    sample from. So the first value of every series that did not exist at the window's start
    (part BORN) is added to the growth (part GROWN). Missing that Job would be a false READY.
    """

    metric: str
    window: timedelta
    part: str = GROWN
    namespace: str | None = None

    def promql(self) -> str:
        sel = _selector(self.metric, namespace=self.namespace)
        return f"sum by ({BY}) ({_part(self.part, sel, duration(self.window))})"


@dataclass(frozen=True, slots=True)
class PlaintextTimeline:
    """Non-mTLS volume per edge and step, for first/last seen and the timeline chart: one part.

    A counter's first value (part BORN) is added to the growth (part GROWN) in the step it was
    born, for the same reason as in WindowTotals. Added, never one instead of the other: once a
    step's range holds the first sample and a later one, increase() answers 0 for a counter that
    never moved again, and keeping only that would drop the burst and its last-seen time.
    """

    metric: str
    step: timedelta
    part: str = GROWN
    namespace: str | None = None

    def promql(self) -> str:
        sel = _selector(self.metric, 'connection_security_policy!="mutual_tls"', self.namespace)
        if self.part != GROWN:
            return f"sum by ({BY}) ({_part(self.part, sel, duration(self.step))})"
        # PromQL's increase() sees only samples inside its range: with ranges exactly one step
        # long, the growth between the last sample of one step and the first of the next is in
        # neither, and a sparse client vanishes from the timeline. Each range reaches back over
        # that gap (one scrape interval, assumed at most TIMELINE_OVERLAP; Istio's default is 15 s)
        # and is scaled back to one step, so the steps still add up to the window.
        reach = timeline_range(self.step)
        scale = self.step / reach
        return f"sum by ({BY}) (increase({sel}[{duration(reach)}])) * {scale:.6g}"


class MetricsqlProbe:
    """Does the engine speak MetricsQL? Prometheus, Thanos and Mimir refuse the function."""

    def promql(self) -> str:
        return "increase_pure(vector(1)[2m:1m])"


@dataclass(frozen=True, slots=True)
class DataPresence:
    """Count of server-side Istio series with a sample in the `span` before evaluation time.
    Evaluated just after the window start, it tells whether Prometheus holds the whole window."""

    span: timedelta

    def promql(self) -> str:
        names = "|".join(METRICS)
        return f'count(last_over_time({{__name__=~"{names}", {SERVER_SIDE}}}[{duration(self.span)}]))'


@dataclass(frozen=True, slots=True)
class DataExtent:
    """Server-side Istio series present at each step; the first step with any is where data starts."""

    def promql(self) -> str:
        names = "|".join(METRICS)
        return f'count({{__name__=~"{names}", {SERVER_SIDE}}})'


# The longest scrape interval the timeline's growth part is exact for (see PlaintextTimeline).
TIMELINE_OVERLAP = timedelta(minutes=1)


def timeline_range(step: timedelta) -> timedelta:
    """The range of each timeline step's increase(): the step, plus the gap before it."""
    return step + max(TIMELINE_OVERLAP, step / 5)


def timeline_step(window: timedelta) -> timedelta:
    """About 168 points per window (hourly for a week), never finer than five minutes."""
    seconds = max(300, int(window.total_seconds() / 168))
    return timedelta(seconds=seconds - seconds % 60)


def presence_span(window: timedelta) -> timedelta:
    """How much of the window's start may be empty before we call the data incomplete."""
    return min(max(window / 50, timedelta(minutes=10)), timedelta(hours=6))


# Every scraped sidecar exports Envoy's server stats (always included, pkg/bootstrap/config.go),
# whether or not Telemetry disabled Istio's request metrics. Istio's sample scrape job labels
# them with the pod's `namespace` and `pod`.
PROXY_LIVE = "envoy_server_live"
POD_LABELS = ("namespace", "pod")


@dataclass(frozen=True, slots=True)
class ProxyPresence:
    """Pods whose proxy Prometheus scraped at least once in the window: a meshed pod missing
    here has no telemetry, so its "no traffic" means nothing (blind spot)."""

    window: timedelta

    def promql(self) -> str:
        return f"count by ({', '.join(POD_LABELS)}) (last_over_time({PROXY_LIVE}[{duration(self.window)}]))"


# Labels of the plaintext-responses query: who sent plaintext to whom, and what the server answered.
RESPONSE_LABELS = {
    "source_workload_namespace": "source_namespace",
    "source_workload": "source_workload",
    "destination_workload_namespace": "destination_namespace",
    "destination_workload": "destination_workload",
    "response_code": "response_code",
}


@dataclass(frozen=True, slots=True)
class PlaintextResponses:
    """Plaintext HTTP requests per client, destination and response code over the window: one part.

    A sidecar's RBAC filter answers a denied request with a local 403 that istio_stats still
    counts, with connection_security_policy="none" on the server side (docs/authorization.md).
    Only the sidecar's reporter="destination": a waypoint never sees plaintext."""

    window: timedelta
    part: str = GROWN

    def promql(self) -> str:
        sel = f'{REQUESTS}{{reporter="destination", connection_security_policy="none"}}'
        w = duration(self.window)
        return f"sum by ({', '.join(RESPONSE_LABELS)}) ({_part(self.part, sel, w)})"


# Envoy's HTTP RBAC filter counts each request it denies in `http.<stat_prefix>.rbac.denied`, which
# Istio's proxy stats keep by default; its bootstrap tag regexes turn `denied` into the tag
# `authz_enforce_result`. The exported name is uncertain, so it is matched by regex: current Istio
# also moves the listener into a tag (`envoy_http_rbac{http_conn_manager_prefix="inbound_..."}`),
# older releases kept it in the name (`envoy_http_inbound_0_0_0_0_8000_rbac`). HTTP only: a denied
# TCP connection is never a 403, so `envoy_tcp_rbac` says nothing about one (docs/authorization.md).
RBAC_NAMES = "envoy_http_(.*_)?rbac"
RBAC_DENIED = 'authz_enforce_result="denied"'
# RE2 metacharacters: a namespace read back from Prometheus is matched literally, never as a regex.
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def regex_literal(value: str) -> str:
    """`value` as an RE2 regex matching exactly itself."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in value)


@dataclass(frozen=True, slots=True)
class RbacDenials:
    """Requests Envoy's HTTP RBAC filter denied over the window, per pod (`namespace`, `pod`, as
    Istio's sample scrape job labels a proxy's own stats): one part.

    The only evidence that a plaintext 403 was the proxy's: the RBAC filter's local reply carries no
    response flag, so istio_requests_total cannot tell it from the application's 403. Sent only for
    the `namespaces` whose plaintext was answered 403 (PlaintextResponses), so most meshes pay nothing.
    A series present with no growth is an answer too: the filter ran and denied nothing. Summed over
    every HTTP listener of the pod: the metrics do not say which port a plaintext request used."""

    window: timedelta
    namespaces: tuple[str, ...]
    part: str = GROWN

    def promql(self) -> str:
        scope = _quote("|".join(regex_literal(ns) for ns in self.namespaces))
        sel = f'{{__name__=~"{RBAC_NAMES}", {RBAC_DENIED}, namespace=~{scope}}}'
        return f"sum by ({', '.join(POD_LABELS)}) ({_part(self.part, sel, duration(self.window))})"
