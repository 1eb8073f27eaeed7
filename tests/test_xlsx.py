"""Spreadsheets (`export --xlsx`, `declare --xlsx`): read back with openpyxl, every figure is the
CLI's (the CSV export, `exposure --json`, `declare`'s CSV), money is a number in the policy
currency's format, dates are dates, and text that looks like a formula stays text."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)
from test_csv_injection import BUYER, LINK, POLICY_ID, hostile_file  # noqa: F401 (a fixture)
from test_export import AS_OF, book_file  # noqa: F401 (a fixture)

from ledger.adapters.export import DATE, DECIMAL, MINOR, TABLES, csv_name
from ledger.adapters.xlsx import money_format

MONEY = money_format("GBP")


def sheet_rows(path: Path, name: str) -> list[dict[str, Any]]:
    sheet = openpyxl.load_workbook(path)[name]
    header, *rows = list(sheet.iter_rows())
    names = [cell.value for cell in header]
    return [{n: cell for n, cell in zip(names, row, strict=True)} for row in rows]


def csv_table(folder: Path, table: str) -> list[dict[str, str]]:
    with (folder / csv_name(table)).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def as_decimal(cell: Any) -> Decimal:
    assert cell.data_type == "n" and not isinstance(cell.value, bool), cell
    return Decimal(str(cell.value))


@pytest.fixture
def exports(book_file: str, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811 (the imported fixture)
    xlsx, folder = tmp_path / "report.xlsx", tmp_path / "csv"
    result = cli("export", "--xlsx", str(xlsx), "--as-of", AS_OF.isoformat(), "--db", book_file)
    assert f"to {xlsx}" in result.stdout
    cli("export", "--csv", str(folder), "--as-of", AS_OF.isoformat(), "--db", book_file)
    return xlsx, folder


def test_every_table_is_a_sheet_with_the_figures_of_the_csv_export(exports: tuple[Path, Path]):
    xlsx, folder = exports
    assert openpyxl.load_workbook(xlsx).sheetnames == [table.name for table in TABLES]
    twins = {f"{c.name}_minor" for t in TABLES for c in t.columns if c.unit == DECIMAL}
    compared = {"money": 0, "date": 0}
    for table in TABLES:
        if table.name in ("metadata", "about_tables", "about_columns"):
            continue  # the export's own moment and the schema; checked below
        sheet, expected = sheet_rows(xlsx, table.name), csv_table(folder, table.name)
        assert len(sheet) == len(expected), table.name
        for got, want in zip(sheet, expected, strict=True):
            for column in table.columns:
                if column.unit == MINOR and column.name in twins:
                    assert column.name not in got  # an amount is written once, as money
                    continue
                cell, text = got[column.name], want[column.name]
                if text == "":
                    assert cell.value is None, (table.name, column.name)
                elif column.unit == DECIMAL:
                    assert as_decimal(cell) == Decimal(text) and cell.number_format == MONEY
                    compared["money"] += 1
                elif column.unit == DATE:
                    assert cell.is_date and cell.value.date() == datetime.date.fromisoformat(text)
                    compared["date"] += 1
                elif column.type == "INTEGER":
                    assert cell.value == int(text)
                else:
                    assert cell.data_type == "s" and cell.value == text.removeprefix("'"), (table.name, column.name)
    assert compared["money"] > 50 and compared["date"] > 20  # the book has figures enough to mean something


def test_the_exposure_sheet_is_what_exposure_answers(exports: tuple[Path, Path], book_file: str):  # noqa: F811 (the imported fixture)
    xlsx, _ = exports
    answer = json.loads(cli("exposure", "--as-of", AS_OF.isoformat(), "--json", "--db", book_file).stdout)
    sheet = {row["buyer"].value: row for row in sheet_rows(xlsx, "exposure")}
    assert sorted(sheet) == sorted(b["buyer"] for b in answer["buyers"])
    for buyer in answer["buyers"]:
        for figure in ("outstanding", "overdue", "insured", "uninsured", "limit", "top_up", "headroom"):
            assert as_decimal(sheet[buyer["buyer"]][figure]) == Decimal(buyer[figure]), (buyer["buyer"], figure)
    book_outstanding = sum((as_decimal(row["outstanding"]) for row in sheet.values()), Decimal(0))
    assert book_outstanding == Decimal(answer["outstanding"])


def test_the_metadata_sheet_says_what_the_export_is(exports: tuple[Path, Path]):
    xlsx, _ = exports
    (metadata,) = sheet_rows(xlsx, "metadata")
    assert metadata["currency"].value == "GBP" and metadata["as_of"].value.date() == AS_OF
    assert metadata["policy_start"].is_date
    about = sheet_rows(xlsx, "about_columns")
    assert not any(row["column_name"].value.endswith("_minor") and row["unit"].value == MINOR for row in about)


def test_declare_xlsx_has_the_figures_of_declare(book_file: str, tmp_path: Path):  # noqa: F811 (the imported fixture)
    printed = list(csv.DictReader(io.StringIO(cli("declare", "--period", "2025-Q1", "--db", book_file).stdout)))
    path = tmp_path / "q1.xlsx"
    result = cli("declare", "--period", "2025-Q1", "--xlsx", str(path), "--db", book_file)
    assert f"to {path}" in result.stdout and "insurable_turnover" not in result.stdout
    sheet = sheet_rows(path, "declaration")
    assert [(r["country"].value, as_decimal(r["insurable_turnover"])) for r in sheet] == [
        (r["country"], Decimal(r["insurable_turnover"])) for r in printed]
    assert printed and all(r["insurable_turnover"].number_format == MONEY for r in sheet)
    again = cli("declare", "--period", "2025-Q1", "--xlsx", str(path), "--db", book_file, ok=False)
    assert again.exit_code == 1 and "--force" in str(again.exception)
    cli("declare", "--period", "2025-Q1", "--xlsx", str(path), "--force", "--db", book_file)


def test_text_that_looks_like_a_formula_stays_text(hostile_file: str, tmp_path: Path):  # noqa: F811 (the imported fixture)
    path = tmp_path / "hostile.xlsx"
    cli("export", "--xlsx", str(path), "--as-of", "2025-12-31", "--db", hostile_file)
    (buyer,) = sheet_rows(path, "buyers")
    assert (buyer["buyer"].value, buyer["name"].value) == (BUYER, LINK)
    assert buyer["name"].data_type == "s" and buyer["buyer"].data_type == "s"
    declared = tmp_path / "declared.xlsx"
    cli("declare", "--period", "2025-Q2", "--xlsx", str(declared), "--db", hostile_file)
    (row,) = sheet_rows(declared, "declaration")
    assert row["policy"].value == POLICY_ID and row["policy"].data_type == "s"
    assert as_decimal(row["insurable_turnover"]) == Decimal("-200.00")  # a negative figure stays a number


def test_one_target_and_no_file_replaced_without_force(book_file: str, tmp_path: Path):  # noqa: F811 (the imported fixture)
    both = cli("export", "--xlsx", str(tmp_path / "a.xlsx"), "--csv", str(tmp_path / "c"), "--db", book_file, ok=False)
    assert both.exit_code == 1 and "--xlsx FILE" in str(both.exception)
    existing = tmp_path / "b.xlsx"
    existing.write_text("mine")
    kept = cli("export", "--xlsx", str(existing), "--db", book_file, ok=False)
    assert kept.exit_code == 1 and "--force" in str(kept.exception) and existing.read_text() == "mine"


@pytest.mark.parametrize(("currency", "number_format"), [
    ("GBP", '#,##0.00 "GBP";-#,##0.00 "GBP"'), ("JPY", '#,##0 "JPY";-#,##0 "JPY"'),
    ("KWD", '#,##0.000 "KWD";-#,##0.000 "KWD"'),
])
def test_money_has_the_decimals_of_its_currency(currency: str, number_format: str):
    assert money_format(currency) == number_format
