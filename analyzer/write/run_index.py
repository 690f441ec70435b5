"""Which folders under `runs/` are published runs, and which of their summaries can be trusted.

The output folder outlives any one run: a killed run, a full disk or a hand edit can leave an
empty CSV, a `summary.json` that is not an object, a staging folder or a stray file. Those are
skipped with a warning; they are never a row of the history page and never fail a night.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("mtls_readiness")

# `<run-id>` or, for runs started in the same second, `<run-id>-2`, `<run-id>-3`...
RUN_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
# Every published run has these, none of them empty (remediation.yaml is optional).
RUN_FILES = ("summary.json", "index.html", "edges.csv", "workloads.csv", "namespaces.csv")


def run_order(name: str) -> tuple[str, int]:
    """Sort key of a run folder's name: its time, then its same-second counter."""
    match = RUN_NAME.match(name)
    if not match:
        return name, 0
    return match.group(1), int(match.group(2) or 1)


def run_time(name: str) -> datetime | None:
    match = RUN_NAME.match(name)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if match else None


@dataclass(frozen=True, slots=True)
class RunFolder:
    path: Path
    summary: dict[str, Any] | None  # None: damaged
    problem: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_share(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)


def _counts(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _is_count(v) for k, v in value.items())


# The fields the history page and the burndown read, each with the check its value must pass.
_OPTIONAL: dict[str, Callable[[object], bool]] = {
    "namespace_verdicts": _counts,
    "mtls_share": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_share(s) for k, s in v.items()),
    "totals": lambda v: (
        isinstance(v, dict) and all(isinstance(n, int | float) and not isinstance(n, bool) for n in v.values())
    ),
    "blockers": lambda v: v is None or _is_count(v),
    "changes": lambda v: isinstance(v, dict),
}
_REQUIRED: dict[str, Callable[[object], bool]] = {
    "run_id": lambda v: isinstance(v, str) and bool(v),
    "generated_at": lambda v: isinstance(v, str),
    "complete": lambda v: isinstance(v, bool),
    "mesh_verdict": lambda v: isinstance(v, str),
    "verdicts": _counts,
}
_CHANGE_TOTALS = ("new_plaintext_clients_total", "regressions_total", "newly_ready_total")


def summary_problem(data: object) -> str:
    """Why a parsed summary.json cannot feed the history page ("" when it can)."""
    if not isinstance(data, dict):
        return f"summary.json holds a {type(data).__name__}, not an object"
    for key, check in _REQUIRED.items():
        if key not in data:
            return f"summary.json has no {key!r}"
        if not check(data[key]):
            return f"summary.json field {key!r} has the wrong type or value"
    for key, check in _OPTIONAL.items():
        if key in data and not check(data[key]):
            return f"summary.json field {key!r} has the wrong type or value"
    changes = data.get("changes") or {}
    if not (changes.get("previous_run_id") is None or isinstance(changes.get("previous_run_id"), str)):
        return "summary.json field 'changes.previous_run_id' has the wrong type"
    for key in _CHANGE_TOTALS:
        if changes.get(key) is not None and not _is_count(changes[key]):
            return f"summary.json field 'changes.{key}' has the wrong type or value"
    return ""


def read_run(folder: Path) -> RunFolder:
    """A run folder, with its summary when every file is there and the summary is sound."""
    for name in RUN_FILES:
        try:
            if (folder / name).stat().st_size == 0:
                return RunFolder(folder, None, f"{name} is empty")
        except OSError:
            return RunFolder(folder, None, f"{name} is missing")
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return RunFolder(folder, None, f"summary.json is unreadable ({exc.__class__.__name__})")
    problem = summary_problem(data)
    if problem:
        return RunFolder(folder, None, problem)
    # The folder name is what the history page links to; it wins over what the file says.
    return RunFolder(folder, {**data, "run_id": folder.name})


def run_folders(runs_dir: Path, *, warn: bool = True) -> list[RunFolder]:
    """Every run folder under `runs_dir`, newest first, damaged ones included (summary None).

    Staging folders (`.`-prefixed) are not runs. Anything else that is not a run folder is
    left alone, with a warning when `warn`."""
    found = []
    try:
        entries = list(runs_dir.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # a run being written, or left behind by a killed one
        if not RUN_NAME.match(entry.name) or entry.is_symlink() or not entry.is_dir():
            if warn:
                log.warning("ignoring %s: not a run folder", entry)
            continue
        run = read_run(entry)
        if run.summary is None and warn:
            log.warning("skipping damaged run %s: %s", entry, run.problem)
        found.append(run)
    return sorted(found, key=lambda r: run_order(r.name), reverse=True)


def published_summaries(runs_dir: Path, *, warn: bool = True) -> list[dict[str, Any]]:
    """Sound summaries of the runs published under `runs_dir`, newest first."""
    return [r.summary for r in run_folders(runs_dir, warn=warn) if r.summary is not None]
