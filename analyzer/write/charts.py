"""Matplotlib charts rendered to inline SVG strings (no files, no fonts to fetch)."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # headless: the job and CI have no display

import matplotlib.pyplot as plt
import pandas as pd

from analyzer.model.report import RunResult

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
MTLS_COLOUR = "#0072B2"
PLAINTEXT_COLOUR = "#D55E00"
VERDICT_COLOURS = {
    "BLOCKED": "#D55E00",
    "UNKNOWN": "#F0E442",
    "READY": "#009E73",
    "NO_TRAFFIC": "#56B4E9",
    "DISABLED": "#E69F00",
    "ENFORCED": "#0072B2",
    "NOT_MESHED": "#BBBBBB",
}

plt.rcParams.update(
    {
        "svg.fonttype": "path",  # glyphs as paths: renders the same everywhere, offline
        "svg.hashsalt": "mtls-readiness",  # stable ids, so identical data gives identical SVG
        "text.parse_math": False,  # label values are untrusted: "$" must not start mathtext
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def to_svg(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE for inline use


def _empty(message: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#555555")
    return to_svg(fig)


def volume_by_namespace(run: RunResult, top: int = 25) -> str:
    """mTLS versus plaintext volume per destination namespace (requests and connections together)."""
    rows = pd.DataFrame(
        [(n.namespace, n.mtls_count, n.plaintext_count) for n in run.namespaces if n.mtls_count or n.plaintext_count],
        columns=["namespace", "mtls", "plaintext"],
    )
    if rows.empty:
        return _empty("No inbound traffic in the window")
    rows = rows.assign(total=rows.mtls + rows.plaintext).sort_values(["plaintext", "total"], ascending=False).head(top)
    rows = rows.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1))
    ax.barh(rows.namespace, rows.mtls, color=MTLS_COLOUR, label="mTLS")
    ax.barh(rows.namespace, rows.plaintext, left=rows.mtls, color=PLAINTEXT_COLOUR, label="plaintext", hatch="//")
    ax.set_xlabel("requests + connections in the window")
    ax.legend(loc="lower right", frameon=False)
    return to_svg(fig)


def plaintext_over_time(run: RunResult) -> str:
    timeline = run.timeline
    if timeline.empty:
        return _empty("No plaintext in the window")
    series = timeline.groupby(["timestamp", "protocol"])["count"].sum().unstack(fill_value=0).sort_index()
    fig, ax = plt.subplots(figsize=(7, 2.4))
    styles = {"http": "-", "grpc": "--", "tcp": ":"}
    for protocol in series.columns:
        ax.plot(
            series.index,
            series[protocol],
            styles.get(protocol, "-"),
            label=protocol,
            color=PLAINTEXT_COLOUR if protocol == "http" else "#000000" if protocol == "tcp" else "#CC79A7",
        )
    ax.set_xlim(run.window_start, run.window_end)
    ax.set_ylabel("plaintext per step")
    ax.legend(frameon=False)
    fig.autofmt_xdate()
    return to_svg(fig)


CHARTS: dict[str, tuple[str, Callable[[RunResult], str]]] = {
    "volume": ("mTLS and plaintext volume per destination namespace", volume_by_namespace),
    "timeline": ("Plaintext over the lookback window", plaintext_over_time),
}


def render_all(run: RunResult) -> dict[str, dict[str, str]]:
    return {key: {"title": title, "svg": draw(run)} for key, (title, draw) in CHARTS.items()}
