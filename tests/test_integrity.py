"""Integrity an auditor can rely on (docs/reliability.md, "Integrity"): `verify` names every bad
row and never falls over, queries refuse a row that does not decode, the chain cannot vanish
quietly, the head is an anchor, clocks are bounded, keys are checked in the write.

Each test edits a ledger behind its back, as anyone with `sqlite3` or `psql` could.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from helpers import POLICY_FILE, POSTGRES_SERVER
from test_verify import edit, in_schema, position, write_book

from ledger.cli import main
from ledger.operations.verify import verify
from ledger.service import Ledger
from ledger.vocabulary.terms import PolicyTerms


@pytest.fixture
def book_file(tmp_path: Path, policy_terms: PolicyTerms) -> Path:
    """A SQLite ledger file holding the policy and test_verify's BOOK (notification ids 1 to 9)."""
    path = tmp_path / "ledger.db"
    write_book(str(path), policy_terms)
    return path


def run_main(*args: str) -> tuple[int, str, str]:
    """The real entry point in-process (so an internal error shows as exit 3): (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "argv", ["creditledger", *args]), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return (0 if code is None else int(code)), out.getvalue(), err.getvalue()


def refused_in_one_line(*args: str) -> str:
    """Run a command that must refuse: exit 1, one line on stderr, never `internal:`."""
    code, _, stderr = run_main(*args)
    lines = stderr.strip().splitlines()
    assert code == 1, (code, stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal" not in lines[0], lines
    return lines[0]


def verify_refuses(db: Path) -> list[str]:
    """`verify` on a tampered ledger: exit 1, one `error:` line per finding, never `internal:`."""
    code, _, stderr = run_main("verify", "--db", str(db))
    lines = stderr.strip().splitlines()
    assert code == 1, (code, stderr)
    assert lines and all(line.startswith("error: ") and "internal" not in line for line in lines), lines
    return lines


def findings_of(path: Path) -> list[Any]:
    with Ledger(str(path)) as ledger:
        report = verify(ledger)
    assert not report.clean
    return report.findings


# ---------------------------------------------------------------- case 1: verify names every bad row

def test_a_state_stored_as_text_is_named_and_refused_by_queries(book_file: Path) -> None:
    """SQLite's replace() leaves TEXT: the same bytes, but not as the ledger wrote them."""
    notification, event_id = position(book_file, "inv-I1")
    edit(book_file, "UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = ?", params=(notification,))
    line = verify_refuses(book_file)[0]
    assert f"notification {notification}, event {event_id}" in line and "text" in line
    for query in (("exposure", "--as-of", "2025-02-10"), ("log",), ("summary",)):
        line = refused_in_one_line(*query, "--db", str(book_file))
        assert f"notification {notification}" in line and "verify" in line


def test_a_topic_that_no_longer_decodes_is_named_and_refused_by_queries(book_file: Path) -> None:
    notification, event_id = position(book_file, "lim-B1")
    edit(book_file, "UPDATE stored_events SET topic = 'creditledger:invoice_issued:v1' WHERE rowid = ?",
         params=(notification,))
    line = verify_refuses(book_file)[0]
    assert f"notification {notification}, event {event_id}" in line
    for query in (("exposure", "--as-of", "2025-02-10"), ("log",), ("log", "--buyer", "B1")):
        assert f"notification {notification}" in refused_in_one_line(*query, "--db", str(book_file))


def test_verify_names_every_bad_row_not_only_the_first(book_file: Path) -> None:
    edited = [position(book_file, key) for key in ("lim-B1", "inv-J1", "inv-I2")]
    for notification, _ in edited:
        edit(book_file, "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '\"B', '\"X') AS BLOB) "
             "WHERE rowid = ?", params=(notification,))
    found = [f for f in findings_of(book_file) if f.check == "chain"]
    assert [(f.notification_id, f.event_id) for f in found] == edited
    assert all(f.problem == "changed" for f in found)
    code, out, _ = run_main("verify", "--db", str(book_file), "--json")
    assert code == 1
    assert len(json.loads(out)["findings"]) >= 3


# Every column of the three tables, each given a value of another type or an edited one.
# (table, column, SQL expression of the new value)
CORRUPTIONS = [
    ("stored_events", "originator_id", "'not-a-stream'"),
    ("stored_events", "originator_id", "NULL"),
    ("stored_events", "originator_version", "originator_version + 7"),
    ("stored_events", "originator_version", "'seven'"),
    ("stored_events", "topic", "'creditledger:nothing:v1'"),
    ("stored_events", "topic", "NULL"),
    ("stored_events", "topic", "42"),
    ("stored_events", "state", "CAST(state AS TEXT)"),
    ("stored_events", "state", "NULL"),
    ("stored_events", "state", "12345"),
    ("stored_events", "state", "x'00ff'"),
    ("stored_events", "state", "CAST('{}' AS BLOB)"),
    ("stored_events", "state", "CAST('[1,2' AS BLOB)"),
    ("ledger_index", "event_id", "'someone-else'"),
    ("ledger_index", "event_id", "x'00'"),
    ("ledger_index", "key", "'forged-key'"),
    ("ledger_index", "key", "NULL"),
    ("ledger_index", "recorded", "'2036-01-01T00:00:00.000000Z'"),
    ("ledger_index", "recorded", "x'01'"),
    ("ledger_index", "effective", "'2020-01-01'"),
    ("ledger_index", "effective", "3.5"),
    ("ledger_index", "type", "'payment_received'"),
    ("ledger_index", "buyer", "'B2'"),
    ("ledger_index", "buyer", "NULL"),
    ("ledger_index", "notification_id", "notification_id + 100"),
    ("ledger_chain", "previous_id", "previous_id - 1"),
    ("ledger_chain", "previous_id", "'abc'"),
    ("ledger_chain", "previous_id", "-5"),
    ("ledger_chain", "event_id", "'someone-else'"),
    ("ledger_chain", "event_id", "x'00'"),
    ("ledger_chain", "hash", "'not a hash'"),
    ("ledger_chain", "hash", "upper(hash)"),
    ("ledger_chain", "hash", "substr(hash, 2) || '0'"),
    ("ledger_chain", "hash", "x'00ff'"),
    ("ledger_chain", "notification_id", "notification_id + 100"),
]
WHERE = {"stored_events": "rowid", "ledger_index": "notification_id", "ledger_chain": "notification_id"}


@pytest.mark.parametrize(("table", "column", "value"), CORRUPTIONS, ids=[f"{t}.{c}={v}" for t, c, v in CORRUPTIONS])
@pytest.mark.parametrize("key", ["reg-B1", "inv-I1", "inv-I2"])  # the second event, one inside, the last
def test_every_column_of_every_table_corrupted_is_a_named_finding(
    book_file: Path, table: str, column: str, value: str, key: str
) -> None:
    notification, _ = position(book_file, key)
    edit(book_file, f"UPDATE {table} SET {column} = {value} WHERE {WHERE[table]} = ?",  # noqa: S608 (test constants)
         params=(notification,))
    found = findings_of(book_file)
    assert found and all(f.message for f in found)
    assert any(f.notification_id in (notification, notification + 100, notification + 1) for f in found), found
    assert "notification" in verify_refuses(book_file)[0]


POSTGRES_CORRUPTIONS = [
    ("creditledger_events", "originator_version", "originator_version + 7"),
    ("creditledger_events", "topic", "'creditledger:nothing:v1'"),
    ("creditledger_events", "topic", "'creditledger:limit_granted:v1'"),
    ("creditledger_events", "state", "convert_to(replace(convert_from(state, 'UTF8'), '\"B', '\"X'), 'UTF8')"),
    ("creditledger_events", "state", "'\\x00ff'::bytea"),
    ("creditledger_events", "state", "convert_to('{{}}', 'UTF8')"),  # braces doubled: in_schema formats
    ("ledger_index", "event_id", "'someone-else'"),
    ("ledger_index", "key", "'forged-key'"),
    ("ledger_index", "recorded", "'2036-01-01T00:00:00.000000Z'"),
    ("ledger_index", "effective", "'2020-01-01'"),
    ("ledger_index", "type", "'payment_received'"),
    ("ledger_index", "buyer", "NULL"),
    ("ledger_chain", "previous_id", "previous_id - 1"),
    ("ledger_chain", "event_id", "'someone-else'"),
    ("ledger_chain", "hash", "'not a hash'"),
    ("ledger_chain", "hash", "upper(hash)"),
]


@pytest.mark.postgres
def test_every_column_corrupted_on_postgres_is_a_named_finding(postgres_location: str, policy_terms: PolicyTerms) -> None:
    import psycopg

    write_book(postgres_location, policy_terms)
    schema = postgres_location.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        for table, column, value in POSTGRES_CORRUPTIONS:
            conn.execute(in_schema(schema, f"CREATE TEMP TABLE saved AS SELECT * FROM {{}}.{table} "  # noqa: S608
                                           "WHERE notification_id = 6"))
            conn.execute(in_schema(schema, f"UPDATE {{}}.{table} SET {column} = {value} WHERE notification_id = 6"))  # noqa: S608
            with Ledger(postgres_location) as ledger:
                report = verify(ledger)
            assert not report.clean, (table, column, value)
            assert any(f.notification_id == 6 for f in report.findings), (table, column, report.findings)
            # put the row back as it was
            conn.execute(in_schema(schema, f"UPDATE {{}}.{table} t SET {column} = s.{column} FROM saved s "  # noqa: S608
                                           "WHERE t.notification_id = 6"))
            conn.execute("DROP TABLE saved")
    with Ledger(postgres_location) as ledger:
        assert verify(ledger).clean


# ---------------------------------------------------------------- case 2: the chain cannot vanish quietly

@pytest.mark.parametrize("how", ["DROP TABLE ledger_chain", "DELETE FROM ledger_chain"])
def test_a_dropped_chain_is_a_finding_until_chain_init(book_file: Path, how: str) -> None:
    notification, _ = position(book_file, "inv-I1")
    edit(book_file, "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '100000', '900000') AS BLOB) "
         "WHERE rowid = ?", how, params=(notification,))
    lines = verify_refuses(book_file)
    assert len(lines) == 1 and "9 events have no hash chain" in lines[0] and "chain init" in lines[0]
    with sqlite3.connect(book_file) as db:  # opening (twice now) chained nothing
        assert db.execute("SELECT count(*) FROM ledger_chain").fetchone()[0] == 0
    # a write onto the unchained ledger is refused, nothing recorded
    line = refused_in_one_line("append", "buyer_registered", "--db", str(book_file), "--effective", "2025-03-01",
                               "--buyer", "B9", "--name", "Late", "--country", "GB")
    assert "hash chain" in line
    code, out, err = run_main("chain", "init", "--db", str(book_file))
    assert code == 0 and "chained 9 events" in err and out.startswith("head 9 ")
    code, out, _ = run_main("verify", "--db", str(book_file))
    assert code == 0 and "note: `chain init` chained 9 events at " in out
    line = refused_in_one_line("chain", "init", "--db", str(book_file))
    assert "already chained" in line
    with sqlite3.connect(book_file) as db:
        assert db.execute("SELECT events, head_id FROM ledger_chain_log").fetchall() == [(9, 9)]


def test_a_tail_of_events_without_their_chain_rows_is_named(book_file: Path) -> None:
    edit(book_file, "DELETE FROM ledger_chain WHERE notification_id >= 8")
    found = [f for f in findings_of(book_file) if f.check == "chain"]
    assert [(f.problem, f.notification_id) for f in found] == [("inserted", 8), ("inserted", 9)]
    assert "already chained" in refused_in_one_line("chain", "init", "--db", str(book_file))


def test_fresh_ledgers_chain_as_they_write(tmp_path: Path, policy_terms: PolicyTerms) -> None:
    path = tmp_path / "fresh.db"
    write_book(str(path), policy_terms)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM ledger_chain").fetchone()[0] == 9
        assert db.execute("SELECT count(*) FROM ledger_chain_log").fetchone()[0] == 0
    code, out, _ = run_main("verify", "--db", str(path))
    assert code == 0 and "note:" not in out


# ---------------------------------------------------------------- case 3: the head is an anchor

def head_of(path: Path) -> tuple[int, str]:
    with Ledger(str(path)) as ledger:
        return ledger.head()


def test_every_write_reports_the_head_it_left(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    run_main("init", "--db", db)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "1000", "key": "l1"}\n'
        '{"type": "invoice_issued", "effective": "2025-01-05", "buyer": "B1", "invoice": "I1", "amount": "100.00", '
        '"due": "2025-02-05", "key": "i1"}\n')
    writes = [
        ("policy", "load", str(POLICY_FILE)),
        ("append", "buyer_registered", "--effective", "2025-01-02", "--buyer", "B1", "--name", "Acme", "--country", "GB"),
        ("import", str(events)),
    ]
    for write in writes:
        code, out, err = run_main(*write, "--db", db)
        assert code == 0, err
        head_id, head_hash = head_of(Path(db))
        assert f"head {head_id} {head_hash}" in out.splitlines(), (write, out)
        code, out, err = run_main(*write, "--db", db, "--json")  # again (an amendment, a refusal, all skipped)
        if code == 0:
            head_id, head_hash = head_of(Path(db))
            assert json.loads(out)["head"] == {"notification_id": head_id, "hash": head_hash}
    code, out, _ = run_main("summary", "--db", db)
    assert out.splitlines()[-1] == f"head {head_id} {head_hash}"
    code, out, _ = run_main("summary", "--db", db, "--json")
    assert json.loads(out)["head"] == {"notification_id": head_id, "hash": head_hash}
    code, out, _ = run_main("verify", "--db", db)
    assert out.startswith(f"clean: {head_id} events") and out.splitlines()[0].endswith(f"head {head_id} {head_hash}")


def test_the_export_metadata_names_the_head_of_what_it_holds(book_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "export.db"
    code, _, err = run_main("export", "--db", str(book_file), "--sqlite", str(target), "--as-of", "2025-03-01")
    assert code == 0, err
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT head_id, head_hash FROM metadata").fetchone() == head_of(book_file)


def test_expect_head_takes_a_unique_prefix_of_12_hex_digits(book_file: Path) -> None:
    head_id, head_hash = head_of(book_file)
    for given in (head_hash, head_hash[:12], head_hash[:30].upper()):
        code, out, err = run_main("verify", "--db", str(book_file), "--expect-head", given)
        assert code == 0, err  # a shortened hash is no false "events were deleted" alarm
    for short in (head_hash[:11], head_hash[:8], "xyz", "", head_hash + "0"):
        line = refused_in_one_line("verify", "--db", str(book_file), "--expect-head", short)
        assert "expect-head" in line and "12" in line
    earlier = head_hash
    edit(book_file, "DELETE FROM stored_events WHERE rowid = 9", "DELETE FROM ledger_index WHERE notification_id = 9",
         "DELETE FROM ledger_chain WHERE notification_id = 9")
    lines = verify_refuses_with("--expect-head", earlier[:12], db=book_file)
    assert f"the expected head {earlier[:12]} is not in the chain" in lines[0]


def test_an_ambiguous_head_prefix_is_refused(book_file: Path) -> None:
    _, head_hash = head_of(book_file)
    edit(book_file, "UPDATE ledger_chain SET hash = ? WHERE notification_id = 3", params=(head_hash[:20] + "0" * 44,))
    line = refused_in_one_line("verify", "--db", str(book_file), "--expect-head", head_hash[:14])
    assert "more than one" in line


def verify_refuses_with(*options: str, db: Path) -> list[str]:
    code, _, stderr = run_main("verify", "--db", str(db), *options)
    lines = stderr.strip().splitlines()
    assert code == 1 and lines and all(line.startswith("error: ") for line in lines), (code, stderr)
    return lines


def test_keyed_checkpoints_catch_a_chain_rewritten_without_the_key(
    tmp_path: Path, policy_terms: PolicyTerms, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keyed.db"
    monkeypatch.setenv("CREDITLEDGER_CHAIN_KEY", "auditor's secret")
    write_book(str(path), policy_terms)
    assert run_main("verify", "--db", str(path))[0] == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM ledger_checkpoint").fetchone()[0] == 9  # one per write
    # Someone without the key edits an amount and rebuilds the whole chain over it.
    notification, _ = position(path, "inv-I1")
    edit(path, "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '100000', '900000') AS BLOB) "
         "WHERE rowid = ?", "DELETE FROM ledger_chain", params=(notification,))
    monkeypatch.delenv("CREDITLEDGER_CHAIN_KEY")
    with Ledger(str(path)) as ledger:
        ledger.chain_init()
        assert verify(ledger, checks=["chain"]).clean  # the chain alone cannot tell
    monkeypatch.setenv("CREDITLEDGER_CHAIN_KEY", "auditor's secret")
    lines = verify_refuses_with(db=path)
    mismatched = [line for line in lines if "the keyed checkpoint does not match" in line]
    assert [line.split(":")[1] for line in mismatched] == [f" notification {n}" for n in range(notification, 10)]
    # Removing the checkpoints does not help: the head must carry one.
    edit(path, "DELETE FROM ledger_checkpoint")
    lines = verify_refuses_with(db=path)
    assert lines[-1] == ("error: notification 9: the head (notification 9) has no keyed checkpoint: it was written "
                         "without CREDITLEDGER_CHAIN_KEY, or the checkpoints were removed")
    monkeypatch.setenv("CREDITLEDGER_CHAIN_KEY", "another key")
    assert run_main("verify", "--db", str(path))[0] == 1


@pytest.mark.postgres
def test_keyed_checkpoints_on_postgres(postgres_location: str, policy_terms: PolicyTerms,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setenv("CREDITLEDGER_CHAIN_KEY", "k")
    write_book(postgres_location, policy_terms)
    with Ledger(postgres_location) as ledger:
        assert verify(ledger).clean
    schema = postgres_location.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        conn.execute(in_schema(schema, "UPDATE {}.ledger_checkpoint SET mac = md5(mac) || md5(mac) "
                                       "WHERE notification_id = 4"))
    with Ledger(postgres_location) as ledger:
        assert [(f.problem, f.notification_id) for f in verify(ledger).findings] == [("checkpoint", 4)]


# ---------------------------------------------------------------- case 6: clocks

REGISTER = {"type": "buyer_registered", "effective": "2025-03-01", "buyer": "B7", "name": "Late", "country": "GB"}


def test_a_fast_clock_cannot_poison_the_writers_after_it(book_file: Path) -> None:
    import datetime

    from helpers import Clock

    from ledger.service import utc_now
    from ledger.vocabulary.errors import LedgerError

    now = utc_now()
    with Ledger(str(book_file), clock=Clock(now + datetime.timedelta(days=3652))) as fast:
        fast.append(REGISTER)  # no reference clock on SQLite: its stamp is in 2036
    count = Ledger(str(book_file)).count()
    line = refused_in_one_line("append", "buyer_registered", "--db", str(book_file), "--effective", "2025-03-02",
                               "--buyer", "B8", "--name", "Honest", "--country", "GB")
    assert "recorded: the ledger's last recorded stamp 20" in line and "ahead of this writer's clock 20" in line
    assert "CREDITLEDGER_CLOCK_TOLERANCE" in line
    with Ledger(str(book_file)) as honest:
        assert honest.count() == count
        with pytest.raises(LedgerError, match="ahead of this writer's clock"):
            honest.append({**REGISTER, "buyer": "B9"})


def test_the_clock_tolerance_is_configurable(book_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    from helpers import Clock

    from ledger.service import utc_now

    now = utc_now()
    with Ledger(str(book_file), clock=Clock(now + datetime.timedelta(minutes=4))) as slightly_fast:
        slightly_fast.append(REGISTER)
    with Ledger(str(book_file)) as honest:  # 4 minutes ahead: within the default 5
        stamp = honest.append({**REGISTER, "buyer": "B8"}).recorded[0].recorded
        assert stamp >= now + datetime.timedelta(minutes=4)
    monkeypatch.setenv("CREDITLEDGER_CLOCK_TOLERANCE", "60")
    line = refused_in_one_line("append", "buyer_registered", "--db", str(book_file), "--effective", "2025-03-02",
                               "--buyer", "B9", "--name", "Honest", "--country", "GB")
    assert "more than the 0:01:00 allowed" in line
    for bad in ("five minutes", "-1", "nan", "inf"):
        monkeypatch.setenv("CREDITLEDGER_CLOCK_TOLERANCE", bad)
        assert "CREDITLEDGER_CLOCK_TOLERANCE" in refused_in_one_line(
            "append", "buyer_registered", "--db", str(book_file), "--effective", "2025-03-02",
            "--buyer", "B9", "--name", "Honest", "--country", "GB")


def test_keep_recorded_imports_keep_their_stamps_within_the_bound(tmp_path: Path, policy_terms: PolicyTerms) -> None:
    """Historical stamps are in the past: the bound only asks that the ledger's last one is not ahead of now."""
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    write_book(str(source), policy_terms)
    code, out, _ = run_main("log", "--db", str(source), "--json")
    events = tmp_path / "events.json"
    events.write_text(out)
    run_main("init", "--db", str(target))
    code, _, err = run_main("import", str(events), "--keep-recorded", "--db", str(target))
    assert code == 0, err
    assert head_of(target) == head_of(source)  # same stamps, same chain


@pytest.mark.postgres
def test_postgres_writers_stamp_by_the_server_clock(postgres_location: str, policy_terms: PolicyTerms,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    import ledger.service as service

    real_now = service.utc_now()
    monkeypatch.setattr(service, "utc_now", lambda: real_now + datetime.timedelta(days=3652))  # a clock 10 years fast
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(policy_terms)
        stamp = ledger.append(REGISTER).recorded[0].recorded
    assert abs(stamp - real_now) < datetime.timedelta(minutes=1)


# ---------------------------------------------------------------- case 7: keys checked in the write

RACER = """
import json, sys, time
from pathlib import Path
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
location, name, go, source = sys.argv[1:5]
rows = [(n, json.loads(line)) for n, line in enumerate(Path(source).read_text().splitlines(), 1)]
with Ledger(location) as ledger:
    Path(go + "." + name).touch()
    while not Path(go).exists():
        time.sleep(0.002)
    try:
        outcome = ledger.record(ledger.parse(rows, source))
        print(json.dumps({"recorded": len(outcome.recorded), "skipped": len(outcome.skipped)}))
    except LedgerError as problem:
        print(json.dumps({"refused": str(problem)}))
"""
BUYERS = 120


def keyed_file(path: Path) -> Path:
    """A keyed import of BUYERS buyers, each registered and invoiced: long enough that another
    process's commit lands in the middle of its checks."""
    lines = []
    for number in range(BUYERS):
        buyer = f"B{number:04d}"
        lines.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": buyer, "name": f"Buyer {number}",
                      "country": "GB", "key": f"reg-{buyer}"})
        lines.append({"type": "invoice_issued", "effective": "2025-01-10", "buyer": buyer, "invoice": f"I-{buyer}",
                      "amount": "100.00", "due": "2025-03-10", "key": f"inv-{buyer}"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.slow
@pytest.mark.soak
def test_racing_imports_of_one_keyed_file_record_once_and_skip(durable_location: str, policy_terms: PolicyTerms,
                                                                tmp_path: Path) -> None:
    import os
    import subprocess
    import time

    root = Path(__file__).resolve().parent.parent
    source = keyed_file(tmp_path / "keyed.jsonl")
    rounds = 6 if os.environ.get("CREDITLEDGER_SOAK") else 2
    for round_number in range(rounds):
        location = durable_location if round_number == 0 else _fresh(durable_location, tmp_path, round_number)
        with Ledger(location) as ledger:
            ledger.load_policy(policy_terms)
        go = tmp_path / f"go{round_number}"
        racers = []
        for name in ("r1", "r2", "r3"):
            racers.append(subprocess.Popen([sys.executable, "-c", RACER, location, name, str(go), str(source)],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                                           env=dict(os.environ, PYTHONPATH=str(root))))
            ready, deadline = Path(f"{go}.{name}"), time.monotonic() + 60
            while not ready.exists():
                assert racers[-1].poll() is None, racers[-1].communicate()[1]
                assert time.monotonic() < deadline
                time.sleep(0.01)
        go.touch()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=300)
            assert racer.returncode == 0, err
            results.append(json.loads(out))
        assert all("refused" not in r for r in results), results
        assert sorted(r["recorded"] for r in results) == [0, 0, 2 * BUYERS], results
        assert all(r["recorded"] + r["skipped"] == 2 * BUYERS for r in results), results
        with Ledger(location) as ledger:
            assert ledger.count() == 1 + 2 * BUYERS
            assert verify(ledger, checks=["chain"]).clean
    backend = "PostgreSQL" if durable_location.startswith("postgresql://") else "SQLite"
    print(f"racing imports on {backend}: {rounds} rounds of 3 processes importing one keyed file of "
          f"{2 * BUYERS} events; each round one recorded {2 * BUYERS}, two skipped {2 * BUYERS}, none refused")


def _fresh(location: str, tmp_path: Path, number: int) -> str:
    """Another empty ledger on the same backend as `location`."""
    if location.startswith("postgresql://"):
        base, schema = location.rsplit("schema=", 1)
        return f"{base}schema={schema}_{number}"
    return str(tmp_path / f"race{number}.db")


# ---------------------------------------------------------------- case 8: amounts and dates as documented

@pytest.fixture
def registered(tmp_path: Path) -> str:
    db = str(tmp_path / "ledger.db")
    run_main("init", "--db", db)
    run_main("policy", "load", str(POLICY_FILE), "--db", db)
    code, _, err = run_main("append", "buyer_registered", "--db", db, "--effective", "2025-01-02", "--buyer", "B1",
                            "--name", "Acme", "--country", "GB")
    assert code == 0, err
    return db


@pytest.mark.parametrize("amount", ["+5", ".5", "5.", "1e2", "1E2", "5.0e1", "+0.50", "1.", "-.5", "0x10", "5 00"])
def test_amounts_other_than_decimal_strings_are_refused_naming_the_field(registered: str, amount: str) -> None:
    line = refused_in_one_line("append", "limit_granted", "--db", registered, "--effective", "2025-01-03",
                               "--buyer", "B1", "--amount", amount)
    assert "amount: " in line and "is not a decimal number" in line
    with Ledger(registered) as ledger:
        assert ledger.count() == 2


@pytest.mark.parametrize("amount", ["5", "5.00", "0.5", "1500.00", "007"])
def test_decimal_strings_are_accepted(registered: str, amount: str) -> None:
    code, _, err = run_main("append", "limit_granted", "--db", registered, "--effective", "2025-01-03",
                            "--buyer", "B1", "--amount", amount)
    assert code == 0, err


@pytest.mark.parametrize("day", ["20251230", "2025-W52-2", "2025-364", "2025-1-05", "2025/01/05", "25-01-05"])
def test_dates_other_than_iso_dates_are_refused_naming_the_field(registered: str, day: str) -> None:
    line = refused_in_one_line("append", "limit_granted", "--db", registered, "--effective", day,
                               "--buyer", "B1", "--amount", "100")
    assert "effective: " in line
    assert "as_of: " in refused_in_one_line("exposure", "--db", registered, "--as-of", day)


def test_compact_timestamps_are_refused(registered: str) -> None:
    line = refused_in_one_line("append", "limit_granted", "--db", registered, "--effective", "2025-01-03",
                               "--buyer", "B1", "--amount", "100", "--recorded", "20250103T090000Z")
    assert "recorded: " in line
    assert "known_at: " in refused_in_one_line("log", "--db", registered, "--known-at", "20250103T090000Z")


# ---------------------------------------------------------------- case 9: one file's error is that file's failure

def test_turnover_and_declare_known_before_the_policy_are_refused(registered: str) -> None:
    for query in ("turnover", "declare"):
        line = refused_in_one_line(query, "--db", registered, "--period", "2025-Q1", "--known-at", "2000-01-01")
        assert "known_at: the ledger had no policy as known at 2000-01-01" in line


def test_scenario_run_reports_a_file_that_errors_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.adapters.scenario as scenario

    root = Path(__file__).resolve().parent.parent / "scenarios"
    files = sorted(root.rglob("*.toml"))[:3]
    for number, path in enumerate(files):
        (tmp_path / f"{number}.toml").write_text(path.read_text())
    clean_code, clean_out, _ = run_main("scenario", "run", str(tmp_path))
    assert clean_code == 0
    passed = int(clean_out.splitlines()[-1].split()[0])
    checked = scenario._check
    broken = tmp_path / "1.toml"

    def failing(ledger: Ledger, result: Any, line: int, expectation: dict[str, Any]) -> None:
        if result.path == str(broken):
            raise IndexError("list index out of range")
        checked(ledger, result, line, expectation)

    monkeypatch.setattr(scenario, "_check", failing)
    code, out, err = run_main("scenario", "run", str(tmp_path))
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert [line for line in lines if line.startswith(str(broken))] == [
        f"{broken}: {scenario_title(broken)}: the scenario stopped: internal error IndexError: list index out of range"]
    assert int(lines[-1].split()[0]) < passed and lines[-1].endswith("1 failed")  # the other files still ran
    assert int(lines[-1].split()[0]) > 0


def scenario_title(path: Path) -> str:
    import tomllib

    return str(tomllib.loads(path.read_text()).get("title", path.stem))
