"""edges.csv, workloads.csv, namespaces.csv (docs/contract.md: these columns stay, more may follow),
clients.csv and candidates.csv (docs/attribution.md)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
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
    "authz_plaintext", "authz_reason", "authz_slipped_rules", "plaintext_denied_clients",
    "plaintext_denials_by",
]  # fmt: skip
NAMESPACE_COLUMNS = [
    "cluster", "namespace", "mode", "workloads", "enforced", "ready", "blocked", "no_traffic",
    "plaintext_count", "verdict",
    # additions
    "mode_source", "unknown", "disabled", "not_meshed", "mtls_count", "injection", "reasons",
    "exceptions",
]  # fmt: skip

CLIENT_COLUMNS = [
    "client", "attributed", "confidence", "destinations", "edges", "requests", "connections",
    "first_seen", "last_seen", "evidence", "advice",
]  # fmt: skip
CANDIDATE_COLUMNS = [
    "source_namespace", "source_workload", "destination_namespace", "destination_workload", "protocol",
    "rank", "candidate", "confidence", "source", "evidence",
]  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(_FORMULA_START)
# Unicode bidi controls (embeddings, overrides, isolates, marks) reorder how a cell is shown:
# a crafted workload name could display as another. Each is replaced by its visible escape
# (`\u202e`), so the cell still shows that the label held one.
_BIDI_CHARS = "\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(map(chr, range(0x2066, 0x206A)))
_BIDI = re.compile(f"[{_BIDI_CHARS}]")


def _escape_bidi(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _safe_text(text: str) -> str:
    """Label values come from unauthenticated peer-metadata headers: never let a spreadsheet
    run them as a formula, nor let them reorder what is displayed."""
    text = _BIDI.sub(_escape_bidi, text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def cell(value: object) -> object:
    """One CSV cell: numbers stay numbers, times are ISO 8601 UTC, text is formula-safe.
    The reference for `column`, which formats a whole column at once."""
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
    return _safe_text(str(value))


def iso(value: datetime) -> str:
    """ISO 8601 in UTC; a naive time is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def column(values: Sequence[object]) -> list[object]:
    """A whole column as CSV text, as `cell` would write each value, with whole-column operations
    for the common kinds (text, floats, ints, bools, optional times); anything else cell by cell."""
    kinds = set(map(type, values))
    if not values:
        return []
    if all(issubclass(k, str) for k in kinds):
        text = [str(v) for v in values]
        joined = "".join(text)
        if any(c in joined for c in _BIDI_CHARS):  # a few scans of the whole column; rewrite only if needed
            text = [_BIDI.sub(_escape_bidi, t) for t in text]
        if _FORMULA_FIRST.isdisjoint({t[:1] for t in text}):
            return list(text)
        return ["'" + t if t[:1] in _FORMULA_FIRST else t for t in text]
    if kinds == {float}:
        return _floats(numpy.asarray(values, dtype="float64")).tolist()
    if kinds == {int}:
        return numpy.asarray(values, dtype="int64").astype(str).tolist()
    if kinds == {bool}:
        return ["true" if v else "false" for v in values]
    if all(issubclass(k, datetime) or k is type(None) for k in kinds):
        return ["" if v is None else iso(v) for v in values]  # type: ignore[arg-type]
    return [str(cell(v)) for v in values]


def _floats(numbers: numpy.ndarray) -> numpy.ndarray:
    """Plain digits, never 1e+06: whole numbers as integers, others in their shortest form."""
    with numpy.errstate(invalid="ignore"):
        whole = (numbers % 1 == 0) & (numpy.abs(numbers) < 2**53) & ~((numbers == 0) & numpy.signbit(numbers))
    text = numpy.where(whole, numbers, 0).astype("int64").astype(str).astype(object)
    if whole.all():
        return text
    rest = numbers[~whole].astype(str)  # numpy's shortest round-trip repr
    # Tiny or huge values (1e-07, 1e+16) and whole ones too big for int64: rare, one by one.
    odd = (numpy.char.find(rest, "e") >= 0) | numpy.char.endswith(rest, ".0")
    if odd.any():
        rest = rest.astype(object)
        rest[odd] = [numpy.format_float_positional(x, trim="-") for x in numbers[~whole][odd]]
    text[~whole] = rest
    return text


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[object]) -> None:
    """Each column formatted at once (`column`), then written by the csv module's C writer."""
    records = list(map(attrgetter(*columns), rows)) if len(columns) > 1 else [(getattr(r, columns[0]),) for r in rows]
    cells = [column(values) for values in zip(*records, strict=True)] if records else []
    with path.open("w", encoding="utf-8", newline="") as stream:
        # CRLF, as RFC 4180 has it: the csv module quotes a cell only for characters of the line
        # terminator, and an unquoted carriage return in a label value would start a new row.
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows(zip(*cells, strict=True))


@writer("csv")
def write_tables(run: RunResult, folder: Path) -> None:
    write_csv(folder / "edges.csv", EDGE_COLUMNS, run.edges)
    write_csv(folder / "workloads.csv", WORKLOAD_COLUMNS, run.workloads)
    write_csv(folder / "namespaces.csv", NAMESPACE_COLUMNS, run.namespaces)
    write_csv(folder / "clients.csv", CLIENT_COLUMNS, run.clients)
    write_csv(folder / "candidates.csv", CANDIDATE_COLUMNS, candidate_rows(run))


@dataclass(frozen=True, slots=True)
class CandidateRow:
    source_namespace: str
    source_workload: str
    destination_namespace: str
    destination_workload: str
    protocol: str
    rank: int
    candidate: str
    confidence: str
    source: str
    evidence: str


def candidate_rows(run: RunResult) -> list[CandidateRow]:
    """One row per candidate of each unnamed blocker edge, best first."""
    return [
        CandidateRow(
            a.source_namespace,
            a.source_workload,
            a.destination_namespace,
            a.destination_workload,
            a.protocol,
            rank,
            c.name,
            c.confidence,
            c.source,
            c.evidence,
        )
        for a in run.attributions
        for rank, c in enumerate(a.candidates, start=1)
    ]
