"""`creditledger export` (issue 7): the read models as SQLite tables and CSV files.

A small book (three buyers, a foreign invoice, a top-up, an insolvency with an
indemnity and a recovery, a declaration that differs from the computed
turnover, a payment recorded late) is exported and opened with the `sqlite3`
module: tables, column types, keys and indexes, and every figure against the
query that computes it.
"""

from __future__ import annotations

import csv
import datetime
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import (
    POSTGRES_SERVER,
    POSTGRES_UNREACHABLE,
    Clock,
    cli,
    drop_schema,
    no_default_db,  # noqa: F401 (an autouse fixture)
    postgres_available,
)

from ledger.adapters import export
from ledger.queries.claims import claim_query
from ledger.queries.exposure import exposure_query
from ledger.queries.obligations import obligations_query
from ledger.queries.premium import premium_query
from ledger.queries.turnover import turnover_query
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import FULL_LIMIT

ROOT = Path(__file__).resolve().parent.parent
UTC = datetime.UTC
AS_OF = datetime.date(2025, 6, 30)
FIRST_WRITES = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LATE = datetime.datetime(2025, 7, 1, 9, 0, tzinfo=UTC)  # when the late payment is recorded
BEFORE_LATE = datetime.datetime(2025, 6, 15, tzinfo=UTC)

BOOK: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Beta GmbH", "country": "DE"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B3", "name": "Carol Smith", "country": "US",
     "kind": "private_individual"},
    {"type": "limit_requested", "effective": "2025-01-02", "buyer": "B1", "amount": "100000"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "100000", "basis": "underwriter"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "20000", "basis": "underwriter"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "40000.00",
     "due": "2025-03-10", "key": "ERP-I1"},
    {"type": "invoice_issued", "effective": "2025-01-15", "buyer": "B2", "invoice": "J1", "amount": "15000.00",
     "due": "2025-03-15"},
    {"type": "invoice_issued", "effective": "2025-01-20", "buyer": "B3", "invoice": "K1", "amount": "500.00",
     "due": "2025-02-20"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I2", "amount": "30000.00",
     "due": "2025-04-01"},
    {"type": "invoice_issued", "effective": "2025-02-10", "buyer": "B1", "invoice": "I3", "amount": "1000.00",
     "currency": "USD", "fx_rate": "0.8", "due": "2025-04-10"},
    {"type": "credit_note_issued", "effective": "2025-02-12", "buyer": "B1", "invoice": "I3", "amount": "100.00"},
    {"type": "payment_received", "effective": "2025-03-05", "buyer": "B1", "invoice": "I1", "amount": "40000.00"},
    {"type": "payment_received", "effective": "2025-04-05", "buyer": "B1", "invoice": "I3", "amount": "700.00"},
    {"type": "limit_reduced", "effective": "2025-03-15", "buyer": "B1", "amount": "60000"},
    {"type": "top_up_purchased", "effective": "2025-03-16", "buyer": "B1"},
    {"type": "insolvency", "effective": "2025-04-10", "buyer": "B2", "proceeding": "liquidation"},
    {"type": "turnover_declared", "effective": "2025-04-15", "period": "2025-Q1", "country": "GB",
     "amount": "40000.00"},
    {"type": "claim_filed", "effective": "2025-04-20", "buyer": "B2"},
    {"type": "indemnity_paid", "effective": "2025-05-20", "buyer": "B2", "amount": "13050.00"},
    {"type": "recovery_received", "effective": "2025-06-10", "buyer": "B2", "amount": "1000.00"},
]
LATE_PAYMENT = {"type": "payment_received", "effective": "2025-03-30", "buyer": "B1", "invoice": "I2",
                "amount": "30000.00", "key": "PAY-LATE"}


def record(ledger: Ledger, clock: Clock, policy_terms: PolicyTerms) -> None:
    """The book, a minute between writes, then the late payment on 2025-07-01."""
    clock.set(FIRST_WRITES)
    ledger.load_policy(policy_terms)
    for raw in BOOK:
        clock.advance(minutes=1)
        ledger.append(raw)
    clock.set(LATE)
    ledger.append(LATE_PAYMENT)
    clock.advance(minutes=1)


@pytest.fixture
def book_file(tmp_path: Path, policy_terms: PolicyTerms) -> str:
    """The book in a SQLite file (so that the CLI can export it)."""
    path = str(tmp_path / "ledger.db")
    clock = Clock()
    with Ledger(path, clock=clock) as ledger:
        record(ledger, clock, policy_terms)
    return path


@pytest.fixture
def book(book_file: str) -> Iterator[Ledger]:
    with Ledger(book_file, clock=Clock(LATE + datetime.timedelta(hours=1))) as ledger:
        yield ledger


def exported(ledger: Ledger, path: Path, known_at: datetime.datetime | None = None,
             as_of: datetime.date = AS_OF) -> sqlite3.Connection:
    export.write_sqlite(export.build_report(ledger, as_of, known_at), path)
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    return connection


def rows(connection: sqlite3.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in connection.execute(sql, args)]


# ---------------------------------------------------------------- the file: tables, types, keys, indexes

def test_tables_have_their_types_keys_and_indexes(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    tables = {row["name"] for row in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {
        "buyers", "events", "limits", "invoices", "exposure", "obligations", "turnover", "turnover_excluded",
        "premium_lines", "claims", "claim_invoices", "claim_applied", "claim_steps", "claim_recovery_shares",
        "metadata", "about_tables", "about_columns",
    }
    types = {row["name"]: row["type"] for row in rows(db, "PRAGMA table_info(invoices)")}
    assert types["amount_minor"] == "INTEGER" and types["amount"] == "TEXT"
    assert types["insured_minor"] == "INTEGER" and types["due"] == "TEXT"
    event_columns = {row["name"]: row["type"] for row in rows(db, "PRAGMA table_info(events)")}
    assert {"effective", "recorded", "payload", "amount_minor"} <= set(event_columns)
    assert event_columns["position"] == "INTEGER"
    # The declared type of every column is what about_columns says it is.
    for table in export.TABLES:
        declared = [(row["name"], row["type"]) for row in rows(db, f"PRAGMA table_info({table.name})")]
        documented = [(row["column_name"], row["type"]) for row in rows(
            db, "SELECT column_name, type FROM about_columns WHERE table_name = ? ORDER BY position", table.name)]
        assert declared == documented, table.name
    # And the stored values have those types (no float anywhere, no text in an integer column).
    for table in export.TABLES:
        for column in table.columns:
            sql = f'SELECT DISTINCT typeof("{column.name}") FROM {table.name}'  # noqa: S608 (our schema's names)
            kinds = {row[0] for row in db.execute(sql)}
            assert kinds <= {column.type.lower(), "null"}, (table.name, column.name, kinds)

    keys = {(row["table"], row["from"], row["to"]) for row in rows(db, "PRAGMA foreign_key_list(invoices)")}
    assert {("buyers", "buyer", "buyer"), ("events", "event_id", "id"), ("events", "limit_event_id", "id")} <= keys
    composite = rows(db, "PRAGMA foreign_key_list(claim_invoices)")
    assert {(row["table"], row["from"]) for row in composite} >= {("invoices", "buyer"), ("invoices", "invoice")}
    assert ("buyers", "buyer", "buyer") in {(r["table"], r["from"], r["to"]) for r in rows(db, "PRAGMA foreign_key_list(events)")}
    assert ("events", "event_id", "id") in {(r["table"], r["from"], r["to"]) for r in rows(db, "PRAGMA foreign_key_list(buyers)")}
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def indexed(table: str) -> set[str]:
        found = set()
        for index in rows(db, f"PRAGMA index_list({table})"):
            found |= {row["name"] for row in rows(db, f"PRAGMA index_info('{index['name']}')")}
        return found

    assert {"type", "effective", "recorded", "buyer", "key", "position"} <= indexed("events")
    assert {"buyer", "due", "event_id"} <= indexed("invoices")
    assert {"status", "due", "buyer"} <= indexed("obligations")
    # The planner uses them: a filter on an event's type is an index search, not a scan.
    plan = " ".join(str(tuple(row)) for row in db.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE type = 'x'"))
    assert "USING INDEX" in plan


def test_metadata_says_what_the_export_is(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    meta = rows(db, "SELECT * FROM metadata")
    assert len(meta) == 1
    row = meta[0]
    assert row["policy"] == "POL-2025-001" and row["currency"] == "GBP" and row["minor_units"] == 2
    assert row["as_of"] == "2025-06-30"
    assert row["known_at"] == row["exported_at"] == "2025-07-01T10:00:00.000000Z"  # now, by the ledger's clock
    assert row["ledger"] == book.location
    assert row["events_known"] == len(BOOK) + 2  # the policy and the late payment
    assert row["events_exported"] == db.execute("SELECT count(*) FROM events").fetchone()[0] == len(BOOK) + 2
    assert row["minimum_premium"] == premium_query(book, {"as_of": AS_OF}).minimum
    assert row["max_liability"] == premium_query(book, {"as_of": AS_OF}).max_liability
    # A clock behind the latest stamp (moved back, another machine) still misses nothing.
    with Ledger(book.location, clock=Clock(FIRST_WRITES)) as behind:
        assert export.build_report(behind, AS_OF, None).known_at == LATE
    counts = {r["name"]: r["rows"] for r in rows(db, "SELECT name, rows FROM about_tables")}
    for name, count in counts.items():
        assert name in export.TABLE
        assert db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == count, name  # noqa: S608 (checked name)


# ---------------------------------------------------------------- the figures equal the queries

def test_exposure_per_buyer_equals_the_query(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    answer = exposure_query(book, {"as_of": AS_OF})
    table = {row["buyer"]: row for row in rows(db, "SELECT * FROM exposure JOIN buyers USING (buyer)")}
    assert set(table) == {"B1", "B2", "B3"}  # the buyers' names and countries are in `buyers`
    for expected in answer.buyers:
        row = table[expected.buyer]
        for name, value in msgspec.structs.asdict(expected).items():
            assert row[name] == value, (expected.buyer, name)
            if name not in ("buyer", "name", "country", "status", "not_available"):
                assert row[f"{name}_minor"] == int(Decimal(value) * 100)
    # The book's figures are the sums; invoices add up to each buyer's figures.
    assert db.execute("SELECT sum(insured_minor) FROM exposure").fetchone()[0] == int(Decimal(answer.insured) * 100)
    by_buyer = rows(db, "SELECT buyer, sum(balance_minor) AS balance, sum(insured_minor) AS insured FROM invoices "
                        "GROUP BY buyer")
    for row in by_buyer:
        assert row["balance"] == table[row["buyer"]]["outstanding_minor"]
        assert row["insured"] == table[row["buyer"]]["insured_minor"]
    in_force = {row["buyer"]: row["amount"] for row in rows(db, "SELECT buyer, amount FROM limits WHERE in_force = 1")}
    assert in_force == {"B1": "60000.00", "B2": "20000.00"}
    assert table["B1"]["limit"] == "60000.00" and table["B1"]["top_up"] == "40000.00"


def test_invoices_keep_their_own_currency_and_caps(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    invoices = {row["invoice"]: row for row in rows(db, "SELECT * FROM invoices")}
    foreign = invoices["I3"]
    assert (foreign["amount"], foreign["currency"], foreign["foreign_amount"], foreign["fx_rate"]) == (
        "800.00", "USD", "1000.00", "0.8")
    assert (foreign["credited"], foreign["paid"], foreign["balance"]) == ("100.00", "700.00", "0.00")
    assert invoices["K1"]["cap"] == "0.00" and invoices["K1"]["not_insured"] == "private individual"
    assert invoices["I1"]["cap"] == "40000.00" and invoices["I1"]["entry_limit"] == "100000.00"
    limit = rows(db, "SELECT effective FROM events WHERE id = ?", invoices["I1"]["limit_event_id"])
    assert limit == [{"effective": "2025-01-03"}]
    assert invoices["K1"]["overdue"] == 1 and invoices["I1"]["overdue"] == 0


def test_premium_lines_sum_to_the_account(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    account = premium_query(book, {"as_of": AS_OF})
    sums = {row["account"]: row["amount"] for row in rows(
        db, "SELECT account, sum(amount_minor) AS amount FROM premium_lines GROUP BY account")}
    for name in ("premium", "adjustment", "investigation_fees", "monitoring_fees", "top_up"):
        assert sums.get(name, 0) == int(Decimal(getattr(account, name)) * 100), name
    assert sums["top_up"] != 0 and sums["investigation_fees"] != 0  # the book has both
    tax, total = db.execute("SELECT sum(tax_minor), sum(total_minor) FROM premium_lines").fetchone()
    assert tax == int(Decimal(account.tax) * 100)
    assert total == int(Decimal(account.total) * 100)
    listed = [(line.date, line.kind, line.amount, line.tax) for line in account.lines]
    assert [(r["date"], r["kind"], r["amount"], r["tax"]) for r in rows(db, "SELECT * FROM premium_lines ORDER BY id")] == listed


def test_claims_and_their_explanation_equal_the_query(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    claims = {row["buyer"]: row for row in rows(db, "SELECT * FROM claims")}
    assert set(claims) == {"B2"}
    expected = claim_query(book, {"buyer": "B2", "as_of": AS_OF, "explain": True})
    row = claims["B2"]
    for name in ("loss_date", "cause", "insured_loss", "indemnity", "retained", "recovered", "insurer_recovery",
                 "insured_recovery", "indemnity_paid", "insurer_net_loss", "insured_net_loss", "status"):
        assert row[name] == getattr(expected, name), name
    assert row["loss_event_id"] == expected.loss_event
    assert row["insured_loss"] == "15000.00" and row["status"] == "paid"
    steps = rows(db, "SELECT * FROM claim_steps WHERE buyer = 'B2' ORDER BY step")
    assert [(s["name"], s["before"], s["after"]) for s in steps] == [
        (s.step, s.before, s.after) for s in expected.steps]
    assert steps[-1]["after"] == row["indemnity"]
    assert db.execute("SELECT sum(insured_minor) FROM claim_invoices WHERE buyer = 'B2'").fetchone()[0] == 1500000
    shares = rows(db, "SELECT * FROM claim_recovery_shares")
    assert [(s["amount"], s["insurer"], s["insured"]) for s in shares] == [
        (s.amount, s.insurer, s.insured) for s in expected.recovery_shares]
    assert shares[0]["insurer_minor"] + shares[0]["insured_minor"] == shares[0]["amount_minor"]


def test_obligations_and_turnover_equal_the_queries(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    duties = obligations_query(book, {"as_of": AS_OF}).obligations
    table = rows(db, "SELECT kind, buyer, due, status FROM obligations ORDER BY id")
    assert [{k: v for k, v in row.items() if v is not None} for row in table] == list(msgspec.to_builtins(duties))
    assert any(d.kind == "declare_turnover" for d in duties)
    quarter = turnover_query(book, {"period": "2025-Q1"})
    first = rows(db, "SELECT sum(insurable_minor) AS insurable, sum(declared_minor) AS declared FROM turnover "
                     "WHERE period = '2025-Q1'")[0]
    assert first["insurable"] == int(Decimal(quarter.insurable) * 100)
    assert first["declared"] == int(Decimal(quarter.declared) * 100)
    gb = turnover_query(book, {"period": "2025-Q1", "country": "GB"})
    row = rows(db, "SELECT * FROM turnover WHERE period = '2025-Q1' AND country = 'GB'")[0]
    assert (row["insurable"], row["declared"], row["complete"]) == (gb.insurable, gb.declared, 1)
    assert row["difference"] == "-30700.00"  # declared 40000.00; computed 40000 + 30000 + 800 - 100 (credit note)
    excluded = rows(db, "SELECT period, country, reason, amount FROM turnover_excluded")
    assert excluded == [{"period": "2025-Q1", "country": "US", "reason": "private_individual", "amount": "500.00"}]
    q2 = rows(db, "SELECT complete, last_day FROM turnover WHERE period = '2025-Q2'")
    assert q2 == [] or all(r["complete"] == 1 for r in q2)
    assert rows(db, "SELECT count(*) AS n FROM turnover WHERE period = '2025-Q3'")[0]["n"] == 0  # not begun


# ---------------------------------------------------------------- both time axes

def test_events_carry_both_time_axes_and_their_payload(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    late = rows(db, "SELECT * FROM events WHERE key = 'PAY-LATE'")[0]
    assert (late["effective"], late["recorded"]) == ("2025-03-30", "2025-07-01T09:00:00.000000Z")
    assert late["amount_minor"] == 3000000 and late["buyer"] == "B1"
    import json

    payload = json.loads(late["payload"])
    assert payload["amount"] == "30000.00" and payload["invoice"] == "I2" and payload["type"] == "payment_received"
    foreign = json.loads(rows(db, "SELECT payload FROM events WHERE type = 'invoice_issued' AND buyer = 'B1' "
                                  "AND json_extract(payload, '$.invoice') = 'I3'")[0]["payload"])
    assert (foreign["amount"], foreign["currency"]) == ("1000.00", "USD")
    positions = [row["position"] for row in rows(db, "SELECT position FROM events ORDER BY recorded, position")]
    assert positions == sorted(positions) and positions[0] == 1


def test_an_earlier_known_at_gives_the_earlier_figures(book: Ledger, tmp_path: Path) -> None:
    now = exported(book, tmp_path / "now.db")
    then = exported(book, tmp_path / "then.db", known_at=BEFORE_LATE)
    earlier = exposure_query(book, {"buyer": "B1", "as_of": AS_OF, "known_at": BEFORE_LATE})
    later = exposure_query(book, {"buyer": "B1", "as_of": AS_OF})
    assert earlier.outstanding != later.outstanding  # the late payment matters
    for db, answer in ((then, earlier), (now, later)):
        row = rows(db, "SELECT * FROM exposure JOIN buyers USING (buyer) WHERE buyer = 'B1'")[0]
        expected = msgspec.structs.asdict(answer)
        assert {name: row[name] for name in expected if name != "buyer"} == {
            name: value for name, value in expected.items() if name != "buyer"}
    assert rows(then, "SELECT count(*) AS n FROM events WHERE key = 'PAY-LATE'")[0]["n"] == 0
    assert rows(then, "SELECT max(recorded) AS last FROM events")[0]["last"] < "2025-06-15"
    assert rows(then, "SELECT known_at FROM metadata")[0]["known_at"] == "2025-06-15T00:00:00.000000Z"
    early_invoice = rows(then, "SELECT balance, overdue FROM invoices WHERE invoice = 'I2'")[0]
    assert early_invoice == {"balance": "30000.00", "overdue": 1}


def test_an_earlier_as_of_leaves_later_facts_out(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "march.db", as_of=datetime.date(2025, 3, 31))
    assert rows(db, "SELECT count(*) AS n FROM events WHERE effective > '2025-03-31'")[0]["n"] == 0
    assert rows(db, "SELECT count(*) AS n FROM events WHERE key = 'PAY-LATE'")[0]["n"] == 1  # effective 03-30
    assert rows(db, "SELECT count(*) AS n FROM claims")[0]["n"] == 0  # the insolvency is in April
    assert rows(db, "SELECT max(date) AS last FROM premium_lines")[0]["last"] <= "2025-03-31"
    assert rows(db, "SELECT complete FROM turnover WHERE period = '2025-Q1'")[0]["complete"] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


# ---------------------------------------------------------------- CSV

def test_csv_has_the_same_tables_columns_and_rows(book: Ledger, tmp_path: Path) -> None:
    report = export.build_report(book, AS_OF, None)
    export.write_sqlite(report, tmp_path / "reports.db")
    export.write_csv(export.build_report(book, AS_OF, report.known_at), tmp_path / "csv")
    db = sqlite3.connect(tmp_path / "reports.db")
    files = sorted(path.name for path in (tmp_path / "csv").iterdir())
    assert files == sorted(f"{table.name}.csv" for table in export.TABLES)
    for table in export.TABLES:
        with open(tmp_path / "csv" / f"{table.name}.csv", newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            body = list(reader)
        cursor = db.execute(f"SELECT * FROM {table.name}")  # noqa: S608 (our schema's names)
        assert header == [column[0] for column in cursor.description], table.name
        expected = [["" if value is None else str(value) for value in row] for row in cursor]
        if table.name == "metadata":  # two exports: the same but for the moment each was made
            at = header.index("exported_at")
            expected[0][at] = body[0][at]
        assert body == expected, table.name
    assert len(body) > 0


# ---------------------------------------------------------------- nothing outside the ledger asked for

def test_nothing_from_another_ledger_or_outside_the_snapshot(book: Ledger, tmp_path: Path,
                                                             policy_terms: PolicyTerms) -> None:
    with Ledger(str(tmp_path / "other.db"), clock=Clock()) as other:
        other.load_policy(policy_terms)
        other.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "OTHER-7",
                      "name": "Zanzibar Secret Trading", "country": "FR"})
        other.append({"type": "invoice_issued", "effective": "2025-01-05", "buyer": "OTHER-7", "invoice": "Z-991",
                      "amount": "777.77", "due": "2025-02-05", "key": "ZKEY-991"})
    path = tmp_path / "reports.db"
    db = exported(book, path, known_at=BEFORE_LATE)
    assert {row["buyer"] for row in rows(db, "SELECT buyer FROM buyers")} == {"B1", "B2", "B3"}
    db.close()
    content = path.read_bytes()
    for secret in (b"OTHER-7", b"Zanzibar", b"Z-991", b"ZKEY-991", b"777.77", b"PAY-LATE"):
        assert secret not in content, secret  # PAY-LATE: recorded after known_at
    # A replaced export keeps nothing of the file it replaced.
    with Ledger(str(tmp_path / "other.db")) as other:
        export.write_sqlite(export.build_report(other, AS_OF, None), path, force=True)
    content = path.read_bytes()
    assert b"Zanzibar" in content and b"Acme Ltd" not in content and b"ERP-I1" not in content


def test_the_ledger_location_never_shows_credentials() -> None:
    shown = export.public_location("postgresql://alice:s3cret@db.example:5433/books?schema=pol1&password=x")
    assert shown == "postgresql://alice:***@db.example:5433/books?schema=pol1&password=***"
    assert export.public_location("/data/ledger.db") == "/data/ledger.db"


@pytest.mark.postgres
def test_a_postgresql_export_holds_no_password(tmp_path: Path, policy_terms: PolicyTerms) -> None:
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    schema = "t_" + uuid.uuid4().hex[:16]
    location = POSTGRES_SERVER.replace("postgres@", "postgres:Pw-n0t-shown@") + f"?schema={schema}"
    try:
        with Ledger(location, clock=Clock()) as ledger:
            record(ledger, Clock(), policy_terms)
            export.write_sqlite(export.build_report(ledger, AS_OF, None), tmp_path / "pg.db")
            export.write_csv(export.build_report(ledger, AS_OF, None), tmp_path / "csv")
            expected = exposure_query(ledger, {"as_of": AS_OF})
    finally:
        drop_schema(schema)
    files = [tmp_path / "pg.db", *(tmp_path / "csv").iterdir()]
    assert all(b"Pw-n0t-shown" not in path.read_bytes() for path in files)
    db = sqlite3.connect(tmp_path / "pg.db")
    assert db.execute("SELECT ledger FROM metadata").fetchone()[0] == f"postgresql://postgres:***@127.0.0.1:5432/test?schema={schema}"
    assert db.execute("SELECT sum(insured_minor) FROM exposure").fetchone()[0] == int(Decimal(expected.insured) * 100)


# ---------------------------------------------------------------- refusals and failures

def test_refuses_to_overwrite_without_force(book_file: str, tmp_path: Path) -> None:
    target = tmp_path / "reports.db"
    target.write_bytes(b"an older report")
    result = cli("export", "--sqlite", str(target), "--db", book_file, "--as-of", "2025-06-30", ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, LedgerError)
    assert "--force" in str(result.exception) and str(target) in str(result.exception)
    assert target.read_bytes() == b"an older report"
    done = cli("export", "--sqlite", str(target), "--db", book_file, "--as-of", "2025-06-30", "--force")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # a new file's usual mode, not a temporary file's
    assert "exported 17 tables" in done.stdout
    assert sqlite3.connect(target).execute("SELECT count(*) FROM buyers").fetchone()[0] == 3

    folder = tmp_path / "csv"
    cli("export", "--csv", str(folder), "--db", book_file, "--as-of", "2025-06-30")
    (folder / "notes.txt").write_text("mine")
    again = cli("export", "--csv", str(folder), "--db", book_file, "--as-of", "2025-06-30", ok=False)
    assert again.exit_code == 1 and "--force" in str(again.exception)
    cli("export", "--csv", str(folder), "--db", book_file, "--as-of", "2025-06-30", "--force")
    assert (folder / "notes.txt").read_text() == "mine"  # not ours: left alone


def test_never_exports_over_the_ledger_itself(book_file: str) -> None:
    before = Path(book_file).read_bytes()
    result = cli("export", "--sqlite", book_file, "--db", book_file, "--force", ok=False)
    assert result.exit_code == 1 and "is the ledger itself" in str(result.exception)
    assert Path(book_file).read_bytes() == before


def test_bad_arguments_are_one_line_refusals(book_file: str, tmp_path: Path) -> None:
    neither = cli("export", "--db", book_file, ok=False)
    assert neither.exit_code == 1 and "--sqlite FILE, --csv FOLDER or --xlsx FILE" in str(neither.exception)
    both = cli("export", "--sqlite", "a.db", "--csv", "dir", "--db", book_file, ok=False)
    assert both.exit_code == 1 and isinstance(both.exception, LedgerError)
    bad_date = cli("export", "--sqlite", "a.db", "--as-of", "2025-02-30", "--db", book_file, ok=False)
    assert bad_date.exit_code == 1 and bad_date.exception.field == "as_of"  # type: ignore[union-attr]
    missing = cli("export", "--sqlite", "a.db", "--db", str(tmp_path / "none.db"), ok=False)
    assert missing.exit_code == 1 and "creditledger init" in str(missing.exception)
    folder = cli("export", "--sqlite", str(tmp_path), "--db", book_file, ok=False)
    assert folder.exit_code == 1 and "is a folder" in str(folder.exception)
    no_parent = cli("export", "--sqlite", str(tmp_path / "no" / "a.db"), "--db", book_file, ok=False)
    assert no_parent.exit_code == 1 and "is not a folder" in str(no_parent.exception)
    assert not Path("a.db").exists() and not Path("dir").exists()


def test_a_failed_export_leaves_nothing_behind(book: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = export.build_report(book, AS_OF, None)
    original = report.rows

    def failing(name: str, written: Any) -> Any:
        if name == "claims":
            raise OSError(28, "No space left on device")
        return original(name, written)

    monkeypatch.setattr(report, "rows", failing)
    with pytest.raises(OSError):
        export.write_sqlite(report, tmp_path / "reports.db")
    with pytest.raises(OSError):
        export.write_csv(report, tmp_path / "csv")
    left = [path.name for path in tmp_path.iterdir() if not path.name.startswith("ledger.db")]  # the ledger, its WAL
    assert left == []  # no export, no temporary file

    (tmp_path / "old.db").write_bytes(b"the previous report")
    with pytest.raises(OSError):
        export.write_sqlite(report, tmp_path / "old.db", force=True)
    assert (tmp_path / "old.db").read_bytes() == b"the previous report"


def test_a_ledger_without_policy_is_refused(tmp_path: Path) -> None:
    with Ledger(str(tmp_path / "empty.db")) as empty, pytest.raises(LedgerError, match="no policy"):
        export.build_report(empty, AS_OF, None)


# ---------------------------------------------------------------- the documentation

def docs_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "export.md").read_text()
    parts = re.split(r"^### `(\w+)`", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_docs_describe_every_table_and_column() -> None:
    sections = docs_sections()
    assert set(sections) == {table.name for table in export.TABLES}
    for table in export.TABLES:
        documented = re.findall(r"^\| `(\w+)` \|", sections[table.name], flags=re.MULTILINE)
        assert documented == table.column_names, table.name
        # What the export writes into about_tables and about_columns is what the docs say.
        assert table.meaning in sections[table.name], table.name
        for column in table.columns:
            assert column.meaning in sections[table.name], f"{table.name}.{column.name}"


def test_the_example_queries_of_the_docs_run(book: Ledger, tmp_path: Path) -> None:
    db = exported(book, tmp_path / "reports.db")
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "export.md").read_text(), flags=re.DOTALL)
    assert len(queries) >= 2
    for query in queries:
        assert db.execute(query).fetchall(), query
    # The exact sums of the premium example are the premium account's figures.
    account = premium_query(book, {"as_of": AS_OF})
    premium_example = next(query for query in queries if "printf" in query)
    for heading, amount, *_ in db.execute(premium_example):
        assert amount == getattr(account, heading), heading


# ---------------------------------------------------------------- a cap of 0 says why; claims are counted as claims

FULL_LIMIT_BOOK: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Beta GmbH", "country": "DE"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "5000"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "5000"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "FILLS", "amount": "5000.00",
     "due": "2025-03-10"},
    {"type": "invoice_issued", "effective": "2025-01-11", "buyer": "B1", "invoice": "BEYOND", "amount": "1000.00",
     "due": "2025-03-11"},
    {"type": "invoice_issued", "effective": "2025-01-12", "buyer": "B1", "invoice": "NOT-DELIVERED", "amount": "10.00",
     "due": "2025-03-12", "delivered": "2026-02-01"},
    {"type": "overdue_reported", "effective": "2025-03-20", "buyer": "B1"},  # on watch: the waiting period runs
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B2", "invoice": "J1", "amount": "5000.00",
     "due": "2025-03-10"},
    {"type": "invoice_issued", "effective": "2025-01-11", "buyer": "B2", "invoice": "J2", "amount": "500.00",
     "due": "2025-03-11"},
    {"type": "insolvency", "effective": "2025-04-01", "buyer": "B2", "proceeding": "liquidation"},
]


def test_a_zero_cap_from_a_full_limit_says_so_and_watch_rows_are_not_claims(
    tmp_path: Path, policy_terms: PolicyTerms
) -> None:
    path = str(tmp_path / "ledger.db")
    with Ledger(path) as ledger:
        ledger.load_policy(policy_terms)
        ledger.record(ledger.parse(list(enumerate(FULL_LIMIT_BOOK, 1)), "book"))
        db = exported(ledger, tmp_path / "reports.db", as_of=datetime.date(2025, 4, 30))
    invoices = {row["invoice"]: row for row in rows(db, "SELECT invoice, cap, not_insured, entry_limit, "
                                                        "entry_insured_outstanding FROM invoices")}
    assert invoices["FILLS"] == {"invoice": "FILLS", "cap": "5000.00", "not_insured": None, "entry_limit": "5000.00",
                                 "entry_insured_outstanding": "0.00"}
    assert invoices["BEYOND"] == {"invoice": "BEYOND", "cap": "0.00", "not_insured": FULL_LIMIT,
                                  "entry_limit": "5000.00", "entry_insured_outstanding": "5000.00"}
    assert invoices["NOT-DELIVERED"]["not_insured"] == "delivered outside the policy period"
    assert rows(db, "SELECT count(*) AS n FROM invoices WHERE cap_minor = 0 AND not_insured IS NULL") == [{"n": 0}]
    assert rows(db, "SELECT invoice, cap, not_insured FROM claim_invoices ORDER BY invoice") == [
        {"invoice": "J1", "cap": "5000.00", "not_insured": None},
        {"invoice": "J2", "cap": "0.00", "not_insured": FULL_LIMIT}]
    assert rows(db, "SELECT buyer, status FROM claims ORDER BY buyer") == [
        {"buyer": "B1", "status": "watch"}, {"buyer": "B2", "status": "open"}]
    said = cli("export", "--sqlite", str(tmp_path / "again.db"), "--as-of", "2025-04-30", "--db", path).stdout
    assert "1 claims, 1 buyers on watch;" in " ".join(said.split())
