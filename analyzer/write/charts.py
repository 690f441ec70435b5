"""The report's charts, drawn as inline SVG strings (no files, no fonts to fetch, no matplotlib).

Every chart returns a `Chart`: the SVG twice (for wide screens and print, and narrower with larger
text for phones) and a one-sentence description for screen readers. The charts only arrange what
the analysis produced; label values are untrusted text, escaped by `svg` and drawn as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analyzer.model.report import RunResult
from analyzer.write.palette import (
    BURNDOWN_ORDER,
    MTLS_COLOUR,
    PLAINTEXT_COLOUR,
    VERDICT_COLOURS,
    VERDICT_HATCHES,
    compact,
)
from analyzer.write.svg import GRID, MUTED, Canvas, integer_ticks, log_ticks, nice_ticks, text_width, time_ticks

UNIT_OF = {"http": "requests", "grpc": "requests", "tcp": "connections"}
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # shown as escapes
LABEL_CHARS = 40  # long (or hostile) label values are cut on the axes; the tables have them whole

PHONE_WIDTH = 310.0  # points: a 390 px screen shows it at about 1.2 px per point, so 10 pt text stays ~12 px
# A non-zero cell is never near-white: the colour scale starts at this depth of ColorBrewer's Oranges.
HEATMAP_FLOOR = 0.3
_ORANGES = ["#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704"]


def heatmap_colour(value: float) -> tuple[float, float, float, float]:
    """RGBA in 0..1 for `value` in 0..1: Oranges from HEATMAP_FLOOR to its darkest."""
    at = (HEATMAP_FLOOR + (1 - HEATMAP_FLOOR) * min(max(float(value), 0.0), 1.0)) * (len(_ORANGES) - 1)
    low = min(int(at), len(_ORANGES) - 2)
    a, b = _rgb(_ORANGES[low]), _rgb(_ORANGES[low + 1])
    mix = at - low
    red, green, blue = (x + (y - x) * mix for x, y in zip(a, b, strict=True))
    return (red, green, blue, 1.0)


def _rgb(colour: str) -> tuple[float, float, float]:
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)


def _hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    description: str  # alt text: what the chart shows, in words
    svg: str
    phone_svg: str = ""  # the same chart laid out for a ~390 px screen, text still legible


@dataclass(frozen=True, slots=True)
class _Type:
    """Text sizes in points: the phone layout's are larger, as its chart is shown smaller."""

    body: float
    title: float
    tick: float
    small: float  # the smallest text of a chart: 8 pt wide, 10 pt on a phone


WIDE_TYPE, PHONE_TYPE = _Type(9, 10, 9, 8), _Type(11, 11.5, 10.5, 10)


def for_phone(draw: Callable[..., Chart], *args: Any) -> Chart:
    """The chart twice: for wide screens and print, and narrower with larger text for phones."""
    wide, phone = draw(*args, phone=False), draw(*args, phone=True)
    return Chart(wide.key, wide.title, wide.description, wide.svg, phone.svg)


def _canvas(key: str, phone: bool, width: float, height: float) -> Canvas:
    return Canvas(width, height, prefix=f"p-{key}" if phone else key)


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = _BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", str(text).replace("\n", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty(message: str, key: str, phone: bool = False) -> str:
    canvas = _canvas(key, phone, PHONE_WIDTH if phone else 432.0, 43.0)
    canvas.text(0, 21.5, message, 10, fill=MUTED)
    return canvas.svg()


def _legend(canvas: Canvas, x: float, y: float, entries: list[tuple[str, str]], size: float) -> None:
    """Swatches and names in a row from (x, y)."""
    for name, fill in entries:
        canvas.rect(x, y - size * 0.45, size * 1.6, size * 0.9, fill)
        canvas.text(x + size * 2, y, name, size)
        x += size * 2.6 + text_width(name, size)


def _legend_width(entries: list[tuple[str, str]], size: float) -> float:
    return sum(size * 2.6 + text_width(name, size) for name, _ in entries)


def _y_axis(
    canvas: Canvas,
    left: float,
    top: float,
    height: float,
    ticks: list[float],
    scale: float,
    size: float,
    right: float = 0.0,
    labels: Callable[[float], str] = compact,
) -> None:
    """Tick labels left of the axis at `left`; light grid lines across to `right` when given."""
    canvas.line(left, top, left, top + height)
    for tick in ticks:
        y = top + height - tick * scale
        if right:
            canvas.line(left, y, right, y, GRID, 0.6)
        canvas.line(left - 3, y, left, y)
        canvas.text(left - 5, y, labels(tick), size, anchor="end")


def _x_axis(
    canvas: Canvas, left: float, bottom: float, width: float, ticks: list[float], scale: float, size: float
) -> None:
    canvas.line(left, bottom, left + width, bottom)
    for tick in ticks:
        x = left + tick * scale
        canvas.line(x, bottom, x, bottom + 3)
        canvas.text(x, bottom + 3 + size * 0.8, compact(tick), size, anchor="middle")


# -- mTLS and plaintext per destination namespace ----------------------------------------------------


def _volume_frame(run: RunResult) -> pd.DataFrame:
    rows = [(e.destination_namespace, e.unit, e.mtls_count, e.plaintext_count) for e in run.edges]
    frame = pd.DataFrame(rows, columns=["namespace", "unit", "mtls", "plaintext"])
    return frame.groupby(["unit", "namespace"], as_index=False)[["mtls", "plaintext"]].sum()


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
        panels.append((unit, part.head(top), len(part) - min(len(part), top)))
    svg = _draw_volume(key, panels, top, phone)
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
    return Chart(key, title, description, svg)


def _draw_volume(key: str, panels: list[tuple[str, pd.DataFrame, int]], top: int, phone: bool) -> str:
    t = PHONE_TYPE if phone else WIDE_TYPE
    width = PHONE_WIDTH if phone else 331.0
    row = 26.0 if phone else 20.0
    names = {unit: [_short(n, 18 if phone else 28) for n in part.namespace] for unit, part, _ in panels}
    left = 8 + max(text_width(n, t.tick) for ns in names.values() for n in ns)
    heights = [46 + row * len(part) + 36 for _, part, _ in panels]
    total_w = width if phone else width * len(panels)
    canvas = _canvas(key, phone, total_w, sum(heights) if phone else max(heights))
    plaintext_fill = canvas.hatch("//", PLAINTEXT_COLOUR)
    legend = [("mTLS", MTLS_COLOUR), ("plaintext", plaintext_fill)]
    _legend(canvas, total_w - _legend_width(legend, t.body) - 4, 10, legend, t.body)
    x0 = y0 = 0.0
    for (unit, part, more), height in zip(panels, heights, strict=True):
        canvas.text(
            x0 + 4, y0 + 26, unit + (f" (top {top}; {more} more in the CSV)" if more else ""), t.title, bold=True
        )
        plot_left, plot_top = x0 + left, y0 + 40
        plot_w = width - left - 10
        peak = float(part.total.max())
        ticks = nice_ticks(peak, 4 if phone else 5)
        # The scale leaves room right of every bar for its "n% plaintext" label.
        scale = min(
            [plot_w / ticks[-1]]
            + [
                (plot_w - 4 - text_width(_share_label(m, p), t.small)) / (m + p)
                for m, p in zip(part.mtls, part.plaintext, strict=True)
                if p > 0
            ]
        )
        span = plot_w / scale
        for i, (name, m, p) in enumerate(zip(names[unit], part.mtls, part.plaintext, strict=True)):
            y = plot_top + i * row
            canvas.text(plot_left - 5, y + row / 2, name, t.tick, anchor="end")
            canvas.rect(plot_left, y + row * 0.1, m * scale, row * 0.8, MTLS_COLOUR)
            canvas.rect(plot_left + m * scale, y + row * 0.1, p * scale, row * 0.8, plaintext_fill)
            if p > 0:
                canvas.text(plot_left + (m + p) * scale + 3, y + row / 2, _share_label(m, p), t.small, fill="#333333")
        bottom = plot_top + row * len(part)
        canvas.line(plot_left, plot_top, plot_left, bottom)
        _x_axis(canvas, plot_left, bottom, plot_w, [v for v in ticks if v <= span], scale, t.tick)
        canvas.text(plot_left + plot_w / 2, bottom + 3 + t.tick * 2.4, f"{unit} in the window", t.body, anchor="middle")
        if phone:
            y0 += height
        else:
            x0 += width
    return canvas.svg()


# -- plaintext over the lookback window ---------------------------------------------------------------


def plaintext_over_time(run: RunResult, *, phone: bool = False) -> Chart:
    key, title = "timeline", "Plaintext over the lookback window"
    sums = _plaintext_steps(run)
    if not sums:
        return Chart(key, title, "No plaintext in the window.", _empty("No plaintext in the window", key, phone))
    units: list[str] = [u for u in ("requests", "connections") if u in sums]
    steps = {u: _step_series(sums[u]) for u in units}
    stamps = steps[units[0]].index.union(steps[units[-1]].index).sort_values()
    gaps = stamps.to_series().diff().dropna()
    step = gaps[gaps > pd.Timedelta(0)].min() if not gaps.empty else pd.Timedelta(hours=1)
    start = pd.Timestamp(run.window_start)
    end = max(pd.Timestamp(run.window_end), stamps.max())
    grid = pd.date_range(end=end, periods=max(1, int((end - start) / step)), freq=step)
    grid = grid.union(stamps)  # steps with no plaintext are zero, not missing
    series = {u: steps[u].groupby(level=0).sum().reindex(grid, fill_value=0) for u in units}
    svg = _draw_timeline(key, series, start, end, _duration(step), phone)
    peaks = [f"{u} peak {compact(series[u].max())} per {_duration(step)}" for u in units]
    description = f"Plaintext volume per {_duration(step)} over the window; " + ", ".join(peaks) + "."
    return Chart(key, title, description, svg)


def _draw_timeline(
    key: str, series: dict[str, pd.Series], start: pd.Timestamp, end: pd.Timestamp, step: str, phone: bool
) -> str:
    t = PHONE_TYPE if phone else WIDE_TYPE
    width = PHONE_WIDTH if phone else 648.0
    panel = 165.0 if phone else 137.0
    canvas = _canvas(key, phone, width, panel * len(series) + 30)
    ticks = {u: nice_ticks(float(s.max()), 4) for u, s in series.items()}
    left = 14 + t.body * 2.4 + max(text_width(compact(v), t.tick) for ts in ticks.values() for v in ts)
    plot_w = width - left - 12
    t0, span = start.timestamp(), max((end - start).total_seconds(), 1.0)

    def x_of(stamp: pd.Timestamp) -> float:
        return left + min(max((stamp.timestamp() - t0) / span, 0.0), 1.0) * plot_w

    for i, (unit, values) in enumerate(series.items()):
        top = i * panel + 24
        height = panel - 44
        canvas.text(left, top - 12, f"plaintext {unit}", t.title, bold=True)
        scale = height / (ticks[unit][-1] or 1.0)
        _y_axis(canvas, left, top, height, ticks[unit], scale, t.tick, right=left + plot_w)
        canvas.text(10, top + height / 2, f"{unit}\nper {step}", t.body, anchor="middle", rotate=-90)
        base = top + height
        xs = [x_of(s) for s in values.index]
        ys = [base - float(v) * scale for v in values.to_numpy()]
        # "pre" steps: each value is what arrived in the step that ends at its timestamp.
        line = f"M{xs[0]:.1f},{ys[0]:.1f}" + "".join(f"V{y:.1f}H{x:.1f}" for x, y in zip(xs[1:], ys[1:], strict=True))
        canvas.path(f"{line}V{base:.1f}H{xs[0]:.1f}Z", fill=PLAINTEXT_COLOUR, opacity=0.35)
        canvas.path(line, stroke=PLAINTEXT_COLOUR, width=1.2)
        canvas.line(left, base, left + plot_w, base)
    bottom = len(series) * panel - 20
    for tick in time_ticks(start.to_pydatetime(), end.to_pydatetime(), 4 if phone else 7):
        x, label = x_of(pd.Timestamp(tick)), tick.strftime("%b %d\n%H:%M")
        half = text_width("Mmm 00", t.tick) / 2
        if x - half < 0 or x + half > width:
            continue  # a tick at the very edge would put its label off the canvas
        canvas.line(x, bottom, x, bottom + 3)
        canvas.text(x, bottom + 6 + t.tick, label, t.tick, anchor="middle")
    return canvas.svg()


# -- who sends plaintext to whom -------------------------------------------------------------------------


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
    largest = []
    for unit, grid in grids:
        values = grid.to_numpy(dtype=float)
        i, j = np.unravel_index(int(values.argmax()), values.shape)
        tie = (values == values.max()).sum() > 1
        largest.append(
            f"the most plaintext {unit}, {compact(values.max())}"
            + (" each, on several pairs" if tie else f", go from {grid.index[i]} to {grid.columns[j]}")
        )
    description = (
        "Grids of source namespaces (rows) by destination namespaces (columns), one per unit with its own "
        "scale, darker is more plaintext and every non-zero cell is coloured; " + "; ".join(largest) + "."
    )
    return Chart(key, title, description, _draw_heatmap(key, grids, phone))


def _draw_heatmap(key: str, grids: list[tuple[str, pd.DataFrame]], phone: bool) -> str:
    t = PHONE_TYPE if phone else WIDE_TYPE
    row_labels = {u: [_short(i, 16 if phone else 28) for i in g.index] for u, g in grids}
    column_labels = {u: [_short(c, 14 if phone else 24) for c in g.columns] for u, g in grids}
    left = 8 + t.body * 1.6 + max(text_width(label, t.tick) for ls in row_labels.values() for label in ls)
    columns = max(g.shape[1] for _, g in grids)
    bar = 62.0  # the colour bar, its ticks and its label
    width = PHONE_WIDTH if phone else min(max(left + 54.0 * columns + bar + 8, 396.0), 720.0)
    cell_w = (width - left - bar - 8) / columns
    cell_h = 36.0 if phone else 30.0
    angle = 40 if phone else 35
    drops = [
        max(text_width(label, t.tick) for label in column_labels[u]) * math.sin(math.radians(angle)) for u, _ in grids
    ]
    heights = [
        24 + max(cell_h * g.shape[0], 60.0) + drop + 12 + t.body * 2 for (_, g), drop in zip(grids, drops, strict=True)
    ]
    canvas = _canvas(key, phone, width, sum(heights))
    y0 = 0.0
    for (unit, grid), height, drop in zip(grids, heights, drops, strict=True):
        values = grid.to_numpy(dtype=float)
        positive = values[values > 0]
        vmax = max(float(values.max()), 1.0)
        vmin = float(positive.min()) if positive.size else vmax
        vmin = vmin if vmin < vmax else vmax / 10
        low, high = math.log10(vmin), math.log10(vmax)

        def depth(v: float, low: float = low, high: float = high) -> float:
            return min(max((math.log10(v) - low) / (high - low), 0.0), 1.0)

        top = y0 + 24
        canvas.text(left, y0 + 10, f"plaintext {unit}", t.title, bold=True)
        numbered = values.size <= 200
        for i, name in enumerate(row_labels[unit]):
            canvas.text(left - 5, top + (i + 0.5) * cell_h, name, t.tick, anchor="end")
            for j in range(values.shape[1]):
                v = values[i, j]
                if v <= 0:
                    continue
                x, y = left + j * cell_w, top + i * cell_h
                canvas.rect(x, y, cell_w, cell_h, _hex(heatmap_colour(depth(v))), "white", 1.0)
                if numbered and text_width(compact(v), t.small) + 4 <= cell_w:
                    ink = "white" if depth(v) > 0.7 else "black"
                    canvas.text(x + cell_w / 2, y + cell_h / 2, compact(v), t.small, anchor="middle", fill=ink)
        grid_h = cell_h * values.shape[0]
        for j, name in enumerate(column_labels[unit]):
            x = left + (j + 0.5) * cell_w
            canvas.text(x, top + grid_h + 8, name, t.tick, anchor="end", rotate=-angle)
        canvas.text(
            left + cell_w * values.shape[1] / 2,
            top + grid_h + drop + 12 + t.body,
            "destination namespace",
            t.body,
            anchor="middle",
        )
        canvas.text(8, top + grid_h / 2, "source namespace", t.body, anchor="middle", rotate=-90)
        _colour_bar(canvas, left + cell_w * columns + 10, top, max(grid_h, 60.0), (vmin, vmax), unit, t)
        y0 += height
    return canvas.svg()


def _colour_bar(
    canvas: Canvas, x: float, top: float, height: float, limits: tuple[float, float], unit: str, t: _Type
) -> None:
    """The log scale of one grid: the gradient, a tick per power of ten, and its unit."""
    vmin, vmax = limits
    fill = canvas.gradient([(i / 8, _hex(heatmap_colour(i / 8))) for i in range(9)])
    canvas.rect(x, top, 10, height, fill)
    low, high = math.log10(vmin), math.log10(vmax)
    for tick in log_ticks(vmin, vmax):
        y = top + height - (math.log10(tick) - low) / ((high - low) or 1.0) * height
        canvas.line(x + 10, y, x + 13, y)
        canvas.text(x + 15, y, compact(tick), t.tick)
    canvas.text(x + 52, top + height / 2, f"plaintext {unit}", t.body, anchor="middle", rotate=-90)


# -- readiness over past runs ------------------------------------------------------------------------------


def burndown(history: Sequence[dict[str, Any]], limit: int = 60, *, phone: bool = False) -> Chart:
    """Workloads by verdict, one stacked bar per run (oldest left). `history`: headline rows, newest first."""
    key, title = "burndown", "Readiness over past runs"
    runs = list(reversed(list(history)[:limit]))
    if not runs:
        return Chart(key, title, "No runs yet.", _empty("No published runs yet", key, phone))
    labels = _run_labels([str(r.get("generated_at") or r.get("run_id", "")) for r in runs])
    counts = {v: [float(r.get("verdicts", {}).get(v, 0) or 0) for r in runs] for v in BURNDOWN_ORDER}
    counts = {v: c for v, c in counts.items() if any(c)}
    return Chart(key, title, _burndown_description(runs), _draw_burndown(key, labels, counts, phone))


def _draw_burndown(key: str, labels: list[str], counts: dict[str, list[float]], phone: bool) -> str:
    t = PHONE_TYPE if phone else WIDE_TYPE
    n = len(labels)
    width = PHONE_WIDTH if phone else min(max(324.0, 180 + 21.6 * n), 720.0)
    canvas = _canvas(key, phone, width, 302.0 if phone else 202.0)
    fills = {
        v: canvas.hatch(VERDICT_HATCHES[v], VERDICT_COLOURS[v]) if v in VERDICT_HATCHES else VERDICT_COLOURS[v]
        for v in counts
    }
    legend = [(v, fills[v]) for v in reversed(list(counts))]  # top of the stack first
    legend_w = 0.0 if phone else 36 + max((text_width(v, t.body) for v, _ in legend), default=0)
    totals = [sum(c[i] for c in counts.values()) for i in range(n)]
    ticks = integer_ticks(max(totals, default=1.0), 6)
    left = 14 + t.body * 1.6 + max(text_width(compact(v), t.tick) for v in ticks)
    step = -(-n // (5 if phone else 10))  # at most 5 or 10 labels: slanted ones must not overlap
    slanted = n > (3 if phone else 6)
    if slanted:  # the first slanted label reaches left of its bar: keep it on the canvas
        reach = text_width(labels[0].replace("\n", " "), t.tick) * math.cos(math.radians(35))
        left = max(left, reach - (width - left - legend_w - 8) / n / 2 + 4)
    drop = (max(text_width(label.replace("\n", " "), t.tick) for label in labels) * 0.6 + 14) if slanted else 28
    legend_h = (-(-len(legend) // 2)) * (t.body * 1.6) + 8 if phone else 0.0
    plot_top, plot_w = 10.0, width - left - legend_w - 8
    plot_h = canvas.height - plot_top - drop - legend_h - 6
    scale = plot_h / ticks[-1]
    _y_axis(canvas, left, plot_top, plot_h, ticks, scale, t.tick, labels=lambda v: f"{v:.0f}")
    canvas.text(10, plot_top + plot_h / 2, "workloads", t.body, anchor="middle", rotate=-90)
    slot = plot_w / n
    base = plot_top + plot_h
    canvas.line(left, base, left + plot_w, base)
    stacked = [0.0] * n
    for verdict, values in counts.items():
        for i, v in enumerate(values):
            y = base - (stacked[i] + v) * scale
            canvas.rect(left + (i + 0.125) * slot, y, slot * 0.75, v * scale, fills[verdict], "white", 0.5)
            stacked[i] += v
    for i in range(0, n, step):
        x = left + (i + 0.5) * slot
        canvas.line(x, base, x, base + 3)
        if slanted:
            canvas.text(x, base + 8, labels[i].replace("\n", " "), t.tick, anchor="end", rotate=-35)
        else:
            canvas.text(x, base + 6 + t.tick, labels[i], t.tick, anchor="middle")
    if phone:
        for k, (name, fill) in enumerate(legend):
            _legend(
                canvas, left + (k % 2) * (plot_w / 2), base + drop + 4 + (k // 2) * t.body * 1.6, [(name, fill)], t.body
            )
    else:
        for k, (name, fill) in enumerate(legend):
            _legend(canvas, left + plot_w + 12, plot_top + 6 + k * t.body * 1.7, [(name, fill)], t.body)
    return canvas.svg()


def _share_label(mtls: float, plaintext: float) -> str:
    share = plaintext / (mtls + plaintext)
    return f"{share:.0%} plaintext" if share >= 0.01 else "<1% plaintext"


def _most(frame: pd.DataFrame, column: str) -> pd.Series | None:
    """The one row with the most `column`; None when it is zero or shared (a tie names no single one)."""
    ranked = frame.sort_values(column, ascending=False)
    if ranked.empty or ranked[column].iloc[0] <= 0:
        return None
    if len(ranked) > 1 and ranked[column].iloc[1] == ranked[column].iloc[0]:
        return None
    return ranked.iloc[0]


def _plaintext_steps(run: RunResult) -> dict[str, dict[datetime, float]]:
    """Plaintext per unit and step, summed straight from the result's points: a frame of every
    point (all eleven columns) cost more than the chart at 40,000 edges, and it is drawn twice."""
    sums: dict[str, dict[datetime, float]] = {}
    for point in run.timeline:  # plaintext only: the analysis kept nothing else
        per_step = sums.setdefault(UNIT_OF.get(point.protocol, "requests"), {})
        per_step[point.timestamp] = per_step.get(point.timestamp, 0.0) + point.count
    return sums


def _step_series(per_step: dict[datetime, float]) -> pd.Series:
    index = pd.DatetimeIndex(list(per_step))
    return pd.Series(list(per_step.values()), index=index if index.tz else index.tz_localize("UTC"), dtype="float64")


def _duration(step: pd.Timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60}h"
    return f"{minutes}m"


def _heatmap_grid(frame: pd.DataFrame, top: int) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("source", "destination"):
        keep = frame.groupby(column)["plaintext"].sum().nlargest(top).index
        frame[column] = frame[column].where(frame[column].isin(keep), "(other)")
    grid = frame.pivot_table(index="source", columns="destination", values="plaintext", aggfunc="sum", fill_value=0)
    return grid.loc[grid.sum(axis=1).sort_values(ascending=False).index, grid.sum().sort_values(ascending=False).index]


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


def render_all(run: RunResult, history: Sequence[dict[str, Any]] = ()) -> list[Chart]:
    """The report's charts, in page order, each for wide screens and for phones."""
    return [
        for_phone(volume_by_namespace, run),
        for_phone(plaintext_over_time, run),
        for_phone(plaintext_heatmap, run),
        for_phone(burndown, history),
    ]
