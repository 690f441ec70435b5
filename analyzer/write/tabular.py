"""edges.csv, workloads.csv and namespaces.csv (CONTRACT.md: these columns stay, more may follow)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy

from analyzer.model.report import RunResult
from analyzer.write.registry import writer

EDGE_COLUMNS = [
    "source_cluster", "source_namespace", "source_workload", "source_principal",
    "destination_cluster", "destination_namespace", "destination_workload", "destination_service",
    "protocol", "unit", "mtls_count", "plaintext_count", "plaintext_share", "last_plaintext_seen",
    "destination_mode", "blocker",
    # additions
    "first_plaintext_seen", "unreadable_count", "destination_mode_source", "client_kind", "advice",
]  # fmt: skip
WORKLOAD_COLUMNS = [
    "cluster", "namespace", "workload", "mode", "mode_source", "port_modes",
    "mtls_count", "plaintext_count", "plaintext_sources", "verdict",
    # additions
    "kind", "dataplane", "in_inventory", "reasons",
]  # fmt: skip
NAMESPACE_COLUMNS = [
    "cluster", "namespace", "mode", "workloads", "enforced", "ready", "blocked", "no_traffic",
    "plaintext_count", "verdict",
    # additions
    "mode_source", "unknown", "disabled", "not_meshed", "mtls_count", "injection", "reasons",
    "exceptions",
]  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """One CSV cell: numbers stay numbers, times are ISO 8601 UTC, text is formula-safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return numpy.format_float_positional(value, trim="-")  # plain digits, never 1e+06
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        value = ";".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list | tuple | set):
        value = ";".join(str(v) for v in value)
    text = str(value)
    # Label values come from unauthenticated peer-metadata headers: never let a spreadsheet run them.
    return "'" + text if text.startswith(_FORMULA_START) else text


def iso(value: datetime) -> str:
    """ISO 8601 in UTC; a naive time is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[object]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        # CRLF, as RFC 4180 has it: the csv module quotes a cell only for characters of the line
        # terminator, and an unquoted carriage return in a label value would start a new row.
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(getattr(row, c)) for c in columns])


@writer("csv")
def write_tables(run: RunResult, folder: Path) -> None:
    write_csv(folder / "edges.csv", EDGE_COLUMNS, run.edges)
    write_csv(folder / "workloads.csv", WORKLOAD_COLUMNS, run.workloads)
    write_csv(folder / "namespaces.csv", NAMESPACE_COLUMNS, run.namespaces)
