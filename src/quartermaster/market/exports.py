"""Reports and statements as spreadsheets (`?format=csv|xlsx`): market owners live in them.

A table is a title, a header and rows of text, whole numbers and money (minor units, written as
exact decimals). Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a
carriage return first: "CSV injection") is written with a leading apostrophe, in both formats; a
farmer's name is data, never a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse
from openpyxl import Workbook

from quartermaster.core.money import MINOR_UNITS_PER_MAJOR, format_money

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Money:
    """A cell holding money, in minor units."""

    minor: int


Cell = str | int | Money | None


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[Cell, ...]]


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_cell(value: Cell) -> str | int:
    if value is None:
        return ""
    if isinstance(value, Money):
        return format_money(value.minor)
    if isinstance(value, str):
        return _text(value)
    return value


def _xlsx_cell(value: Cell) -> str | int | Decimal | None:
    if isinstance(value, Money):
        return Decimal(value.minor) / MINOR_UNITS_PER_MAJOR
    if isinstance(value, str):
        return _text(value)
    return value


def as_csv(table: Table, filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.header)
    writer.writerows([_csv_cell(cell) for cell in row] for row in table.rows)
    # A byte-order mark: spreadsheet programs then read the Tamil names as UTF-8.
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def as_xlsx(table: Table, filename: str) -> HttpResponse:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=table.title[:31])
    sheet.append(list(table.header))
    for row in table.rows:
        sheet.append([_xlsx_cell(cell) for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return response


def download(table: Table, filename: str, file_format: str) -> HttpResponse:
    return as_xlsx(table, filename) if file_format == "xlsx" else as_csv(table, filename)
