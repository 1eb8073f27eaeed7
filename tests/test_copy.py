"""`creditledger copy`: a ledger moved between SQLite and PostgreSQL keeps every event
(id, key, recorded stamp, stream, order) and answers every query alike; a copy is all
or nothing and only into an empty ledger; the verification finds a changed copy."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from pathlib import Path

import msgspec
import pytest
from helpers import (
    POSTGRES_SERVER,
    POSTGRES_UNREACHABLE,
    cli,
    drop_schema,
    no_default_db,  # noqa: F401 (an autouse fixture)
    postgres_available,
)

from ledger.operations import copy as copying
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import parse_policy

SEED = 3


def sample_ledger(path: Path) -> str:
    """A SQLite ledger holding a small seeded book (losses, declarations, fees included)."""
    policy, rows = samplebook.generate(seed=SEED, buyers=12, events=400)
    with Ledger(str(path)) as ledger:
        ledger.load_policy(parse_policy(policy))
        ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
    return str(path)


def placed(location: str) -> list[tuple[object, ...]]:
    """Every event with its stream and version, in recorded order."""
    with Ledger(location) as ledger:
        return [
            (n.originator_id, n.originator_version, ledger.store.decode(n.topic, n.state))
            for n in ledger.store.read_notifications(1, 1_000_000)
        ]


def count(location: str) -> int:
    with Ledger(location) as ledger:
        return ledger.count()


@pytest.fixture
def source(tmp_path: Path) -> str:
    return sample_ledger(tmp_path / "source.db")


@pytest.fixture
def postgres_schema() -> str:
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    return "t_" + uuid.uuid4().hex[:16]


def test_round_trip_sqlite_postgres_sqlite_is_equal(source: str, tmp_path: Path, postgres_schema: str) -> None:
    middle = f"{POSTGRES_SERVER}?schema={postgres_schema}"
    back = str(tmp_path / "back.db")
    try:
        first = cli("copy", "--from", source, "--to", middle)
        assert "verified: every event and query equal" in first.stdout
        second = cli("copy", "--from", middle, "--to", back, "--json")
        report = msgspec.json.decode(second.stdout)
        with Ledger(source) as original_ledger:  # the same events, ids and stamps: the same chain
            head = dict(zip(("notification_id", "hash"), original_ledger.head(), strict=True))
        assert report == {"copied": count(source), "verified": True, "differences": [], "head": head}
        assert first.stdout.splitlines()[-1] == f"head {head['notification_id']} {head['hash']}"
        original = placed(source)
        assert len(original) > 300
        assert placed(middle) == original
        assert placed(back) == original
        with Ledger(source) as a, Ledger(back) as b:
            assert copying.verify(a, b) == []
            # Not a trivial agreement: the book has losses, and the copy answers them.
            assert any(c.loss_date for c in copying.claims_of(b, a.terms().end, None))
    finally:
        drop_schema(postgres_schema)


def test_copy_keeps_ids_keys_recorded_and_order(source: str, durable_location: str) -> None:
    copied = copying.copy_events(Ledger(source), Ledger(durable_location))
    assert copied == count(source)
    with Ledger(source) as a, Ledger(durable_location) as b:
        ours = [(e.id, e.key, e.recorded, e.type) for e in a.events()]
        theirs = [(e.id, e.key, e.recorded, e.type) for e in b.events()]
        assert theirs == ours
        # The index rows were written too: a cutoff on the recorded axis selects the same events.
        moment = list(a.events())[len(ours) // 3].recorded
        assert [e.id for e in b.events(known_at=moment)] == [e.id for e in a.events(known_at=moment)]
        assert b.store.index.find_keys([k for _, k, _, _ in ours if k]) == a.store.index.find_keys(
            [k for _, k, _, _ in ours if k])


def test_a_copied_ledger_takes_new_events(source: str, durable_location: str) -> None:
    copying.copy_events(Ledger(source), Ledger(durable_location))
    with Ledger(durable_location) as copy:
        buyer = copy.store.index.buyers()[0]
        outcome = copy.append({"type": "limit_requested", "effective": "2025-12-30", "buyer": buyer, "amount": "10"})
        assert len(outcome.recorded) == 1
        assert outcome.recorded[0].recorded >= max(e.recorded for e in copy.events())


def test_refuses_a_destination_that_holds_events(source: str, tmp_path: Path) -> None:
    other = sample_ledger(tmp_path / "other.db")
    before = placed(other)
    with pytest.raises(LedgerError) as refused:
        copying.copy_events(Ledger(source), Ledger(other))
    assert refused.value.field == "to"
    assert "already holds" in str(refused.value)
    assert placed(other) == before


def test_cli_refusals_are_one_line_and_create_nothing(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli import run_main

    missing, target = tmp_path / "missing.db", tmp_path / "target.db"
    code, _, err = run_main(monkeypatch, capsys, "copy", "--from", str(missing), "--to", str(target))
    assert (code, err.strip()) == (1, f"error: from: there is no ledger at {missing}")
    assert not target.exists() and not missing.exists()

    code, _, err = run_main(monkeypatch, capsys, "copy", "--from", source, "--to", source)
    assert (code, err.strip()) == (1, "error: to: the source and the destination are the same ledger")

    code, _, err = run_main(monkeypatch, capsys, "copy", "--from", source, "--to", "memory")
    assert code == 1 and err.startswith("error: to: a copy into memory")

    cli("copy", "--from", source, "--to", str(target), "--no-verify")
    code, _, err = run_main(monkeypatch, capsys, "copy", "--from", source, "--to", str(target))
    assert code == 1
    assert err.strip() == f"error: to: the destination already holds {count(source)} events; " \
                          "a copy goes only into an empty ledger"
    assert count(str(target)) == count(source)


def _tamper_last_event(path: str, change: dict[str, object] | None) -> None:
    """Rewrite the source's last stored event behind the ledger's back (what a broken store looks like)."""
    with sqlite3.connect(path) as db:
        rowid, state = db.execute("SELECT rowid, state FROM stored_events ORDER BY rowid DESC LIMIT 1").fetchone()
        if change is None:
            new = b"{not json"
        else:
            new = msgspec.json.encode({**msgspec.json.decode(state), **change})
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (new, rowid))


@pytest.mark.parametrize(
    "change, field",
    [
        # The destination refuses the last batch (its recorded stamp goes backwards)
        # after the earlier batches were written: they must not stay.
        ({"recorded": "2001-01-01T00:00:00Z"}, "to"),
        # The source cannot be read half way through.
        (None, "from"),
    ],
    ids=["destination-refuses", "source-unreadable"],
)
def test_a_failed_copy_leaves_the_destination_empty(
    source: str, durable_location: str, monkeypatch: pytest.MonkeyPatch, change: dict[str, object] | None, field: str
) -> None:
    monkeypatch.setattr(copying, "BATCH", 50)
    _tamper_last_event(source, change)
    with pytest.raises(LedgerError) as failed:
        copying.copy_events(Ledger(source), Ledger(durable_location))
    assert failed.value.field == field
    assert "nothing was copied" in str(failed.value)
    assert count(durable_location) == 0
    # Emptiness is what a retry needs: the same copy of a sound source then goes through.
    with sqlite3.connect(source) as db:
        db.execute("DELETE FROM stored_events WHERE rowid = (SELECT max(rowid) FROM stored_events)")
        db.execute("DELETE FROM ledger_index WHERE notification_id = (SELECT max(notification_id) FROM ledger_index)")
    assert copying.copy_events(Ledger(source), Ledger(durable_location)) == count(source)


def test_verification_finds_a_changed_copy(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli import run_main

    target = str(tmp_path / "copy.db")
    cli("copy", "--from", source, "--to", target, "--no-verify")
    with Ledger(source) as a, Ledger(target) as b:
        assert copying.verify(a, b) == []
        invoice = next(e for e in b.events() if e.type == "invoice_issued")
    # Change one invoice's amount in the copy, as a faulty copy would.
    with sqlite3.connect(target) as db:
        for rowid, state in db.execute("SELECT rowid, state FROM stored_events").fetchall():
            data = msgspec.json.decode(state)
            if data.get("id") == str(invoice.id):
                db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                           (msgspec.json.encode({**data, "amount": data["amount"] + 100}), rowid))
    with Ledger(source) as a, Ledger(target) as b:
        differences = copying.verify(a, b, [a.terms().end])
    assert any(line.startswith("event ") and str(invoice.id) in line for line in differences)
    assert any(line.startswith(f"exposure of {invoice.buyer} at ") for line in differences)
    assert any(line.startswith("turnover of ") for line in differences)

    # The command lists the differences and exits 1 when its own copy comes out changed.
    faithful = copying._stored

    def faulty(notification: object) -> object:
        stored = faithful(notification)  # type: ignore[arg-type]
        data = msgspec.json.decode(stored.state)
        if data.get("id") != str(invoice.id):
            return stored
        return dataclasses.replace(stored, state=msgspec.json.encode({**data, "amount": data["amount"] + 1}))

    monkeypatch.setattr(copying, "_stored", faulty)
    code, out, err = run_main(monkeypatch, capsys, "copy", "--from", source, "--to", str(tmp_path / "third.db"))
    assert code == 1
    assert "difference: event " in err and str(invoice.id) in err
    assert err.strip().endswith("do not use it")


def test_help_names_the_options() -> None:
    result = cli("copy", "--help")
    for option in ("--from", "--to", "--verify", "--no-verify", "--as-of", "--json"):
        assert option in result.stdout
