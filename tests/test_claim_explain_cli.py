"""`claim --explain` as a table shows every invoice the explanation used, the settled ones too
(it once said "see --json" for them)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from helpers import cli

from ledger.service import Ledger
from ledger.vocabulary.terms import parse_policy

POLICY = {"id": "P-EXPLAIN", "currency": "GBP", "start": datetime.date(2025, 1, 1),
          "end": datetime.date(2025, 12, 31), "cover": "proportional"}
ROWS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "10000"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "PAID-1", "amount": "2000.00",
     "due": "2025-03-10"},
    {"type": "invoice_issued", "effective": "2025-01-12", "buyer": "B1", "invoice": "OPEN-1", "amount": "3000.00",
     "due": "2025-03-12"},
    {"type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "invoice": "PAID-1", "amount": "2000.00"},
    {"type": "insolvency", "effective": "2025-02-15", "buyer": "B1", "proceeding": "liquidation"},
]


def test_the_table_lists_the_settled_invoices_too(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    with Ledger(db) as ledger:
        ledger.load_policy(parse_policy(POLICY))
        ledger.record(ledger.parse(list(enumerate(ROWS, 1)), "book"))
    explained = json.loads(cli("claim", "B1", "--as-of", "2025-06-30", "--explain", "--json", "--db", db).stdout)
    assert [line["invoice"] for line in explained["invoices"]] == ["PAID-1", "OPEN-1"]
    table = cli("claim", "B1", "--as-of", "2025-06-30", "--explain", "--db", db).stdout
    assert "see --json" not in table
    for line in explained["invoices"]:
        assert line["invoice"] in table and line["event"] in table
    settled = table.index("settled")
    assert table.index("OPEN-1") < settled < table.index("PAID-1")  # the open one first, the settled after
    assert "payment: 2000.00" in table and "2 issued and delivered by the loss date, 1 with a balance" in table
