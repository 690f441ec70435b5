"""Matplotlib charts rendered to inline SVG strings (no files, no fonts to fetch).

Imported only when a page is drawn (matplotlib costs ~0.3 s to import): the colours and number
format the pages share live in `palette`.

Every chart returns a `Chart`: the SVG and a one-sentence description for screen readers. The
charts only arrange what the analysis produced; label values are untrusted text, drawn as text.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import dates, ticker
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure

from analyzer.model.report import RunResult
from analyzer.write.palette import (
    BURNDOWN_ORDER,
    MTLS_COLOUR,
    PLAINTEXT_COLOUR,
    VERDICT_COLOURS,
    VERDICT_HATCHES,
    compact,
)

log = logging.getLogger("mtls_readiness")

UNIT_OF = {"http": "requests", "grpc": "requests", "tcp": "connections"}
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # shown as escapes
LABEL_CHARS = 40  # long (or hostile) label values are cut on the axes; the tables have them whole

matplotlib.rcParams.update(
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


PHONE_WIDTH = 4.3  # inches: a 390 px screen shows it at about 1.2 px per point, so 11 pt text stays ~13 px
# A non-zero cell is never near-white: the colour scale starts at this depth of "Oranges".
HEATMAP_FLOOR = 0.3
HEATMAP_COLOURS = ListedColormap(matplotlib.colormaps["Oranges"](np.linspace(HEATMAP_FLOOR, 1.0, 256)))


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    description: str  # alt text: what the chart shows, in words
    svg: str
    phone_svg: str = ""  # the same chart laid out for a ~390 px screen, text still legible


def _draw(draw: Callable[..., Chart], phone: bool, *args: Any) -> Chart:
    if not phone:
        return draw(*args, phone=False)
    with matplotlib.rc_context(
        {"font.size": 11, "axes.titlesize": 11.5, "xtick.labelsize": 10.5, "ytick.labelsize": 10.5}
    ):
        return draw(*args, phone=True)


def _pair(wide: Chart, phone: Chart) -> Chart:
    return Chart(wide.key, wide.title, wide.description, wide.svg, _prefix_ids(phone.svg, "p"))


def for_phone(draw: Callable[..., Chart], *args: Any) -> Chart:
    """The chart twice: for wide screens and print, and narrower with larger text for phones."""
    return _pair(_draw(draw, False, *args), _draw(draw, True, *args))


def _subplots(*grid: int, figsize: tuple[float, float], **kw: Any) -> tuple[Figure, Any]:
    """`pyplot.subplots` without pyplot: no global figure registry to close, and pyplot (with
    its backend machinery) stays unimported."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kw)


def to_svg(fig: Figure, prefix: str = "") -> str:
    """Every chart is laid out by `tight_layout` (legends and colour bars included) before this, so
    no second layout pass (`bbox_inches="tight"`, a full extra draw) is needed."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
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
    text = _BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", str(text).replace("\n", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty(message: str, key: str, phone: bool = False) -> str:
    fig, ax = _subplots(figsize=(PHONE_WIDTH if phone else 6, 0.6))
    ax.axis("off")
    ax.text(0.0, 0.5, message, ha="left", va="center", color="#555555", fontsize=10)
    return to_svg(fig, key)


# -- mTLS and plaintext per destination namespace ----------------------------------------------------


def _volume_frame(run: RunResult) -> pd.DataFrame:
    rows = [(e.destination_namespace, e.unit, e.mtls_count, e.plaintext_count) for e in run.edges]
    frame = pd.DataFrame(rows, columns=["namespace", "unit", "mtls", "plaintext"])
    return frame.groupby(["unit", "namespace"], as_index=False)[["mtls", "plaintext"]].sum()


def _most(frame: pd.DataFrame, column: str) -> pd.Series | None:
    """The one row with the most `column`; None when it is zero or shared (a tie names no single one)."""
    ranked = frame.sort_values(column, ascending=False)
    if ranked.empty or ranked[column].iloc[0] <= 0:
        return None
    if len(ranked) > 1 and ranked[column].iloc[1] == ranked[column].iloc[0]:
        return None
    return ranked.iloc[0]


def volume_by_namespace(run: RunResult, top: int = 20, *, phone: bool = False) -> Chart:
    """Requests and TCP connections in separate panels: never one scale for both."""
    key, title = "volume", "mTLS and plaintext per destination namespace"
    frame = _volume_frame(run)
    frame = frame[(frame.mtls + frame.plaintext) > 0]
    if frame.empty:
        message = "No inbound traffic in the window"
        return Chart(key, title, message + ".", _empty(message, key, phone))
    top = min(top, 10) if phone else top
    units = [u for u in ("requests", "connections") if (frame.unit == u).any()]
    panels = []
    for unit in units:
        part = frame[frame.unit == unit].assign(total=lambda f: f.mtls + f.plaintext)
        part = part.sort_values(["plaintext", "total"], ascending=False)
        panels.append((unit, part.head(top).iloc[::-1], len(part) - min(len(part), top)))
    rows = [len(p[1]) for p in panels]
    if phone:
        fig, grid = _subplots(
            len(panels), 1, figsize=(PHONE_WIDTH, 0.36 * sum(rows) + 1.5 * len(panels)), squeeze=False,
            gridspec_kw={"height_ratios": [r + 2 for r in rows]},
        )  # fmt: skip
        axes = list(grid[:, 0])
    else:
        fig, grid = _subplots(1, len(panels), figsize=(4.6 * len(panels), 0.28 * max(rows) + 1.1), squeeze=False)
        axes = list(grid[0])
    for ax, (unit, part, more) in zip(axes, panels, strict=True):
        names = [_short(n, 18 if phone else 28) for n in part.namespace]
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
                ax.text(m + p, yi, label, va="center", fontsize=10 if phone else 8, color="#333333")
        ax.set_title(f"{unit}" + (f" (top {top}; {more} more in the CSV)" if more else ""))
        ax.set_xlabel(f"{unit} in the window")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
        ax.xaxis.set_major_locator(ticker.MaxNLocator(4 if phone else 6))
        ax.margins(x=0.45 if phone else 0.18)
    axes[0].legend(loc="lower right", frameon=False, bbox_to_anchor=(1.0, 1.0), ncols=2)
    fig.tight_layout()
    worst = _most(frame, "plaintext")
    if worst is not None:
        most = f"Most plaintext goes to {worst.namespace} ({compact(worst.plaintext)} {worst.unit})."
    elif (frame.plaintext > 0).any():
        peak = frame.plaintext.max()
        tied = sorted(frame[frame.plaintext == peak].namespace)
        most = f"The most plaintext, {compact(peak)} each, goes to {', '.join(tied)}."
    else:
        most = "No namespace received plaintext."
    description = (
        f"Horizontal bars per destination namespace, mTLS in blue and plaintext in hatched orange, "
        f"{' and '.join(units)} in separate panels. " + most
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


def plaintext_over_time(run: RunResult, *, phone: bool = False) -> Chart:
    key, title = "timeline", "Plaintext over the lookback window"
    timeline = _plaintext_timeline(run)
    if timeline.empty:
        return Chart(key, title, "No plaintext in the window.", _empty("No plaintext in the window", key, phone))
    stamps = pd.DatetimeIndex(sorted(timeline["timestamp"].unique()))
    gaps = stamps.to_series().diff().dropna()
    step = gaps[gaps > pd.Timedelta(0)].min() if not gaps.empty else pd.Timedelta(hours=1)
    end = max(pd.Timestamp(run.window_end), stamps.max())
    grid = pd.date_range(end=end, periods=max(1, int((end - pd.Timestamp(run.window_start)) / step)), freq=step)
    grid = grid.union(stamps)  # steps with no plaintext are zero, not missing
    units = [u for u in ("requests", "connections") if (timeline.unit == u).any()]
    size = (PHONE_WIDTH, 2.3 * len(units) + 0.6) if phone else (9, 1.9 * len(units) + 0.4)
    fig, axes = _subplots(len(units), 1, figsize=size, sharex=True, squeeze=False)
    peaks = []
    for ax, unit in zip(axes[:, 0], units, strict=True):
        series = timeline[timeline.unit == unit].groupby("timestamp")["count"].sum().reindex(grid, fill_value=0)
        ax.fill_between(series.index, series.values, step="pre", color=PLAINTEXT_COLOUR, alpha=0.35, linewidth=0)
        ax.step(series.index, series.values, where="pre", color=PLAINTEXT_COLOUR, linewidth=1.2)
        ax.set_ylabel(f"{unit}\nper {_duration(step)}")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
        ax.yaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.set_title(f"plaintext {unit}")
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        peaks.append(f"{unit} peak {compact(series.max())} per {_duration(step)}")
    axes[-1, 0].set_xlim(pd.Timestamp(run.window_start), end)
    if phone:
        axes[-1, 0].xaxis.set_major_locator(dates.AutoDateLocator(minticks=2, maxticks=4))
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


def _heatmap_grid(frame: pd.DataFrame, top: int) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("source", "destination"):
        keep = frame.groupby(column)["plaintext"].sum().nlargest(top).index
        frame[column] = frame[column].where(frame[column].isin(keep), "(other)")
    grid = frame.pivot_table(index="source", columns="destination", values="plaintext", aggfunc="sum", fill_value=0)
    return grid.loc[grid.sum(axis=1).sort_values(ascending=False).index, grid.sum().sort_values(ascending=False).index]


def plaintext_heatmap(run: RunResult, top: int = 20, *, phone: bool = False) -> Chart:
    """One grid per unit, each with its own colour scale: 13 plaintext connections must not look like
    nothing beside a million requests. Every non-zero cell is coloured and, on small grids, numbered."""
    key, title = "heatmap", "Plaintext by source and destination namespace"
    rows = [
        (
            e.source_namespace if e.source_namespace not in ("", "unknown") else "(unknown source)",
            e.destination_namespace,
            e.unit,
            e.plaintext_count,
        )
        for e in run.edges
        if e.plaintext_count > 0
    ]
    if not rows:
        return Chart(key, title, "No plaintext in the window.", _empty("No plaintext in the window", key, phone))
    top = min(top, 8) if phone else top
    frame = pd.DataFrame(rows, columns=["source", "destination", "unit", "plaintext"])
    units = [u for u in ("requests", "connections") if (frame.unit == u).any()]
    grids = [(u, _heatmap_grid(frame[frame.unit == u], top)) for u in units]
    columns = max(g.shape[1] for _, g in grids)
    width = PHONE_WIDTH if phone else min(max(2.5 + 0.75 * columns, 5.5), 10)
    heights = [max(1.6 + (0.5 if phone else 0.42) * g.shape[0], 2.6) for _, g in grids]
    fig, axes = _subplots(
        len(grids), 1, figsize=(width, sum(heights) + 0.8), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    largest = []
    for ax, (unit, grid) in zip(axes[:, 0], grids, strict=True):
        values = grid.to_numpy(dtype=float)
        masked = np.ma.masked_less_equal(values, 0)
        vmax = max(values.max(), 1.0)
        vmin = float(masked.min())
        mesh = ax.pcolormesh(
            masked, cmap=HEATMAP_COLOURS, norm=LogNorm(vmin=vmin if vmin < vmax else vmax / 10, vmax=vmax),
            edgecolors="white", linewidth=1,
        )  # fmt: skip
        ax.set_xticks(
            np.arange(grid.shape[1]) + 0.5,
            [_short(c, 14 if phone else 24) for c in grid.columns],
            rotation=40 if phone else 35,
            ha="right",
            rotation_mode="anchor",
        )
        ax.set_yticks(np.arange(grid.shape[0]) + 0.5, [_short(i, 16 if phone else 28) for i in grid.index])
        ax.invert_yaxis()
        ax.set_title(f"plaintext {unit}")
        ax.set_xlabel("destination namespace")
        ax.set_ylabel("source namespace")
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        if values.size <= 200:
            for (i, j), v in np.ndenumerate(values):
                if v > 0:
                    ax.text(
                        j + 0.5, i + 0.5, compact(v), ha="center", va="center", fontsize=10 if phone else 8,
                        color="white" if mesh.norm(v) > 0.7 else "black",
                    )  # fmt: skip
        bar = fig.colorbar(mesh, ax=ax, shrink=0.9, pad=0.02, aspect=15)
        bar.set_label(f"plaintext {unit}")
        if bar.solids is not None:
            bar.solids.set_rasterized(False)  # vector: a raster gradient would be an embedded PNG (a data: request)
        # Log ticks default to mathtext labels, which stay off (text.parse_math): plain numbers instead.
        bar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
        bar.ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        i, j = np.unravel_index(int(values.argmax()), values.shape)
        tie = (values == values.max()).sum() > 1
        largest.append(
            f"the most plaintext {unit}, {compact(values.max())}"
            + (" each, on several pairs" if tie else f", go from {grid.index[i]} to {grid.columns[j]}")
        )
    fig.tight_layout()
    description = (
        "Grids of source namespaces (rows) by destination namespaces (columns), one per unit with its own "
        "scale, darker is more plaintext and every non-zero cell is coloured; " + "; ".join(largest) + "."
    )
    return Chart(key, title, description, to_svg(fig, key))


# -- readiness over past runs ------------------------------------------------------------------------------


def burndown(history: Sequence[dict[str, Any]], limit: int = 60, *, phone: bool = False) -> Chart:
    """Workloads by verdict, one stacked bar per run (oldest left). `history`: headline rows, newest first."""
    key, title = "burndown", "Readiness over past runs"
    runs = list(reversed(list(history)[:limit]))
    if not runs:
        return Chart(key, title, "No runs yet.", _empty("No published runs yet", key, phone))
    labels = _run_labels([str(r.get("generated_at") or r.get("run_id", "")) for r in runs])
    x = np.arange(len(runs))
    size = (PHONE_WIDTH, 4.2) if phone else (min(max(4.5, 2.5 + 0.3 * len(runs)), 10), 2.8)
    fig, ax = _subplots(figsize=size)
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
    step = -(-len(runs) // (5 if phone else 10))  # at most 5 or 10 labels: slanted ones must not overlap
    slanted = len(runs) > (3 if phone else 6)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xticks(x[::step], labels[::step], rotation=35 if slanted else 0, ha="right" if slanted else "center")
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.set_ylabel("workloads")
    handles, names = ax.get_legend_handles_labels()
    if phone:
        ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(0.0, -0.35), frameon=False, ncols=2)
    else:
        ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return Chart(key, title, _burndown_description(runs), to_svg(fig, key))


def _burndown_description(runs: list[dict[str, Any]]) -> str:
    last = runs[-1].get("verdicts", {})
    if len(runs) == 1:
        return (
            f"One stacked bar of workloads by verdict for the only run so far: "
            f"{last.get('ENFORCED', 0)} ENFORCED, {last.get('BLOCKED', 0)} BLOCKED."
        )
    first = runs[0].get("verdicts", {})

    def change(verdict: str) -> str:
        a, b = first.get(verdict, 0), last.get(verdict, 0)
        return f"{verdict} stayed at {a}" if a == b else f"{verdict} went from {a} to {b}"

    return (
        f"Stacked bars of workloads by verdict for the last {len(runs)} runs, oldest on the left. "
        f"{change('ENFORCED')}, {change('BLOCKED')}."
    )


def _run_labels(stamps: list[str]) -> list[str]:
    """Axis labels per run: date and minute, with seconds when two runs share a minute."""
    parsed: list[datetime | None] = []
    for stamp in stamps:
        try:
            parsed.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
        except ValueError:
            parsed.append(None)
    minutes = [p.strftime("%Y%m%d%H%M") for p in parsed if p is not None]
    crowded = len(minutes) != len(set(minutes))
    return [
        p.strftime("%b %d\n%H:%M:%S" if crowded else "%b %d\n%H:%M") if p is not None else _short(s, 18)
        for p, s in zip(parsed, stamps, strict=True)
    ]


def warm_up() -> None:
    """Load the fonts and the SVG backend with one tiny drawing, so the first chart starts warm."""
    fig, ax = _subplots(figsize=(1, 1))
    ax.set_title("mTLS 0123456789")
    to_svg(fig)


# (draw, argument name) in page order; the argument is looked up in `_job` by the worker.
_CHARTS: list[tuple[Callable[..., Chart], str]] = [
    (volume_by_namespace, "run"),
    (plaintext_over_time, "run"),
    (plaintext_heatmap, "run"),
    (burndown, "history"),
]
_job: dict[str, Any] = {}  # the inputs of the render in progress, inherited by forked workers


def _render(task: tuple[int, bool]) -> Chart:
    index, phone = task
    draw, argument = _CHARTS[index]
    return _draw(draw, phone, _job[argument])


def _workers() -> int:
    """Drawing is CPU-bound Python: a second process halves it when a second core is there."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(2, cores) if "fork" in multiprocessing.get_all_start_methods() else 1


def render_all(run: RunResult, history: Sequence[dict[str, Any]] = ()) -> list[Chart]:
    """The report's charts, in page order, each for wide screens and for phones. With two cores,
    drawn by two forked processes, which inherit the result instead of receiving a copy."""
    _job.update(run=run, history=history)
    tasks = [(i, phone) for i in range(len(_CHARTS)) for phone in (False, True)]
    try:
        drawn: list[Chart] | None = None
        if _workers() > 1:
            try:
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
                    drawn = list(pool.map(_render, tasks))
            except (OSError, BrokenProcessPool) as exc:  # no processes to spare: draw them here
                log.info("charts: drawing in this process (%s)", exc)
        drawn = drawn or [_render(t) for t in tasks]
        return [_pair(wide, phone) for wide, phone in zip(drawn[::2], drawn[1::2], strict=True)]
    finally:
        _job.clear()
