"""CSV formula injection (issue 8, "exported files never contain anything outside the ledger asked
for"): the CSV that `export --csv` and `declare` write is opened in spreadsheets, where a cell
beginning with = + - @, a tab or a carriage return runs as a formula. Such text is written with a
leading ', plain numbers (negative amounts too) stay numbers, and the SQLite export is unchanged.

The event vocabulary lets the payload through: names, buyer ids, invoice numbers, keys and the
policy id refuse only control characters and line breaks, so `=HYPERLINK(...)` is a valid name.
A tab or carriage return cannot start any of them (refused as control characters); `safe_cell`
still covers them for any text a later table might carry.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import msgspec
import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.adapters.csvsafe import safe_cell
from ledger.service import Ledger
from ledger.vocabulary.terms import PolicyTerms

LINK = '=HYPERLINK("http://x","y")'
POLICY_ID = "=1+2"
BUYER = "@SUM(A1:A9)"
INVOICE = "+I-1"
KEY = "-K1"


@pytest.mark.parametrize(("value", "written"), [
    (LINK, "'" + LINK), ("+44 20 7946 0000", "'+44 20 7946 0000"), ("-2+3", "'-2+3"), ("@cmd", "'@cmd"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-", "'-"), ("=", "'="), ("-1e3", "'-1e3"), ("-.5", "'-.5"),
    ("-500.00", "-500.00"), ("-12", "-12"), ("1500.00", "1500.00"), ("2025-01-31", "2025-01-31"),
    ("Acme = Ltd", "Acme = Ltd"), ("", ""), (None, None), (-500, -500), (0, 0),
])
def test_a_cell_is_text_or_a_number_never_a_formula(value: object, written: object) -> None:
    assert safe_cell(value) == written


@pytest.fixture
def hostile_file(tmp_path: Path, policy_terms: PolicyTerms) -> str:
    """A ledger whose policy id, buyer id and name, invoice number and key all begin a formula,
    and a negative amount in the export."""
    path = str(tmp_path / "ledger.db")
    with Ledger(path) as ledger:
        ledger.load_policy(msgspec.structs.replace(policy_terms, id=POLICY_ID))
        ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": BUYER, "name": LINK,
                       "country": "GB"})
        ledger.append({"type": "limit_granted", "effective": "2025-01-03", "buyer": BUYER, "amount": "5000"})
        ledger.append({"type": "invoice_issued", "effective": "2025-01-10", "buyer": BUYER, "invoice": INVOICE,
                       "amount": "1000.00", "due": "2025-03-10", "key": KEY})
        # A credit note in a quarter without sales: that quarter's insurable turnover is negative.
        ledger.append({"type": "credit_note_issued", "effective": "2025-04-10", "buyer": BUYER, "invoice": INVOICE,
                       "amount": "200.00"})
    return path


def csv_cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_export_csv_writes_formula_text_with_a_leading_quote(hostile_file: str, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    cli("export", "--csv", str(folder), "--db", hostile_file, "--as-of", "2025-06-30")
    cells = [cell for path in sorted(folder.iterdir()) for cell in csv_cells(path)]
    for text in (LINK, POLICY_ID, BUYER, INVOICE, KEY):
        assert "'" + text in cells, text
    starts = [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert starts, "the book has no negative amount to check"
    assert all(cell.lstrip("-").replace(".", "", 1).isdigit() for cell in starts), starts
    # The buyer's row: the quote only where a formula would start.
    with (folder / "buyers.csv").open(newline="", encoding="utf-8") as handle:
        buyer = next(csv.DictReader(handle))
    assert (buyer["buyer"], buyer["name"], buyer["country"]) == ("'" + BUYER, "'" + LINK, "GB")


def test_the_sqlite_export_keeps_the_text_as_recorded(hostile_file: str, tmp_path: Path) -> None:
    target = tmp_path / "reports.db"
    cli("export", "--sqlite", str(target), "--db", hostile_file, "--as-of", "2025-06-30")
    db = sqlite3.connect(target)
    assert db.execute("SELECT buyer, name FROM buyers").fetchall() == [(BUYER, LINK)]
    assert db.execute("SELECT key FROM events WHERE key IS NOT NULL").fetchall() == [(KEY,)]


def test_declare_writes_a_formula_policy_id_as_text(hostile_file: str) -> None:
    result = cli("declare", "--period", "2025-Q1", "--db", hostile_file)
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["policy", "period", "country", "currency", "insurable_turnover"]
    assert rows[1] == ["'" + POLICY_ID, "2025-Q1", "GB", "GBP", "1000.00"]
