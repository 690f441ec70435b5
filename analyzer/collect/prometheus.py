"""Traffic from any Prometheus-compatible query API (Prometheus, Thanos, Mimir, VictoriaMetrics).

All network I/O to Prometheus lives here. The client is wrapped once: timeouts, TLS
verification (on by default), a CA bundle, bearer token and extra headers, retries that also
cover POST, every query sent as a form body. Every answer is read strictly (collect/answers.py):
one we cannot fully trust is a failed query, and exactly the verdicts that depend on it become
UNKNOWN. A query too big for Prometheus is retried one destination namespace at a time, through
the same bounded pool; a part that still fails costs only its namespace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analyzer.collect import client_queries, crosscheck, matchers, plan, prometheus_auth, queries, responses
from analyzer.collect.answers import QueryFailed, clip, error_text, read_label_values, read_query
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

# 500 too: Thanos and Mimir answer a store's hiccup with it, and the next try usually succeeds.
RETRIED_STATUSES = (429, 500, 502, 503, 504)
NO_PARTIAL = {"partial_response": "false", "deny_partial_response": "1"}


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
    """The one place that talks HTTP to Prometheus; every answer is read strictly (collect/answers.py)."""

    def __init__(self, settings: PrometheusSettings):
        self.settings = settings
        self.source = redact_url(settings.url)
        parts = urlsplit(settings.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UserError(
                f"--prometheus-url {self.source!r} is not an http(s) URL; give e.g. http://prometheus.istio-system:9090"
            )
        if parts.username and settings.bearer_token_file:
            # requests would let the URL's basic auth replace the token's Authorization header.
            raise UserError(
                "--prometheus-url carries user:password and --prometheus-bearer-token-file is set; "
                "use one way to authenticate"
            )
        session = requests.Session()
        prometheus_auth.configure(session, settings)  # TLS, client certificate, basic auth or SigV4
        retry = Retry(
            total=settings.retries,
            backoff_factor=0.5,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=None,  # queries are read-only, so POST is safe to retry too
            raise_on_status=False,  # the last answer's own error text says more than "too many 500s"
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", ""))
        self._base, self._session, self._headers = base, session, _headers(settings)
        self.queries_sent: list[str] = []
        # (API path, parameters) of every request, so a benchmark can replay exactly what was sent.
        self.requests_sent: list[tuple[str, dict]] = []

    def check(self) -> None:
        """Fail fast, with what to do, when Prometheus cannot answer at all."""
        try:
            self._query("query", {"query": "vector(1)"}, "vector")
        except requests.exceptions.SSLError as exc:
            raise UserError(_tls_failure(self.source, exc)) from None
        except requests.exceptions.RequestException as exc:
            raise UserError(
                f"cannot reach Prometheus at {self.source} ({describe(exc, self.settings.timeout)}); "
                "check --prometheus-url, or port-forward it and pass http://127.0.0.1:9090"
            ) from None
        except QueryFailed as exc:
            hint = (
                "check the bearer token, headers or tenant"
                if exc.status in (401, 403)
                else "check --prometheus-url points at the query API"
            )
            raise UserError(f"Prometheus at {self.source} answered {clip(str(exc), 120)}; {hint}") from None
        if self.settings.selector:
            self._check_selector()

    def _check_selector(self) -> None:
        """Let Prometheus parse --prometheus-selector once (a regex it cannot compile is a usage
        error, not a night of failed queries): a selector on a name no series has costs nothing."""
        try:
            self.instant("absent(mtls_readiness_selector_probe)", datetime.now(UTC))
        except QueryFailed as exc:
            if exc.status == 400:
                raise UserError(
                    f"Prometheus refused --prometheus-selector {', '.join(self.settings.selector)}: "
                    f"{clip(str(exc), 160)}; fix the matcher"
                ) from None
            raise UserError(f"Prometheus at {self.source} answered {clip(str(exc), 120)}") from None

    def instant(self, promql: str, at: datetime) -> list[dict]:
        return self._query("query", {"query": promql, "time": f"{at.timestamp():.3f}"}, "vector")

    def range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[dict]:
        span = {"start": round(start.timestamp()), "end": round(end.timestamp()), "step": queries.duration(step)}
        return self._query("query_range", {"query": promql, **span}, "matrix")

    def label_values(self, label: str, selectors: list[str], start: datetime, end: datetime) -> list[str]:
        """Values of `label` on series matching any selector in [start, end]: read from the index,
        so it loads no samples and succeeds where a query over the same series is too big."""
        scoped = [self._scoped(s) for s in selectors]
        params = {"match[]": scoped, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}"}
        params.update({**NO_PARTIAL, **self.settings.extra_params})
        path = f"label/{label}/values"
        self._record(path, params)
        return read_label_values(self._send("GET", path, params))

    def _query(self, path: str, params: dict, expected: str) -> list[dict]:
        # Refuse partial answers where the engine can: Thanos reads partial_response=false,
        # VictoriaMetrics cluster deny_partial_response=1; each engine ignores the other's.
        form = {**params, **NO_PARTIAL, **self.settings.extra_params}
        form["query"] = self._scoped(form["query"])
        self._record(path, form)
        return read_query(self._send("POST", path, form), expected)

    def _scoped(self, promql: str) -> str:
        """The one place every query passes: the selector and the namespace scope are added here,
        so a query added anywhere gets them (collect/matchers.py)."""
        try:
            return matchers.inject(promql, self.settings.selector, self.settings.scope_matchers)
        except ValueError as exc:  # a query we cannot read is never sent unscoped
            raise QueryFailed(f"cannot add --prometheus-selector / --namespace to the query: {exc}") from None

    def _record(self, path: str, params: dict) -> None:
        if "query" in params:
            self.queries_sent.append(params["query"])
        self.requests_sent.append((path, params))

    def _send(self, method: str, path: str, params: dict) -> bytes:
        """One request through the session (TLS, auth, retries); queries go in a POST form body,
        as proxies in front of Prometheus cut long request lines (nginx: 8 KiB by default)."""
        # verify is passed on every request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
        # override session.verify (psf/requests#3829), which would ignore --prometheus-ca-file.
        response = self._session.request(
            method,
            f"{self._base}/api/v1/{path}",
            data=params if method == "POST" else None,
            params=params if method == "GET" else None,
            headers=self._headers,
            timeout=self.settings.timeout,
            verify=self._session.verify,
        )
        if response.status_code != 200:
            raise QueryFailed(f"HTTP {response.status_code}: {error_text(response.content)}", response.status_code)
        return response.content

    def close(self) -> None:
        self._session.close()


# -- JSON to DataFrames -------------------------------------------------------------------------


def _label_columns(metrics: list[dict[str, str]], labels: Iterable[str]) -> dict[str, list[str]]:
    """One list per label, a missing label as "": built column by column, never row by row, and
    each distinct value kept once, so the frame does not hold one string per cell (40,000
    series of 11 labels are 440,000 strings otherwise, tens of MB)."""
    shared: dict[str, str] = {}
    return {
        queries.LABELS[label]: [shared.setdefault(v, v) for v in (m.get(label, "") for m in metrics)]
        for label in labels
    }


def vector_frame(result: list[dict]) -> pd.DataFrame:
    """An instant-vector result as observation rows; a missing label becomes ""."""
    if not result:
        return empty_observations()
    columns = _label_columns([item["metric"] for item in result], queries.LABELS)
    frame = pd.DataFrame({**columns, "count": [float(item["value"][1]) for item in result]})
    return frame[OBSERVATION_COLUMNS]


def matrix_frame(result: list[dict]) -> pd.DataFrame:
    """A range result as timeline rows (only steps with volume above zero)."""
    metrics: list[dict[str, str]] = []
    stamps: list[float] = []
    counts: list[float] = []
    for item in result:
        for ts, value in item["values"]:
            if float(value) > 0:
                metrics.append(item["metric"])
                stamps.append(float(ts))
                counts.append(float(value))
    if not counts:
        return empty_timeline()
    columns = _label_columns(metrics, [label for label in queries.LABELS if label != "reporter"])
    frame = pd.DataFrame({**columns, "timestamp": stamps, "count": counts})
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
        count_parts = self._parts(window_end)
        jobs = {job.key: job for job in plan.jobs(window, count_parts)}
        progress = plan.Progress(len(jobs))

        def run(item: tuple[str, plan.Job]) -> tuple[str, pd.DataFrame | QueryFailed]:
            key, job = item
            answer = self._ask(job, window_start, window_end)
            progress.finished(key, answer)
            # Into a frame at once: the parsed JSON of every answer held together until all
            # have arrived was most of the job's peak memory.
            return key, answer if isinstance(answer, QueryFailed) else _frame(job, answer)

        # One pool for the first answers and for any split: never more than max_parallel in flight.
        lost_parts: dict[str, dict[str, str]] = {}  # query part -> namespace -> why its part is missing
        with ThreadPoolExecutor(max_workers=self.client.settings.max_parallel) as pool:
            # How far back the data goes needs no answer: asked first, beside the others, rather
            # than alone after them (it reads every server-side series: ~0.8 s at 40,000 edges).
            coverage = pool.submit(self._coverage, window_start, window_end)
            answers = dict(pool.map(run, jobs.items()))
            too_big = {key: jobs[key] for key, a in answers.items() if isinstance(a, QueryFailed) and _too_big(a)}
            if too_big:
                seen = {
                    ns
                    for a in answers.values()
                    if isinstance(a, pd.DataFrame)
                    for ns in a["destination_namespace"].unique()
                }
                found = self._split(pool, too_big, seen, window_start, window_end, lost_parts, progress)
                answers.update(
                    {key: a if isinstance(a, QueryFailed) else _frame(jobs[key], a) for key, a in found.items()}
                )
        # A logical query is answered only if all its parts are: growth without births would
        # miss a Job's one burst of plaintext.
        failed: dict[str, QueryFailed] = {}
        for key, answer in answers.items():
            if isinstance(answer, QueryFailed):
                failed.setdefault(jobs[key].name, answer)
        for name, reason in failed.items():
            traffic.failed_queries.append(f"{name}: {reason}")
            log.warning("query %s failed: %s", name, reason)
            if name.startswith("timeline:"):  # first/last seen and the chart miss data; verdicts do not
                traffic.incomplete.append(f"query {name} failed: {reason}")
        parts: dict[str, list[pd.DataFrame]] = {}
        for key, answer in answers.items():
            name = jobs[key].name
            if name in failed or isinstance(answer, QueryFailed):
                continue
            parts.setdefault(name, []).append(answer)
        frames = {
            name: plan.join_totals(found) if name.startswith("totals:") else plan.join_timeline(found)
            for name, found in parts.items()
        }
        lost_by_query: dict[str, dict[str, str]] = {}
        for key, lost in lost_parts.items():
            lost_by_query.setdefault(jobs[key].name, {}).update(lost)
        self._record_lost_parts(traffic, lost_by_query)
        self._cross_check(traffic, frames, lost_by_query, step)
        traffic.observations = _concat([f for n, f in frames.items() if n.startswith("totals:")], empty_observations())
        traffic.timeline = _concat([f for n, f in frames.items() if n.startswith("timeline:")], empty_timeline())
        traffic.coverage = coverage.result()
        self._proxy_presence(traffic)
        responses.collect(self.client, traffic, window_start, window_end, describe, count_parts)
        traffic.timeline_step = step
        traffic.clients = client_queries.collect(
            self.client, window_start, window_end, self.client.settings.peer_address_label, self._describe
        )
        traffic.warnings += [f"attribution: {why}" for why in traffic.clients.degraded.values()]
        log.info(
            "collected %d series groups and %d timeline points from %s in %.1fs",
            len(traffic.observations),
            len(traffic.timeline),
            self.source,
            time.monotonic() - started,
        )
        return traffic

    def _parts(self, at: datetime) -> tuple[str, ...]:
        """MetricsQL's one exact part where the engine speaks it (VictoriaMetrics), else PromQL's
        two. Any doubt keeps PromQL's parts: on VictoriaMetrics they can only over-count (a new
        counter's first value, twice), never miss a count."""
        try:
            self.client.instant(queries.MetricsqlProbe().promql(), at)
        except (QueryFailed, requests.exceptions.RequestException):
            return queries.PARTS
        log.info("%s speaks MetricsQL (VictoriaMetrics): counting with increase_pure()", self.source)
        return queries.METRICSQL_PARTS

    def _describe(self, exc: Exception) -> str:
        """A failure in words for a warning: never the URL."""
        if isinstance(exc, requests.exceptions.RequestException):
            return describe(exc, self.client.settings.timeout)
        return str(exc) if isinstance(exc, QueryFailed) else type(exc).__name__

    def _ask(self, job: plan.Job, window_start: datetime, window_end: datetime) -> Answer:
        try:
            if job.step is None:
                return self.client.instant(job.query.promql(), window_end)
            return self.client.range(job.query.promql(), window_start, window_end, job.step)
        except QueryFailed as exc:
            return exc
        except requests.exceptions.RequestException as exc:
            return QueryFailed(describe(exc, self.client.settings.timeout))

    def _split(
        self,
        pool: ThreadPoolExecutor,
        failed: dict[str, plan.Job],
        seen: set[str],
        window_start: datetime,
        window_end: datetime,
        lost_parts: dict[str, dict[str, str]],
        progress: plan.Progress,
    ) -> dict[str, Answer]:
        """Ask each failed query again one destination namespace at a time; every answer carries
        destination_workload_namespace, so the parts add up to exactly the whole. A part that
        still fails costs only its namespace (`lost_parts`), when the other parts succeeded."""
        selectors = [queries.server_side(m) for m in queries.METRICS]
        try:
            found = self.client.label_values("destination_workload_namespace", selectors, window_start, window_end)
        except (QueryFailed, requests.exceptions.RequestException) as exc:
            reason = exc if isinstance(exc, QueryFailed) else describe(exc, self.client.settings.timeout)
            log.warning("cannot list namespaces to split the failed queries: %s", reason)
            return {}  # the first answers (too big) stand
        # The parts must cover every namespace any answer names (`seen`), not only those the index
        # listed; "" selects series without the label, which no listed namespace would.
        namespaces = sorted({*found, *seen, ""})
        log.info(
            "%s too big for Prometheus; asking again per destination namespace (%d queries, %d at a time)",
            ", ".join(failed),
            len(failed) * len(namespaces),
            self.client.settings.max_parallel,
        )
        progress.add(len(failed) * len(namespaces))

        def run(part: tuple[str, str]) -> tuple[str, str, Answer]:
            name, namespace = part
            job = failed[name]
            answer = self._ask(replace(job, query=replace(job.query, namespace=namespace)), window_start, window_end)
            progress.finished(f"{name} [namespace {namespace!r}]", answer)
            return name, namespace, answer

        merged: dict[str, list[dict]] = {name: [] for name in failed}
        lost: dict[str, dict[str, str]] = {name: {} for name in failed}
        for name, namespace, answer in pool.map(run, [(name, ns) for name in failed for ns in namespaces]):
            if isinstance(answer, QueryFailed):
                lost[name][namespace] = str(answer)
            else:
                merged[name].extend(answer)
        result: dict[str, Answer] = {}
        for name in failed:
            if not lost[name]:
                result[name] = merged[name]
            elif "" in lost[name] or len(lost[name]) == len(namespaces):
                # Unattributed series, or nothing at all, missing: no namespace's part can stand in for it.
                namespace, reason = ("", lost[name][""]) if "" in lost[name] else next(iter(lost[name].items()))
                result[name] = QueryFailed(f"too big, and asked per namespace still failed: {namespace!r}: {reason}")
            else:
                result[name] = merged[name]
                lost_parts[name] = lost[name]
        return result

    @staticmethod
    def _record_lost_parts(traffic: Traffic, lost_parts: dict[str, dict[str, str]]) -> None:
        """A missing totals part makes its namespace UNKNOWN; a missing timeline part makes the run incomplete."""
        for name, parts in lost_parts.items():
            for namespace, reason in sorted(parts.items()):
                doubt = f"query {name} failed for namespace {namespace}: {reason}"
                log.warning("%s", doubt)
                traffic.warnings.append(doubt)
                if name.startswith("totals:"):
                    traffic.namespace_doubts.setdefault(namespace, []).append(doubt)
                else:
                    traffic.incomplete.append(doubt)

    @staticmethod
    def _cross_check(
        traffic: Traffic, frames: dict[str, pd.DataFrame], lost_parts: dict[str, dict[str, str]], step: timedelta
    ) -> None:
        """Totals and timeline of one metric must name the same non-mTLS edges (collect/crosscheck.py)."""
        span = traffic.window_end - traffic.window_start
        # The timeline's last point is the window's end only when the window is a whole number of steps.
        covers_end = int(span.total_seconds()) % int(step.total_seconds()) == 0
        for metric in queries.METRICS:
            totals, timeline = f"totals:{metric}", f"timeline:{metric}"
            if totals not in frames or timeline not in frames:
                continue
            skip = {*lost_parts.get(totals, {}), *lost_parts.get(timeline, {})}
            found = crosscheck.contradictions(
                frames[totals], frames[timeline], traffic.window_start, covers_end=covers_end, skip_namespaces=skip
            )
            for destination, reasons in found.items():
                for reason in reasons:
                    log.warning("%s: %s", metric, reason)
                    traffic.warnings.append(f"{metric}: {reason}")
                    # UNKNOWN where it would be READY; where plaintext still shows, the timeline lost data.
                    traffic.destination_doubts.setdefault(destination, []).append(reason)
                    traffic.incomplete.append(f"{metric}: {reason}")

    def _proxy_presence(self, traffic: Traffic) -> None:
        """Which pods' proxies were scraped; read strictly: a failed query leaves the check undone
        (a warning), never "every pod scraped"."""
        query = queries.ProxyPresence(traffic.window_end - traffic.window_start).promql()
        try:
            answer = self.client.instant(query, traffic.window_end)
            pods = set()
            for item in answer:
                labels = item.get("metric") or {}
                # A series without the pod labels (a proxy outside Kubernetes) names no pod: skipped,
                # which can only make a pod look unscraped, never the other way round.
                if all(isinstance(labels.get(k), str) and labels.get(k) for k in queries.POD_LABELS):
                    pods.add((labels["namespace"], labels["pod"]))
        except (QueryFailed, requests.exceptions.RequestException) as exc:
            reason = exc if isinstance(exc, QueryFailed) else describe(exc, self.client.settings.timeout)
            traffic.proxy_presence_error = f"query proxy-presence failed: {reason}"
            traffic.warnings.append(
                f"{traffic.proxy_presence_error}; unscraped proxies cannot be told from idle workloads"
            )
            log.warning("%s", traffic.proxy_presence_error)
            return
        traffic.proxy_pods = frozenset(pods)

    def _coverage(self, window_start: datetime, window_end: datetime) -> Coverage:
        span = queries.presence_span(window_end - window_start)
        try:
            present = self.client.instant(queries.DataPresence(span).promql(), window_start + span)
            if present and float(present[0]["value"][1]) > 0:
                return Coverage(complete=True)
            extent = self.client.range(
                queries.DataExtent().promql(), window_start, window_end, max(span, (window_end - window_start) / 100)
            )
        except (QueryFailed, requests.exceptions.RequestException) as exc:
            reason = exc if isinstance(exc, QueryFailed) else describe(exc, self.client.settings.timeout)
            return Coverage(complete=False, detail=f"could not check how far back the data goes: {reason}")
        first = min((float(item["values"][0][0]) for item in extent if item.get("values")), default=None)
        data_start = datetime.fromtimestamp(first, UTC) if first is not None else None
        if data_start is None:
            # No server-side Istio series at all: a wrong URL (or tenant) or unscraped proxies are far
            # likelier than a short retention.
            detail = (
                f"Prometheus at {self.source} holds no server-side Istio request metrics in the window; check that "
                "--prometheus-url (and tenant) is the Prometheus that scrapes the mesh's proxies, and that it "
                'scrapes them (istio_requests_total{reporter="destination"} should return series)'
            )
        else:
            detail = (
                f"Prometheus holds Istio data from {data_start:%Y-%m-%d %H:%M}Z but the window starts "
                f"{window_start:%Y-%m-%d %H:%M}Z; shorten --lookback or raise Prometheus retention"
            )
        return Coverage(complete=False, data_start=data_start, detail=detail)


Answer = list[dict] | QueryFailed


def _frame(job: plan.Job, answer: list[dict]) -> pd.DataFrame:
    return vector_frame(answer) if job.step is None else matrix_frame(answer)


# Words Prometheus, Thanos, Mimir and VictoriaMetrics use when a query is too big or too slow.
_TOO_BIG_WORDS = ("too many samples", "timed out", "timeout", "limit", "exceeded")


def _too_big(exc: QueryFailed) -> bool:
    """Whether a smaller query might succeed: a resource limit or timeout, not a bad URL, auth or PromQL."""
    if exc.status in (422, 429, 502, 503, 504):
        return True
    text = str(exc).lower()
    return any(word in text for word in _TOO_BIG_WORDS)


def describe(exc: requests.exceptions.RequestException, timeout: float) -> str:
    """The real cause of a failed request, in a few words: never the URL, never credentials."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return f"read timed out after {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "answer cut off before its end"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in text:
            return "connection refused"
        if any(word in text for word in ("reset", "aborted", "RemoteDisconnected", "closed")):
            return "connection closed by the server mid-answer"
        return "connection failed"
    return type(exc).__name__


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
