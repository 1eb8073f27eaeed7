"""Read models: figures kept up to date from the notification log, so that a query never refolds.

`ExposureModel` keeps every buyer's exposure timeline known now
(projections/timeline.py: the exposure as a step function of `as_of`) in a
SQLite cache beside the ledger: `<ledger file>-readmodels`, or in memory for
an in-memory or PostgreSQL ledger. It tracks the notification id it has
folded up to, and the id of the ledger's first event (a cache of another
ledger at the same path is rebuilt, never read).

Catching up reads the index rows after the tracked position, refolds each
buyer they touch (every buyer after a policy event) and writes the new
timelines and the new position in one transaction: a crash leaves the old
rows and the old position, and the next catch-up does the work again, so each
event is reflected exactly once. Refolding a buyer is idempotent, so two
processes catching up at once agree. The cache is disposable: deleting it
and catching up gives the same figures (tests/test_readmodels.py).

Queries catch up first, so the answer is always the ledger's as known now.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable, Iterable
from typing import Protocol

from ledger.vocabulary.bulk import collector_paused
from ledger.vocabulary.events import Event, format_recorded
from projections.exposure import EXPOSURE_FIGURES, Exposure
from projections.timeline import ExposureStep, Timeline, exposure_timeline


class LogReader(Protocol):
    """What a read model reads of a ledger: the log's position, what changed after a position,
    and the streams. The service's `Ledger` is one; the read model never opens the store."""

    def log_position(self) -> tuple[int, str | None]: ...
    def streams_touched_after(self, position: int) -> set[str | None]: ...
    def earliest_effective_after(self, recorded: str) -> dict[str | None, str]: ...
    def buyers(self) -> list[str]: ...
    def buyer_events(self, buyer: str, known_at: datetime.datetime | None = None) -> list[Event]: ...
    def policy_events(self) -> list[Event]: ...


NAME = "exposure_timeline"
_FIGURES = ", ".join(f'"{name}"' for name in EXPOSURE_FIGURES)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL, ledger TEXT)",
    "CREATE TABLE IF NOT EXISTS buyers (buyer TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS exposure_timeline (buyer TEXT NOT NULL, since TEXT NOT NULL, "
    + ", ".join(f'"{name}" INTEGER NOT NULL' for name in EXPOSURE_FIGURES)
    + ", status TEXT NOT NULL, not_available TEXT NOT NULL, PRIMARY KEY (buyer, since)) WITHOUT ROWID",
)
# For each buyer, the entry in force on the day: two index seeks per buyer (CROSS JOIN
# keeps SQLite's planner from scanning the timelines instead).
_BOOK_ON = (
    f"SELECT t.buyer, {', '.join(f't.{column}' for column in _FIGURES.split(', '))}, t.status, t.not_available "  # noqa: S608 (constant names)
    "FROM buyers b CROSS JOIN exposure_timeline t ON t.buyer = b.buyer AND t.since = "
    "(SELECT max(since) FROM exposure_timeline x WHERE x.buyer = b.buyer AND x.since <= :day) ORDER BY b.buyer"
)
_BUYER_ON = (
    f"SELECT buyer, {_FIGURES}, status, not_available FROM exposure_timeline "  # noqa: S608 (constant names)
    "WHERE buyer = :buyer AND since <= :day ORDER BY since DESC LIMIT 1"
)

Progress = Callable[[int, int], None]  # (buyers done, buyers to do)


class ExposureModel:
    """Every buyer's exposure timeline as known now, kept from the notification log."""

    def __init__(self, ledger: LogReader, path: str) -> None:
        self.ledger = ledger
        try:
            self.db = _open_cache(path)
        except sqlite3.Error:
            # A cache that cannot be written (a read-only folder): answers stay right, only slower.
            self.db = _open_cache(":memory:")

    def close(self) -> None:
        self.db.close()

    def position(self) -> int:
        row = self.db.execute("SELECT position FROM tracking WHERE name = ?", [NAME]).fetchone()
        return int(row[0]) if row else 0

    def catch_up(self, progress: Progress | None = None) -> int:
        """Fold what the log holds after the tracked position; returns the buyers refolded."""
        last, first_id = self.ledger.log_position()
        tracked = self.db.execute("SELECT position, ledger FROM tracking WHERE name = ?", [NAME]).fetchone()
        stale = tracked is None or tracked[1] != first_id or tracked[0] > last
        start = 0 if stale else int(tracked[0])
        if not stale and start == last:
            return 0
        touched = self.ledger.streams_touched_after(start)
        everyone = stale or None in touched
        buyers = self.ledger.buyers() if everyone else sorted(b for b in touched if b is not None)
        policy = self.ledger.policy_events()
        rows: list[tuple[object, ...]] = []
        with collector_paused(len(buyers) * 100):  # the timelines' rows stay alive until written
            for done, buyer in enumerate(buyers, 1):
                rows += _rows(buyer, exposure_timeline(buyer, self.ledger.buyer_events(buyer), policy))
                if progress is not None:
                    progress(done, len(buyers))
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if everyone:
                db.execute("DELETE FROM exposure_timeline")
                db.execute("DELETE FROM buyers")
            else:
                db.executemany("DELETE FROM exposure_timeline WHERE buyer = ?", [(b,) for b in buyers])
                db.executemany("DELETE FROM buyers WHERE buyer = ?", [(b,) for b in buyers])
            db.executemany(
                f"INSERT INTO exposure_timeline VALUES ({', '.join('?' * (len(EXPOSURE_FIGURES) + 4))})", rows  # noqa: S608 (placeholders only)
            )
            db.executemany("INSERT OR IGNORE INTO buyers VALUES (?)", [(row[0],) for row in rows])
            db.execute("INSERT OR REPLACE INTO tracking VALUES (?, ?, ?)", [NAME, last, first_id])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(buyers)

    def book_on(self, day: datetime.date) -> list[tuple[str, Exposure]]:
        """Each registered buyer's exposure at the end of `day`, as known now, in buyer order."""
        self.catch_up()
        return [(row[0], _exposure(row)) for row in self.db.execute(_BOOK_ON, {"day": day.isoformat()})]

    def buyer_on(self, buyer: str, day: datetime.date) -> Exposure | None:
        """One buyer's exposure at the end of `day`, as known now (None: not registered by then)."""
        self.catch_up()
        row = self.db.execute(_BUYER_ON, {"buyer": buyer, "day": day.isoformat()}).fetchone()
        return _exposure(row) if row else None

    def unchanged_since(self, known_at: datetime.datetime, as_of: datetime.date) -> Callable[[str], bool]:
        """Whether a buyer's exposure at `as_of` as known at `known_at` is the one known now:
        nothing recorded after `known_at` is effective by `as_of` (later-dated events and
        decisions do not reach back), and the policy stream has nothing new at all."""
        later = self.ledger.earliest_effective_after(format_recorded(known_at))
        if None in later:
            return lambda buyer: False
        day = as_of.isoformat()
        return lambda buyer: buyer not in later or later[buyer] > day

    def stored(self) -> dict[str, Timeline]:
        """Every stored timeline (for checks: a fresh fold must give the same)."""
        self.catch_up()
        timelines: dict[str, Timeline] = {}
        for row in self.db.execute(f"SELECT buyer, since, {_FIGURES}, status, not_available FROM exposure_timeline ORDER BY buyer, since"):  # noqa: S608 (constant names)
            timelines.setdefault(row[0], []).append(
                ExposureStep(datetime.date.fromisoformat(row[1]), _exposure((row[0], *row[2:]))))
        return timelines


def _open_cache(location: str) -> sqlite3.Connection:
    # Any thread: the web service lends a Ledger to one request at a time, in whichever thread runs it.
    db = sqlite3.connect(location, isolation_level=None, check_same_thread=False)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(exposure_timeline)")]
        if columns and columns != ["buyer", "since", *EXPOSURE_FIGURES, "status", "not_available"]:
            # a cache of an older layout (other figures): rebuilt
            db.executescript("DROP TABLE exposure_timeline; DROP TABLE IF EXISTS buyers; DROP TABLE IF EXISTS tracking")
        for statement in _SCHEMA:
            db.execute(statement)
    except sqlite3.Error:
        db.close()
        raise
    return db


def _rows(buyer: str, timeline: Timeline) -> Iterable[tuple[object, ...]]:
    for step in timeline:
        exposure = step.exposure
        yield (buyer, step.since.isoformat(), *(getattr(exposure, name) for name in EXPOSURE_FIGURES), exposure.status,
               exposure.not_available)


def _exposure(row: tuple[object, ...]) -> Exposure:
    values = dict(zip(EXPOSURE_FIGURES, row[1:-2], strict=True))
    return Exposure(**values, status=str(row[-2]), not_available=str(row[-1]))  # type: ignore[arg-type]
