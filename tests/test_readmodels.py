"""The exposure read model (ledger/readmodels/exposure.py): caught up from the log, exactly once, disposable.

Every figure it gives is held to the fold (`book_covers`, `buyer_cover`) on a
seeded sample book in a SQLite file: after a first build, after later
appends (a back-dated payment, a new buyer, a policy amendment), after a
catch-up that crashed half way, after the cache was deleted, and when the
cache file belongs to another ledger that used the same path.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger.operations.verify import verify
from ledger.queries.book import book_covers
from ledger.queries.exposure import book_exposures, buyer_exposure
from ledger.readmodels import exposure as readmodels
from ledger.readmodels.exposure import NAME
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.location import Location
from ledger.vocabulary.terms import amend_policy, parse_policy
from projections.exposure import Exposure
from projections.terms import TermsTimeline

DAYS = [datetime.date(2024, 12, 20), datetime.date(2025, 3, 31), datetime.date(2025, 9, 30), datetime.date(2026, 6, 30)]


def sample_ledger(path: Path, events: int = 1500, seed: int = 3) -> Ledger:
    policy, rows = samplebook.generate(seed=seed, events=events)
    ledger = Ledger(str(path))
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


def test_the_book_from_the_read_model_is_the_folded_book(tmp_path: Path):
    with sample_ledger(tmp_path / "ledger.db") as ledger:
        assert_matches_the_fold(ledger)
        assert Path(Location.parse(ledger.location).read_models).exists()
        assert tracked(ledger) == ledger.store.index.position()[0]


def test_later_appends_are_caught_up_buyer_by_buyer(tmp_path: Path):
    with sample_ledger(tmp_path / "ledger.db") as ledger:
        book_exposures(ledger, DAYS[1], None)
        buyer = ledger.store.index.buyers()[0]
        ledger.append({"type": "invoice_issued", "buyer": buyer, "effective": "2025-02-17", "invoice": "LATE-1",
                       "amount": "500.00", "due": "2025-04-17", "key": "late-invoice"})  # back-dated
        ledger.append({"type": "buyer_registered", "buyer": "NEW1", "effective": "2025-04-01", "name": "New Ltd",
                       "country": "GB", "key": "new-buyer"})
        assert ledger.exposure_model.catch_up() == 2  # only the two buyers touched
        assert_matches_the_fold(ledger)
        assert buyer_exposure(ledger, "NEW1", DAYS[2], None) == folded_one(ledger, "NEW1", DAYS[2])


def folded_one(ledger: Ledger, buyer: str, day: datetime.date) -> Exposure:
    return dict(folded(ledger, day))[buyer]


def test_a_policy_amendment_refolds_every_buyer(tmp_path: Path):
    with sample_ledger(tmp_path / "ledger.db") as ledger:
        book_exposures(ledger, DAYS[1], None)
        terms = amend_policy(ledger.terms(), {"max_credit_days": 60})
        ledger.load_policy(terms, effective=datetime.date(2025, 6, 1))
        assert ledger.exposure_model.catch_up() == len(ledger.store.index.buyers())
        assert_matches_the_fold(ledger)


def test_a_catch_up_that_fails_half_way_leaves_the_old_state_and_the_next_one_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "ledger.db"
    with sample_ledger(path) as ledger:
        book_exposures(ledger, DAYS[1], None)
        before, position = ledger.exposure_model.stored(), tracked(ledger)
        for number in range(3):
            buyer = ledger.store.index.buyers()[number]
            ledger.append({"type": "limit_reduced", "buyer": buyer, "effective": "2025-05-01", "amount": "1000",
                           "key": f"cut-{number}"})
        real, calls = readmodels.exposure_timeline, []

        def dies_on_the_second(*args: Any) -> Any:
            calls.append(args[0])
            if len(calls) == 2:
                raise KeyboardInterrupt  # the process stopped half way through
            return real(*args)

        monkeypatch.setattr(readmodels, "exposure_timeline", dies_on_the_second)
        with pytest.raises(KeyboardInterrupt):
            ledger.exposure_model.catch_up()
        monkeypatch.setattr(readmodels, "exposure_timeline", real)
        with sqlite3.connect(Location.parse(str(path)).read_models) as cache:
            kept = cache.execute("SELECT position FROM tracking WHERE name = ?", [NAME]).fetchone()[0]
        assert kept == position
    with Ledger(str(path)) as reopened:
        assert reopened.exposure_model.catch_up() == 3
        assert reopened.exposure_model.stored() != before
        assert_matches_the_fold(reopened)


def test_the_cache_is_disposable(tmp_path: Path):
    path = tmp_path / "ledger.db"
    with sample_ledger(path) as ledger:
        first = {day: book_exposures(ledger, day, None) for day in DAYS}
    Path(Location.parse(str(path)).read_models).unlink()
    with Ledger(str(path)) as reopened:
        assert {day: book_exposures(reopened, day, None) for day in DAYS} == first
        assert Path(Location.parse(str(path)).read_models).exists()


def test_a_cache_left_by_another_ledger_at_the_same_path_is_rebuilt(tmp_path: Path):
    path = tmp_path / "ledger.db"
    with sample_ledger(path, seed=3) as ledger:
        book_exposures(ledger, DAYS[2], None)
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with sample_ledger(path, seed=4) as other:
        assert_matches_the_fold(other)


def test_verify_names_a_buyer_whose_cached_timeline_was_altered(tmp_path: Path):
    path = tmp_path / "ledger.db"
    with sample_ledger(path) as ledger:
        assert verify(ledger).clean
        buyer = ledger.store.index.buyers()[5]
    with sqlite3.connect(Location.parse(str(path)).read_models) as cache:
        cache.execute("UPDATE exposure_timeline SET outstanding = outstanding + 1 WHERE buyer = ? AND since = "
                      "(SELECT max(since) FROM exposure_timeline WHERE buyer = ?)", [buyer, buyer])
    with Ledger(str(path)) as reopened:
        findings = verify(reopened).findings
    assert [f.check for f in findings] == ["read_models"]
    assert f"buyer {buyer} " in findings[0].message


def test_a_cache_that_cannot_be_written_is_kept_in_memory(tmp_path: Path):
    path = tmp_path / "ledger.db"
    Path(Location.parse(str(path)).read_models).mkdir()  # what sqlite cannot open as a database
    with sample_ledger(path) as ledger:
        assert_matches_the_fold(ledger)
