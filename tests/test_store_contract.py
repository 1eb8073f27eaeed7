"""The store contract, run against every backend (SPEC 2 and 5; STYLE: one contract).

Most tests take `ledger` (or `location`) and so run once on in-memory SQLite,
once on a SQLite file and once on PostgreSQL; those about durability and
concurrent writers take `durable_location` (SQLite file, PostgreSQL). The
writers of the concurrency test are separate OS processes (tests/workers.py).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import POSTGRES_SERVER, POSTGRES_UNREACHABLE, Clock, drop_schema, postgres_available

from ledger.adapters.eventfiles import read_event_file
from ledger.service import Ledger
from ledger.store import REPLAY_PAGE as PAGE
from ledger.store import Envelope, IndexRow, buyer_stream
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import NIL_ID, BuyerRegistered, Event, PaymentReceived, PolicyStarted, to_public
from ledger.vocabulary.terms import PolicyTerms, amend_policy
from ledger.write.pipeline import Draft

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "workers.py"


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def import_rows(ledger: Ledger, rows: list[dict[str, Any]], *, keep_recorded: bool = True, source: str = "history.jsonl"):
    """Record `rows` as one import (line numbers from 1), as the CLI does."""
    drafts = ledger.parse(list(enumerate(rows, 1)), source)
    return ledger.record(drafts, keep_recorded=keep_recorded)


def history(policy_terms: PolicyTerms) -> list[dict[str, Any]]:
    """A small historical ledger with explicit stamps (two share one), effective dates out of recorded order."""
    policy = to_public(PolicyStarted(effective=policy_terms.start, terms=policy_terms), policy_terms.currency)
    policy["recorded"] = "2025-01-01T08:00:00Z"
    del policy["id"]
    rows: list[dict[str, Any]] = [
        policy,
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB",
         "recorded": "2025-01-02T09:00:00Z", "key": "reg-B1"},
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt GmbH", "country": "DE",
         "recorded": "2025-01-02T10:00:00Z", "key": "reg-B2"},
        {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000",
         "recorded": "2025-01-03T09:00:00Z", "key": "lim-B1"},
        {"type": "invoice_issued", "effective": "2025-02-10", "buyer": "B1", "invoice": "I1", "amount": "1000.00",
         "due": "2025-04-10", "recorded": "2025-02-10T09:00:00Z", "key": "inv-I1"},
        {"type": "invoice_issued", "effective": "2025-01-20", "buyer": "B2", "invoice": "J1", "amount": "250.00",
         "due": "2025-03-20", "recorded": "2025-02-10T09:00:00Z", "key": "inv-J1"},
        {"type": "payment_received", "effective": "2025-03-01", "buyer": "B1", "invoice": "I1", "amount": "400.00",
         "recorded": "2025-03-02T09:00:00Z", "key": "pay-1"},
        {"type": "turnover_declared", "effective": "2025-04-05", "period": "2025-Q1", "country": "GB",
         "amount": "1000.00", "recorded": "2025-04-05T09:00:00Z", "key": "decl-Q1"},
    ]
    return rows


def keys(events: list[Event]) -> list[str | None]:
    return [e.key for e in events]


# ---------------------------------------------------------------- policy, append, read back

def test_policy_load_records_policy_started_then_amendments(ledger: Ledger, policy_terms: PolicyTerms, clock: Clock):
    assert not ledger.has_policy()
    outcome = ledger.load_policy(policy_terms)
    assert [e.type for e in outcome.recorded] == ["policy_started"]
    (started,) = list(ledger.events())
    assert started == outcome.recorded[0]
    assert started.effective == policy_terms.start
    assert started.recorded == clock.now
    assert started.id != NIL_ID
    assert ledger.terms() == policy_terms
    assert ledger.count() == 1

    clock.advance(days=1)
    amended = amend_policy(policy_terms, {"discretionary_limit_max": "10000"})
    outcome = ledger.load_policy(amended, effective=datetime.date(2025, 7, 1))
    assert [e.type for e in outcome.recorded] == ["policy_amended"]
    assert [e.type for e in ledger.events()] == ["policy_started", "policy_amended"]
    assert ledger.terms().discretionary_limit_max == 1_000_000
    assert ledger.policy_stream().terms_at(datetime.date(2025, 6, 30)) == policy_terms
    assert ledger.policy_stream().terms_at(datetime.date(2025, 7, 1)) == amended


def test_append_reads_back_in_recorded_order(ledger: Ledger, policy_terms: PolicyTerms, clock: Clock):
    ledger.load_policy(policy_terms)
    raws = [
        {"type": "buyer_registered", "effective": "2025-01-05", "buyer": "B1", "name": "Acme", "country": "GB"},
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt", "country": "DE"},
        {"type": "invoice_issued", "effective": "2025-03-01", "buyer": "B1", "invoice": "I1", "amount": "10.00",
         "due": "2025-04-01"},
        {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B2", "invoice": "J1", "amount": "20.00",
         "due": "2025-03-01"},
        {"type": "turnover_declared", "effective": "2025-01-15", "period": "2025-Q1", "country": "GB", "amount": "0"},
    ]
    stamps = []
    for raw in raws:
        stamps.append(clock.advance(seconds=1))
        (event,) = ledger.append(raw).recorded
        assert event.recorded == clock.now
    events = list(ledger.events())
    assert [e.type for e in events] == ["policy_started"] + [r["type"] for r in raws]
    assert [e.recorded for e in events[1:]] == stamps
    assert len({e.id for e in events}) == len(events)
    assert ledger.log() == events
    assert [e.effective.isoformat() for e in events[1:]] == [r["effective"] for r in raws]
    assert ledger.buyer_events("B2") == [events[2], events[4]]


def test_log_filters_select_in_recorded_order(ledger: Ledger, policy_terms: PolicyTerms):
    import_rows(ledger, history(policy_terms))
    everything = ledger.log()
    assert keys(everything) == [None, "reg-B1", "reg-B2", "lim-B1", "inv-I1", "inv-J1", "pay-1", "decl-Q1"]
    assert keys(ledger.log(buyer="B1")) == ["reg-B1", "lim-B1", "inv-I1", "pay-1"]
    assert keys(ledger.log(buyer="B2")) == ["reg-B2", "inv-J1"]
    assert ledger.log(buyer="nobody") == []
    assert keys(ledger.log(types=["invoice_issued"])) == ["inv-I1", "inv-J1"]
    assert keys(ledger.log(types=["payment_received", "buyer_registered"])) == ["reg-B1", "reg-B2", "pay-1"]
    # Effective bounds are inclusive; the order stays the recorded one, not the effective one.
    feb = ledger.log(effective_from=datetime.date(2025, 1, 20), effective_to=datetime.date(2025, 3, 1))
    assert keys(feb) == ["inv-I1", "inv-J1", "pay-1"]
    assert keys(ledger.log(effective_to=datetime.date(2025, 1, 2))) == [None, "reg-B1", "reg-B2"]
    assert keys(ledger.log(known_at=at("2025-02-10T09:00:00Z"))) == keys(everything)[:6]
    assert keys(ledger.log(known_at=at("2025-02-10T08:59:59.999999Z"))) == keys(everything)[:4]
    assert keys(ledger.log(buyer="B1", types=["invoice_issued", "payment_received"],
                           known_at=at("2025-03-01T00:00:00Z"))) == ["inv-I1"]
    assert keys(ledger.log(limit=2)) == [None, "reg-B1"]


def test_known_at_selects_only_what_was_recorded_by_then(ledger: Ledger, policy_terms: PolicyTerms):
    import_rows(ledger, history(policy_terms))
    full = list(ledger.events())
    assert list(ledger.events(known_at=at("2024-12-31T23:59:59Z"))) == []
    assert list(ledger.events(known_at=at("2025-01-02T09:00:00Z"))) == full[:2]  # inclusive
    assert list(ledger.events(known_at=at("2025-03-02T08:59:59Z"))) == full[:6]
    assert list(ledger.events(known_at=at("2099-01-01T00:00:00Z"))) == full
    # The same instant written in another zone selects the same events.
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert list(ledger.events(known_at=datetime.datetime(2025, 2, 10, 10, 0, tzinfo=paris))) == full[:6]
    assert keys(ledger.buyer_events("B1", known_at=at("2025-02-28T00:00:00Z"))) == ["reg-B1", "lim-B1", "inv-I1"]
    assert ledger.log(known_at=at("2025-03-02T09:00:00Z")) == list(ledger.events(known_at=at("2025-03-02T09:00:00Z")))


def test_reading_goes_past_the_first_page(ledger: Ledger, policy_terms: PolicyTerms, clock: Clock):
    """`events()` reads the log in pages; a ledger longer than one page reads whole, and cut at `known_at`."""
    base = at("2025-07-01T00:00:00Z")
    rows = [{"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB",
             "recorded": base.isoformat()}]
    rows += [
        {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": f"I{n}", "amount": "1.00",
         "due": "2025-02-10", "recorded": (base + datetime.timedelta(seconds=n)).isoformat()}
        for n in range(PAGE + 150)
    ]
    ledger.load_policy(policy_terms)
    clock.set(at("2026-01-01T00:00:00Z"))  # the stamps below are history by now
    import_rows(ledger, rows)
    events = list(ledger.events())
    assert len(events) == len(rows) + 1 == ledger.count()
    assert [e.invoice for e in events[2:]] == [f"I{n}" for n in range(PAGE + 150)]  # type: ignore[attr-defined]
    cut = base + datetime.timedelta(seconds=PAGE + 100)
    assert len(list(ledger.events(known_at=cut))) == PAGE + 103
    assert len(ledger.log(known_at=cut)) == PAGE + 103


# ---------------------------------------------------------------- the recorded axis never goes backwards

def test_keep_recorded_import_before_the_last_stamp_is_refused(ledger: Ledger, policy_terms: PolicyTerms):
    import_rows(ledger, history(policy_terms))
    before = list(ledger.events())
    late = [
        {"type": "invoice_issued", "effective": "2025-04-01", "buyer": "B1", "invoice": "I2", "amount": "5.00",
         "due": "2025-05-01", "recorded": "2025-04-06T09:00:00Z"},
        {"type": "invoice_issued", "effective": "2025-04-01", "buyer": "B1", "invoice": "I3", "amount": "5.00",
         "due": "2025-05-01", "recorded": "2025-04-05T08:59:59Z"},
    ]
    for rows, line in ((late[1:], 1), (late, 2)):
        with pytest.raises(LedgerError) as caught:
            import_rows(ledger, rows, source="late.jsonl")
        assert caught.value.field == "recorded"
        assert caught.value.line == line and caught.value.source == "late.jsonl"
        assert "never goes backwards" in str(caught.value)
        assert list(ledger.events()) == before
    # A stamp equal to the last one is not backwards.
    same = dict(late[0], recorded="2025-04-05T09:00:00Z")
    assert len(import_rows(ledger, [same]).recorded) == 1


def test_keep_recorded_needs_a_stamp_on_every_event(ledger: Ledger, policy_terms: PolicyTerms):
    rows = history(policy_terms)
    del rows[3]["recorded"]
    with pytest.raises(LedgerError) as caught:
        import_rows(ledger, rows)
    assert caught.value.field == "recorded" and caught.value.line == 4
    assert ledger.count() == 0


def test_a_clock_that_goes_back_never_stamps_earlier(ledger: Ledger, policy_terms: PolicyTerms, clock: Clock):
    """Live stamps are max(now, latest): a writer whose clock lags a little (another machine) never goes
    back; one that lags more than the tolerance (5 minutes) is refused, naming both times."""
    import_rows(ledger, history(policy_terms))
    clock.set(at("2025-12-01T00:00:00Z"))
    first = ledger.append({"type": "overdue_reported", "effective": "2025-06-01", "buyer": "B1"})
    clock.set(at("2025-11-30T23:56:00Z"))
    second = ledger.append({"type": "overdue_cleared", "effective": "2025-06-02", "buyer": "B1"})
    assert second.recorded[0].recorded == first.recorded[0].recorded == at("2025-12-01T00:00:00Z")
    clock.set(at("2025-06-01T12:00:00Z"))
    with pytest.raises(LedgerError, match="2025-12-01T00:00:00.000000Z is ahead of this writer's clock "
                                          "2025-06-01T12:00:00.000000Z"):
        ledger.append({"type": "overdue_reported", "effective": "2025-06-03", "buyer": "B1"})
    stamps = [e.recorded for e in ledger.events()]
    assert stamps == sorted(stamps) and len(stamps) == len(history(policy_terms)) + 2


def test_a_keep_recorded_stamp_in_the_future_is_refused(ledger: Ledger, policy_terms: PolicyTerms):
    rows = history(policy_terms)
    rows[-1]["recorded"] = "2025-12-01T00:00:00Z"  # after the clock (2025-06-01)
    with pytest.raises(LedgerError) as caught:
        import_rows(ledger, rows)
    assert caught.value.field == "recorded" and "in the future" in caught.value.message
    assert ledger.count() == 0


def test_the_store_refuses_a_backwards_stamp_around_the_service(ledger: Ledger, policy_terms: PolicyTerms):
    import_rows(ledger, history(policy_terms))
    count = ledger.count()

    def registration(recorded: str) -> BuyerRegistered:
        return BuyerRegistered(effective=datetime.date(2025, 1, 2), buyer="BX", name="Sneaky", country="GB",
                               id=uuid.uuid4(), recorded=at(recorded))

    early = registration("2025-01-01T00:00:00Z")
    with pytest.raises(Exception, match="recorded went backwards"):
        ledger.store.save(Envelope(buyer_stream("BX"), 1, early), index=[IndexRow.of(early)])
    assert ledger.count() == count
    assert ledger.buyer_events("BX") == []
    # The same write with a later stamp goes through: the stamp alone was refused.
    later = registration("2025-05-01T00:00:00Z")
    ledger.store.save(Envelope(buyer_stream("BX"), 1, later), index=[IndexRow.of(later)])
    assert ledger.buyer_events("BX") == [later]
    assert ledger.count() == count + 1


def test_the_database_itself_refuses_a_backwards_row(postgres_location: str, policy_terms: PolicyTerms):
    """On PostgreSQL a trigger on ledger_index refuses it, whoever writes (here: plain SQL).

    SQLite checks in the recorder's write transaction instead (a per-row
    trigger cost as much as the insert): see the test above.
    """
    durable_location = postgres_location
    with Ledger(durable_location) as ledger:
        import_rows(ledger, history(policy_terms))
        count = ledger.count()
    row = (10**9, str(uuid.uuid4()), None, "2000-01-01T00:00:00.000000Z", "2025-01-01", "overdue_reported", "B1")
    with pytest.raises(Exception, match="recorded went backwards"):
        insert_index_row(durable_location, row)
    with Ledger(durable_location) as ledger:
        assert ledger.count() == count


def insert_index_row(location: str, row: tuple[Any, ...]) -> None:
    """INSERT one ledger_index row with the database's own client, around the application."""
    if location.startswith("postgresql://"):
        import psycopg
        from psycopg import sql

        schema = sql.Identifier(location.rpartition("schema=")[2])
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("INSERT INTO {}.ledger_index VALUES (%s,%s,%s,%s,%s,%s,%s)").format(schema), row)
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(location)) as conn, conn:
            conn.execute("INSERT INTO ledger_index VALUES (?,?,?,?,?,?,?)", row)


# ---------------------------------------------------------------- idempotency and atomicity

def test_an_event_whose_key_is_recorded_is_skipped_and_reported(ledger: Ledger, policy_terms: PolicyTerms, clock: Clock):
    ledger.load_policy(policy_terms)
    ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "A", "country": "GB"})
    raw = {"type": "limit_requested", "effective": "2025-01-03", "buyer": "B1", "amount": "5000", "key": "REQ-1"}
    (first,) = ledger.append(raw).recorded
    count = ledger.count()
    clock.advance(minutes=5)
    # Same key, even with other fields: a no-op that names the earlier event.
    again = ledger.append(dict(raw, amount="7000", effective="2025-01-04"))
    assert again.recorded == []
    assert [(s.draft.event.key, s.earlier) for s in again.skipped] == [("REQ-1", str(first.id))]
    assert ledger.count() == count
    # A batch repeating a key records the first and skips the second.
    batch = [
        {"type": "limit_requested", "effective": "2025-01-05", "buyer": "B1", "amount": "1", "key": "REQ-2"},
        {"type": "limit_requested", "effective": "2025-01-05", "buyer": "B1", "amount": "2", "key": "REQ-2"},
    ]
    outcome = ledger.record(ledger.parse([(None, r) for r in batch]))
    assert [e.amount for e in outcome.recorded] == [100]  # type: ignore[attr-defined]
    assert len(outcome.skipped) == 1
    assert ledger.count() == count + 1


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "toml"])
def test_running_the_same_import_twice_records_nothing_the_second_time(
    ledger: Ledger, policy_terms: PolicyTerms, clock: Clock, tmp_path: Path, suffix: str
):
    ledger.load_policy(policy_terms)
    rows = [
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB",
         "key": "r1"},
        {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "100.00",
         "due": "2025-02-10", "key": "i1"},
        {"type": "payment_received", "effective": "2025-01-20", "buyer": "B1", "invoice": "I1", "amount": "60.00",
         "key": "p1"},
    ]
    path = tmp_path / f"events.{suffix}"
    write_events(path, rows)
    first = record_file(ledger, path)
    assert [e.key for e in first.recorded] == ["r1", "i1", "p1"]
    snapshot = list(ledger.events())
    clock.advance(hours=1)
    second = record_file(ledger, path)
    assert second.recorded == []
    assert sorted(s.earlier for s in second.skipped) == sorted(str(e.id) for e in first.recorded)
    assert list(ledger.events()) == snapshot


def test_rerunning_a_keep_recorded_import_records_nothing(ledger: Ledger, policy_terms: PolicyTerms):
    rows = history(policy_terms)
    import_rows(ledger, rows)
    before = list(ledger.events())
    outcome = import_rows(ledger, rows[1:])  # every one of them has a key already recorded
    assert outcome.recorded == [] and len(outcome.skipped) == len(rows) - 1
    assert list(ledger.events()) == before


def write_events(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as JSON Lines, CSV (one column per field seen) or TOML [[events]]."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        import csv

        columns = list(dict.fromkeys(name for row in rows for name in row))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        blocks = []
        for row in rows:
            lines = ["[[events]]"] + [f"{name} = {json.dumps(value)}" for name, value in row.items()]
            blocks.append("\n".join(lines) + "\n")
        path.write_text("\n".join(blocks))


def record_file(ledger: Ledger, path: Path, *, keep_recorded: bool = False):
    source = read_event_file(path)
    return ledger.record(ledger.parse(source.events, source.source), keep_recorded=keep_recorded)


def sixty_payments() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB"},
        {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "1000.00",
         "due": "2025-03-10"},
    ]
    rows += [
        {"type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1", "amount": "1.00",
         "key": f"p{n}"}
        for n in range(58)
    ]
    return rows


@pytest.mark.parametrize(
    ("suffix", "bad", "field"),
    [
        ("jsonl", {"amount": "1.001"}, "amount"),           # a parse refusal
        ("jsonl", {"invoice": "NOPE"}, "invoice"),          # a rule refusal
        ("csv", {"effective": "2025-02-30"}, "effective"),
        ("csv", {"buyer": "B9"}, "buyer"),
    ],
)
def test_an_import_with_a_bad_50th_line_records_nothing(
    ledger: Ledger, policy_terms: PolicyTerms, tmp_path: Path, suffix: str, bad: dict[str, str], field: str
):
    ledger.load_policy(policy_terms)
    rows = sixty_payments()
    header = 1 if suffix == "csv" else 0
    rows[49 - header].update(bad)
    path = tmp_path / f"book.{suffix}"
    write_events(path, rows)
    with pytest.raises(LedgerError) as caught:
        record_file(ledger, path)
    problem = caught.value
    assert (problem.source, problem.line, problem.field) == (str(path), 50, field)
    assert str(problem).startswith(f"{path}:50: {field}: ")
    assert ledger.count() == 1
    # The same file without the bad line records all of it.
    del rows[49 - header]
    write_events(path, rows)
    assert len(record_file(ledger, path).recorded) == len(rows)


# ---------------------------------------------------------------- durability and concurrent writers

def test_events_survive_reopening(durable_location: str, policy_terms: PolicyTerms, clock: Clock):
    with Ledger(durable_location, clock=clock) as ledger:
        import_rows(ledger, history(policy_terms))
        written = list(ledger.events())
    with Ledger(durable_location, clock=clock) as reopened:
        assert list(reopened.events()) == written
        assert reopened.terms() == policy_terms
        assert keys(reopened.log(buyer="B1")) == ["reg-B1", "lim-B1", "inv-I1", "pay-1"]
        # And the reopened ledger keeps its rules: the key is known, the payment still bounded.
        assert reopened.append(dict(history(policy_terms)[6], recorded=None)).recorded == []
        with pytest.raises(LedgerError, match="is more than the 600.00 open"):
            reopened.append({"type": "payment_received", "effective": "2025-06-01", "buyer": "B1",
                             "invoice": "I1", "amount": "600.01"})
        assert reopened.count() == len(written)


WRITES_PER_WORKER = 30


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 60) -> None:
    """Wait until `process` creates `path` (or dies, which fails the test)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"writer exited early: {process.communicate()[1]}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.mark.slow
def test_concurrent_writers_lose_nothing_and_never_overpay(durable_location: str, policy_terms: PolicyTerms,
                                                             tmp_path: Path):
    with Ledger(durable_location) as ledger:
        ledger.load_policy(policy_terms)
        for raw in [
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB"},
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt", "country": "GB"},
            {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1",
             "amount": "1000.00", "due": "2025-03-10"},
        ]:
            ledger.append(raw)
        setup = ledger.count()
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    workers = []
    for name in ("w1", "w2"):
        # Opened one after the other: concurrent opens are another test (PostgreSQL refuses them).
        workers.append(subprocess.Popen(
            [sys.executable, str(WORKER), durable_location, name, str(go), str(WRITES_PER_WORKER)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        ))
        wait_for(tmp_path / f"go.{name}", workers[-1])
    go.touch()
    reports = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        reports.append(json.loads(stdout))

    attempted = {f"{name}-{n}" for name in ("w1", "w2") for n in range(WRITES_PER_WORKER)}
    told_recorded = [key for report in reports for key in report["recorded"]]
    told_refused = {r["key"]: r["message"] for report in reports for r in report["refused"]}
    # Every write got exactly one answer.
    assert len(told_recorded) == len(set(told_recorded))
    assert set(told_recorded) | set(told_refused) == attempted
    assert not set(told_recorded) & set(told_refused)

    with Ledger(durable_location) as ledger:
        events = list(ledger.events())
    stored_keys = [e.key for e in events if e.key]
    # Nothing lost, nothing duplicated, nothing recorded that its writer was told was refused.
    assert len(stored_keys) == len(set(stored_keys))
    assert set(stored_keys) == set(told_recorded)
    assert len(events) == setup + len(told_recorded)
    assert len({e.id for e in events}) == len(events)
    stamps = [e.recorded for e in events]
    assert stamps == sorted(stamps)

    paid = sum(e.amount for e in events if isinstance(e, PaymentReceived))
    assert paid <= 100_000
    gave_up = [m for m in told_refused.values() if "gave up" in m]
    overpaid = [m for m in told_refused.values() if "is more than" in m and "open on invoice I1" in m]
    assert len(gave_up) + len(overpaid) == len(told_refused), told_refused
    for key, message in told_refused.items():
        if "gave up" not in message:
            assert int(key.split("-")[1]) % 3 != 2, f"invoice {key} refused: {message}"
    if not gave_up:
        assert paid == 100_000  # 25 payments of 40.00 fit, the other 15 are refused
        assert len(overpaid) == 15
        assert sum(1 for e in events if e.type == "invoice_issued" and e.buyer == "B2") == 20  # type: ignore[attr-defined]


def test_a_draft_with_a_recorded_id_is_skipped(ledger: Ledger, policy_terms: PolicyTerms):
    """Re-importing a `log` export (ids, no keys) is a no-op too."""
    ledger.load_policy(policy_terms)
    (event,) = ledger.append(
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "A", "country": "GB"}
    ).recorded
    outcome = ledger.record([Draft(event)], keep_recorded=True)
    assert outcome.recorded == [] and [s.earlier for s in outcome.skipped] == [str(event.id)]
    assert ledger.count() == 2


def open_concurrently(location: str, writers: int = 4, rounds: int = 5) -> list[str]:
    """Open the ledger at `location` from several threads at once, a few times; the errors."""
    errors: list[str] = []
    for _ in range(rounds):
        barrier = threading.Barrier(writers)

        def open_once(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Ledger(location).close()
            except LedgerError as problem:
                errors.append(str(problem))

        threads = [threading.Thread(target=open_once) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    return errors


def test_concurrent_opens_of_an_existing_sqlite_ledger_succeed(tmp_path: Path):
    location = str(tmp_path / "ledger.db")
    Ledger(location).close()
    assert open_concurrently(location) == []
    with Ledger(location) as ledger:
        assert ledger.count() == 0


def test_concurrent_first_opens_of_a_sqlite_ledger_succeed(tmp_path: Path):
    errors = []
    for number in range(50):
        errors += open_concurrently(str(tmp_path / f"ledger{number}.db"), writers=2, rounds=1)
    assert errors == []


def test_concurrent_opens_of_an_existing_postgres_ledger_succeed(postgres_location: str):
    Ledger(postgres_location).close()
    assert open_concurrently(postgres_location) == []


def test_concurrent_first_opens_of_a_postgres_ledger_succeed(postgres_location: str):
    assert open_concurrently(postgres_location, rounds=1) == []


@pytest.mark.postgres
def test_a_schema_named_after_our_tables_reads_and_writes(policy_terms: PolicyTerms) -> None:
    """The index SQL is qualified in one pass: a schema called ledger_chain... once made
    ledger_chain.ledger_chain.ledger_index of it."""
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    schema = "ledger_chain_" + uuid.uuid4().hex[:8]
    try:
        with Ledger(f"{POSTGRES_SERVER}?schema={schema}") as ledger:
            ledger.load_policy(policy_terms)
            ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme",
                           "country": "GB", "key": "b1"})
            assert ledger.buyers() == ["B1"]
            assert ledger.log_position()[0] == ledger.count() == 2
    finally:
        drop_schema(schema)
