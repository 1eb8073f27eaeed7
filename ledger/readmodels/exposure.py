"""Read models: figures kept up to date from the notification log, so that a query never refolds.

`ExposureModel` keeps every buyer's exposure timeline known now
(projections/timeline.py: the exposure as a step function of `as_of`) in
tables of the ledger's own database (in the ledger's schema on PostgreSQL, in
the ledger file on SQLite; docs/design.md "Read models"). The tables are
generated from `Exposure`'s fields, and their layout is part of the model's
binding: a new figure rebuilds the model.

- Bound to its log: beside its position (eventsourcing's tracking row) the
  model stores the chain hash there. Where the ledger's chain differs at that
  position (a restored backup, another ledger's file, a rewritten log) or has
  no link there, the rows are rebuilt, never served.
- Catching up reads the index rows after the position, refolds each buyer
  they touch (every buyer after a policy event) and writes the timelines, the
  position and the binding in one transaction, under the model's catch-up
  lock (one catch-up at a time per ledger): a crash leaves the old rows and
  position, and each event is reflected exactly once.
- Read your writes: a query catches up to the log position it reads when it
  starts, so it sees every event recorded before it; when another process
  is catching up, it waits for that catch-up (never longer) and then goes on
  from where that one stopped.
- A database that refuses the writes (read-only file or mount, a replica)
  leaves the rows in memory for this process, with one warning line.
- A fold of many buyers (a rebuild) is split: a forked process opens the log
  afresh and folds half of them, and sends their rows back; only from a
  process with no other thread, and a child that fails costs a fold here.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import pickle
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ledger.vocabulary.bulk import collector_paused
from ledger.vocabulary.events import Event, format_recorded
from projections.exposure import EXPOSURE_FIGURES, Exposure, ExposureValues
from projections.timeline import ExposureStep, Timeline, exposure_changes

log = logging.getLogger("creditledger")


class LogReader(Protocol):
    """What a read model reads of a ledger: the log's position and its chain hash, what changed
    after a position, and the streams. The service's `Ledger` is one; the read model never
    opens the store."""

    def log_position(self) -> tuple[int, str | None]: ...
    def chain_hash_at(self, position: int) -> str | None: ...
    def streams_touched_after(self, position: int) -> set[str | None]: ...
    def earliest_effective_after(self, recorded: str) -> dict[str | None, str]: ...
    def buyers(self) -> list[str]: ...
    def buyer_events(self, buyer: str, known_at: datetime.datetime | None = None) -> list[Event]: ...
    def policy_events(self) -> list[Event]: ...


class Bound(Protocol):
    """A model's binding as stored (ledger.store's `Binding`)."""

    @property
    def position(self) -> int: ...
    @property
    def chain_hash(self) -> str | None: ...
    @property
    def layout(self) -> str: ...


class Writer(Protocol):
    """A catch-up's open transaction, under the model's catch-up lock (ledger.store's `ModelWriter`)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def insert(self, table: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def binding(self) -> Bound | None: ...
    def bind(self, position: int, chain_hash: str | None, layout: str) -> None: ...


class Tables(Protocol):
    """Where a read model keeps its rows (ledger.store's `ModelTables`)."""

    lock_first: bool
    in_ledger: bool

    def create(self, statements: Sequence[str], tables: Sequence[str], layout: str, name: str) -> None: ...
    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def binding(self, name: str) -> Bound | None: ...
    def standing(self, name: str) -> tuple[int, Bound | None, str | None]: ...
    def standing_and_read(
        self, name: str, sql: str, params: Sequence[Any]
    ) -> tuple[tuple[int, Bound | None, str | None], list[tuple[Any, ...]]]: ...
    def write(self, name: str) -> AbstractContextManager[Writer]: ...
    def waiter(self) -> AbstractContextManager[Callable[[float], bool]]: ...
    def close(self) -> None: ...


NAME = "exposure_timeline"
# One column per field of Exposure: the figures are integers (minor units), the rest text.
_FIELDS = tuple(field.name for field in dataclasses.fields(Exposure))
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)
TABLES = ("exposure_buyers", "exposure_timeline")
_SCHEMA = (
    "CREATE TABLE exposure_buyers (buyer TEXT PRIMARY KEY)",
    "CREATE TABLE exposure_timeline (buyer TEXT NOT NULL, since TEXT NOT NULL, "
    + ", ".join(f'"{name}" ' + ("BIGINT NOT NULL" if name in EXPOSURE_FIGURES else "TEXT") for name in _FIELDS)
    + ", PRIMARY KEY (buyer, since))",
)
LAYOUT = hashlib.sha256("\n".join(_SCHEMA).encode()).hexdigest()[:16]
# For each buyer, the entry in force on the day: two index seeks per buyer (CROSS JOIN
# keeps SQLite's planner from scanning the timelines instead).
_BOOK_ON = (
    f"SELECT t.buyer, {', '.join(f't.{column}' for column in _COLUMNS.split(', '))} "  # noqa: S608 (constant names)
    "FROM exposure_buyers b CROSS JOIN exposure_timeline t WHERE t.buyer = b.buyer AND t.since = "
    "(SELECT max(since) FROM exposure_timeline x WHERE x.buyer = b.buyer AND x.since <= ?) ORDER BY b.buyer"
)
_BUYER_ON = (
    f"SELECT buyer, {_COLUMNS} FROM exposure_timeline "  # noqa: S608 (constant names)
    "WHERE buyer = ? AND since <= ? ORDER BY since DESC LIMIT 1"
)
_CATCH_UP_ATTEMPTS = 20
_WARNED: weakref.WeakSet[Any] = weakref.WeakSet()  # the ledgers whose read models were sent to memory
# From this many buyers on, a fold is split with a forked process (`ExposureModel._may_split`):
# on the two-core benchmark machine, with the other core busy with other work, a rebuild of 500
# buyers (100,000 events) took 0.85 of the time and a catch-up of 165 buyers 0.65; the child
# opens the ledger afresh, not worth it for a few buyers.
SPLIT_BUYERS = 100

Progress = Callable[[int, int], None]  # (buyers done, buyers to do)


class ExposureModel:
    """Every buyer's exposure timeline as known now, kept from the notification log.

    Another read model of per-buyer rows (ledger/readmodels/book.py) is a subclass: its own
    name, tables and layout, and its own `_fold` and `_write`; the catch-up is this one."""

    NAME = NAME
    TABLES: tuple[str, ...] = TABLES
    SCHEMA: tuple[str, ...] = _SCHEMA
    LAYOUT = LAYOUT

    def __init__(
        self, ledger: LogReader, tables: Tables, fallback: Callable[[], Tables] | None = None,
        reopen: Callable[[], AbstractContextManager[LogReader]] | None = None,
    ) -> None:
        self.ledger = ledger
        self._reopen = reopen  # the log opened afresh, in another process (None: it cannot be)
        self.tables = tables
        self._fallback = fallback
        self._lock = threading.RLock()  # one catch-up at a time in this process (serve's follower and requests)
        try:
            tables.create(self.SCHEMA, self.TABLES, self.LAYOUT, self.NAME)
        except PermissionError as problem:
            self._to_memory(problem)

    def close(self) -> None:
        self.tables.close()

    def _to_memory(self, problem: PermissionError) -> None:
        """Keep the rows in memory from now on (the ledger's database refuses them)."""
        if self._fallback is None:
            raise problem
        if self.ledger not in _WARNED:  # one line per ledger, whichever of its read models finds out first
            _WARNED.add(self.ledger)
            log.warning("warning: the read models cannot be written to the ledger's database (%s); "
                        "this process keeps them in memory", str(problem).splitlines()[0])
        self.tables, self._fallback = self._fallback(), None
        self.tables.create(self.SCHEMA, self.TABLES, self.LAYOUT, self.NAME)

    def position(self) -> int:
        """The log position the stored rows reflect (0: none)."""
        bound = self.tables.binding(self.NAME)
        return bound.position if bound is not None else 0

    def bound(self, binding: Bound | None) -> bool:
        """Whether stored rows with this binding belong to this log, as it is, in this layout."""
        return (binding is not None and binding.layout == self.LAYOUT
                and self.ledger.chain_hash_at(binding.position) == binding.chain_hash)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Fold what the log holds after the model's position (everything, when the rows are not
        bound to this log); returns the buyers refolded. Thread-safe."""
        return self._catch_up(progress, rebuild=False)

    def rebuild(self) -> int:
        """Fold every buyer again, whatever the binding says (after `verify` found a row altered)."""
        return self._catch_up(None, rebuild=True)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as known now: read with the check that they are current (one round trip on
        PostgreSQL); when they are not, catch up and read again."""
        if self.tables.in_ledger:
            (last, bound, linked), rows = self.tables.standing_and_read(self.NAME, sql, params)
            if bound is not None and bound.position >= last and bound.layout == self.LAYOUT and bound.chain_hash == linked:
                return rows
        self.catch_up()
        return self.tables.read(sql, params)

    def _catch_up(self, progress: Progress | None, *, rebuild: bool) -> int:
        # The log's last position at the query's start (it must see all of that), the model's
        # binding and the chain there, in one read: the whole cost of a query with nothing new,
        # and no lock taken for it (serve's requests read side by side).
        last, bound, linked = self._standing()
        if not rebuild and bound is not None and bound.position >= last and bound.layout == self.LAYOUT \
                and bound.chain_hash == linked:
            return 0
        with self._lock:
            try:
                return self._catch_up_once(progress, rebuild, last)
            except PermissionError as problem:
                self._to_memory(problem)
                return self._catch_up_once(progress, rebuild, last)

    def _catch_up_once(self, progress: Progress | None, rebuild: bool, last: int) -> int:
        for _attempt in range(_CATCH_UP_ATTEMPTS):
            tables = self.tables
            bound = tables.binding(self.NAME)
            if not rebuild and bound is not None and bound.position >= last and self.bound(bound):
                return 0
            if tables.lock_first:  # PostgreSQL: lock, then fold; the others wait for this catch-up
                with tables.write(self.NAME) as writer:
                    bound = writer.binding()
                    if not rebuild and bound is not None and bound.position >= last and self.bound(bound):
                        return 0  # another process caught up while this one waited
                    target = self.ledger.log_position()[0]
                    buyers, everyone = self._touched(bound, target, rebuild)
                    rows = self._fold(buyers, progress)
                    self._write(writer, rows, buyers, everyone, target, self.ledger.chain_hash_at(target))
                    return len(buyers)
            # SQLite: fold, then write under the write lock if nobody moved the model meanwhile
            target = self.ledger.log_position()[0]
            buyers, everyone = self._touched(bound, target, rebuild)
            rows = self._fold(buyers, progress)
            chain_hash = self.ledger.chain_hash_at(target)  # read before the lock: memory databases
            with tables.write(self.NAME) as writer:            # keep readers out while a writer holds it
                if writer.binding() != bound:
                    continue  # another catch-up committed first: start again from where it stopped
                self._write(writer, rows, buyers, everyone, target, chain_hash)
                return len(buyers)
        raise RuntimeError(f"the read model {self.NAME} kept moving; gave up after {_CATCH_UP_ATTEMPTS} catch-ups")

    def _standing(self) -> tuple[int, Bound | None, str | None]:
        """(the log's last position, the binding, the chain hash at the binding's position)."""
        if self.tables.in_ledger:
            return self.tables.standing(self.NAME)
        bound = self.tables.binding(self.NAME)  # in memory: the log is elsewhere
        return self.ledger.log_position()[0], bound, None if bound is None else self.ledger.chain_hash_at(bound.position)

    def _touched(self, bound: Bound | None, target: int, rebuild: bool) -> tuple[list[str], bool]:
        """The buyers to refold, and whether that is every buyer (the rows are replaced)."""
        if rebuild or bound is None or bound.position > target or not self.bound(bound):
            return self.ledger.buyers(), True
        touched = self.ledger.streams_touched_after(bound.position)
        if None in touched:
            return self.ledger.buyers(), True
        return sorted(b for b in touched if b is not None), False

    def _fold(self, buyers: list[str], progress: Progress | None) -> list[tuple[Any, ...]]:
        with collector_paused(len(buyers) * 100):  # the timelines' rows stay alive until written
            if not self._may_split(len(buyers)):
                return _fold_rows(self.ledger, buyers, progress, len(buyers))
            half = len(buyers) // 2
            theirs = self._fold_in_a_child(buyers[half:])
            try:
                rows = _fold_rows(self.ledger, buyers[:half], progress, len(buyers))
            except BaseException:
                theirs(abandon=True)
                raise
            rows += theirs(abandon=False)
            if progress is not None:
                progress(len(buyers), len(buyers))
            return rows

    def _may_split(self, buyers: int) -> bool:
        """Whether to fold half of the buyers in a forked process: many buyers, a second core, a
        log another process can open, and no other thread in this one (a fork copies the locks
        other threads hold: serve, a PostgreSQL pool's workers)."""
        return (self._reopen is not None and buyers >= SPLIT_BUYERS and hasattr(os, "fork")
                and (os.cpu_count() or 1) > 1 and threading.active_count() == 1
                and threading.current_thread() is threading.main_thread())

    def _fold_in_a_child(self, buyers: list[str]) -> Callable[..., list[tuple[Any, ...]]]:
        """Fold `buyers` in a forked process that opens the log afresh (never this process's
        connections) and sends the rows back pickled; returns the wait for them. A child that
        fails costs a fold of its buyers here; `abandon=True` ends it."""
        reopen = self._reopen
        assert reopen is not None
        last, first = self.ledger.log_position()
        source, sink = os.pipe()
        try:
            child = os.fork()
        except OSError as problem:  # no process to be had (memory, a process limit): fold them here
            os.close(source)
            os.close(sink)
            log.warning("warning: no process to fold half of the read model (%s); folding it here", problem)
            return lambda *, abandon: [] if abandon else _fold_rows(self.ledger, buyers, None, 0)
        if child == 0:  # pragma: no cover (the child; its rows are what the tests compare)
            code = 1
            try:
                os.close(source)
                with reopen() as ledger:
                    seen, seen_first = ledger.log_position()
                    if seen_first != first or seen < last:  # not this log (a private memory database)
                        raise RuntimeError("the child opened another log")
                    data = pickle.dumps(_fold_rows(ledger, buyers, None, 0), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(sink, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(sink)

        def rows(*, abandon: bool) -> list[tuple[Any, ...]]:
            if abandon:
                os.kill(child, signal.SIGKILL)
            with os.fdopen(source, "rb") as received:
                data = b"" if abandon else received.read()
            _, status = os.waitpid(child, 0)
            if abandon:
                return []
            if status != 0:
                log.warning("warning: the process folding half of the read model failed; folding it here")
                return _fold_rows(self.ledger, buyers, None, 0)
            folded: list[tuple[Any, ...]] = pickle.loads(data)  # noqa: S301 (our own child's rows)
            return folded

        return rows

    def _write(
        self, writer: Writer, rows: list[tuple[Any, ...]], buyers: list[str], everyone: bool, target: int,
        chain_hash: str | None,
    ) -> None:
        if everyone:
            writer.execute("DELETE FROM exposure_timeline")
            writer.execute("DELETE FROM exposure_buyers")
        else:
            for start in range(0, len(buyers), 500):
                chunk = buyers[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                writer.execute(f"DELETE FROM exposure_timeline WHERE buyer IN ({marks})", chunk)  # noqa: S608 (placeholders only)
                writer.execute(f"DELETE FROM exposure_buyers WHERE buyer IN ({marks})", chunk)  # noqa: S608 (placeholders only)
        writer.insert("exposure_timeline", rows)
        writer.insert("exposure_buyers", [(buyer,) for buyer in dict.fromkeys(row[0] for row in rows)])
        writer.bind(target, chain_hash, self.LAYOUT)

    def follow(self, stop: threading.Event, poll: float = 1.0, catch_up: Callable[[], object] | None = None) -> None:
        """Keep catching up until `stop` is set: after each write's notification on PostgreSQL
        (and at least every `poll` seconds), every `poll` seconds on SQLite. For `serve`'s
        background thread, so that a request seldom has anything left to catch up; it
        notices `stop` within half a second. `catch_up` (default: this model's) lets one
        follower keep every read model of the ledger."""
        with self.tables.waiter() as wait:
            due, notified = 0.0, True
            while not stop.is_set():
                if notified or time.monotonic() >= due:
                    try:
                        (catch_up or self.catch_up)()
                    except Exception as problem:  # a dropped connection must not end the follower
                        log.warning("warning: the read models' catch-up failed (%s); trying again", problem)
                    due = time.monotonic() + poll
                notified = wait(min(poll, 0.5))

    def book_on(self, day: datetime.date) -> list[tuple[str, Exposure]]:
        """Each registered buyer's exposure at the end of `day`, as known now, in buyer order."""
        return [(row[0], _exposure(row)) for row in self._read(_BOOK_ON, [day.isoformat()])]

    def buyer_on(self, buyer: str, day: datetime.date) -> Exposure | None:
        """One buyer's exposure at the end of `day`, as known now (None: not registered by then)."""
        rows = self._read(_BUYER_ON, [buyer, day.isoformat()])
        return _exposure(rows[0]) if rows else None

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
        timelines: dict[str, Timeline] = {}
        for row in self._read(f"SELECT buyer, since, {_COLUMNS} FROM exposure_timeline ORDER BY buyer, since"):  # noqa: S608 (constant names)
            timelines.setdefault(row[0], []).append(
                ExposureStep(datetime.date.fromisoformat(row[1]), _exposure((row[0], *row[2:]))))
        return timelines


def _fold_rows(ledger: LogReader, buyers: list[str], progress: Progress | None, total: int) -> list[tuple[Any, ...]]:
    """The rows of `buyers`, folded here; `progress` told of each done out of `total`."""
    policy = ledger.policy_events()
    rows: list[tuple[Any, ...]] = []
    for done, buyer in enumerate(buyers, 1):
        rows += _rows(buyer, exposure_changes(buyer, ledger.buyer_events(buyer), policy))
        if progress is not None:
            progress(done, total)
    return rows


def _rows(buyer: str, changes: list[tuple[datetime.date, ExposureValues]]) -> list[tuple[Any, ...]]:
    return [(buyer, since.isoformat(), *values) for since, values in changes]


def _exposure(row: Sequence[Any]) -> Exposure:
    return Exposure(**dict(zip(_FIELDS, row[1:], strict=True)))
