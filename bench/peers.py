"""The peers a user would reach for, built from the same facts as the benchmark's ledger.

(a) eventsourcing used the plain way: one `Aggregate` per buyer, its events
    stored by the library's default JSON mapper (dict payloads, class-path
    topics), each aggregate rebuilt by `repository.get`.
(b) plain SQL: invoice, credit note and payment tables, and one
    `GROUP BY` for each buyer's outstanding at a date.

Neither knows cover, caps or time travel; they set the floor a general tool
reaches on the same events, which is what the ratios in the table compare.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class PeerBuyer(Aggregate):
    """A buyer as the library's tutorial would write it: every fact one decorated event."""

    def __init__(self, buyer: str) -> None:
        self.buyer = buyer
        self.invoiced: dict[str, int] = {}
        self.received = 0

    @event("Recorded")
    def record(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "invoice_issued":
            self.invoiced[data["invoice"]] = _cents(data["amount"])
        elif kind in ("payment_received", "credit_note_issued"):
            self.received += _cents(data["amount"])


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)  # the sample book's currency has two decimals


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in row.items()}


def build_peer_a(rows: Iterable[Mapping[str, Any]], path: Path) -> tuple[Application[uuid.UUID], list[uuid.UUID]]:
    """Store every buyer event as a PeerBuyer aggregate in its own SQLite file."""
    by_buyer: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if "buyer" in row:
            by_buyer[row["buyer"]].append(row)
    app: Application[uuid.UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    ids = []
    for buyer, facts in by_buyer.items():
        aggregate = PeerBuyer(buyer)
        for row in facts:
            aggregate.record(row["type"], _public(row))
        app.save(aggregate)
        ids.append(aggregate.id)
    return app, ids


def replay_peer_a(app: Application[uuid.UUID], ids: list[uuid.UUID]) -> tuple[int, float]:
    """(events folded, seconds) to rebuild every buyer aggregate from the store."""
    start = time.perf_counter()
    events = sum(app.repository.get(aggregate_id).version for aggregate_id in ids)
    return events, time.perf_counter() - start


def build_peer_b(rows: Iterable[Mapping[str, Any]], path: Path) -> sqlite3.Connection:
    """Invoice, credit note and payment tables, indexed by date, in their own SQLite file."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE invoices (buyer TEXT, invoice TEXT, issued TEXT, due TEXT, amount INTEGER);"
        "CREATE TABLE credit_notes (buyer TEXT, invoice TEXT, issued TEXT, amount INTEGER);"
        "CREATE TABLE payments (buyer TEXT, invoice TEXT, paid TEXT, amount INTEGER);"
    )
    tables = {
        "invoice_issued": ("INSERT INTO invoices VALUES (?,?,?,?,?)", ("buyer", "invoice", "effective", "due", "amount")),
        "credit_note_issued": ("INSERT INTO credit_notes VALUES (?,?,?,?)", ("buyer", "invoice", "effective", "amount")),
        "payment_received": ("INSERT INTO payments VALUES (?,?,?,?)", ("buyer", "invoice", "effective", "amount")),
    }
    for row in rows:
        if row["type"] in tables:
            sql, names = tables[row["type"]]
            values = [row.get(name) for name in names]
            values[-1] = _cents(row["amount"])
            db.execute(sql, [v.isoformat() if isinstance(v, datetime.date) else v for v in values])
    db.executescript(
        "CREATE INDEX invoices_issued ON invoices (issued, buyer);"
        "CREATE INDEX credit_notes_issued ON credit_notes (issued, buyer);"
        "CREATE INDEX payments_paid ON payments (paid, buyer);"
    )
    db.commit()
    return db


PEER_B_OUTSTANDING = """
SELECT buyer, sum(amount) FROM (
    SELECT buyer, amount FROM invoices WHERE issued <= :day
    UNION ALL SELECT buyer, -amount FROM credit_notes WHERE issued <= :day
    UNION ALL SELECT buyer, -amount FROM payments WHERE paid <= :day
) GROUP BY buyer
"""


def outstanding_peer_b(db: sqlite3.Connection, day: datetime.date) -> tuple[dict[str, int], float]:
    """(each buyer's outstanding at the end of `day`, seconds) by plain SQL."""
    start = time.perf_counter()
    rows = dict(db.execute(PEER_B_OUTSTANDING, {"day": day.isoformat()}).fetchall())
    return rows, time.perf_counter() - start
