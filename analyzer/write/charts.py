"""Matplotlib charts rendered to inline SVG strings (no files, no fonts to fetch).

Every chart returns a `Chart`: the SVG and a one-sentence description for screen readers. The
charts only arrange what the analysis produced; label values are untrusted text, drawn as text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import dates, ticker
from matplotlib.colors import LogNorm

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
# A second cue besides colour for the verdicts that need attention.
VERDICT_HATCHES = {"BLOCKED": "//", "UNKNOWN": "\\\\"}  # lines: dot hatches cost ~70 kB of SVG each
# Bottom to top in the burndown: what is done first, what blocks on top.
BURNDOWN_ORDER = ["ENFORCED", "READY", "NO_TRAFFIC", "DISABLED", "UNKNOWN", "BLOCKED", "NOT_MESHED"]
UNIT_OF = {"http": "requests", "grpc": "requests", "tcp": "connections"}
LABEL_CHARS = 40  # long (or hostile) label values are cut on the axes; the tables have them whole

plt.rcParams.update(
    {
        "svg.fonttype": "path",  # glyphs as paths: renders the same everywhere, offline
        "svg.hashsalt": "mtls-readiness",  # stable ids, so identical data gives identical SVG
        "text.parse_math": False,  # label values are untrusted: "$" must not start mathtext
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "hatch.linewidth": 0.6,
    }
)


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    description: str  # alt text: what the chart shows, in words
    svg: str


def to_svg(fig: plt.Figure, prefix: str = "") -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE for inline use
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    return _prefix_ids(text, prefix) if prefix else text


def _prefix_ids(svg: str, prefix: str) -> str:
    """Several SVGs share one HTML document: keep their clip-path and glyph ids apart."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return re.sub(r"#([\w.:-]+)", lambda m: f"#{prefix}-{m.group(1)}" if m.group(1) in ids else m.group(0), svg)


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compact(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _empty(message: str, key: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.6))
    ax.axis("off")
    ax.text(0.0, 0.5, message, ha="left", va="center", color="#555555", fontsize=10)
    return to_svg(fig, key)


# -- mTLS and plaintext per destination namespace ----------------------------------------------------


def _volume_frame(run: RunResult) -> pd.DataFrame:
    rows = [(e.destination_namespace, e.unit, e.mtls_count, e.plaintext_count) for e in run.edges]
    frame = pd.DataFrame(rows, columns=["namespace", "unit", "mtls", "plaintext"])
    return frame.groupby(["unit", "namespace"], as_index=False)[["mtls", "plaintext"]].sum()


def volume_by_namespace(run: RunResult, top: int = 20) -> Chart:
    key, title = "volume", "mTLS and plaintext per destination namespace"
    frame = _volume_frame(run)
    frame = frame[(frame.mtls + frame.plaintext) > 0]
    if frame.empty:
        return Chart(key, title, "No inbound traffic in the window.", _empty("No inbound traffic in the window", key))
    units = [u for u in ("requests", "connections") if (frame.unit == u).any()]
    panels = []
    for unit in units:
        part = frame[frame.unit == unit].assign(total=lambda f: f.mtls + f.plaintext)
        part = part.sort_values(["plaintext", "total"], ascending=False)
        panels.append((unit, part.head(top).iloc[::-1], len(part) - min(len(part), top)))
    height = 0.28 * max(len(p[1]) for p in panels) + 1.1
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), height), squeeze=False)
    for ax, (unit, part, more) in zip(axes[0], panels, strict=True):
        names = [_short(n, 28) for n in part.namespace]
        y = np.arange(len(part))
        ax.barh(y, part.mtls, color=MTLS_COLOUR, label="mTLS")
        ax.barh(
            y, part.plaintext, left=part.mtls, color=PLAINTEXT_COLOUR, hatch="//", edgecolor="white", label="plaintext"
        )
        ax.set_yticks(y, names)
        for yi, (m, p) in enumerate(zip(part.mtls, part.plaintext, strict=True)):
            if p > 0:
                share = p / (m + p)
                label = f" {share:.0%} plaintext" if share >= 0.01 else " <1% plaintext"
                ax.text(m + p, yi, label, va="center", fontsize=8, color="#333333")
        ax.set_title(f"{unit}" + (f" (top {top}; {more} more in the CSV)" if more else ""))
        ax.set_xlabel(f"{unit} in the window")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
        ax.margins(x=0.18)
    axes[0][0].legend(loc="lower right", frameon=False, bbox_to_anchor=(1.0, 1.0), ncols=2)
    fig.tight_layout()
    worst = frame.sort_values("plaintext", ascending=False).iloc[0]
    description = (
        f"Horizontal bars per destination namespace, mTLS in blue and plaintext in hatched orange, for "
        f"{' and '.join(units)}. "
        + (
            f"Most plaintext goes to {worst.namespace} ({compact(worst.plaintext)} {worst.unit})."
            if worst.plaintext > 0
            else "No namespace received plaintext."
        )
    )
    return Chart(key, title, description, to_svg(fig, key))


# -- plaintext over the lookback window ---------------------------------------------------------------


def _plaintext_timeline(run: RunResult) -> pd.DataFrame:
    timeline = run.timeline_frame()
    if timeline.empty:
        return timeline
    if "security" in timeline.columns:  # the analysis tells plaintext from unreadable (label missing)
        timeline = timeline[timeline["security"] == "plaintext"]
    return timeline.assign(unit=timeline["protocol"].map(UNIT_OF).fillna("requests"))


def plaintext_over_time(run: RunResult) -> Chart:
    key, title = "timeline", "Plaintext over the lookback window"
    timeline = _plaintext_timeline(run)
    if timeline.empty:
        return Chart(key, title, "No plaintext in the window.", _empty("No plaintext in the window", key))
    stamps = pd.DatetimeIndex(sorted(timeline["timestamp"].unique()))
    gaps = stamps.to_series().diff().dropna()
    step = gaps[gaps > pd.Timedelta(0)].min() if not gaps.empty else pd.Timedelta(hours=1)
    end = max(pd.Timestamp(run.window_end), stamps.max())
    grid = pd.date_range(end=end, periods=max(1, int((end - pd.Timestamp(run.window_start)) / step)), freq=step)
    grid = grid.union(stamps)  # steps with no plaintext are zero, not missing
    units = [u for u in ("requests", "connections") if (timeline.unit == u).any()]
    fig, axes = plt.subplots(len(units), 1, figsize=(9, 1.9 * len(units) + 0.4), sharex=True, squeeze=False)
    peaks = []
    for ax, unit in zip(axes[:, 0], units, strict=True):
        series = timeline[timeline.unit == unit].groupby("timestamp")["count"].sum().reindex(grid, fill_value=0)
        ax.fill_between(series.index, series.values, step="pre", color=PLAINTEXT_COLOUR, alpha=0.35, linewidth=0)
        ax.step(series.index, series.values, where="pre", color=PLAINTEXT_COLOUR, linewidth=1.2)
        ax.set_ylabel(f"{unit}\nper {_duration(step)}")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
        ax.set_title(f"plaintext {unit}")
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        peaks.append(f"{unit} peak {compact(series.max())} per {_duration(step)}")
    axes[-1, 0].set_xlim(pd.Timestamp(run.window_start), end)
    axes[-1, 0].xaxis.set_major_formatter(dates.DateFormatter("%b %d\n%H:%M"))
    fig.tight_layout()
    description = f"Plaintext volume per {_duration(step)} over the window; " + ", ".join(peaks) + "."
    return Chart(key, title, description, to_svg(fig, key))


def _duration(step: pd.Timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60}h"
    return f"{minutes}m"


# -- who sends plaintext to whom -------------------------------------------------------------------------


def plaintext_heatmap(run: RunResult, top: int = 20) -> Chart:
    key, title = "heatmap", "Plaintext by source and destination namespace"
    rows = [
        (
            e.source_namespace if e.source_namespace not in ("", "unknown") else "(unknown source)",
            e.destination_namespace,
            e.plaintext_count,
        )
        for e in run.edges
        if e.plaintext_count > 0
    ]
    if not rows:
        return Chart(key, title, "No plaintext in the window.", _empty("No plaintext in the window", key))
    frame = pd.DataFrame(rows, columns=["source", "destination", "plaintext"])
    for column in ("source", "destination"):
        keep = frame.groupby(column)["plaintext"].sum().nlargest(top).index
        frame[column] = frame[column].where(frame[column].isin(keep), "(other)")
    grid = frame.pivot_table(index="source", columns="destination", values="plaintext", aggfunc="sum", fill_value=0)
    grid = grid.loc[grid.sum(axis=1).sort_values(ascending=False).index, grid.sum().sort_values(ascending=False).index]
    values = grid.to_numpy(dtype=float)
    masked = np.ma.masked_less_equal(values, 0)
    width = min(max(2.5 + 0.75 * grid.shape[1], 5.5), 10)
    fig, ax = plt.subplots(figsize=(width, max(1.4 + 0.42 * grid.shape[0], 2.6)))
    vmax = max(values.max(), 1.0)
    mesh = ax.pcolormesh(
        masked, cmap="Oranges", norm=LogNorm(vmin=max(min(masked.min(), vmax / 10), 1e-3), vmax=vmax),
        edgecolors="white", linewidth=1,
    )  # fmt: skip
    ax.set_xticks(
        np.arange(grid.shape[1]) + 0.5,
        [_short(c, 24) for c in grid.columns],
        rotation=35,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks(np.arange(grid.shape[0]) + 0.5, [_short(i, 28) for i in grid.index])
    ax.invert_yaxis()
    ax.set_xlabel("destination namespace")
    ax.set_ylabel("source namespace")
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    if values.size <= 200:
        norm = mesh.norm
        for (i, j), v in np.ndenumerate(values):
            if v > 0:
                dark = norm(v) > 0.6
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    compact(v),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    bar = fig.colorbar(mesh, ax=ax, shrink=0.9, pad=0.02, aspect=15)
    bar.set_label("plaintext requests\n+ TCP connections")
    bar.solids.set_rasterized(False)  # vector: a raster gradient would be an embedded PNG (a data: request)
    # Log ticks default to mathtext labels, which stay off (text.parse_math): plain numbers instead.
    bar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
    bar.ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    fig.tight_layout()
    top_cell = np.unravel_index(int(values.argmax()), values.shape)
    description = (
        f"Grid of source namespaces (rows) by destination namespaces (columns), darker is more plaintext. "
        f"The largest is {grid.index[top_cell[0]]} to {grid.columns[top_cell[1]]} with {compact(values.max())}."
    )
    return Chart(key, title, description, to_svg(fig, key))


# -- readiness over past runs ------------------------------------------------------------------------------


def burndown(history: Sequence[dict[str, Any]], limit: int = 60) -> Chart:
    """Workloads by verdict, one stacked bar per run (oldest left). `history`: headline rows, newest first."""
    key, title = "burndown", "Readiness over past runs"
    runs = list(reversed(list(history)[:limit]))
    if not runs:
        return Chart(key, title, "No runs yet.", _empty("No published runs yet", key))
    labels = [_run_label(r.get("generated_at") or r.get("run_id", "")) for r in runs]
    x = np.arange(len(runs))
    fig, ax = plt.subplots(figsize=(min(max(4.5, 2.5 + 0.3 * len(runs)), 10), 2.8))
    bottom = np.zeros(len(runs))
    for verdict in BURNDOWN_ORDER:
        counts = np.array([float(r.get("verdicts", {}).get(verdict, 0) or 0) for r in runs])
        if not counts.any():
            continue
        ax.bar(
            x, counts, bottom=bottom, width=0.75, color=VERDICT_COLOURS[verdict], hatch=VERDICT_HATCHES.get(verdict),
            edgecolor="white", linewidth=0.5, label=verdict,
        )  # fmt: skip
        bottom += counts
    step = max(1, len(runs) // 12)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xticks(
        x[::step], labels[::step], rotation=0 if len(runs) <= 6 else 35, ha="center" if len(runs) <= 6 else "right"
    )
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.set_ylabel("workloads")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    first, last = runs[0].get("verdicts", {}), runs[-1].get("verdicts", {})
    description = (
        f"Stacked bars of workloads by verdict for the last {len(runs)} run(s), oldest on the left. "
        f"ENFORCED went from {first.get('ENFORCED', 0)} to {last.get('ENFORCED', 0)}, "
        f"BLOCKED from {first.get('BLOCKED', 0)} to {last.get('BLOCKED', 0)}."
    )
    return Chart(key, title, description, to_svg(fig, key))


def _run_label(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%b %d\n%H:%M")
    except ValueError:
        return _short(stamp, 18)


def render_all(run: RunResult, history: Sequence[dict[str, Any]] = ()) -> list[Chart]:
    """The report's charts, in page order."""
    return [volume_by_namespace(run), plaintext_over_time(run), plaintext_heatmap(run), burndown(history)]
