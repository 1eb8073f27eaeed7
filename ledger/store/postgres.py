"""The PostgreSQL backend: eventsourcing's PostgreSQL recorder, plus `ledger_index` and
`ledger_chain` written in the same transaction, the settings that select it, and the
connections made outside the recorder (does a ledger exist, the lock held while one is created).

Imported only when a PostgreSQL ledger is opened: a SQLite ledger never loads psycopg.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL

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
from ledger.vocabulary.location import Location

_SCHEMA_LOCK = 727_001_001  # advisory lock key for creating a ledger's tables on PostgreSQL
Redact = Callable[[str], str]


def postgres_environment(location: Location) -> dict[str, str]:
    """eventsourcing settings for a PostgreSQL location (user and password default to PGUSER and PGPASSWORD)."""
    server = location.server
    assert server is not None
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": server.database,
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user or unquote(os.environ.get("PGUSER", "postgres")),
        "POSTGRES_PASSWORD": server.password or unquote(os.environ.get("PGPASSWORD", "")),
        "POSTGRES_SCHEMA": server.schema,
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "ledger.store.postgres:LedgerPostgresRecorder",
    }


def _create_statements(schema: str, events_table_name: str) -> list[str]:
    """`ledger_index` and `ledger_chain`, and the triggers that guard them."""
    return [
        f"CREATE TABLE IF NOT EXISTS {schema}.ledger_index ("
        "notification_id bigint PRIMARY KEY, event_id text NOT NULL UNIQUE, "
        "key text UNIQUE, recorded text NOT NULL, effective text NOT NULL, "
        "type text NOT NULL, buyer text)",
        f"CREATE INDEX IF NOT EXISTS ledger_index_recorded ON {schema}.ledger_index (recorded)",
        f"CREATE INDEX IF NOT EXISTS ledger_index_buyer ON {schema}.ledger_index (buyer, notification_id)",
        f"CREATE OR REPLACE FUNCTION {schema}.ledger_index_recorded_forward() RETURNS trigger "  # noqa: S608 (checked identifier)
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.recorded < (SELECT max(recorded) FROM {schema}.ledger_index) THEN "
        f"RAISE EXCEPTION '{RECORDED_BACKWARDS}' USING ERRCODE = 'check_violation'; "
        "END IF; RETURN NEW; END $$",
        f"CREATE OR REPLACE TRIGGER ledger_index_recorded_forward BEFORE INSERT ON {schema}.ledger_index "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.ledger_index_recorded_forward()",
        f"CREATE TABLE IF NOT EXISTS {schema}.ledger_chain ("
        "notification_id bigint PRIMARY KEY, previous_id bigint NOT NULL, "
        "event_id text NOT NULL, hash text NOT NULL)",
        # A chain row must follow the chain's last row and the event just
        # before it; raised in the database so that the library's error
        # path rolls the whole write back.
        f"CREATE OR REPLACE FUNCTION {schema}.ledger_chain_follows() RETURNS trigger "  # noqa: S608 (checked identifier)
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.previous_id <> coalesce((SELECT max(notification_id) FROM {schema}.ledger_chain), 0) "
        f"OR NEW.previous_id <> coalesce((SELECT max(notification_id) FROM {schema}.{events_table_name} "
        "WHERE notification_id < NEW.notification_id), 0) THEN "
        f"RAISE EXCEPTION '{CHAIN_BROKEN}' USING ERRCODE = 'data_corrupted'; "
        "END IF; RETURN NEW; END $$",
        f"CREATE OR REPLACE TRIGGER ledger_chain_follows BEFORE INSERT ON {schema}.ledger_chain "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.ledger_chain_follows()",
        f"CREATE TABLE IF NOT EXISTS {schema}.ledger_chain_log ("
        "at text NOT NULL, events bigint NOT NULL, head_id bigint NOT NULL, head_hash text NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {schema}.ledger_checkpoint (notification_id bigint PRIMARY KEY, mac text NOT NULL)",
    ]


class LedgerPostgresRecorder(ChainQueries, PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder, plus `ledger_index`, same transaction."""

    placeholder = "%s"
    notification_column = "notification_id"

    def stream_key(self, stream_id: uuid.UUID) -> Any:
        return stream_id

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        for statement in _create_statements(self.datastore.schema, self.events_table_name):
            self.sql_create_statements.append(SQL(statement))  # type: ignore[arg-type]

    def chain_init(self, at: str) -> tuple[int, int, str]:
        """Chain a ledger with events but no chain, logged (see `chain_existing`); one transaction,
        the events table locked as by a write."""
        schema = self.datastore.schema
        with self.datastore.transaction(commit=True) as curs:
            for statement in self.lock_table_statements:
                curs.execute(statement)
            curs.execute(SQL(f"SELECT EXISTS (SELECT 1 FROM {schema}.ledger_chain) AS chained"))  # noqa: S608 (checked identifier)
            found = curs.fetchone()
            if found is None or found["chained"]:
                raise LedgerError(ALREADY_CHAINED, field="db")

            def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
                curs.execute(SQL(sql), list(params))
                return [tuple(row.values()) for row in curs.fetchall()]

            def insert(links: list[tuple[int, int, str, str]]) -> None:
                curs.executemany(
                    SQL(f"INSERT INTO {schema}.ledger_chain ({CHAIN_COLUMNS}) VALUES (%s,%s,%s,%s)"), links  # noqa: S608 (checked identifier)
                )
                self._checkpoint(curs, links)

            done = chain_existing(fetch, insert, self._sql(UNCHAINED_SQL.replace("{notification}", "notification_id"), schema))
            head = self._head(curs)
            curs.execute(SQL(f"INSERT INTO {schema}.ledger_chain_log ({CHAIN_LOG_COLUMNS}) VALUES (%s,%s,%s,%s)"),  # noqa: S608 (checked identifier)
                         [at, done, *head])
            return done, *head

    def _head(self, curs: Any) -> tuple[int, str]:
        curs.execute(SQL(f"SELECT notification_id, hash FROM {self.datastore.schema}.ledger_chain "  # noqa: S608 (checked identifier)
                         "ORDER BY notification_id DESC LIMIT 1"))
        last = curs.fetchone()
        return (int(last["notification_id"]), str(last["hash"])) if last else (0, GENESIS)

    def _checkpoint(self, curs: Any, links: Sequence[tuple[int, int, str, str]]) -> None:
        if (checkpoint := checkpoint_row(links)) is not None:
            curs.execute(SQL(f"INSERT INTO {self.datastore.schema}.ledger_checkpoint ({CHECKPOINT_COLUMNS}) "  # noqa: S608 (checked identifier)
                             "VALUES (%s,%s) ON CONFLICT (notification_id) DO UPDATE SET mac = EXCLUDED.mac"), checkpoint)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        """One plain transaction instead of the library's pipeline: in psycopg's pipeline
        mode a write of a few thousand events now and then hung at the sync, or read an
        index INSERT's status as the result of the check below, and so failed."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs["index"]
        assert ids is not None and len(ids) == len(rows)
        schema = self.datastore.schema
        curs.executemany(
            SQL(f"INSERT INTO {schema}.ledger_index ({INDEX_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s)"),  # noqa: S608 (checked identifier)
            index_values(ids, rows),
        )
        # The table lock is held: the chain's last row is the one just before
        # this write, unless the ledger was edited (the trigger refuses then).
        previous_id, previous_hash = self._head(curs)
        links = chain_links(previous_id, previous_hash, ids, stored_events, rows)
        curs.executemany(
            SQL(f"INSERT INTO {schema}.ledger_chain ({CHAIN_COLUMNS}) VALUES (%s,%s,%s,%s)"),  # noqa: S608 (checked identifier)
            links,
        )
        self._checkpoint(curs, links)
        # Fetch once more so that a refused index row raises here, inside
        # the library's handler, and the whole transaction rolls back.
        curs.execute(SQL("SELECT 1"))
        curs.fetchone()
        return ids

    @contextlib.contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        """One write transaction for many batches, the table locked before anything is counted,
        so that no writer slips in between the count and the writes."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            curs.execute(SQL(f"SELECT count(*) AS n FROM {self.datastore.schema}.ledger_index"))  # noqa: S608 (checked identifier)
            counted = curs.fetchone()
            assert counted is not None

            def write(stored_events: Sequence[StoredEvent], rows: Sequence[IndexRow]) -> None:
                self._insert_stored_events(curs, stored_events)
                self._fetch_ids_after_insert_events(curs, stored_events, index=rows)

            yield BulkInsert(int(counted["n"]), write)

    def server_clock(self) -> datetime.datetime:
        """The database server's clock: every writer of a PostgreSQL ledger stamps by this one clock,
        so that one process with a wrong clock cannot stamp the future."""
        moment = self._fetch("SELECT clock_timestamp()", [])[0][0]
        assert isinstance(moment, datetime.datetime)
        return moment

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        sql = self._sql(sql, self.datastore.schema)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL(sql), list(params))
            return [tuple(row.values()) for row in curs.fetchall()]


def _connect(env: dict[str, str]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=5, autocommit=True,
    )


def has_ledger(env: dict[str, str], redact: Redact) -> bool:
    """Whether the schema of `env` holds a ledger."""
    try:
        with _connect(env) as conn:
            row = conn.execute("SELECT to_regclass(%s)", [f"{env['POSTGRES_SCHEMA']}.ledger_index"]).fetchone()
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach PostgreSQL: {redact(str(e))}", field="db") from None
    return row is not None and row[0] is not None


@contextlib.contextmanager
def creation_lock(env: dict[str, str], redact: Redact) -> Iterator[None]:
    """Create the schema, and hold a lock while the tables, types and trigger are made.

    Processes opening one ledger at once would otherwise race on CREATE TYPE
    and CREATE OR REPLACE ("tuple concurrently updated", duplicate keys).
    """
    try:
        conn = _connect(env)
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach PostgreSQL: {redact(str(e))}", field="db") from None
    with conn:
        conn.execute(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})")
        try:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {env['POSTGRES_SCHEMA']}")
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")
