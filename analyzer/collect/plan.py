"""Which queries a collection sends, and how their parts are joined back into one answer.

Every count is two parts (growth, and the first value of counters born in the range), asked as
separate queries and added up here per label set: the same numbers Prometheus would give for
`(grown + born) or grown or born`, without making it match every series on all labels twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from analyzer.collect import queries
from analyzer.model.traffic import OBSERVATION_COLUMNS, TIMELINE_COLUMNS, empty_observations, empty_timeline

log = logging.getLogger("mtls_readiness")


@dataclass(frozen=True, slots=True)
class Job:
    """One query to send. `name` is the logical query its part belongs to (`totals:<metric>`,
    `timeline:<metric>`): failures are reported under it, since one part alone is no answer."""

    name: str
    query: queries.WindowTotals | queries.PlaintextTimeline
    step: timedelta | None = None  # None: an instant query at the window's end

    @property
    def key(self) -> str:
        return f"{self.name} ({self.query.part})"


def jobs(window: timedelta, parts: tuple[str, ...] = queries.PARTS) -> list[Job]:
    """Totals and timeline of each metric, each in its parts (two in PromQL, one in MetricsQL):
    independent, so sent concurrently."""
    step = queries.timeline_step(window)
    totals = [Job(f"totals:{m}", queries.WindowTotals(m, window, part)) for m in queries.METRICS for part in parts]
    timeline = [
        Job(f"timeline:{m}", queries.PlaintextTimeline(m, step, part), step) for m in queries.METRICS for part in parts
    ]
    return totals + timeline


def join(frames: list[pd.DataFrame], columns: list[str], empty: pd.DataFrame) -> pd.DataFrame:
    """Parts added up per label set (and step): a label set only one part has keeps its count."""
    frames = [f for f in frames if not f.empty]
    if len(frames) <= 1:
        return frames[0] if frames else empty
    key = [c for c in columns if c != "count"]
    merged = pd.concat(frames, ignore_index=True)
    return merged.groupby(key, sort=False, dropna=False, as_index=False)["count"].sum()[columns]


def join_totals(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return join(frames, OBSERVATION_COLUMNS, empty_observations())


def join_timeline(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return join(frames, TIMELINE_COLUMNS, empty_timeline())


class Progress:
    """One INFO line per finished query: queries done/total, rows received, elapsed time."""

    def __init__(self, total: int):
        self.total, self.done, self.rows = total, 0, 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, more: int) -> None:
        with self._lock:
            self.total += more

    def finished(self, key: str, answer: object) -> None:
        rows = _rows(answer)
        with self._lock:
            self.done += 1
            self.rows += rows
            done, total, received = self.done, self.total, self.rows
        outcome = f"{rows:,} rows" if isinstance(answer, list) else "failed"
        log.info(
            "query %d/%d done: %s, %s; %s rows so far, %.1fs elapsed",
            done,
            total,
            key,
            outcome,
            f"{received:,}",
            time.monotonic() - self.started,
        )


def _rows(answer: object) -> int:
    """Rows an answer holds: series of an instant query, points of a range query."""
    if not isinstance(answer, list):
        return 0
    return sum(len(item["values"]) if "values" in item else 1 for item in answer)
