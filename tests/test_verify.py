"""Tamper evidence: the hash chain and `creditledger verify`.

An untouched ledger verifies clean on every backend; a SQLite file edited
behind the ledger's back with plain `sqlite3` (an event changed, deleted,
inserted, two swapped) fails verify naming the right event; a write onto a
broken chain is refused; a ledger from before the chain is chained by
`chain init`, never on opening; concurrent writers still leave one valid chain.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import POSTGRES_SERVER, Clock, cli

from ledger.operations.verify import Finding, verify
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import to_public
from ledger.vocabulary.terms import PolicyTerms

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "workers.py"

BOOK: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB",
     "key": "reg-B1"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt GmbH", "country": "DE",
     "key": "reg-B2"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "key": "lim-B1"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "5000", "key": "lim-B2"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "1000.00",
     "due": "2025-03-10", "key": "inv-I1"},
    {"type": "invoice_issued", "effective": "2025-01-12", "buyer": "B2", "invoice": "J1", "amount": "250.00",
     "due": "2025-03-12", "key": "inv-J1"},
    {"type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1", "amount": "400.00",
     "key": "pay-I1"},
    {"type": "invoice_issued", "effective": "2025-02-03", "buyer": "B1", "invoice": "I2", "amount": "300.00",
     "due": "2025-04-03", "key": "inv-I2"},
]


def fill(ledger: Ledger, clock: Clock, policy_terms: PolicyTerms) -> None:
    ledger.load_policy(policy_terms)
    for raw in BOOK:
        clock.advance(minutes=1)
        ledger.append(raw)


def write_book(location: str, policy_terms: PolicyTerms) -> None:
    clock = Clock()
    with Ledger(location, clock=clock) as ledger:
        fill(ledger, clock, policy_terms)


@pytest.fixture
def sqlite_book(tmp_path: Path, policy_terms: PolicyTerms) -> Path:
    """A SQLite ledger file holding the policy and BOOK (notification ids 1 to 9)."""
    path = tmp_path / "ledger.db"
    write_book(str(path), policy_terms)
    return path


def edit(path: Path, *statements: str, params: tuple[Any, ...] = ()) -> None:
    """Change the file behind the ledger's back, as anyone with `sqlite3` could."""
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement, params if "?" in statement else ())


def position(path: Path, key: str) -> tuple[int, str]:
    """(notification id, event id) of the event with `key`."""
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT notification_id, event_id FROM ledger_index WHERE key = ?", [key]).fetchone()
    return int(row[0]), str(row[1])


def in_schema(schema: str, statement: str) -> Any:
    """A PostgreSQL statement on a test schema's table (the name quoted as an identifier)."""
    from psycopg import sql

    return sql.SQL(statement).format(sql.Identifier(schema))  # type: ignore[arg-type]


def only_finding(path: Path) -> Finding:
    with Ledger(str(path)) as ledger:
        report = verify(ledger, checks=["chain"])
    assert not report.clean
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def test_an_untouched_ledger_verifies_clean(ledger: Ledger, clock: Clock, policy_terms: PolicyTerms) -> None:
    fill(ledger, clock, policy_terms)
    report = verify(ledger)
    count = ledger.count()
    assert report.clean, [f.line() for f in report.findings]
    assert report.checks == ["chain", "read_models"]
    assert report.events == count == len(BOOK) + 1
    assert report.head_id == count  # nothing was rolled back in this book
    assert len(report.head_hash) == 64 and report.head_hash != "0" * 64


def test_verify_cli_clean_and_json(sqlite_book: Path) -> None:
    result = cli("verify", "--db", str(sqlite_book))
    assert result.stdout.startswith("clean: 9 events, checks chain, read_models; head 9 ")
    data = json.loads(cli("verify", "--db", str(sqlite_book), "--json").stdout)
    assert data["clean"] is True and data["events"] == 9 and data["findings"] == []
    head = data["head"]["hash"]
    cli("verify", "--db", str(sqlite_book), "--expect-head", head)


def test_hashes_do_not_depend_on_the_backend_or_the_process(tmp_path: Path, policy_terms: PolicyTerms) -> None:
    """Same events, same ids and stamps: same chain (the hash is over content, not over a connection)."""
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    write_book(str(first), policy_terms)
    with Ledger(str(first)) as ledger:
        public = [to_public(e, "GBP") for e in ledger.log()]
    with Ledger(str(second)) as ledger:  # the wall clock: the stamps are in its past
        ledger.record(ledger.parse(list(enumerate(public, 1)), "log"), keep_recorded=True)
    with sqlite3.connect(first) as a, sqlite3.connect(second) as b:
        assert a.execute("SELECT hash FROM ledger_chain").fetchall() == b.execute("SELECT hash FROM ledger_chain").fetchall()


def test_a_changed_event_is_named(sqlite_book: Path) -> None:
    notification, event_id = position(sqlite_book, "inv-I1")
    edit(sqlite_book,
         "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '100000', '900000') AS BLOB) "
         "WHERE rowid = ?", params=(notification,))
    found = only_finding(sqlite_book)
    assert (found.problem, found.notification_id, found.event_id, found.key) == (
        "changed", notification, event_id, "inv-I1")

    result = cli("verify", "--db", str(sqlite_book), ok=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: notification {notification}, event {event_id}, key inv-I1: "
                     "the event was changed in the database: its hash does not match the chain"]


def test_a_changed_index_row_is_named(sqlite_book: Path) -> None:
    """The index is what queries read by: editing it (here: moving an invoice to B2) is a change too."""
    notification, event_id = position(sqlite_book, "inv-I2")
    edit(sqlite_book, "UPDATE ledger_index SET buyer = 'B2' WHERE notification_id = ?", params=(notification,))
    found = only_finding(sqlite_book)
    assert (found.problem, found.notification_id, found.event_id) == ("changed", notification, event_id)


def test_a_deleted_event_is_named(sqlite_book: Path) -> None:
    notification, event_id = position(sqlite_book, "pay-I1")
    edit(sqlite_book, "DELETE FROM stored_events WHERE rowid = ?", params=(notification,))
    found = only_finding(sqlite_book)
    assert (found.problem, found.notification_id, found.event_id, found.key) == (
        "deleted", notification, event_id, "pay-I1")


def test_an_event_deleted_from_every_table_is_named_by_its_place(sqlite_book: Path) -> None:
    """A careful tamperer removes the index and chain rows too: the next link still points at it."""
    notification, _ = position(sqlite_book, "lim-B2")
    edit(sqlite_book,
         "DELETE FROM stored_events WHERE rowid = ?",
         "DELETE FROM ledger_index WHERE notification_id = ?",
         "DELETE FROM ledger_chain WHERE notification_id = ?", params=(notification,))
    found = only_finding(sqlite_book)
    assert (found.problem, found.notification_id) == ("deleted", notification)
    assert f"links notification {notification + 1} to it" in found.message


def test_an_inserted_event_is_named(sqlite_book: Path) -> None:
    """A payment written straight into the file, with a matching index row, as the recorder would have."""
    with sqlite3.connect(sqlite_book) as db:
        originator, version, state = db.execute(
            "SELECT originator_id, originator_version, CAST(state AS TEXT) FROM stored_events WHERE rowid = "
            "(SELECT notification_id FROM ledger_index WHERE key = 'pay-I1')").fetchone()
        forged_id = "0b7f6a2e-5d44-4c1e-9a43-1f2f3e4d5c6b"
        forged = json.loads(state) | {"id": forged_id, "key": "forged", "amount": 60000}
        db.execute("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
                   [originator, version + 5, "creditledger:payment_received:v1", json.dumps(forged).encode()])
        notification = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        db.execute("INSERT INTO ledger_index VALUES (?,?,?,?,?,?,?)",
                   [notification, forged_id, "forged", forged["recorded"], forged["effective"],
                    "payment_received", "B1"])
    found = only_finding(sqlite_book)
    assert (found.problem, found.notification_id, found.event_id, found.key) == (
        "inserted", notification, forged_id, "forged")


def swap(path: Path, first: int, second: int) -> None:
    """Swap two events' places in recorded order, in the events table and in the index."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                          "WHERE rowid IN (?, ?)", [first, second]).fetchall()
        index = db.execute("SELECT * FROM ledger_index WHERE notification_id IN (?, ?)", [first, second]).fetchall()
        db.execute("DELETE FROM stored_events WHERE rowid IN (?, ?)", [first, second])
        db.execute("DELETE FROM ledger_index WHERE notification_id IN (?, ?)", [first, second])
        other = {first: second, second: first}
        for rowid, *rest in rows:
            db.execute("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                       "VALUES (?,?,?,?,?)", [other[rowid], *rest])
        for notification, *rest in index:
            db.execute("INSERT INTO ledger_index VALUES (?,?,?,?,?,?,?)", [other[notification], *rest])


def test_two_swapped_events_are_named(sqlite_book: Path) -> None:
    first, first_id = position(sqlite_book, "inv-I1")
    second, second_id = position(sqlite_book, "inv-J1")
    assert second == first + 1
    swap(sqlite_book, first, second)
    with Ledger(str(sqlite_book)) as ledger:
        found, other = verify(ledger, checks=["chain"]).findings  # each place names the event moved there
    assert (found.problem, found.notification_id, found.event_id) == ("reordered", first, first_id)
    assert f"event {second_id} is stored here but the chain recorded it at notification {second}" in found.message
    assert (other.problem, other.notification_id, other.event_id) == ("reordered", second, second_id)
    assert f"event {first_id} is stored here but the chain recorded it at notification {first}" in other.message


def test_a_cut_tail_needs_the_head_kept_earlier(sqlite_book: Path) -> None:
    """Deleting the last events leaves a shorter valid chain; only the head an auditor kept shows it."""
    head = json.loads(cli("verify", "--db", str(sqlite_book), "--json").stdout)["head"]["hash"]
    for table, column in (("stored_events", "rowid"), ("ledger_index", "notification_id"),
                          ("ledger_chain", "notification_id")):
        edit(sqlite_book, f"DELETE FROM {table} WHERE {column} = 9")  # noqa: S608 (test constants)
    cli("verify", "--db", str(sqlite_book))
    result = cli("verify", "--db", str(sqlite_book), "--expect-head", head, ok=False)
    assert result.exit_code == 1
    assert f"the expected head {head} is not in the chain" in result.stderr


def test_a_write_onto_a_broken_chain_is_refused(sqlite_book: Path) -> None:
    """The last event deleted but its chain row left: the next write would reuse its place. Refused, nothing written."""
    edit(sqlite_book, "DELETE FROM stored_events WHERE rowid = 9", "DELETE FROM ledger_index WHERE notification_id = 9")
    with Ledger(str(sqlite_book)) as ledger, pytest.raises(LedgerError, match="hash chain does not end"):
        ledger.append({"type": "buyer_registered", "effective": "2025-03-01", "buyer": "B9", "name": "Late",
                       "country": "GB"})
    with sqlite3.connect(sqlite_book) as db:
        assert db.execute("SELECT count(*) FROM stored_events").fetchone()[0] == 8
        assert db.execute("SELECT count(*) FROM ledger_index").fetchone()[0] == 8


@pytest.mark.postgres
def test_a_write_onto_a_broken_chain_is_refused_on_postgres(postgres_location: str, policy_terms: PolicyTerms) -> None:
    """The trigger refuses it inside the database, so the library rolls the whole write back."""
    import psycopg

    write_book(postgres_location, policy_terms)
    schema = postgres_location.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        conn.execute(in_schema(schema, "DELETE FROM {}.creditledger_events WHERE notification_id = 9"))
        conn.execute(in_schema(schema, "DELETE FROM {}.ledger_index WHERE notification_id = 9"))
    with Ledger(postgres_location) as ledger:
        with pytest.raises(LedgerError, match="hash chain does not end"):
            ledger.append({"type": "buyer_registered", "effective": "2025-03-01", "buyer": "B9", "name": "Late",
                           "country": "GB"})
        assert ledger.count() == 8
        found = verify(ledger, checks=["chain"]).findings
    assert [(f.problem, f.notification_id) for f in found] == [("deleted", 9)]


def test_a_ledger_from_before_the_chain_is_chained_by_chain_init(sqlite_book: Path) -> None:
    with sqlite3.connect(sqlite_book) as db:
        original = db.execute("SELECT * FROM ledger_chain ORDER BY notification_id").fetchall()
        db.execute("DROP TABLE ledger_chain")  # as a ledger written before the chain was
    with Ledger(str(sqlite_book)) as ledger:
        assert [f.problem for f in verify(ledger).findings] == ["unchained"]  # opening chained nothing
        assert ledger.chain_init()[:2] == (9, 9)
        report = verify(ledger)
        ledger.append({"type": "buyer_registered", "effective": "2025-03-01", "buyer": "B3", "name": "New",
                       "country": "GB"})
        assert verify(ledger).clean
    assert report.clean and report.events == 9
    assert [(events, head) for _, events, head, _ in report.chain_inits] == [(9, 9)]
    with sqlite3.connect(sqlite_book) as db:
        rebuilt = db.execute("SELECT * FROM ledger_chain ORDER BY notification_id").fetchall()
    assert rebuilt[:9] == original  # the same hashes the live writes computed
    assert len(rebuilt) == 10


@pytest.mark.postgres
def test_a_postgres_ledger_from_before_the_chain_is_chained_by_chain_init(
    postgres_location: str, policy_terms: PolicyTerms
) -> None:
    import psycopg

    write_book(postgres_location, policy_terms)
    schema = postgres_location.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        original = conn.execute(in_schema(schema, "SELECT * FROM {}.ledger_chain ORDER BY notification_id")).fetchall()
        conn.execute(in_schema(schema, "DELETE FROM {}.ledger_chain"))
    with Ledger(postgres_location) as ledger:
        assert [f.problem for f in verify(ledger).findings] == ["unchained"]
        ledger.chain_init()
        assert verify(ledger).clean
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        assert conn.execute(in_schema(schema, "SELECT * FROM {}.ledger_chain ORDER BY notification_id")).fetchall() == original


WRITES = 20


@pytest.mark.slow
def test_concurrent_writers_leave_one_valid_chain(durable_location: str, policy_terms: PolicyTerms,
                                                  tmp_path: Path) -> None:
    with Ledger(durable_location) as ledger:
        ledger.load_policy(policy_terms)
        for raw in [
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB"},
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt", "country": "GB"},
            {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1",
             "amount": "1000.00", "due": "2025-03-10"},
        ]:
            ledger.append(raw)
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    workers = []
    for name in ("w1", "w2", "w3"):
        workers.append(subprocess.Popen(
            [sys.executable, str(WORKER), durable_location, name, str(go), str(WRITES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        ))
        ready, deadline = tmp_path / f"go.{name}", time.monotonic() + 60
        while not ready.exists():
            assert workers[-1].poll() is None, workers[-1].communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
    go.touch()
    recorded = 0
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        recorded += len(json.loads(stdout)["recorded"])
    with Ledger(durable_location) as ledger:
        report = verify(ledger, checks=["chain"])
        count = ledger.count()
    assert report.clean, [f.line() for f in report.findings]
    assert report.events == count == 4 + recorded
