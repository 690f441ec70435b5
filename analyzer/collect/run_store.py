"""Read published runs back: for night-over-night changes, the history page and notebooks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analyzer.errors import UserError

TIME_COLUMNS = ("last_plaintext_seen", "first_plaintext_seen")


@dataclass(slots=True)
class PublishedRun:
    folder: Path
    summary: dict[str, Any]
    edges: pd.DataFrame
    workloads: pd.DataFrame
    namespaces: pd.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id", self.folder.name))


def _read_csv(path: Path) -> pd.DataFrame:
    # Text stays text (a workload may be called "true" or "0"); counts become numbers.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column.endswith(("_count", "_share")) or column in {
            "workloads", "enforced", "ready", "blocked", "no_traffic", "unknown", "disabled", "not_meshed",
        }:  # fmt: skip
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column].replace("", None), utc=True)
    if "blocker" in frame.columns:
        frame["blocker"] = frame["blocker"] == "true"
    return frame


def load_run(path: str | Path) -> PublishedRun:
    """A run folder (`runs/<id>`), `latest`, or an output dir (its latest run)."""
    folder = Path(path)
    if (folder / "latest").exists() and not (folder / "summary.json").exists():
        folder = folder / "latest"
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        return PublishedRun(
            folder=folder.resolve(),
            summary=summary,
            edges=_read_csv(folder / "edges.csv"),
            workloads=_read_csv(folder / "workloads.csv"),
            namespaces=_read_csv(folder / "namespaces.csv"),
        )
    except (OSError, json.JSONDecodeError, pd.errors.ParserError) as exc:
        raise UserError(f"{folder} is not a readable report run ({exc}); point at runs/<run-id> or latest") from None


def latest_run(output_dir: str | Path) -> PublishedRun | None:
    """The currently published run, or None when there is none yet."""
    latest = Path(output_dir) / "latest"
    if not (latest / "summary.json").exists():
        return None
    return load_run(latest)
