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


# result.json holds `timeline` right before `warnings` (RunResult's field order). Quotes inside
# JSON strings are escaped, so these byte sequences only ever occur as those keys.
_TIMELINE_START, _TIMELINE_END = b',"timeline":[', b'],"warnings":'


def without_timeline(document: bytes) -> bytes:
    """result.json with an empty timeline, cut out as bytes before parsing: a week's timeline is
    most of the document (hundreds of thousands of points), and parsing it only to drop it set
    the job's peak. Unchanged when the layout is not the one expected."""
    start = document.find(_TIMELINE_START)
    end = document.find(_TIMELINE_END, start) if start >= 0 else -1
    if end < 0:
        return document
    return document[: start + len(_TIMELINE_START)] + document[end:]


def load_run(path: str | Path, *, timeline: bool = True) -> RunResult:
    """The RunResult a published run wrote: a run folder, `latest`, or an output dir (its latest run).
    `timeline=False` leaves its timeline empty (what night-over-night changes need)."""
    folder = run_folder(path)
    document = folder / RESULT_FILE
    if not document.exists() and (folder / "summary.json").exists():
        raise UserError(
            f"{folder} was written by mtls-readiness 0.1 (no {RESULT_FILE}); "
            "its CSV files and summary.json stay readable, or run the report again to compare with it"
        )
    try:
        data = document.read_bytes()
        return from_json(data if timeline else without_timeline(data))
    except OSError as exc:
        raise UserError(
            f"{folder} is not a readable report run ({exc.strerror}); point at runs/<run-id> or latest"
        ) from None
    except ValueError as exc:  # pydantic's ValidationError, or a newer schema
        first = str(exc).splitlines()[0]
        raise UserError(f"{document} is not a result this version reads ({first}); run the report again") from None


def latest_run(output_dir: str | Path, *, timeline: bool = True) -> RunResult | None:
    """The currently published run, or None when there is none yet."""
    latest = Path(output_dir) / "latest"
    if not (latest / RESULT_FILE).exists() and not (latest / "summary.json").exists():
        return None
    return load_run(latest, timeline=timeline)
