"""Read published runs back (their result.json): for night-over-night changes and notebooks."""

from __future__ import annotations

from pathlib import Path

from analyzer.errors import UserError
from analyzer.model.document import from_json
from analyzer.model.report import RunResult

RESULT_FILE = "result.json"


def run_folder(path: str | Path) -> Path:
    """A run folder from a run folder (`runs/<id>`), `latest`, or an output dir (its latest run)."""
    folder = Path(path)
    if (folder / "latest").exists() and not (folder / RESULT_FILE).exists() and not (folder / "summary.json").exists():
        folder = folder / "latest"
    return folder


def load_run(path: str | Path) -> RunResult:
    """The RunResult a published run wrote: a run folder, `latest`, or an output dir (its latest run)."""
    folder = run_folder(path)
    document = folder / RESULT_FILE
    if not document.exists() and (folder / "summary.json").exists():
        raise UserError(
            f"{folder} was written by mtls-readiness 0.1 (no {RESULT_FILE}); "
            "its CSV files and summary.json stay readable, or run the report again to compare with it"
        )
    try:
        return from_json(document.read_bytes())
    except OSError as exc:
        raise UserError(
            f"{folder} is not a readable report run ({exc.strerror}); point at runs/<run-id> or latest"
        ) from None
    except ValueError as exc:  # pydantic's ValidationError, or a newer schema
        first = str(exc).splitlines()[0]
        raise UserError(f"{document} is not a result this version reads ({first}); run the report again") from None


def latest_run(output_dir: str | Path) -> RunResult | None:
    """The currently published run, or None when there is none yet."""
    latest = Path(output_dir) / "latest"
    if not (latest / RESULT_FILE).exists() and not (latest / "summary.json").exists():
        return None
    return load_run(latest)
