"""Read models' tables in the ledger's own database (docs/design.md "Read models").

A read model (ledger/readmodels/) keeps its rows beside the events: in the
ledger's schema on PostgreSQL, in the ledger file on SQLite (the in-memory
database of a `memory` ledger). Its position in the log is kept by
eventsourcing's tracking recorder (`Tracking`, `insert_tracking`,
`max_tracking_id`) and its binding (the chain hash at that position and the
version of its table layout) in `ledger_read_models`: both written by
`ModelWriter.bind`, inside the transaction that writes the rows.

`ModelTables.write` is a catch-up's transaction, under the catch-up lock of
the model: on PostgreSQL an advisory lock (taken before the fold, so one
process folds and the others wait for it, `lock_first`); on SQLite the write
lock (BEGIN IMMEDIATE, taken after the fold: an in-memory ledger's readers
would wait on a held writer). A database that refuses the write (a read-only
file or mount, a user without the right, a read-only replica) raises
`PermissionError`; the read model then keeps its rows in `memory_tables()`.

The read model writes its SQL once, with `?` placeholders and bare table
names: each backend puts in its placeholder and its schema.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import PersistenceError, Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from ledger.store.chain import GENESIS

BINDING_TABLE = "ledger_read_models"
_memory_counter = itertools.count(1)


@dataclass(frozen=True)
class Binding:
    """Where a read model stands: its log position, the chain hash there (None: no chain),
    and the version of its table layout."""

    position: int
    chain_hash: str | None
    layout: str


# The log's last position, the model's tracked position and binding, the chain's hash there.
STANDING_SQL = (
    "SELECT (SELECT max(notification_id) FROM ledger_index), t.notification_id, b.chain_hash, b.layout, "  # noqa: S608
    "(SELECT hash FROM ledger_chain c WHERE c.notification_id = t.notification_id) FROM (SELECT 1 AS one) o "
    f"LEFT JOIN tracking t ON t.application_name = ? LEFT JOIN {BINDING_TABLE} b ON b.name = ?"
)


def standing_of(row: Sequence[Any]) -> tuple[int, Binding | None, str | None]:
    last, position, chain_hash, layout, linked = row
    if position is None or layout is None:
        return int(last or 0), None, None
    return int(last or 0), Binding(int(position), chain_hash, str(layout)), GENESIS if position == 0 else linked


class ModelWriter:
    """The catch-up's open transaction: statements on the model's tables, then `bind`."""

    def __init__(self, tables: ModelTables, cursor: Any, name: str) -> None:
        self.tables, self.cursor, self.name = tables, cursor, name
        self.TRACKING_TABLE = tables.TRACKING_TABLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self.tables.sql(sql), list(params))

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows read inside the catch-up's transaction (what the model held before this write)."""
        self.cursor.execute(self.tables.sql(sql), list(params))
        return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in self.cursor.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self.tables.sql(sql), rows)

    def insert(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (every column, in order) into one of the model's tables."""
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            self.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 (placeholders only)

    def binding(self) -> Binding | None:
        """The binding as committed, read under the lock."""
        return self.tables.read_binding(self.cursor, self.name)

    def bind(self, position: int, chain_hash: str | None, layout: str) -> None:
        """Record the model's new position (eventsourcing's tracking row) and its binding."""
        # The library's single-row tracking only moves forward; a rebuild starts again.
        self.execute(f"DELETE FROM {self.TRACKING_TABLE} WHERE application_name = ?", [self.name])  # noqa: S608 (constant name)
        self.tables.recorder._insert_tracking(self.cursor, Tracking(self.name, position))
        self.execute(f"DELETE FROM {BINDING_TABLE} WHERE name = ?", [self.name])  # noqa: S608 (constant name)
        self.execute(f"INSERT INTO {BINDING_TABLE} VALUES (?, ?, ?)", [self.name, chain_hash, layout])  # noqa: S608 (constant name)


class ModelTables:
    """The tables of the read models in one database (see module docstring)."""

    lock_first = False
    in_ledger = True
    placeholder = "?"
    TRACKING_TABLE = "tracking"
    recorder: Any

    def __init__(self) -> None:
        self._qualify: re.Pattern[str] | None = None

    def sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    def create(self, statements: Sequence[str], tables: Sequence[str], layout: str, name: str) -> None:
        """Create the model's tables; tables of another layout are dropped first (their rows
        are rebuilt). Raises PermissionError where nothing can be written."""
        with self._guard():
            binding = self.binding(name) if self._has_tables() else None
            if binding is not None and binding.layout == layout:
                return
            self.recorder.create_table()
            with self.write(name) as writer:
                again = writer.binding()  # another process may have made them meanwhile
                if again is not None and again.layout == layout:
                    return
                for table in tables:
                    writer.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in statements:
                    writer.execute(statement)
                writer.execute(f"DELETE FROM {BINDING_TABLE} WHERE name = ?", [name])  # noqa: S608 (constant name)

    def _guard(self) -> contextlib.AbstractContextManager[None]:
        """Around a write: a refusal to write (no right, a read-only file or server) becomes PermissionError."""
        raise NotImplementedError

    def _has_tables(self) -> bool:
        """Whether the tracking and binding tables exist yet."""
        raise NotImplementedError

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def binding(self, name: str) -> Binding | None:
        raise NotImplementedError

    def read_binding(self, cursor: Any, name: str) -> Binding | None:
        cursor.execute(self.sql(
            f"SELECT t.notification_id, b.chain_hash, b.layout FROM {self.TRACKING_TABLE} t "  # noqa: S608 (constant names)
            f"JOIN {BINDING_TABLE} b ON b.name = t.application_name WHERE t.application_name = ?"), [name])
        row = cursor.fetchone()
        if row is None:
            return None
        values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        return Binding(int(values[0]), values[1], str(values[2]))

    def standing(self, name: str) -> tuple[int, Binding | None, str | None]:
        """(the log's last position, the model's binding, the ledger's chain hash at the binding's
        position): what a query checks before serving the rows, in one statement (on PostgreSQL,
        one round trip instead of four per query)."""
        return self.standing_and_read(name, "", ())[0]

    def standing_and_read(
        self, name: str, sql: str, params: Sequence[Any]
    ) -> tuple[tuple[int, Binding | None, str | None], list[tuple[Any, ...]]]:
        """`standing`, then the rows of `sql` (none for an empty `sql`): the rows are as new as
        the standing or newer. On PostgreSQL both go in one round trip."""
        standing = standing_of(self.read(STANDING_SQL.replace("tracking", self.TRACKING_TABLE, 1), [name, name])[0])
        return standing, self.read(sql, params) if sql else []

    def write(self, name: str) -> contextlib.AbstractContextManager[ModelWriter]:
        raise NotImplementedError

    def waiter(self) -> contextlib.AbstractContextManager[Callable[[float], bool]]:
        """`wait(timeout)`: True when the ledger has new events, False after `timeout` seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Nothing of its own to close: the store's connections are the store's."""


# ---------------------------------------------------------------- SQLite

class _SQLiteModelRecorder(SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {BINDING_TABLE} (name TEXT PRIMARY KEY, chain_hash TEXT, layout TEXT NOT NULL)",
        ]


_UNWRITABLE = ("readonly", "read-only", "unable to open", "disk i/o", "permission")


class SQLiteModelTables(ModelTables):
    """The read models' tables in a SQLite database: the ledger file, or private memory."""

    def __init__(self, datastore: SQLiteDatastore, *, in_ledger: bool = True) -> None:
        super().__init__()
        self.datastore, self.in_ledger = datastore, in_ledger
        self.recorder = _SQLiteModelRecorder(datastore)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """A refused write becomes PermissionError; anything else stays what it is."""
        try:
            yield
        except (sqlite3.Error, PersistenceError) as e:
            if any(word in str(e).lower() for word in _UNWRITABLE):
                raise PermissionError(str(e)) from e
            raise

    def _has_tables(self) -> bool:
        rows = self.read("SELECT count(*) FROM sqlite_master WHERE name IN (?, ?)", [BINDING_TABLE, self.TRACKING_TABLE])
        return bool(rows and rows[0][0] == 2)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql(sql), list(params))
            return [tuple(row) for row in c.fetchall()]

    def binding(self, name: str) -> Binding | None:
        with self.datastore.transaction(commit=False) as c:
            return self.read_binding(c, name)

    @contextlib.contextmanager
    def write(self, name: str) -> Iterator[ModelWriter]:
        with self._guard(), self.datastore.get_connection(commit=True) as conn:
            cursor: SQLiteCursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield ModelWriter(self, cursor, name)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextlib.contextmanager
    def waiter(self) -> Iterator[Callable[[float], bool]]:
        """SQLite has no notifications: a follower polls."""
        def wait(timeout: float) -> bool:
            time.sleep(timeout)
            return False

        yield wait

    def close(self) -> None:
        if not self.in_ledger:
            self.datastore.close()


def memory_tables() -> ModelTables:
    """Read-model tables in memory, private to this process: for a ledger whose database
    refuses them, or a check that must not trust the stored ones."""
    name = f"file:creditledger-models-{next(_memory_counter)}?mode=memory&cache=shared"
    return SQLiteModelTables(SQLiteDatastore(name, lock_timeout=30), in_ledger=False)
