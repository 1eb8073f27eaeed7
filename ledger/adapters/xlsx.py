"""Spreadsheets for brokers (`export --xlsx`, `declare --xlsx`), written with openpyxl.

Money is a number in the policy currency's format (`#,##0.00 "GBP"`: it sums, and it reads as
money), dates are dates, and text stays text: a cell that begins with `=` is never a formula.
The exact decimal string goes into the file (openpyxl writes a Decimal as written), never a float.
A workbook is written in openpyxl's streaming mode into a temporary file beside the target and
renamed into place when complete, as the other exports are.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ledger.adapters.export import DATE, DECIMAL, MINOR, TABLES, Report
from ledger.queries import answers
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.money import minor_units

Kind = Literal["text", "integer", "money", "date"]
MAX_ROWS = 1_048_576  # a worksheet's rows in Excel, the header row included
DATE_FORMAT = "yyyy-mm-dd"


@dataclass(frozen=True)
class SheetColumn:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Sheet:
    """One worksheet: its columns, and rows of values as the other exports hold them (decimal
    strings for money, ISO text for dates), converted here."""

    name: str
    columns: Sequence[SheetColumn]
    rows: Iterable[Mapping[str, Any]]


def money_format(currency: str) -> str:
    """The number format of an amount in `currency`: its decimals, thousands grouped, the code after it."""
    places = minor_units(currency)
    number = "#,##0" + ("." + "0" * places if places else "")
    return f'{number} "{currency}";-{number} "{currency}"'


def write_xlsx(sheets: Iterable[Sheet], target: Path, currency: str, *, force: bool, field: str) -> dict[str, int]:
    """Write `sheets` into the workbook `target`; returns the rows per sheet. An existing file is
    replaced only with `force`; a sheet of more rows than Excel holds is refused, writing nothing."""
    target = Path(target)
    if target.is_dir():
        raise LedgerError(f"{target} is a folder; --xlsx takes a file name", field=field)
    if not target.parent.is_dir():
        raise LedgerError(f"{target.parent} is not a folder", field=field)
    if target.exists() and not force:
        raise LedgerError(f"{target} already exists; an export never replaces a file without --force", field=field)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)  # a report is made to be shared, not private as a temporary file
        workbook = Workbook(write_only=True)
        written = {sheet.name: _write_sheet(workbook, sheet, money_format(currency), field) for sheet in sheets}
        workbook.save(temporary)
        with open(temporary, "rb") as built:
            os.fsync(built.fileno())
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return written


def _write_sheet(workbook: Workbook, sheet: Sheet, money: str, field: str) -> int:
    worksheet = workbook.create_sheet(title=sheet.name[:31])
    worksheet.freeze_panes = "A2"
    for number, column in enumerate(sheet.columns, 1):
        width = 14 if column.kind in ("money", "date") else max(10, min(40, len(column.name) + 2))
        worksheet.column_dimensions[get_column_letter(number)].width = width
    bold = Font(bold=True)
    header = []
    for column in sheet.columns:
        cell = WriteOnlyCell(worksheet, value=column.name)
        cell.font = bold
        header.append(cell)
    worksheet.append(header)
    count = 0
    for row in sheet.rows:
        count += 1
        if count >= MAX_ROWS:
            raise LedgerError(f"the {sheet.name} sheet would have more than {MAX_ROWS - 1:,} rows, the most a "
                              "spreadsheet holds; use --sqlite or --csv", field=field)
        worksheet.append([_cell(worksheet, column, row.get(column.name), money) for column in sheet.columns])
    return count


def _cell(worksheet: WriteOnlyWorksheet, column: SheetColumn, value: Any, money: str) -> Any:
    if value is None or value == "":
        return None
    if column.kind == "money":
        cell = WriteOnlyCell(worksheet, value=Decimal(value))
        cell.number_format = money
        return cell
    if column.kind == "date":
        cell = WriteOnlyCell(worksheet, value=datetime.date.fromisoformat(value))
        cell.number_format = DATE_FORMAT
        return cell
    if column.kind == "integer":
        return int(value)
    text = ILLEGAL_CHARACTERS_RE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    cell = WriteOnlyCell(worksheet, value=text)
    cell.data_type = "s"  # text, even where it begins with `=`: never a formula
    return cell


# ---------------------------------------------------------------- what is written


def export_sheets(report: Report, written: dict[str, int]) -> Iterable[Sheet]:
    """The export's tables (docs/export.md), one sheet each, in order; `written` fills with the
    rows of each as it is written (the about_tables sheet counts them). An amount is written once,
    as money: its `_minor` twin of the SQLite and CSV tables is left out, in about_columns too."""
    twins = {f"{c.name}_minor" for table in TABLES for c in table.columns if c.unit == DECIMAL}
    for table in TABLES:
        sheet_columns = [
            SheetColumn(c.name, "money" if c.unit == DECIMAL else "date" if c.unit == DATE
                        else "integer" if c.type == "INTEGER" else "text")
            for c in table.columns if not (c.unit == MINOR and c.name in twins)
        ]
        rows = report.rows(table.name, written)
        if table.name == "about_columns":
            rows = [r for r in rows if not (r["unit"] == MINOR and r["column_name"] in twins)]
        yield Sheet(table.name, sheet_columns, _counted(rows, table.name, written))


def _counted(rows: Iterable[Mapping[str, Any]], name: str, written: dict[str, int]) -> Iterable[Mapping[str, Any]]:
    count = 0
    for row in rows:
        count += 1
        yield row
    written[name] = count


def declaration_sheet(declaration: answers.Declaration) -> Sheet:
    """The declaration as `declare` prints it, one row per country, the turnover as money."""
    columns = [SheetColumn("policy", "text"), SheetColumn("period", "text"), SheetColumn("country", "text"),
               SheetColumn("currency", "text"), SheetColumn("insurable_turnover", "money")]
    rows = [{"policy": declaration.policy, "period": declaration.period, "country": row.country,
             "currency": declaration.currency, "insurable_turnover": row.insurable_turnover}
            for row in declaration.countries]
    return Sheet("declaration", columns, rows)
