"""Opening a ledger: a `Location` turned into eventsourcing settings, and the store opened there.

`memory` (or `:memory:`): an in-memory SQLite database, private to this
process; `postgresql://user@host:port/db?schema=name`: PostgreSQL; anything
else: the path of a SQLite file (ledger/vocabulary/location.py). The
PostgreSQL backend is imported only for a PostgreSQL location.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from eventsourcing.persistence import OperationalError
from eventsourcing.sqlite import SQLiteDatastore

from ledger.store.application import LedgerStore
from ledger.store.models import ModelTables, SQLiteModelTables
from ledger.store.sqlite import sqlite_environment
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location

OPEN_ATTEMPTS = 10
_memory_counter = iter(range(1, 1 << 62))


def store_environment(location: str) -> dict[str, str]:
    """eventsourcing settings for a ledger location (refused: a bad URL, a folder)."""
    where = Location.parse(location)
    if where.kind == "memory":
        return sqlite_environment(f"file:creditledger-{os.getpid()}-{next(_memory_counter)}?mode=memory&cache=shared")
    if where.kind == "postgres":
        from ledger.store.postgres import postgres_environment

        return postgres_environment(where)
    if Path(location).is_dir():
        raise LedgerError(f"{location} is a directory, not a ledger file", field="db")
    return sqlite_environment(location)


def open_store(location: str) -> LedgerStore:
    """Open (creating tables if needed) the ledger store at `location`.

    Several processes may open a new ledger at once: a locked SQLite file
    (switching to WAL, creating tables) is retried a bounded number of times.
    """
    env = store_environment(location)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        from ledger.store.postgres import creation_lock, refuses_writes

        try:
            with creation_lock(env, lambda message: _redact(message, location, env)):
                return _construct(location, env)
        except LedgerError as problem:
            # A user who may only read, or a read-only server (a replica): an existing ledger
            # is opened as it is, without creating or updating anything, to be read and verified.
            if not refuses_writes(problem.__context__) or not ledger_exists(location):
                raise
            return _construct(location, {**env, "CREATE_TABLE": "no"})
    return _construct(location, env)


def model_tables(store: LedgerStore) -> ModelTables:
    """The read models' tables in the ledger's own database (ledger/store/models.py)."""
    datastore = getattr(store.recorder, "datastore", None)
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteModelTables(datastore)
    from ledger.store.postgres import PostgresModelTables

    return PostgresModelTables(datastore)


def ledger_exists(location: str) -> bool:
    """Whether a ledger is already at `location` (never for `memory`)."""
    env = store_environment(location)
    kind = Location.parse(location).kind
    if kind == "memory":
        return False
    if kind == "sqlite":
        return Path(location).exists()
    from ledger.store.postgres import has_ledger

    return has_ledger(env, lambda message: _redact(message, location, env))


def _construct(location: str, env: dict[str, str]) -> LedgerStore:
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return LedgerStore(env=env)
        except (OperationalError, sqlite3.OperationalError) as e:
            if "locked" not in str(e) or attempt == OPEN_ATTEMPTS - 1:
                raise LedgerError(f"cannot open the ledger: {_redact(str(e), location, env)}", field="db") from None
            time.sleep(0.05 * (attempt + 1))
        except LedgerError:
            raise
        except Exception as e:  # the driver's own words, without credentials
            raise LedgerError(f"cannot open the ledger: {_redact(str(e), location, env)}", field="db") from None
    raise AssertionError("unreachable")


def _redact(message: str, location: str, env: dict[str, str]) -> str:
    """A driver's message without the location's secrets, nor the password actually sent
    (which may come from PGPASSWORD)."""
    return Location.parse(location).redact(message, env.get("POSTGRES_PASSWORD", ""))
