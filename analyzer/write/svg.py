"""A small SVG drawing surface for the report's charts: shapes, text, hatch patterns and axis ticks.

Drawing four charts this way takes milliseconds; with matplotlib it took about a second a run,
most of it laying out text. One user unit is one typographic point, as in matplotlib's SVG, so a
chart 6 in wide is 432 units and the page's CSS scales it to the screen.

Every string that reaches the SVG goes through `_text`: label values come from unauthenticated
peer metadata and must stay text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
INK = "#222222"
MUTED = "#555555"
GRID = "#e5e5e5"
CHAR_WIDTH = 0.6  # average advance of a sans-serif character, in ems: generous, so labels fit


def _text(value: str) -> str:
    """Escaped for XML; control characters (not allowed in XML 1.0) shown as '?'."""
    clean = "".join(c if c.isprintable() or c == " " else "?" for c in value)
    return escape(clean, quote=True)


def text_width(value: str, size: float) -> float:
    return len(value) * size * CHAR_WIDTH


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


# Hatches as (path inside a tile, tile size): a second cue besides colour, in the same spirit as
# matplotlib's hatch names ("//", "\\", "++", "--", "||", "xx").
_HATCH_PATHS = {
    "//": ("M0,6 L6,0 M-1,1 L1,-1 M5,7 L7,5", 6),
    "\\\\": ("M0,0 L6,6 M-1,5 L1,7 M5,-1 L7,1", 6),
    "++": ("M3,0 V6 M0,3 H6", 6),
    "--": ("M0,3 H6", 6),
    "||": ("M3,0 V6", 6),
    "xx": ("M0,0 L6,6 M0,6 L6,0", 6),
}


@dataclass
class Canvas:
    width: float
    height: float
    prefix: str  # keeps the ids of several SVGs in one page apart
    parts: list[str] = field(default_factory=list)
    defs: dict[str, str] = field(default_factory=dict)
    hatches: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "", line: float = 0.0) -> None:
        if w <= 0 or h <= 0:
            return
        edge = f' stroke="{stroke}" stroke-width="{_num(line)}"' if stroke and line else ""
        self.parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" fill="{fill}"{edge}/>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = INK, width: float = 0.8) -> None:
        self.parts.append(
            f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
            f'stroke="{stroke}" stroke-width="{_num(width)}"/>'
        )

    def path(self, d: str, fill: str = "none", stroke: str = "", width: float = 0.0, opacity: float = 1.0) -> None:
        attrs = f' fill="{fill}"'
        if stroke:
            attrs += f' stroke="{stroke}" stroke-width="{_num(width)}" stroke-linejoin="round"'
        if opacity < 1:
            attrs += f' fill-opacity="{_num(opacity)}"'
        self.parts.append(f'<path d="{d}"{attrs}/>')

    def text(
        self,
        x: float,
        y: float,
        value: str,
        size: float,
        *,
        anchor: str = "start",
        fill: str = INK,
        bold: bool = False,
        rotate: float = 0.0,
    ) -> None:
        """One or more lines (split on newlines), vertically centred on `y`."""
        lines = str(value).split("\n")
        weight = ' font-weight="bold"' if bold else ""
        turn = f' transform="rotate({_num(rotate)} {_num(x)} {_num(y)})"' if rotate else ""
        first = y - (len(lines) - 1) * size * 0.6 + size * 0.35
        spans = "".join(
            f'<tspan x="{_num(x)}" y="{_num(first + i * size * 1.2)}">{_text(line)}</tspan>'
            for i, line in enumerate(lines)
        )
        self.parts.append(
            f'<text font-size="{_num(size)}" text-anchor="{anchor}" fill="{fill}"{weight}{turn}>{spans}</text>'
        )

    def hatch(self, name: str, colour: str, ink: str = "white") -> str:
        """A fill of `colour` crossed by the hatch `name`; returns the url() to use as fill."""
        key = self.hatches.get((name, colour, ink))
        if key is None:
            key = self.hatches[(name, colour, ink)] = f"{self.prefix}-h{len(self.hatches)}"
            drawn, size = _HATCH_PATHS[name]
            self.defs[key] = (
                f'<pattern id="{key}" patternUnits="userSpaceOnUse" width="{size}" height="{size}">'
                f'<rect width="{size}" height="{size}" fill="{colour}"/>'
                f'<path d="{drawn}" stroke="{ink}" stroke-width="0.9"/></pattern>'
            )
        return f"url(#{key})"

    def gradient(self, stops: list[tuple[float, str]]) -> str:
        """A vertical gradient, bottom (offset 0) to top (offset 1); returns the url() to use as fill."""
        key = f"{self.prefix}-g{len(self.defs)}"
        body = "".join(f'<stop offset="{_num(o)}" stop-color="{c}"/>' for o, c in stops)
        self.defs[key] = f'<linearGradient id="{key}" x1="0" y1="1" x2="0" y2="0">{body}</linearGradient>'
        return f"url(#{key})"

    def svg(self) -> str:
        defs = f"<defs>{''.join(self.defs.values())}</defs>" if self.defs else ""
        w, h = _num(self.width), _num(self.height)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}" '
            f'font-family="{FONT}">{defs}{"".join(self.parts)}</svg>'
        )


# -- axes ----------------------------------------------------------------------------------------------


def nice_ticks(top: float, most: int) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least `top`, at most `most` + 1."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / max(1, most)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    count = math.ceil(top / step - 1e-9)
    return [i * step for i in range(count + 1)]


def integer_ticks(top: float, most: int) -> list[float]:
    ticks = nice_ticks(max(top, 1.0), most)
    if ticks[1] < 1 or any(t != int(t) for t in ticks):
        step = max(1, math.ceil(max(top, 1.0) / most))
        ticks = [float(i * step) for i in range(math.ceil(max(top, 1.0) / step) + 1)]
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten between `low` and `high`; the two ends when no power falls between."""
    first, last = math.ceil(math.log10(low)), math.floor(math.log10(high))
    inside = [10.0**p for p in range(first, last + 1)]
    return inside if inside else sorted({low, high})


_TIME_STEPS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160)]


def time_ticks(start: datetime, end: datetime, most: int) -> list[datetime]:
    """Round times between `start` and `end` (UTC), at most `most` of them, at least two."""
    span = end - start
    step = next((s for s in _TIME_STEPS if span / s <= most), _TIME_STEPS[-1])
    seconds = step.total_seconds()
    epoch = start.timestamp()
    first = math.ceil(epoch / seconds) * seconds
    ticks = []
    stamp = first
    while stamp <= end.timestamp():
        ticks.append(datetime.fromtimestamp(stamp, start.tzinfo))
        stamp += seconds
    return ticks if len(ticks) >= 2 else [start, end]
