"""Run folders, atomic publication of `latest/`, and the history page.

A run is written into a hidden temporary folder, renamed into `runs/<run-id>/` once complete,
and only then is `latest` switched (a symlink replaced atomically). A failure at any point
leaves the previous `latest` and history untouched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from analyzer.errors import UserError
from analyzer.model.report import RunResult
from analyzer.write.html import render_history, write_report
from analyzer.write.metrics import write_metrics
from analyzer.write.summary import write_summary
from analyzer.write.tabular import write_tables

log = logging.getLogger("mtls_readiness")


def _atomic_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)  # served by a web server running as another user (the nginx overlay)
    os.replace(tmp.name, path)


def previous_summaries(output_dir: Path) -> list[dict[str, Any]]:
    """Summaries of published runs, newest first. Unreadable ones are skipped."""
    runs = []
    for summary in sorted((output_dir / "runs").glob("*/summary.json"), key=_run_order, reverse=True):
        try:
            runs.append(json.loads(summary.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            log.warning("skipping unreadable %s", summary)
    return runs


def _run_order(summary: Path) -> tuple[str, int]:
    """Run folders in time order: `<run-id>`, then `<run-id>-2`, `<run-id>-3`... for runs in one second."""
    run_id, _, n = summary.parent.name.partition("-")
    return run_id, int(n) if n.isdigit() else 1


def check_writable(output_dir: Path) -> None:
    """Fail before the long collection when the run could not be published anyway."""
    try:
        (output_dir / "runs").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir / "runs"):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to --output-dir {output_dir}: {exc.strerror}; make it writable or choose another"
        ) from None


def publish(run: RunResult, output_dir: Path, extra_summary: dict[str, Any] | None = None) -> Path:
    """Write every file of the run, then publish it. Returns the run folder."""
    runs_dir = output_dir / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run.run_id}-", dir=runs_dir))
    except OSError as exc:
        raise UserError(
            f"cannot write to --output-dir {output_dir}: {exc.strerror}; make it writable or choose another"
        ) from None
    try:
        final = _free_name(runs_dir, run.run_id)
        # The history links runs by the summary's run_id: it must name the folder actually used.
        summary = write_summary(run, staging, {**(extra_summary or {}), "run_id": final.name})
        write_tables(run, staging)
        write_report(run, summary, staging)
        write_metrics(run, staging, (extra_summary or {}).get("changes"))
        staging.chmod(0o755)
        os.rename(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(
            f"cannot write the report under {output_dir}: {exc.strerror}; check free space and permissions"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _point_latest(output_dir, final)
    _atomic_text(output_dir / "index.html", render_history(previous_summaries(output_dir)))
    return final


def _free_name(runs_dir: Path, run_id: str) -> Path:
    candidate, n = runs_dir / run_id, 1
    while candidate.exists():
        n += 1
        candidate = runs_dir / f"{run_id}-{n}"
    return candidate


def _point_latest(output_dir: Path, final: Path) -> None:
    latest = output_dir / "latest"
    link = output_dir / ".latest.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path("runs") / final.name, target_is_directory=True)
    if latest.is_dir() and not latest.is_symlink():
        shutil.rmtree(latest)  # a directory left by something else; a symlink from now on
    os.replace(link, latest)
