"""The SQLite backend: eventsourcing's SQLite recorder, plus `ledger_index` and `ledger_chain`
written in the same transaction, and the settings that select it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import DatabaseError, IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.store.chain import (
    ALREADY_CHAINED,
    CHAIN_BROKEN,
    CHAIN_COLUMNS,
    CHAIN_LOG_COLUMNS,
    CHECKPOINT_COLUMNS,
    GENESIS,
    UNCHAINED_SQL,
    ChainQueries,
    chain_existing,
    chain_links,
    checkpoint_row,
)
from ledger.store.index import INDEX_COLUMNS, RECORDED_BACKWARDS, BulkInsert, IndexRow, index_values
from ledger.vocabulary.errors import LedgerError

BULK_CACHE_KIB = 64 * 1024  # the page cache of a connection that has done a bulk write


def sqlite_environment(db_name: str) -> dict[str, str]:
    """eventsourcing settings for the SQLite database `db_name` (a path or a memory URI)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": db_name,
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "ledger.store.sqlite:LedgerSQLiteRecorder",
    }


class LedgerSQLiteRecorder(ChainQueries, SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder, plus `ledger_index` in the same transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS ledger_index ("
            "notification_id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
            "key TEXT UNIQUE, recorded TEXT NOT NULL, effective TEXT NOT NULL, "
            "type TEXT NOT NULL, buyer TEXT)",
            "CREATE INDEX IF NOT EXISTS ledger_index_recorded ON ledger_index (recorded)",
            "CREATE INDEX IF NOT EXISTS ledger_index_buyer ON ledger_index (buyer, notification_id)",
            "CREATE TABLE IF NOT EXISTS ledger_chain ("
            "notification_id INTEGER PRIMARY KEY, previous_id INTEGER NOT NULL, "
            "event_id TEXT NOT NULL, hash TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger_chain_log ("
            "at TEXT NOT NULL, events INTEGER NOT NULL, head_id INTEGER NOT NULL, head_hash TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger_checkpoint (notification_id INTEGER PRIMARY KEY, mac TEXT NOT NULL)",
        ]

    def chain_init(self, at: str) -> tuple[int, int, str]:
        """Chain a ledger with events but no chain, logged (see `chain_existing`); one transaction."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT EXISTS (SELECT 1 FROM ledger_chain)")
            if c.fetchone()[0]:
                raise LedgerError(ALREADY_CHAINED, field="db")

            def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
                c.execute(sql, list(params))
                return list(c.fetchall())

            def insert(links: list[tuple[int, int, str, str]]) -> None:
                c.executemany(f"INSERT INTO ledger_chain ({CHAIN_COLUMNS}) VALUES (?,?,?,?)", links)  # noqa: S608 (constant columns)
                if (checkpoint := checkpoint_row(links)) is not None:
                    c.execute(f"INSERT OR REPLACE INTO ledger_checkpoint ({CHECKPOINT_COLUMNS}) VALUES (?,?)", checkpoint)  # noqa: S608 (constant columns)

            done = chain_existing(fetch, insert, self._sql(UNCHAINED_SQL.replace("{notification}", "rowid")))
            c.execute("SELECT notification_id, hash FROM ledger_chain ORDER BY notification_id DESC LIMIT 1")
            last = c.fetchone()
            head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
            c.execute(f"INSERT INTO ledger_chain_log ({CHAIN_LOG_COLUMNS}) VALUES (?,?,?,?)", [at, done, *head])  # noqa: S608 (constant columns)
            return done, *head

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = self._insert_stored(c, stored_events)
        rows: Sequence[IndexRow] = kwargs["index"]
        assert ids is not None and len(ids) == len(rows)
        # Checked here, inside the write transaction, so that no other writer
        # can slip in between; a per-row trigger cost as much as the insert.
        c.execute("SELECT max(recorded) FROM ledger_index")
        latest = c.fetchone()[0]
        stamps = [row.recorded for row in rows]
        if (latest is not None and stamps and stamps[0] < latest) or stamps != sorted(stamps):
            raise IntegrityError(RECORDED_BACKWARDS)
        c.executemany(f"INSERT INTO ledger_index ({INDEX_COLUMNS}) VALUES (?,?,?,?,?,?,?)", index_values(ids, rows))  # noqa: S608 (constant columns)
        # The chain's last row must be the event just before this write (the
        # write lock is held); anything else is a ledger edited behind our back.
        c.execute("SELECT notification_id, hash FROM ledger_chain ORDER BY notification_id DESC LIMIT 1")
        last = c.fetchone()
        c.execute(f"SELECT max(rowid) FROM {self.events_table_name} WHERE rowid < ?", [ids[0]])  # noqa: S608 (constant name)
        before = c.fetchone()[0] or 0
        previous_id, previous_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        if previous_id != before:
            raise DatabaseError(CHAIN_BROKEN)
        links = chain_links(previous_id, previous_hash, ids, stored_events, rows)
        c.executemany(f"INSERT INTO ledger_chain ({CHAIN_COLUMNS}) VALUES (?,?,?,?)", links)  # noqa: S608 (constant columns)
        if (checkpoint := checkpoint_row(links)) is not None:
            c.execute(f"INSERT OR REPLACE INTO ledger_checkpoint ({CHECKPOINT_COLUMNS}) VALUES (?,?)", checkpoint)  # noqa: S608 (constant columns)
        return ids

    def _insert_stored(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The stored events in one executemany, instead of the library's execute per event
        (for its lastrowid). The rowids are given: the next ones after the last one read, which
        stay ours because SQLite refuses a write on a snapshot another writer has moved past."""
        c.execute(f"SELECT coalesce(max(rowid), 0) FROM {self.events_table_name}")  # noqa: S608 (constant name)
        first = int(c.fetchone()[0]) + 1
        ids = list(range(first, first + len(stored_events)))
        c.executemany(
            f"INSERT INTO {self.events_table_name} (rowid, originator_id, originator_version, topic, state) "  # noqa: S608 (constant name)
            "VALUES (?,?,?,?,?)",
            [
                (n, s.originator_id.hex if isinstance(s.originator_id, uuid.UUID) else s.originator_id,
                 s.originator_version, s.topic, s.state)
                for n, s in zip(ids, stored_events, strict=True)
            ],
        )
        return ids

    @contextlib.contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        """One write transaction (SQLite's write lock held throughout) for many batches."""
        with self.datastore.transaction(commit=True) as cursor:
            # A bulk write's inserts land all over the index b-trees (random ids and keys):
            # with SQLite's default 2 MiB page cache they evict each other's pages.
            cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            cursor.execute("SELECT count(*) FROM ledger_index")
            held = int(cursor.fetchone()[0])

            def write(stored_events: Sequence[StoredEvent], rows: Sequence[IndexRow]) -> None:
                self._insert_events(cursor, stored_events, index=rows)

            def head() -> tuple[int, str]:
                cursor.execute("SELECT notification_id, hash FROM ledger_chain ORDER BY notification_id DESC LIMIT 1")
                last = cursor.fetchone()
                return (int(last[0]), str(last[1])) if last else (0, GENESIS)

            yield BulkInsert(held, write, head)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(sql), list(params))
            return list(c.fetchall())
