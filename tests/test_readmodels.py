"""The exposure read model (ledger/readmodels/exposure.py): stored in the ledger's own database,
caught up from the log exactly once, bound to its log, disposable.

Every figure it gives is held to the fold (`book_covers`, `buyer_cover`) on a
seeded sample book, on SQLite and PostgreSQL: after a first build, after later
appends (a back-dated payment, a new buyer, a policy amendment), after a
catch-up that crashed half way, after its rows were dropped, when its rows
come from another ledger or from the same ledger before a restored backup,
when a stored figure was edited, and when the ledger cannot be written.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.operations.copy import copy_events
from ledger.operations.verify import verify
from ledger.queries.book import book_covers
from ledger.queries.exposure import book_exposures, buyer_exposure
from ledger.readmodels import exposure as readmodels
from ledger.readmodels.exposure import NAME, TABLES
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import amend_policy, parse_policy
from projections.exposure import Exposure
from projections.terms import TermsTimeline

DAYS = [datetime.date(2024, 12, 20), datetime.date(2025, 3, 31), datetime.date(2025, 9, 30), datetime.date(2026, 6, 30)]


def sample_ledger(location: str | Path, events: int = 1500, seed: int = 3) -> Ledger:
    policy, rows = samplebook.generate(seed=seed, events=events)
    ledger = Ledger(str(location))
    ledger.load_policy(parse_policy(policy))
    ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
    return ledger


def folded(ledger: Ledger, day: datetime.date) -> list[tuple[str, Exposure]]:
    terms = TermsTimeline(ledger.policy_events())
    return [(cover.buyer, Exposure.of(cover, terms)) for cover in book_covers(ledger, day, None)]


def assert_matches_the_fold(ledger: Ledger) -> None:
    for day in DAYS:
        assert book_exposures(ledger, day, None) == folded(ledger, day), day


def tracked(ledger: Ledger) -> int:
    return ledger.exposure_model.position()


def transplant(source: Ledger, destination: Ledger) -> None:
    """Put the source's stored read model, binding and all, in the destination's database
    (what a restored backup with a newer model, or another ledger's model, looks like)."""
    model, bound = source.exposure_model.tables, source.exposure_model.tables.binding(NAME)
    assert bound is not None
    rows = {table: model.read(f"SELECT * FROM {table}") for table in TABLES}  # noqa: S608 (constant names)
    with destination.exposure_model.tables.write(NAME) as writer:
        for table in TABLES:
            writer.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)
            writer.insert(table, rows[table])
        writer.bind(bound.position, bound.chain_hash, bound.layout)


def test_the_book_from_the_read_model_is_the_folded_book(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        assert_matches_the_fold(ledger)
        assert tracked(ledger) == ledger.store.index.position()[0]
        assert ledger.exposure_model.tables.in_ledger
    if "://" not in durable_location:  # in the ledger file itself, nothing beside it
        with sqlite3.connect(durable_location) as db:
            assert db.execute("SELECT count(*) FROM exposure_timeline").fetchone()[0] > 0
        assert not Path(durable_location + "-readmodels").exists()


def test_a_fresh_process_serves_the_stored_rows_without_refolding(durable_location: str, monkeypatch: pytest.MonkeyPatch):
    with sample_ledger(durable_location) as ledger:
        first = {day: book_exposures(ledger, day, None) for day in DAYS}
    monkeypatch.setattr(readmodels, "exposure_changes", lambda *args: pytest.fail("refolded"))
    with Ledger(durable_location) as reopened:
        assert {day: book_exposures(reopened, day, None) for day in DAYS} == first


def test_later_appends_are_caught_up_buyer_by_buyer(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        book_exposures(ledger, DAYS[1], None)
        buyer = ledger.store.index.buyers()[0]
        ledger.append({"type": "invoice_issued", "buyer": buyer, "effective": "2025-02-17", "invoice": "LATE-1",
                       "amount": "500.00", "due": "2025-04-17", "key": "late-invoice"})  # back-dated
        ledger.append({"type": "buyer_registered", "buyer": "NEW1", "effective": "2025-04-01", "name": "New Ltd",
                       "country": "GB", "key": "new-buyer"})
        assert ledger.exposure_model.catch_up() == 2  # only the two buyers touched
        assert_matches_the_fold(ledger)
        assert buyer_exposure(ledger, "NEW1", DAYS[2], None) == folded_one(ledger, "NEW1", DAYS[2])


def test_another_process_reads_its_own_writes(durable_location: str):
    """A query sees every event recorded before it started, whoever recorded it."""
    with sample_ledger(durable_location) as ledger, Ledger(durable_location) as other:
        book_exposures(ledger, DAYS[1], None)
        book_exposures(other, DAYS[1], None)
        buyer = ledger.store.index.buyers()[1]
        other.append({"type": "invoice_issued", "buyer": buyer, "effective": "2025-03-01", "invoice": "RYW-1",
                      "amount": "700.00", "due": "2025-05-01", "key": "ryw"})
        assert buyer_exposure(ledger, buyer, DAYS[1], None) == folded_one(ledger, buyer, DAYS[1])
        assert buyer_exposure(other, buyer, DAYS[1], None) == folded_one(other, buyer, DAYS[1])
        assert tracked(ledger) == tracked(other) == ledger.store.index.position()[0]


def folded_one(ledger: Ledger, buyer: str, day: datetime.date) -> Exposure:
    return dict(folded(ledger, day))[buyer]


def test_a_policy_amendment_refolds_every_buyer(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        book_exposures(ledger, DAYS[1], None)
        terms = amend_policy(ledger.terms(), {"max_credit_days": 60})
        ledger.load_policy(terms, effective=datetime.date(2025, 6, 1))
        assert ledger.exposure_model.catch_up() == len(ledger.store.index.buyers())
        assert_matches_the_fold(ledger)


def test_a_catch_up_that_fails_half_way_leaves_the_old_state_and_the_next_one_finishes(
    durable_location: str, monkeypatch: pytest.MonkeyPatch
):
    with sample_ledger(durable_location) as ledger:
        book_exposures(ledger, DAYS[1], None)
        before, position = ledger.exposure_model.stored(), tracked(ledger)
        for number in range(3):
            buyer = ledger.store.index.buyers()[number]
            ledger.append({"type": "limit_reduced", "buyer": buyer, "effective": "2025-05-01", "amount": "1000",
                           "key": f"cut-{number}"})
        real, calls = readmodels.exposure_changes, []

        def dies_on_the_second(*args: Any) -> Any:
            calls.append(args[0])
            if len(calls) == 2:
                raise KeyboardInterrupt  # the process stopped half way through
            return real(*args)

        monkeypatch.setattr(readmodels, "exposure_changes", dies_on_the_second)
        with pytest.raises(KeyboardInterrupt):
            ledger.exposure_model.catch_up()
        monkeypatch.setattr(readmodels, "exposure_changes", real)
    with Ledger(durable_location) as reopened:
        assert tracked(reopened) == position
        assert reopened.exposure_model.catch_up() == 3
        assert reopened.exposure_model.stored() != before
        assert_matches_the_fold(reopened)


def test_the_rows_are_disposable(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        first = {day: book_exposures(ledger, day, None) for day in DAYS}
        with ledger.exposure_model.tables.write(NAME) as writer:
            writer.execute("DROP TABLE exposure_timeline")
            writer.execute("DELETE FROM ledger_read_models")
    with Ledger(durable_location) as reopened:
        assert {day: book_exposures(reopened, day, None) for day in DAYS} == first


def test_rows_of_another_layout_are_rebuilt(durable_location: str, monkeypatch: pytest.MonkeyPatch):
    """A new figure (or any change of the generated tables) rebuilds the model on the next open."""
    with sample_ledger(durable_location) as ledger:
        first = {day: book_exposures(ledger, day, None) for day in DAYS}
        with ledger.exposure_model.tables.write(NAME) as writer:
            writer.execute("DELETE FROM exposure_timeline")  # a model that would be wrong if served
            writer.bind(tracked(ledger), ledger.chain_hash_at(tracked(ledger)), "an-older-layout")
    with Ledger(durable_location) as reopened:
        assert {day: book_exposures(reopened, day, None) for day in DAYS} == first


def test_a_restored_backup_beside_a_newer_model_is_refolded_never_served(durable_location: str, tmp_path: Path):
    """The backup holds the log up to some point; the live ledger went on (GHOST-1) and its model
    with it; the backup is restored, then two events of another buyer are recorded: the log has
    as many events as the model's position, and other ones there."""
    with sample_ledger(tmp_path / "live.db") as live, Ledger(durable_location) as restored:
        copy_events(live, restored)  # the backup: the same events, ids, stamps and chain
        ghost_buyer, other_buyer = live.store.index.buyers()[:2]
        live.append({"type": "invoice_issued", "buyer": ghost_buyer, "effective": "2025-03-01",
                     "invoice": "GHOST-1", "amount": "90000.00", "due": "2025-05-01", "key": "ghost"})
        live.append({"type": "payment_received", "buyer": ghost_buyer, "effective": "2025-03-02",
                     "invoice": "GHOST-1", "amount": "1.00", "key": "ghost-pay"})
        book_exposures(live, DAYS[1], None)
        for number in range(2):
            restored.append({"type": "limit_reduced", "buyer": other_buyer, "effective": "2025-03-01",
                             "amount": str(900 - 100 * number), "key": f"other-{number}"})
        assert restored.store.index.position()[0] == tracked(live)
        transplant(live, restored)
        assert_matches_the_fold(restored)
        assert "GHOST-1" not in str(restored.exposure_model.stored()[ghost_buyer])
        assert restored.exposure_model.tables.binding(NAME).chain_hash == restored.chain_hash_at(tracked(restored))


def test_rows_left_by_another_ledger_are_rebuilt(durable_location: str, tmp_path: Path):
    with sample_ledger(tmp_path / "other.db", seed=4) as other, sample_ledger(durable_location, seed=3) as ledger:
        book_exposures(other, DAYS[2], None)
        book_exposures(ledger, DAYS[2], None)
        transplant(other, ledger)
        assert_matches_the_fold(ledger)


def test_verify_names_an_edited_figure_and_the_model_is_rebuilt(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        assert verify(ledger).clean
        buyer = ledger.store.index.buyers()[5]
        with ledger.exposure_model.tables.write(NAME) as writer:
            writer.execute("UPDATE exposure_timeline SET outstanding = outstanding + 1 WHERE buyer = ? AND since = "
                           "(SELECT max(since) FROM exposure_timeline WHERE buyer = ?)", [buyer, buyer])
    with Ledger(durable_location) as reopened:
        findings = verify(reopened).findings
        assert [f.check for f in findings] == ["read_models"]
        assert f"buyer {buyer} " in findings[0].message
        assert_matches_the_fold(reopened)  # rebuilt by verify, no longer served
    with Ledger(durable_location) as again:
        assert verify(again).clean


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A SQLite ledger file that nobody, root included, may write (chattr +i): a read-only mount's case."""
    path = tmp_path / "ledger.db"
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)


def make_immutable(path: Path) -> None:
    done = subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
    if done.returncode != 0:
        pytest.skip("chattr +i is not permitted here")


def test_a_ledger_that_cannot_be_written_is_queried_and_verified_from_memory(
    immutable: Path, caplog: pytest.LogCaptureFixture
):
    sample_ledger(immutable).close()  # no query yet: the model has nothing stored
    make_immutable(immutable)
    with caplog.at_level(logging.WARNING, "creditledger"), Ledger(str(immutable)) as ledger:
        assert_matches_the_fold(ledger)
        assert not ledger.exposure_model.tables.in_ledger
        assert verify(ledger).clean
    assert len(caplog.records) == 1 and "cannot be written" in caplog.records[0].getMessage()


def test_a_stale_model_in_a_ledger_that_cannot_be_written_is_not_served(immutable: Path):
    with sample_ledger(immutable) as ledger:
        book_exposures(ledger, DAYS[1], None)
        buyer = ledger.store.index.buyers()[0]
        ledger.append({"type": "invoice_issued", "buyer": buyer, "effective": "2025-02-17", "invoice": "LATE-1",
                       "amount": "500.00", "due": "2025-04-17", "key": "late-invoice"})
    make_immutable(immutable)
    with Ledger(str(immutable)) as ledger:
        assert_matches_the_fold(ledger)


def test_the_cli_warns_once_and_answers_on_a_ledger_that_cannot_be_written(immutable: Path):
    sample_ledger(immutable).close()
    make_immutable(immutable)
    done = subprocess.run([str(Path(sys.executable).with_name("creditledger")), "exposure", "--db", str(immutable),
                           "--as-of", "2025-06-30", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("warning: the read models cannot be written")


def test_text_with_tabs_newlines_and_backslashes_is_stored_as_it_is(durable_location: str):
    """The rows go to PostgreSQL in COPY's text format, written here (ledger/store/postgres.py):
    a delimiter, a line end, a backslash or the NULL marker inside a value comes back unchanged."""
    awkward = ["tab\there", "back\\slash", "new\nline", "cr\rhere", "\\N", "plain", ""]
    rows = [(text, f"2025-01-{day + 1:02d}", day, -day, 0, 0, 10**15, 0, 0, 0, None, text)
            for day, text in enumerate(awkward)]
    with Ledger(durable_location) as ledger:
        tables = ledger.exposure_model.tables
        with tables.write(NAME) as writer:
            writer.execute("DELETE FROM exposure_timeline")
            writer.insert("exposure_timeline", rows)
        stored = tables.read("SELECT * FROM exposure_timeline ORDER BY since")
    assert [tuple(row) for row in stored] == rows
