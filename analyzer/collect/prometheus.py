"""Traffic from any Prometheus-compatible query API (Prometheus, Thanos, Mimir, VictoriaMetrics).

All network I/O to Prometheus lives here. The client is wrapped once: timeouts, TLS
verification (on by default), a CA bundle, bearer token and extra headers, retries that also
cover POST, long queries sent as a form body. Results are turned into DataFrames straight from
the JSON. A query too big for Prometheus is retried one destination namespace at a time, through
the same bounded pool.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analyzer.collect import prometheus_auth, queries
from analyzer.config import PrometheusSettings
from analyzer.errors import UserError
from analyzer.model.traffic import (
    OBSERVATION_COLUMNS,
    TIMELINE_COLUMNS,
    Coverage,
    Traffic,
    empty_observations,
    empty_timeline,
)

log = logging.getLogger("mtls_readiness")

# Longer queries go in a POST form body: prometheus-api-client puts even a POST's query in the
# URL, and proxies in front of Prometheus cut long request lines (nginx: 8 KiB by default).
FORM_BODY_OVER = 1500


def redact_url(url: str) -> str:
    """The URL without user:password, safe to log and to write into summary.json."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _headers(settings: PrometheusSettings) -> dict[str, str]:
    return prometheus_auth.headers(settings)


class PrometheusClient:
    """The one place that talks HTTP to Prometheus."""

    def __init__(self, settings: PrometheusSettings):
        self.settings = settings
        self.source = redact_url(settings.url)
        parts = urlsplit(settings.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UserError(
                f"--prometheus-url {self.source!r} is not an http(s) URL; give e.g. http://prometheus.istio-system:9090"
            )
        session = requests.Session()
        prometheus_auth.configure(session, settings)  # TLS, client certificate, basic auth or SigV4
        retry = Retry(
            total=settings.retries,
            backoff_factor=0.5,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=None,  # queries are read-only, so POST is safe to retry too
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", ""))
        self._base, self._session, self._headers = base, session, _headers(settings)
        self._prom = PrometheusConnect(
            url=base,
            headers=self._headers,
            session=session,
            retry=retry,
            timeout=settings.timeout,
            method="POST",
        )
        self.queries_sent: list[str] = []
        # (API path, parameters) of every request, so a benchmark can replay exactly what was sent.
        self.requests_sent: list[tuple[str, dict]] = []

    def check(self) -> None:
        """Fail fast, with what to do, when Prometheus cannot answer at all."""
        try:
            self._prom.custom_query("vector(1)")
        except requests.exceptions.SSLError as exc:
            raise UserError(_tls_failure(self.source, exc)) from None
        except requests.exceptions.RequestException as exc:
            raise UserError(
                f"cannot reach Prometheus at {self.source} ({type(exc).__name__}); check --prometheus-url, "
                "or port-forward it and pass http://127.0.0.1:9090"
            ) from None
        except PrometheusApiClientException as exc:
            status = str(exc)[:80]
            hint = (
                "check the bearer token, headers or tenant"
                if any(c in status for c in ("401", "403"))
                else "check --prometheus-url points at the query API"
            )
            raise UserError(f"Prometheus at {self.source} answered {status}; {hint}") from None

    def instant(self, promql: str, at: datetime) -> list[dict]:
        params = {"time": f"{at.timestamp():.3f}", **self.settings.extra_params}
        self._record("query", {"query": promql, **params})
        if len(promql) > FORM_BODY_OVER:
            return self._post_form("query", {"query": promql, **params})
        return self._prom.custom_query(promql, params=params)

    def range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[dict]:
        # Whole seconds, as prometheus-api-client sends them, so both paths ask the same question.
        span = {"start": round(start.timestamp()), "end": round(end.timestamp()), "step": queries.duration(step)}
        self._record("query_range", {"query": promql, **span, **self.settings.extra_params})
        if len(promql) > FORM_BODY_OVER:
            return self._post_form("query_range", {"query": promql, **span, **self.settings.extra_params})
        return self._prom.custom_query_range(
            promql, start_time=start, end_time=end, step=span["step"], params=self.settings.extra_params
        )

    def label_values(self, label: str, selectors: list[str], start: datetime, end: datetime) -> list[str]:
        """Values of `label` on series matching any selector in [start, end]: read from the index,
        so it loads no samples and succeeds where a query over the same series is too big."""
        params = {"match[]": selectors, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}"}
        params.update(self.settings.extra_params)
        self._record(f"label/{label}/values", params)
        return list(self._prom.get_label_values(label, params=params) or [])

    def _record(self, path: str, params: dict) -> None:
        if "query" in params:
            self.queries_sent.append(params["query"])
        self.requests_sent.append((path, params))

    def _post_form(self, path: str, form: dict) -> list[dict]:
        """POST with the parameters in the body, through the same session (TLS, auth, retries)."""
        # verify is passed on every request, as prometheus-api-client does: requests lets
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override session.verify (psf/requests#3829), which
        # would ignore --prometheus-ca-file and --prometheus-insecure-skip-verify.
        response = self._session.post(
            f"{self._base}/api/v1/{path}",
            data=form,
            headers=self._headers,
            timeout=self.settings.timeout,
            verify=self._session.verify,
        )
        if response.status_code != 200:
            # Worded as prometheus-api-client words it, so both paths fail the same way.
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content!r})")
        return response.json()["data"]["result"]

    def close(self) -> None:
        self._prom.close()


# -- JSON to DataFrames -------------------------------------------------------------------------


def vector_frame(result: Iterable[dict]) -> pd.DataFrame:
    """An instant-vector result as observation rows; a missing label becomes ""."""
    rows = [[item["metric"].get(label, "") for label in queries.LABELS] + [float(item["value"][1])] for item in result]
    if not rows:
        return empty_observations()
    frame = pd.DataFrame(rows, columns=[*queries.LABELS.values(), "count"])
    return frame[OBSERVATION_COLUMNS]


def matrix_frame(result: Iterable[dict]) -> pd.DataFrame:
    """A range result as timeline rows (only steps with volume above zero)."""
    rows = []
    for item in result:
        labels = [item["metric"].get(label, "") for label in queries.LABELS if label != "reporter"]
        for ts, value in item["values"]:
            if float(value) > 0:
                rows.append([*labels, float(ts), float(value)])
    if not rows:
        return empty_timeline()
    names = [c for label, c in queries.LABELS.items() if label != "reporter"]
    frame = pd.DataFrame(rows, columns=[*names, "timestamp", "count"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    return frame.groupby([c for c in TIMELINE_COLUMNS if c not in ("count",)], as_index=False, dropna=False)[
        "count"
    ].sum()[TIMELINE_COLUMNS]


# -- the traffic source ---------------------------------------------------------------------------


class PrometheusTrafficSource:
    def __init__(self, client: PrometheusClient):
        self.client = client

    @property
    def source(self) -> str:
        return self.client.source

    def collect(self, window_start: datetime, window_end: datetime) -> Traffic:
        window = window_end - window_start
        self.client.check()
        traffic = Traffic(window_start=window_start, window_end=window_end, source=self.source)
        started = time.monotonic()
        step = queries.timeline_step(window)
        jobs: dict[str, _Job] = {
            **{f"totals:{m}": _Job(queries.WindowTotals(m, window)) for m in queries.METRICS},
            **{f"timeline:{m}": _Job(queries.PlaintextTimeline(m, step), step) for m in queries.METRICS},
        }

        def run(item: tuple[str, _Job]) -> tuple[str, list[dict] | Exception]:
            name, job = item
            return name, self._ask(job, window_start, window_end)

        # One pool for the first answers and for any split: never more than max_parallel in flight.
        with ThreadPoolExecutor(max_workers=self.client.settings.max_parallel) as pool:
            answers = dict(pool.map(run, jobs.items()))
            too_big = {name: jobs[name] for name, a in answers.items() if isinstance(a, Exception) and _too_big(a)}
            if too_big:
                answers.update(self._split(pool, too_big, answers, window_start, window_end))
        totals, timelines = [], []
        for name, answer in answers.items():
            if isinstance(answer, Exception):
                traffic.failed_queries.append(f"{name}: {_short(answer)}")
                log.warning("query %s failed: %s", name, _short(answer))
            elif name.startswith("totals:"):
                totals.append(vector_frame(answer))
            else:
                timelines.append(matrix_frame(answer))
        traffic.observations = _concat(totals, empty_observations())
        traffic.timeline = _concat(timelines, empty_timeline())
        traffic.coverage = self._coverage(window_start, window_end)
        log.info(
            "collected %d series groups and %d timeline points from %s in %.1fs",
            len(traffic.observations),
            len(traffic.timeline),
            self.source,
            time.monotonic() - started,
        )
        return traffic

    def _ask(self, job: _Job, window_start: datetime, window_end: datetime) -> list[dict] | Exception:
        try:
            if job.step is None:
                return self.client.instant(job.query.promql(), window_end)
            return self.client.range(job.query.promql(), window_start, window_end, job.step)
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
            return exc

    def _split(
        self,
        pool: ThreadPoolExecutor,
        failed: dict[str, _Job],
        errors: dict[str, list[dict] | Exception],
        window_start: datetime,
        window_end: datetime,
    ) -> dict[str, list[dict] | Exception]:
        """Ask each failed query again one destination namespace at a time; every answer carries
        destination_workload_namespace, so the parts add up to exactly the whole."""
        selectors = [queries.server_side(m) for m in queries.METRICS]
        try:
            found = self.client.label_values("destination_workload_namespace", selectors, window_start, window_end)
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
            log.warning("cannot list namespaces to split the failed queries: %s", _short(exc))
            return {name: errors[name] for name in failed}
        # "" selects series without the label, which no listed namespace would.
        namespaces = sorted({*found, ""})
        log.info(
            "%s too big for Prometheus; asking again per destination namespace (%d queries, %d at a time)",
            ", ".join(failed),
            len(failed) * len(namespaces),
            self.client.settings.max_parallel,
        )
        doomed: dict[str, str] = {}  # a query one of whose parts failed: its other parts need not run

        def run(part: tuple[str, str]) -> tuple[str, list[dict] | Exception | None]:
            name, namespace = part
            if name in doomed:
                return name, None
            job = failed[name]
            answer = self._ask(replace(job, query=replace(job.query, namespace=namespace)), window_start, window_end)
            if isinstance(answer, Exception):
                doomed.setdefault(name, f"namespace {namespace!r} alone: {_short(answer)}")
            return name, answer

        merged: dict[str, list[dict]] = {name: [] for name in failed}
        for name, answer in pool.map(run, [(name, ns) for name in failed for ns in namespaces]):
            if isinstance(answer, list):
                merged[name].extend(answer)
        return {name: SplitQueryError(doomed[name]) if name in doomed else merged[name] for name in failed}

    def _coverage(self, window_start: datetime, window_end: datetime) -> Coverage:
        span = queries.presence_span(window_end - window_start)
        try:
            present = self.client.instant(queries.DataPresence(span).promql(), window_start + span)
            if present and float(present[0]["value"][1]) > 0:
                return Coverage(complete=True)
            extent = self.client.range(
                queries.DataExtent().promql(), window_start, window_end, max(span, (window_end - window_start) / 100)
            )
        except (requests.exceptions.RequestException, PrometheusApiClientException, KeyError, ValueError) as exc:
            return Coverage(complete=False, detail=f"could not check how far back the data goes: {_short(exc)}")
        first = min((float(item["values"][0][0]) for item in extent if item.get("values")), default=None)
        data_start = datetime.fromtimestamp(first, UTC) if first is not None else None
        held = f"from {data_start:%Y-%m-%d %H:%M}Z" if data_start else "no Istio data at all"
        return Coverage(
            complete=False,
            data_start=data_start,
            detail=f"Prometheus holds {held} but the window starts {window_start:%Y-%m-%d %H:%M}Z; "
            "shorten --lookback or raise Prometheus retention",
        )


@dataclass(frozen=True, slots=True)
class _Job:
    query: queries.WindowTotals | queries.PlaintextTimeline
    step: timedelta | None = None  # None: an instant query at the window's end


class SplitQueryError(Exception):
    """A query too big for Prometheus that still failed when asked one namespace at a time."""


_STATUS = re.compile(r"HTTP Status Code (\d+)")
# Words Prometheus, Thanos, Mimir and VictoriaMetrics use when a query is too big or too slow.
_TOO_BIG_WORDS = ("too many samples", "timed out", "timeout", "limit", "exceeded")


def _too_big(exc: Exception) -> bool:
    """Whether a smaller query might succeed: a resource limit or timeout, not a bad URL, auth or PromQL."""
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.RetryError):
        return True  # RetryError: 429/502/503/504 on every retry
    if not isinstance(exc, PrometheusApiClientException):
        return False
    status = _STATUS.search(str(exc))
    if status and status.group(1) in ("422", "503", "504"):
        return True
    text = str(exc).lower()
    return any(word in text for word in _TOO_BIG_WORDS)


def _tls_failure(source: str, exc: Exception) -> str:
    """What to do when the TLS handshake fails: an untrusted certificate, or a server without TLS."""
    text = str(exc)
    if "CERTIFICATE_REQUIRED" in text.upper().replace(" ", "_"):
        return (
            f"Prometheus at {source} requires a client certificate; pass --prometheus-cert-file and "
            "--prometheus-key-file"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.partition("certificate verify failed: ")[2].split(" (_ssl", 1)[0].split("'", 1)[0].strip()
        return (
            f"TLS verification failed for {source} ({detail or 'untrusted certificate'}); pass --prometheus-ca-file "
            "with the CA bundle (or, for a test cluster only, --prometheus-insecure-skip-verify)"
        )
    detail = text.partition("] ")[2].split(" (_ssl", 1)[0].split("'", 1)[0].strip()
    return (
        f"TLS handshake with {source} failed ({detail or type(exc).__name__}); if it serves plain HTTP, "
        "use an http:// URL; if it requires a client certificate, pass --prometheus-cert-file and "
        "--prometheus-key-file; otherwise check the port"
    )


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:200]}"
