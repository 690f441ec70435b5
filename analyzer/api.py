"""The public Python API: what the notebooks use, built on the same pipeline as the CLI.

    >>> from analyzer import analyse_sample, plot_verdicts
    >>> result = analyse_sample("demo")           # no cluster, no Prometheus
    >>> result.verdict_counts()["BLOCKED"]
    6
    >>> fig = plot_verdicts(result)               # a matplotlib Figure

- `analyse_sample` / `analyse_live` run collect + analyse exactly as `mtls-readiness demo` /
  `report` do (through `analyzer.pipeline`), without writing a report.
- `load_run` reads a published run (`runs/<id>`, `latest`, or an `--output-dir`) back into the
  same `RunResult` (from its result.json).
- `what_if` predicts which observed plaintext clients a proposed PeerAuthentication would cut
  off, as `mtls-readiness what-if` does.
- `plaintext_timeline` turns the range query (plaintext per edge and step) into a rate per client.
- `plot_*` return matplotlib Figures for notebooks; the HTML report draws its own SVG charts.

Every function takes a `RunResult`, analysed now or read back from a published run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import yaml
from matplotlib.figure import Figure

from analyzer import pipeline
from analyzer.analyse.verdicts import source_name  # the report's own "ns/name" or "unknown"
from analyzer.analyse.whatif import Prediction
from analyzer.collect import queries
from analyzer.collect.policy_files import iter_objects
from analyzer.collect.run_store import load_run
from analyzer.config import PrometheusSettings, ReportConfig
from analyzer.errors import UserError
from analyzer.model.report import VERDICT_ORDER, RunResult
from analyzer.write.palette import MTLS_COLOUR, PLAINTEXT_COLOUR, VERDICT_COLOURS

# The notebook figures in the report's style; label values are untrusted: "$" must not start mathtext.
matplotlib.rcParams.update(
    {
        "text.parse_math": False,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
    }
)

__all__ = [
    "Prediction",
    "RunResult",
    "analyse_live",
    "analyse_sample",
    "load_run",
    "plaintext_timeline",
    "plot_namespace_volume",
    "plot_plaintext_over_time",
    "plot_verdicts",
    "tables",
    "what_if",
]

Result = RunResult
_PATH_OPTIONS = {"bearer_token_file", "ca_file"}
# Colours for up to eight clients (Okabe-Ito order after the plaintext orange); the rest are "other".
_CLIENT_COLOURS = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]


# -- analysis ---------------------------------------------------------------------------------------


def analyse_sample(
    name: str = "demo", lookback: str = "7d", *, root_namespace: str = "istio-system", now: datetime | None = None
) -> RunResult:
    """Analyse a built-in sample mesh (`demo` or `walkthrough`), as `mtls-readiness demo` does.

    `now` pins the end of the window (default: the current time), for reproducible results.
    """
    config = ReportConfig(lookback=lookback, root_namespace=root_namespace)
    now = (now or datetime.now(UTC)).replace(microsecond=0)  # one instant: the mesh's data and the window end agree
    inventory, source = pipeline.inputs(config, sample=name, now=now)
    return pipeline.analyse_run(inventory, source, config, now)


def analyse_live(
    prometheus_url: str,
    *,
    policies_from: str | Path = "kube",
    lookback: str = "7d",
    root_namespace: str = "istio-system",
    cluster: str = "",
    kube_context: str | None = None,
    kubeconfig: str | None = None,
    now: datetime | None = None,
    **prometheus_options: Any,
) -> RunResult:
    """Query Prometheus and read policies, as `mtls-readiness report` does, without writing a report.

    `policies_from`: "kube" (kubeconfig, then in-cluster) or a YAML file or folder.
    `prometheus_options`: `bearer_token_file`, `ca_file`, `headers` ({"Name": "value"} or
    ["Name: value"]), `tenant`, `insecure_skip_verify`, `timeout`, `retries`, `max_parallel`,
    `selector` ('cluster="prod"', added to every query).
    """
    config = _live_config(
        prometheus_url,
        prometheus_options,
        policies_from=str(policies_from),
        lookback=lookback,
        root_namespace=root_namespace,
        cluster=cluster,
        kube_context=kube_context,
        kubeconfig=kubeconfig,
    )
    inventory, source = pipeline.inputs(config)
    return pipeline.analyse_run(inventory, source, config, now)


def what_if(
    proposal: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    sample: str | None = None,
    prometheus_url: str | None = None,
    policies_from: str | Path = "kube",
    lookback: str = "7d",
    root_namespace: str = "istio-system",
    now: datetime | None = None,
    **prometheus_options: Any,
) -> Prediction:
    """Which clients observed in the window would a proposed PeerAuthentication cut off?

    `proposal`: a YAML file or folder (a `Path`, or a one-line string), YAML text, or manifest
    dict(s). Give `sample="demo"` for a built-in mesh, or `prometheus_url` (with `policies_from`
    and the options of `analyse_live`) for a live one. `Prediction.cut_off` lists the clients.
    """
    if (sample is None) == (prometheus_url is None):
        raise UserError("what_if needs exactly one of sample='demo' or prometheus_url='http://...'")
    proposed = pipeline.read_proposal(_proposal_objects(proposal), "proposal")
    if sample is not None:
        config = ReportConfig(lookback=lookback, root_namespace=root_namespace)
    else:
        assert prometheus_url is not None  # checked above: exactly one of the two
        config = _live_config(
            prometheus_url,
            prometheus_options,
            policies_from=str(policies_from),
            lookback=lookback,
            root_namespace=root_namespace,
        )
    return pipeline.predict_proposal(config, proposed, sample=sample, now=now)


def _live_config(url: str, options: Mapping[str, Any], **fields: Any) -> ReportConfig:
    known = set(PrometheusSettings.__dataclass_fields__) - {"url"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown Prometheus option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    settings: dict[str, Any] = dict(options)
    for name in _PATH_OPTIONS & settings.keys():
        settings[name] = Path(settings[name]) if settings[name] is not None else None
    if "selector" in settings:  # 'cluster="prod"' or a list of matchers, checked as the CLI checks them
        from analyzer.collect.matchers import parse_selector

        given = settings["selector"]
        try:
            settings["selector"] = tuple(parse_selector([given] if isinstance(given, str) else given))
        except ValueError as exc:
            raise UserError(f"selector: {exc}") from None
    headers = settings.get("headers", ())
    if isinstance(headers, Mapping):
        settings["headers"] = tuple(f"{k}: {v}" for k, v in headers.items())
    else:
        settings["headers"] = tuple(headers)
    return ReportConfig(prometheus=PrometheusSettings(url=url, **settings), **fields)


def _proposal_objects(proposal: Any) -> Iterable[tuple[dict, str]]:
    if isinstance(proposal, Path) or (isinstance(proposal, str) and "\n" not in proposal.strip()):
        return iter_objects(Path(proposal))
    if isinstance(proposal, str):
        try:
            documents = [d for d in yaml.safe_load_all(proposal) if d is not None]
        except yaml.YAMLError as exc:
            raise UserError(f"proposal: not valid YAML ({exc}); give PeerAuthentication manifests") from None
    elif isinstance(proposal, Mapping):
        documents = [proposal]
    else:
        documents = list(proposal)
    objects: list[tuple[dict, str]] = []
    for index, doc in enumerate(documents, start=1):
        is_list = isinstance(doc, Mapping) and str(doc.get("kind", "")).endswith("List")
        items = doc["items"] if is_list and isinstance(doc.get("items"), list) else [doc]
        objects += [
            (dict(item) if isinstance(item, Mapping) else {"kind": None}, f"proposal {index}") for item in items
        ]
    return objects


# -- tables -----------------------------------------------------------------------------------------


def tables(result: Result) -> dict[str, pd.DataFrame]:
    """`edges`, `workloads` and `namespaces` as DataFrames."""
    return {
        "edges": result.edges_frame(),
        "workloads": result.workloads_frame(),
        "namespaces": result.namespaces_frame(),
    }


def plaintext_timeline(result: Result, namespace: str | None = None, workload: str | None = None) -> pd.DataFrame:
    """Plaintext rate per second by client over the window, for the destinations selected.

    One column per client (`namespace/workload`, or `unknown` when Istio could not name it:
    a caller without a sidecar over HTTP, or any plaintext TCP), one row per step of the range
    query, clients ordered by volume. Requests and TCP connections add up, as in the report.
    Traffic whose `connection_security_policy` cannot be read is left out: it is not proven
    plaintext (the report flags it as UNKNOWN instead).
    """
    step = queries.timeline_step(result.window_end - result.window_start)
    grid = pd.date_range(result.window_start, result.window_end, freq=step, name="timestamp")
    rows = result.timeline_frame()  # plaintext only: classified by the analysis, with the whole inventory
    if namespace is not None:
        rows = rows[rows["destination_namespace"] == namespace]
    if workload is not None:
        rows = rows[rows["destination_workload"] == workload]
    if rows.empty:
        return pd.DataFrame(index=grid, columns=pd.Index([], name="client"), dtype="float64")
    client = [source_name(ns, wl) for ns, wl in zip(rows["source_namespace"], rows["source_workload"], strict=True)]
    wide = rows.assign(client=client).pivot_table(
        index="timestamp", columns="client", values="count", aggfunc="sum", fill_value=0.0
    )
    wide = wide.reindex(grid.union(wide.index), fill_value=0.0)
    wide = wide[wide.sum().sort_values(ascending=False, kind="stable").index]
    wide.index.name = "timestamp"
    return wide / step.total_seconds()


# -- figures ----------------------------------------------------------------------------------------
# Figures are built without pyplot: nothing global to close, and a notebook shows each one once.


def plot_verdicts(result: Result, level: str = "workloads") -> Figure:
    """How many workloads (or namespaces, `level="namespaces"`) have each verdict."""
    if level not in ("workloads", "namespaces"):
        raise ValueError(f"level must be 'workloads' or 'namespaces', not {level!r}")
    verdicts = tables(result)[level]["verdict"].astype(str).value_counts()
    names = [v.value for v in VERDICT_ORDER][::-1]  # barh draws bottom-up: attention first at the top
    counts = [int(verdicts.get(v, 0)) for v in names]
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    bars = ax.barh(names, counts, color=[VERDICT_COLOURS[v] for v in names], edgecolor="#333333", linewidth=0.5)
    ax.bar_label(bars, padding=2)
    ax.set_xlabel(level)
    ax.set_title(f"{level.capitalize()} by verdict", loc="left")
    return fig


def plot_namespace_volume(result: Result, top: int = 25) -> Figure:
    """mTLS versus plaintext volume per destination namespace, most plaintext first: requests and
    TCP connections in panels of their own, each on its own scale (13 connections of a nightly
    Job must not vanish next to a million requests)."""
    edges = result.edges_frame()
    fig = Figure(figsize=(10, 0.35 * min(max(len(result.namespaces), 1), top) + 1.4), layout="constrained")
    if edges.empty or not (edges.mtls_count.sum() or edges.plaintext_count.sum()):
        return _message(fig, fig.subplots(), "No inbound traffic in the window")
    volume = edges.groupby(["unit", "destination_namespace"])[["mtls_count", "plaintext_count"]].sum()
    units = [u for u in ("requests", "connections") if u in volume.index.get_level_values(0)]
    axes = fig.subplots(1, len(units), squeeze=False)[0]
    for ax, unit in zip(axes, units, strict=True):
        rows = volume.loc[unit]
        rows = rows[(rows.mtls_count > 0) | (rows.plaintext_count > 0)]
        rows = rows.assign(total=rows.sum(axis=1)).sort_values(["plaintext_count", "total"], ascending=False)
        rows = rows.head(top).iloc[::-1]
        ax.barh(rows.index, rows.mtls_count, color=MTLS_COLOUR, label="mTLS")
        ax.barh(
            rows.index,
            rows.plaintext_count,
            left=rows.mtls_count,
            color=PLAINTEXT_COLOUR,
            label="plaintext",
            hatch="//",
        )
        ax.set_xlabel(f"{unit} in the window")
        ax.set_title(f"Inbound {unit} per namespace", loc="left")
        ax.legend(loc="best", frameon=False)
    return fig


def plot_plaintext_over_time(
    result: RunResult | pd.DataFrame,
    namespace: str | None = None,
    workload: str | None = None,
    *,
    top: int = 6,
    title: str | None = None,
    panels: bool = False,
) -> Figure:
    """Plaintext rate by client over the window: a RunResult (filtered like `plaintext_timeline`)
    or a frame shaped like its result (one column per line). Beyond `top` lines the rest add up as `other`.

    `panels=True` gives each line its own panel and y scale: a small burst then stays visible
    next to a steady stream a hundred times larger.
    """
    wide = result if isinstance(result, pd.DataFrame) else plaintext_timeline(result, namespace, workload)
    where = "/".join(p for p in (namespace, workload) if p) or "the mesh"
    title = title or f"Plaintext to {where}, by client"
    if wide.empty or not wide.to_numpy().any():
        fig = Figure(figsize=(8, 1), layout="constrained")
        return _message(fig, fig.subplots(), f"No plaintext to {where} in the window")
    shown = wide.iloc[:, :top]
    if wide.shape[1] > top:
        shown = shown.assign(other=wide.iloc[:, top:].sum(axis=1))
    rows = len(shown.columns) if panels else 1
    fig = Figure(figsize=(8, 3 if rows == 1 else 0.9 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for i, client in enumerate(shown.columns):
        ax = axes[i if panels else 0]
        ax.plot(shown.index, shown[client], label=client, color=_CLIENT_COLOURS[i % len(_CLIENT_COLOURS)])
    for ax in axes:
        ax.set_xlim(wide.index.min(), wide.index.max())
        ax.set_ylim(bottom=0)  # a rate: zero is the goal, keep it in view
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if panels:
        fig.suptitle(title, x=0.01, ha="left", fontsize="medium")
        fig.supylabel("plaintext per second", fontsize="small")
    else:
        axes[0].set_title(title, loc="left")
        axes[0].set_ylabel("plaintext per second")
    fig.autofmt_xdate()
    return fig


def _message(fig: Figure, ax: Any, text: str) -> Figure:
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#555555")
    return fig


def _show_figures_in_ipython() -> None:
    """Figures built without pyplot are not drawn by Jupyter when returned (it would print
    `<Figure size ...>`); register the same PNG display `%matplotlib inline` does."""
    if "IPython" not in sys.modules:  # not inside IPython: nothing to do, and no import cost
        return
    from IPython import get_ipython
    from IPython.core.pylabtools import select_figure_formats

    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"})


_show_figures_in_ipython()
