"""The HTML report and the history page: Jinja2 templates, autoescaped, self-contained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from analyzer.model.report import VERDICT_ORDER, RunResult
from analyzer.write import charts
from analyzer.write.tabular import iso

TOP_ROWS = 200  # tables show this many rows; the CSV files hold all


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("analyzer.write", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = lambda v: iso(v) if v else ""
    env.filters["num"] = _number
    env.filters["pct"] = lambda v: f"{v * 100:.1f}%" if v is not None else ""
    env.globals["verdict_colours"] = charts.VERDICT_COLOURS
    env.globals["verdict_order"] = [v.value for v in VERDICT_ORDER]
    return env


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


ENV = _environment()


def render_report(run: RunResult, summary: dict[str, Any]) -> str:
    svgs = {k: {"title": v["title"], "svg": Markup(v["svg"])} for k, v in charts.render_all(run).items()}
    blockers = [e for e in run.edges if e.blocker]
    return ENV.get_template("report.html.j2").render(
        run=run,
        summary=summary,
        charts=svgs,
        blockers=blockers[:TOP_ROWS],
        blockers_total=len(blockers),
        workloads=sorted(run.workloads, key=lambda w: (VERDICT_ORDER.index(w.verdict), w.namespace, w.workload)),
        top=TOP_ROWS,
    )


def render_history(runs: list[dict[str, Any]]) -> str:
    return ENV.get_template("history.html.j2").render(runs=runs)


def write_report(run: RunResult, summary: dict[str, Any], folder: Path) -> None:
    (folder / "index.html").write_text(render_report(run, summary), encoding="utf-8")
