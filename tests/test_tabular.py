"""The vectorised CSV writer writes exactly what the cell-by-cell csv.writer wrote, and neutralises
formulas and bidi controls in text (label values come from unauthenticated headers)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.model.report import Verdict
from analyzer.write.tabular import cell, column, write_csv


def reference_csv(path: Path, columns: list[str], rows: list[object]) -> None:
    """The writer before vectorising: one cell() call per value."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(getattr(row, c)) for c in columns])


@dataclass
class Row:
    name: str
    count: float
    share: float
    workloads: int
    blocker: bool
    seen: datetime | None
    verdict: Verdict
    ports: dict[int, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


COLUMNS = ["name", "count", "share", "workloads", "blocker", "seen", "verdict", "ports", "sources"]

text = st.text(alphabet=st.sampled_from(list("ab=+-@\t\r\n\",;' é\u202e\u2066\u200f\u202a\u2069\u200e")), max_size=8)
floats = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1e21, 1e16, 2.0**53, 0.0001, 1e-7, 12.5, 2400000.0])
times = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
)
rows = st.builds(
    Row,
    name=text,
    count=floats,
    share=floats,
    workloads=st.integers(-(2**40), 2**40),
    blocker=st.booleans(),
    seen=times,
    verdict=st.sampled_from(list(Verdict)),
    ports=st.dictionaries(st.integers(1, 65535), st.sampled_from(["STRICT", "=x"]), max_size=2),
    sources=st.lists(text, max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, max_size=12))
def test_vectorised_csv_is_byte_for_byte_the_cell_by_cell_csv(
    tmp_path_factory: pytest.TempPathFactory, data: list[Row]
) -> None:
    folder = tmp_path_factory.mktemp("csv")
    reference_csv(folder / "want.csv", COLUMNS, data)
    write_csv(folder / "got.csv", COLUMNS, data)
    assert (folder / "got.csv").read_bytes() == (folder / "want.csv").read_bytes()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("\u200e\u200f", "\\u200e\\u200f"),
        ("\u202a=1", "\\u202a=1"),  # the escape leads, so no formula either
        ("plain", "plain"),
    ],
    ids=repr,
)
def test_text_cells_are_formula_and_bidi_safe(value: str, expected: str) -> None:
    assert list(column([value, "ok"])) == [expected, "ok"]
    assert cell(value) == expected


def test_number_time_and_flag_columns() -> None:
    assert list(column([2_400_000.0, 1e21, 0.0001, 12.5, 1e-7])) == [
        "2400000",
        "1000000000000000000000",
        "0.0001",
        "12.5",
        "0.0000001",
    ]
    assert list(column([7, -3])) == ["7", "-3"]
    assert list(column([True, False])) == ["true", "false"]
    naive = datetime(2026, 11, 30, 2, 0, 5)
    aware = datetime(2026, 11, 30, 4, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert list(column([None, naive, aware])) == ["", "2026-11-30T02:00:05Z", "2026-11-30T02:00:05Z"]


def test_a_crlf_in_a_label_is_quoted_not_a_new_row(tmp_path: Path) -> None:
    data = [Row("a\r\nb", 1.0, 0.5, 1, True, None, Verdict.READY)]
    write_csv(tmp_path / "x.csv", COLUMNS, data)
    with (tmp_path / "x.csv").open(encoding="utf-8", newline="") as stream:
        parsed = list(csv.reader(stream))
    assert len(parsed) == 2 and parsed[1][0] == "a\r\nb"


def test_no_rows_writes_the_header(tmp_path: Path) -> None:
    write_csv(tmp_path / "x.csv", COLUMNS, [])
    assert (tmp_path / "x.csv").read_bytes() == (",".join(COLUMNS) + "\r\n").encode()
