"""A large import stays all or nothing with its file read a piece at a time and its drafts stamped
in place; and the trusted path: `import --keep-recorded --source-head HASH` records a verified
ledger's events as it held them into an empty ledger, and refuses any file whose events do not
end the chain at that head (docs/rules.md, "Importing")."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import cli, no_default_db  # noqa: F401 (an autouse fixture)

import ledger.adapters.eventfiles
import ledger.service
from ledger.operations import copy as copying
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import NIL_ID, UNRECORDED
from ledger.vocabulary.terms import parse_policy


def book(tmp_path: Path) -> tuple[Path, Path, int]:
    """A seeded book as JSON Lines and its policy file (samplebook writes both), and its event count."""
    path = tmp_path / "book.jsonl"
    cli("sample", "generate", str(path), "--seed", "5", "--buyers", "8", "--events", "300")
    return path, path.with_suffix(".policy.toml"), sum(1 for line in path.read_text().splitlines() if line.strip())


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command as a user does (exit code, one-line error); return its error output."""
    from test_cli import run_main

    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 1, err
    return err


def count(location: str) -> int:
    with Ledger(location) as ledger:
        return ledger.count()


LATE_PROBLEMS = [
    pytest.param(b'{"type": "payment_received", "effective": "2025-06-01"', "malformed JSON", id="malformed-json"),
    pytest.param(b'{"type": "payment_received", "effective": "2025-06-01", "buyer": "B0001", "amount": "1.001"}',
                 "amount: 1.001 has more decimals", id="bad-field"),
    pytest.param(b'{"type": "payment_received", "effective": "2025-06-01", "buyer": "NOBODY", "amount": "1.00"}',
                 "NOBODY is not a registered buyer", id="refused-by-admission"),
    pytest.param(b'{"type": "buyer_registered", "effective": "2025-06-01", "buyer": "X", "name": "\xff"}',
                 "is not UTF-8 text", id="not-utf-8"),
]


@pytest.mark.parametrize("line, words", LATE_PROBLEMS)
def test_a_bad_line_after_the_first_batch_records_nothing(
    tmp_path: Path, durable_location: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    line: bytes, words: str,
) -> None:
    """Many batches, the file read in many pieces: a bad last line still leaves the ledger as it was."""
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 50)
    monkeypatch.setattr(ledger.adapters.eventfiles, "_CHUNK_BYTES", 1000)
    path, policy, events = book(tmp_path)
    cli("init", "--db", durable_location)
    cli("policy", "load", str(policy), "--db", durable_location)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(path.read_bytes() + line + b"\n")
    err = refused(monkeypatch, capsys, "import", str(bad), "--db", durable_location)
    assert f"{bad}:{events + 1}:" in err and words in err, err
    assert count(durable_location) == 1  # the policy alone
    cli("import", str(path), "--db", durable_location)  # the sound file then records in full
    assert count(durable_location) == events + 1


def test_a_refused_write_leaves_the_drafts_as_they_were_given() -> None:
    """Stamping is done in place and undone when the write does not happen (its retry stamps
    them again); a trial stamps copies, since its caller records the same drafts after."""
    policy, rows = samplebook.generate(seed=5, buyers=8, events=300)
    bad = {"type": "payment_received", "effective": "2025-06-01", "buyer": "NOBODY", "amount": "1.00"}
    with Ledger("memory") as opened:
        opened.load_policy(parse_policy(policy))
        drafts = opened.parse(list(enumerate([*rows, bad], 1)), "book")
        trial = opened.trial(drafts)
        assert len(trial.refused) == 1 and trial.outcome.recorded[0].id != NIL_ID
        with pytest.raises(LedgerError, match="NOBODY"):
            opened.record(drafts)
        assert all(d.event.id == NIL_ID and d.event.recorded == UNRECORDED for d in drafts)
        outcome = opened.record(drafts[:-1])
        assert len(outcome.recorded) == len(rows) and len({e.id for e in outcome.recorded}) == len(rows)


# ---------------------------------------------------------------- the trusted path

def verified_export(tmp_path: Path) -> tuple[str, Path, str]:
    """A ledger holding the book, every event of it as `log --json` prints them, and its verified head."""
    path, policy, _ = book(tmp_path)
    source = str(tmp_path / "source.db")
    cli("init", "--db", source)
    cli("policy", "load", str(policy), "--db", source)
    cli("import", str(path), "--db", source)
    report = json.loads(cli("verify", "--db", source, "--json").stdout)
    assert report["clean"]
    export = tmp_path / "export.json"
    export.write_text(cli("log", "--db", source, "--json").stdout)
    return source, export, report["head"]["hash"]


def test_a_verified_ledger_reimports_as_it_was(tmp_path: Path, durable_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 50)
    source, export, head = verified_export(tmp_path)
    cli("init", "--db", durable_location)
    result = cli("import", str(export), "--keep-recorded", "--source-head", head, "--db", durable_location)
    assert result.stdout.splitlines()[-1].endswith(head)
    assert count(durable_location) == count(source)
    with Ledger(source) as a, Ledger(durable_location) as b:
        assert b.head() == a.head()
        assert copying.verify(a, b) == []  # every event, stream, version and query alike
    assert json.loads(cli("verify", "--db", durable_location, "--json").stdout)["clean"]


def tampered(export: Path, tmp_path: Path) -> Path:
    """The export with one payment's amount changed by a cent: a sound event, not the source's."""
    events = json.loads(export.read_text())
    payment = next(e for e in events if e["type"] == "payment_received")
    payment["amount"] = str(Decimal(payment["amount"]) + Decimal("0.01"))
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(events))
    return changed


def test_events_that_do_not_end_at_the_source_head_record_nothing(
    tmp_path: Path, durable_location: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, export, head = verified_export(tmp_path)
    cli("init", "--db", durable_location)
    err = refused(monkeypatch, capsys, "import", str(tampered(export, tmp_path)), "--keep-recorded",
                  "--source-head", head, "--db", durable_location)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: source-head: the events end the chain at "), lines
    assert "nothing was recorded" in lines[0]
    assert count(durable_location) == 0
    # Nothing is in the way of the source's own log then (on PostgreSQL the refused write drew
    # its ids from the sequence, which a rollback does not give back).
    result = cli("import", str(export), "--keep-recorded", "--source-head", head, "--db", durable_location)
    assert result.stdout.splitlines()[-1].endswith(head)


def test_the_source_head_is_refused_where_it_proves_nothing(
    tmp_path: Path, durable_location: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, export, head = verified_export(tmp_path)
    refusals = [
        (["--source-head", head], "source-head: goes with --keep-recorded"),
        (["--keep-recorded", "--source-head", head[:12]], "is not a head hash: give all 64 hex digits"),
    ]
    for options, words in refusals:
        assert words in refused(monkeypatch, capsys, "import", str(export), *options, "--db", durable_location)
    cli("init", "--db", durable_location)
    cli("import", str(export), "--keep-recorded", "--source-head", head, "--db", durable_location)
    assert "into an empty one" in refused(monkeypatch, capsys, "import", str(export), "--keep-recorded",
                                          "--source-head", head, "--db", durable_location)
    assert count(durable_location) == len(json.loads(export.read_text()))
