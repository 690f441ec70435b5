"""The HTML report and the history page: Jinja2 templates, autoescaped, self-contained.

The writer arranges what the analysis produced (RunResult, summary.json with its `changes`, and
the summaries of earlier runs); it filters and caps lists for display and never re-judges anything.
Big meshes stay a few MB: tables show their first rows with counts and link to the CSV files.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from analyzer.model.report import VERDICT_ORDER, EdgeResult, NamespaceResult, RunResult, Verdict, WorkloadResult
from analyzer.write import charts, palette
from analyzer.write.registry import writer
from analyzer.write.run_index import published_summaries
from analyzer.write.summary import LIST_LIMIT as CHANGE_LIST_LIMIT
from analyzer.write.summary import summary as summary_document
from analyzer.write.tabular import iso

log = logging.getLogger("mtls_readiness")

TOP_ROWS = 200  # rows per table; the CSV files hold all
BLOCKER_ROWS = 100  # blocker rows carry advice text: tall, so fewer
NAMESPACE_SECTIONS = 150  # collapsible per-namespace sections
ROWS_PER_NAMESPACE = 20
HISTORY_ROWS = 400
REMEDIATION_FILE = "remediation.yaml"
JOB_KINDS = ("Job", "CronJob")
CLIENT_KIND_TEXT = {"meshed": "has a sidecar", "unmeshed": "no sidecar", "unknown": "cannot tell"}
_RANK = {v.value: i for i, v in enumerate(VERDICT_ORDER)}
# Bidi controls reorder the text around them ("Trojan Source"): label values come from unauthenticated
# headers, so each control is shown as a visible escape instead of acting on the page.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def neutralise_bidi(text: str) -> str:
    return _BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", text)


def _finalize(value: Any) -> Any:
    """Every {{ value }} on the page, text and attributes alike: plain strings lose their bidi controls."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return neutralise_bidi(value)
    return value


def _bdi(value: Any) -> Markup:
    """A label value isolated from the text around it, so right-to-left text cannot reorder a row."""
    return Markup("<bdi>{}</bdi>").format(neutralise_bidi(str(value)))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("analyzer.write", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.filters["bdi"] = _bdi
    env.filters["iso"] = lambda v: iso(v) if v else ""
    env.filters["when"] = _when
    env.filters["num"] = _number
    env.filters["compact"] = lambda v: palette.compact(v) if v is not None else ""
    env.filters["pct"] = lambda v: f"{v * 100:.1f}%" if v is not None else "–"
    env.filters["signed"] = _signed
    env.filters["points"] = lambda v: f"{v * 100:+.1f} pts" if v else ""
    env.filters["rank"] = lambda v: _RANK.get(str(v), len(_RANK))
    env.globals["verdict_colours"] = palette.VERDICT_COLOURS
    env.globals["verdict_patterns"] = palette.VERDICT_PATTERNS
    env.globals["verdict_order"] = [v.value for v in VERDICT_ORDER]
    env.globals["client_kind_text"] = CLIENT_KIND_TEXT
    # The one inline script, allowed by its hash in the page's Content-Security-Policy:
    # nothing else (an injected <script> or on* attribute) could run even if escaping failed.
    assert env.loader is not None
    script = env.loader.get_source(env, "page.js.j2")[0]
    env.globals["script"] = Markup(script)
    env.globals["script_hash"] = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return env


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _signed(value: int | float | None) -> str:
    if not value:
        return ""
    return f"{value:+,}" if float(value).is_integer() else f"{value:+,.1f}"


def _when(value: datetime | str | None) -> Markup:
    """A short UTC time for tables, with the full ISO 8601 time for sorting and tooltips."""
    if not value:
        return Markup("")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Markup("{}").format(value)
    full = iso(value)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(full, full, value.strftime("%Y-%m-%d %H:%M"))


ENV = _environment()


# -- what the report page shows ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamespaceSection:
    namespace: NamespaceResult
    workloads: list[WorkloadResult]  # the first ROWS_PER_NAMESPACE, most urgent first
    total: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """Where the mesh does not reach: where source_workload="unknown" plaintext comes from."""

    dataplanes: dict[str, int]
    not_meshed: list[WorkloadResult]
    not_meshed_total: int
    uninjected_namespaces: list[NamespaceResult]
    sidecarless_jobs: list[WorkloadResult]
    sidecarless_jobs_total: int
    unknown_source_edges: int
    unknown_source_volume: dict[str, float]


def _by_urgency(workloads: Iterable[WorkloadResult]) -> list[WorkloadResult]:
    return sorted(workloads, key=lambda w: (_RANK[w.verdict.value], -w.plaintext_count, w.namespace, w.workload))


def _namespace_sections(run: RunResult, ordered: list[NamespaceResult]) -> list[NamespaceSection]:
    members: dict[str, list[WorkloadResult]] = {}
    for w in run.workloads:
        members.setdefault(w.namespace, []).append(w)
    sections = []
    for ns in ordered[:NAMESPACE_SECTIONS]:
        rows = _by_urgency(members.get(ns.namespace, []))
        sections.append(NamespaceSection(ns, rows[:ROWS_PER_NAMESPACE], len(rows)))
    return sections


def _coverage(run: RunResult) -> Coverage:
    unmeshed = _by_urgency(w for w in run.workloads if w.verdict is Verdict.NOT_MESHED)
    jobs = [w for w in run.workloads if w.kind in JOB_KINDS and w.dataplane == "none"]
    unknown = [e for e in run.edges if e.plaintext_count > 0 and e.source_workload in ("", "unknown")]
    volume: dict[str, float] = {}
    for e in unknown:
        volume[e.unit] = volume.get(e.unit, 0.0) + e.plaintext_count
    return Coverage(
        dataplanes=dict(Counter(w.dataplane or "unknown" for w in run.workloads).most_common()),
        not_meshed=unmeshed[:TOP_ROWS],
        not_meshed_total=len(unmeshed),
        uninjected_namespaces=[
            n for n in run.namespaces if n.injection == "none" and n.namespace != run.root_namespace
        ][:TOP_ROWS],
        sidecarless_jobs=jobs[:TOP_ROWS],
        sidecarless_jobs_total=len(jobs),
        unknown_source_edges=len(unknown),
        unknown_source_volume=dict(volume),
    )


AUTHZ_TEXT = {
    "open": "open to plaintext",
    "denied": "plaintext already denied",
    "depends": "depends on fields the metrics lack",
    "unknown": "unknown",
}
# Whose were the 403s of the clients that look already denied (analyse/rbac_evidence.py).
DENIALS_BY_TEXT = {
    "proxy": "403s from the proxy's RBAC filter",
    "not-proxy": "403s from the application, not the proxy: not denied",
    "unconfirmed": "unconfirmed: the 403s may be the application's",
}


def _authz_rows(workloads: Iterable[WorkloadResult]) -> list[WorkloadResult]:
    """Workloads with an authorization finding: those receiving plaintext first, most first."""
    rows = [w for w in workloads if w.authz_plaintext]
    return sorted(rows, key=lambda w: (-w.plaintext_count, w.namespace, w.workload))


def _top(items: Sequence[Any], limit: int = TOP_ROWS) -> tuple[list[Any], int]:
    return list(items[:limit]), len(items)


def render_report(run: RunResult, summary: dict[str, Any], history: Sequence[dict[str, Any]] = ()) -> str:
    """The run's page. `history`: headline rows of the published runs, newest first (see `headline`)."""
    namespaces = sorted(run.namespaces, key=lambda n: (_RANK[n.verdict.value], -n.plaintext_count, n.namespace))
    blockers: list[EdgeResult] = [e for e in run.edges if e.blocker]  # the analysis sorts by volume
    ready_workloads = sorted(
        (w for w in run.workloads if w.verdict is Verdict.READY and w.remediation),
        key=lambda w: (summary.get("namespaces", {}).get(w.namespace) == Verdict.READY.value, w.namespace, w.workload),
    )
    quiet = _by_urgency(w for w in run.workloads if w.verdict is Verdict.NO_TRAFFIC)
    # Named once, with the first reason each, in place of the analysis' count-only warning.
    unknown = _by_urgency(w for w in run.workloads if w.verdict is Verdict.UNKNOWN)
    this = headline(summary)
    runs = [this, *(h for h in history if h["run_id"] != this["run_id"])]
    return ENV.get_template("report.html.j2").render(
        run=run,
        summary=summary,
        now=this,
        changes=summary.get("changes"),
        charts=[
            {
                "key": c.key,
                "title": c.title,
                "description": c.description,
                "svg": Markup(c.svg),
                "phone_svg": Markup(c.phone_svg),
            }
            for c in charts.render_all(run, runs)
        ],
        blockers=_top(blockers, BLOCKER_ROWS),
        clients=_top(run.clients, BLOCKER_ROWS),
        attributions=run.attributions,
        namespaces=_top(namespaces, 2 * TOP_ROWS),
        sections=_namespace_sections(run, namespaces),
        ready_namespaces=[n for n in namespaces if n.verdict is Verdict.READY and n.remediation],
        ready_workloads=_top(ready_workloads),
        quiet_namespaces=[n for n in namespaces if n.verdict is Verdict.NO_TRAFFIC],
        quiet_workloads=_top(quiet),
        unknown_workloads=_top(unknown, 10),
        warnings=[w for w in run.warnings if not (unknown and w.startswith(f"{len(unknown)} workload(s) are UNKNOWN"))],
        coverage=_coverage(run),
        injection={n.namespace: n.injection for n in run.namespaces},
        top=TOP_ROWS,
        change_list_limit=CHANGE_LIST_LIMIT,
        rows_per_namespace=ROWS_PER_NAMESPACE,
        remediation_file=REMEDIATION_FILE if _remediation_documents(run) else "",
        authz_workloads=_top(_authz_rows(run.workloads)),
        authz_text=AUTHZ_TEXT,
        denials_by_text=DENIALS_BY_TEXT,
    )


# -- the history page --------------------------------------------------------------------------------------


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """One run's headline figures from its summary.json (older summaries lack some keys)."""
    changes = summary.get("changes") or {}
    if not changes.get("previous_run_id"):
        changes = {}  # the first run: nothing was compared, so no counts rather than zeros
    return {
        "run_id": str(summary.get("run_id", "")),
        "generated_at": summary.get("generated_at", ""),
        "complete": summary.get("complete", True),
        "mesh_verdict": summary.get("mesh_verdict", "UNKNOWN"),
        "verdicts": summary.get("verdicts", {}),
        "namespace_verdicts": summary.get("namespace_verdicts", {}),
        "mtls_share": summary.get("mtls_share") or {"requests": None, "connections": None},
        "blockers": summary.get("blockers"),
        "new_plaintext_clients": changes.get("new_plaintext_clients_total"),
        "regressions": changes.get("regressions_total"),
        "newly_ready": changes.get("newly_ready_total"),
    }


def render_history(runs: list[dict[str, Any]]) -> str:
    """The output dir's index.html from the published runs' summaries, newest first."""
    rows = [headline(r) for r in runs if r.get("run_id")]
    return ENV.get_template("history.html.j2").render(
        runs=rows[:HISTORY_ROWS],
        runs_total=len(rows),
        burndown=charts.for_phone(charts.burndown, rows),
    )


def published_headlines(runs_dir: Path) -> list[dict[str, Any]]:
    """Headlines of the sound runs published under `runs_dir`, newest first (the history page warns
    about damaged ones)."""
    return [headline(s) for s in published_summaries(runs_dir, warn=False)]


# -- files -------------------------------------------------------------------------------------------------


def _remediation_documents(run: RunResult) -> list[str]:
    docs = [run.mesh.remediation] if run.mesh.remediation else []
    docs += [n.remediation for n in run.namespaces if n.verdict is Verdict.READY and n.remediation]
    docs += [w.remediation for w in run.workloads if w.verdict is Verdict.READY and w.remediation]
    return docs


@writer("html")
def write_report(run: RunResult, folder: Path) -> None:
    """index.html, and remediation.yaml with every STRICT policy the run found safe to apply.

    `folder` is the run's folder inside `runs/`; the published runs beside it feed the burndown."""
    history = published_headlines(folder.parent)
    (folder / "index.html").write_text(render_report(run, summary_document(run), history), encoding="utf-8")
    docs = _remediation_documents(run)
    if docs:
        header = f"# STRICT PeerAuthentications that run {run.run_id} found safe: no plaintext in {run.lookback}.\n"
        (folder / REMEDIATION_FILE).write_text(header + "---\n".join(docs), encoding="utf-8")
