"""The PostgreSQL backend: eventsourcing's PostgreSQL recorder, plus `ledger_index` and
`ledger_chain` written in the same transaction, the settings that select it, and the
connections made outside the recorder (does a ledger exist, the lock held while one is created).

Imported only when a PostgreSQL ledger is opened: a SQLite ledger never loads psycopg.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

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
from ledger.store.models import BINDING_TABLE, STANDING_SQL, Binding, ModelTables, ModelWriter, standing_of
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location

STATEMENT_TIMEOUT_S = 600  # no statement of the ledger takes minutes; a stuck one ends
_SCHEMA_LOCK = 727_001_001  # advisory lock key for creating a ledger's tables on PostgreSQL
_WRITE_TURN = 727_001_003  # advisory lock key (with the hash of the schema) of a write taking its turn
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
        # eventsourcing's default of 5 s ended a long import under load, between two batches;
        # a catch-up lifts it for its own transaction (`PostgresModelTables.write`).
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": os.environ.get("CREDITLEDGER_PG_IDLE_TIMEOUT", "300"),
        **_pool_settings(),
        "APPLICATION_RECORDER_TOPIC": "ledger.store.postgres:LedgerPostgresRecorder",
    }


def _pool_settings() -> dict[str, str]:
    """The pool of each process (CREDITLEDGER_PG_POOL_SIZE, default 5, and _OVERFLOW, default 10,
    opened when busy). At least two connections: a read-model catch-up holds one while its fold
    reads through another."""
    try:
        size = max(1, int(os.environ.get("CREDITLEDGER_PG_POOL_SIZE", "5")))
        overflow = max(2 - size, int(os.environ.get("CREDITLEDGER_PG_POOL_OVERFLOW", "10")))
    except ValueError:
        raise LedgerError("CREDITLEDGER_PG_POOL_SIZE and CREDITLEDGER_PG_POOL_OVERFLOW must be whole numbers",
                          field="db") from None
    return {"POSTGRES_POOL_SIZE": str(size), "POSTGRES_MAX_OVERFLOW": str(overflow)}


def _create_statements(schema: str, events_table_name: str) -> list[str]:
    """`ledger_index` and `ledger_chain`, and the triggers that guard them."""
    return [
        f"CREATE TABLE IF NOT EXISTS {schema}.ledger_index ("
        "notification_id bigint PRIMARY KEY, event_id text NOT NULL UNIQUE, "
        "key text UNIQUE, recorded text NOT NULL, effective text NOT NULL, "
        "type text NOT NULL, buyer text)",
        f"CREATE INDEX IF NOT EXISTS ledger_index_recorded ON {schema}.ledger_index (recorded)",
        f"CREATE INDEX IF NOT EXISTS ledger_index_buyer ON {schema}.ledger_index (buyer, notification_id)",
        # The policy stream's last event, asked by every query: without it the planner walks the
        # whole log backwards for the few policy events at its start (6 ms at 30,000 events).
        f"CREATE INDEX IF NOT EXISTS ledger_index_policy ON {schema}.ledger_index (notification_id) WHERE buyer IS NULL",
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
        # Session settings of every pooled connection, before the library opens the pool:
        # a statement stuck on a lock or a runaway query ends instead of holding the ledger.
        connect = datastore.pool.kwargs
        if isinstance(connect, dict):
            connect.setdefault("options", f"-c statement_timeout={STATEMENT_TIMEOUT_S}s")
        super().__init__(datastore, **kwargs)
        for statement in _create_statements(self.datastore.schema, self.events_table_name):
            self.sql_create_statements.append(SQL(statement))  # type: ignore[arg-type]
        self._turn = threading.local()  # whether this thread's write holds the turn

    @contextlib.contextmanager
    def write_turn(self) -> Iterator[None]:
        """Every other write of the ledger held off from before this thread's write is stamped
        until it commits, so that it cannot lose the race again: under a stream of small
        appends a large import lost every race (they committed while it was checked, with
        later stamps). The turn is an advisory lock held by a session of its own; every write
        transaction takes it shared (`_wait_for_turn`), so it waits the writes under way out
        and holds the new ones until it ends. Either wait is bounded by the statement timeout
        (STATEMENT_TIMEOUT_S), not the lock timeout: a write waits out an import of minutes."""
        key = [_WRITE_TURN, self.datastore.schema]
        with self.datastore.get_connection() as conn:  # autocommit: the lock outlives statements, not a transaction
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
            self._turn.held = True
            try:
                yield
            finally:
                self._turn.held = False
                with contextlib.suppress(psycopg.Error):  # a lost session has released it already
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)

    def _wait_for_turn(self, curs: Any) -> None:
        """A write transaction's first statement: wait while another write holds the turn."""
        if not getattr(self._turn, "held", False):
            curs.execute(SQL("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))"),
                         [_WRITE_TURN, self.datastore.schema])

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

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        """Write once more after a dropped connection, unless the write's first event is found
        recorded (the commit went through before the connection dropped): keyed or not, a
        write is then recorded exactly once."""
        try:
            return self._insert_once(stored_events, **kwargs)
        except (InterfaceError, OperationalError) as problem:
            if not dropped(problem):
                raise
            replace_dropped(self.datastore)
        rows: Sequence[IndexRow] = kwargs["index"]
        found = self.positions([row.event_id for row in rows])
        if rows and rows[0].event_id in found:
            return [found[row.event_id] for row in rows]
        return self._insert_once(stored_events, **kwargs)

    def _insert_once(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        """One plain transaction instead of the library's pipeline: in psycopg's pipeline
        mode a write of a few thousand events now and then hung at the sync, or read an
        index INSERT's status as the result of the check below, and so failed."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._wait_for_turn(curs)
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
        curs.execute(SQL("NOTIFY {0}").format(Identifier(notify_channel(schema))))  # sent at commit, to followers
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
            self._wait_for_turn(curs)
            self._lock_table(curs)
            curs.execute(SQL(f"SELECT count(*) AS n FROM {self.datastore.schema}.ledger_index"))  # noqa: S608 (checked identifier)
            counted = curs.fetchone()
            assert counted is not None
            if not counted["n"]:
                # Empty: the ids start at 1 again, whatever a rolled-back write drew from the sequence
                # (a sequence does not roll back), so that a verified ledger's log re-imported here
                # gets the ids its chain was hashed with.
                curs.execute(SQL("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), 1, false)"),
                             [f"{self.datastore.schema}.{self.events_table_name}"])

            def write(stored_events: Sequence[StoredEvent], rows: Sequence[IndexRow]) -> None:
                self._insert_stored_events(curs, stored_events)
                self._fetch_ids_after_insert_events(curs, stored_events, index=rows)

            def head() -> tuple[int, str]:
                curs.execute(SQL(f"SELECT notification_id, hash FROM {self.datastore.schema}.ledger_chain "  # noqa: S608 (checked identifier)
                                 "ORDER BY notification_id DESC LIMIT 1"))
                last = curs.fetchone()
                return (int(last["notification_id"]), str(last["hash"])) if last else (0, GENESIS)

            yield BulkInsert(int(counted["n"]), write, head)

    def server_clock(self) -> datetime.datetime:
        """The database server's clock: every writer of a PostgreSQL ledger stamps by this one clock,
        so that one process with a wrong clock cannot stamp the future."""
        moment = self._fetch("SELECT clock_timestamp()", [])[0][0]
        assert isinstance(moment, datetime.datetime)
        return moment

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A read, asked once more after a dropped connection."""
        try:
            return self._fetch_once(sql, params)
        except (InterfaceError, OperationalError) as problem:
            if not dropped(problem):
                raise
            replace_dropped(self.datastore)
        return self._fetch_once(sql, params)

    def _fetch_once(self, sql: str, params: Sequence[Any]) -> list[Any]:
        sql = self._sql(sql, self.datastore.schema)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL(sql), list(params))
            return [tuple(row.values()) for row in curs.fetchall()]


def dropped(problem: BaseException) -> bool:
    """Whether an error is a lost connection (the server closed it, restarted, or ended an
    idle transaction), after which asking again on a new connection is safe."""
    cause = problem.__cause__ if isinstance(problem.__cause__, psycopg.Error) else problem
    if isinstance(cause, (psycopg.InterfaceError, psycopg.errors.AdminShutdown,
                          psycopg.errors.IdleInTransactionSessionTimeout, psycopg.errors.CrashShutdown)):
        return True
    return isinstance(cause, psycopg.OperationalError) and (cause.sqlstate is None or cause.sqlstate.startswith("08"))


def refuses_writes(problem: BaseException | None) -> bool:
    """Whether an error (or what caused it) is the server refusing to write: a user without
    the right, or a read-only server or transaction."""
    while problem is not None:
        if isinstance(problem, (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
            return True
        problem = problem.__cause__ or problem.__context__
    return False


def replace_dropped(datastore: Any) -> None:
    """After a lost connection the pool's other idle connections are likely lost too (a server
    restart ends them all): test each and replace the dead ones, before asking again. Cheaper
    than testing a connection before every use (pre-ping doubled a query's round trips)."""
    with contextlib.suppress(psycopg.Error):
        datastore.pool.check()


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
            if conn.execute("SELECT to_regnamespace(%s)", [env["POSTGRES_SCHEMA"]]).fetchone() == (None,):  # a reader
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {env['POSTGRES_SCHEMA']}")              # may not create
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")


# ---------------------------------------------------------------- read models

_CATCH_UP_LOCK = 727_001_002  # advisory lock key (with the hash of schema.model) of one model's catch-up


class _PostgresModelRecorder(PostgresTrackingRecorder):
    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore, tracking_table_name="ledger_tracking")
        self.sql_create_statements.append(SQL(  # type: ignore[arg-type]
            f"CREATE TABLE IF NOT EXISTS {datastore.schema}.{BINDING_TABLE} "
            "(name text PRIMARY KEY, chain_hash text, layout text NOT NULL)"))

    def _create_table(self, curs: Any) -> None:
        # Processes opening one ledger at once would race on CREATE TABLE IF NOT EXISTS.
        curs.execute(SQL("SELECT pg_advisory_xact_lock(%s)"), [_SCHEMA_LOCK])
        # eventsourcing looked for the tracking table before this lock: another process may have
        # made it since, and then the "__migration__ 1" row this one would add is refused
        # ("Failed to record tracking"; two query processes on a new ledger, four runs in ten).
        curs.execute(SQL("SELECT to_regclass(%s) AS found"), [f"{self.datastore.schema}.{self.tracking_table_name}"])
        found = curs.fetchone()
        if found is not None and found["found"] is not None:
            self.tracking_table_exists = True
            self.tracking_migration_previous = self._max_tracking_id(self.table_migration_identifier, curs)
            self.tracking_migration_current = self.tracking_migration_previous
        super()._create_table(curs)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_BATCH = 20_000


def copy_text(rows: Sequence[Sequence[Any]]) -> str | None:
    """Rows of text, integers and NULLs in COPY's text format, or None for any other value (left to
    psycopg to adapt): psycopg's own `write_row` formats value by value in Python (without its C
    implementation): a third of a read model's catch-up on PostgreSQL."""
    lines = []
    for row in rows:
        fields = []
        for value in row:
            kind = type(value)
            if kind is str:
                fields.append(value.translate(_COPY_ESCAPES))
            elif kind is int:
                fields.append(str(value))
            elif value is None:
                fields.append("\\N")
            else:
                return None
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


class _PostgresModelWriter(ModelWriter):
    def insert(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """COPY: a rebuild writes hundreds of thousands of rows."""
        if rows:
            schema = Identifier(self.tables.schema)  # type: ignore[attr-defined]
            with self.cursor.copy(SQL("COPY {0}.{1} FROM STDIN").format(schema, Identifier(table))) as copy:
                for start in range(0, len(rows), _COPY_BATCH):
                    batch = rows[start:start + _COPY_BATCH]
                    text = copy_text(batch)
                    if text is not None:
                        copy.write(text)
                        continue
                    for row in batch:
                        copy.write_row(row)


class PostgresModelTables(ModelTables):
    """The read models' tables in the ledger's schema, beside the events."""

    lock_first = True
    placeholder = "%s"
    TRACKING_TABLE = "ledger_tracking"

    def __init__(self, datastore: Any) -> None:
        super().__init__()
        self.datastore = datastore
        self.schema = datastore.schema
        self.recorder = _PostgresModelRecorder(datastore)
        self._tables = [self.TRACKING_TABLE, BINDING_TABLE, "ledger_index", "ledger_chain"]

    def sql(self, sql: str) -> str:
        sql = sql.replace("?", "%s")
        names = "|".join(re.escape(t) for t in self._tables)
        return re.sub(rf"(?<![\w.])({names})\b", lambda m: f"{self.schema}.{m.group(1)}", sql)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """A refused write (no right, a read-only server or transaction) becomes PermissionError."""
        try:
            yield
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as e:
            raise PermissionError(str(e).splitlines()[0]) from e
        except PersistenceError as e:
            cause = e.__cause__
            if isinstance(cause, (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
                raise PermissionError(str(cause).splitlines()[0]) from e
            raise

    def create(self, statements: Sequence[str], tables: Sequence[str], layout: str, name: str) -> None:
        self._tables = [self.TRACKING_TABLE, BINDING_TABLE, "ledger_index", "ledger_chain", *tables]
        super().create(statements, tables, layout, name)

    def _has_tables(self) -> bool:
        existing = self.read("SELECT to_regclass(?), to_regclass(?)",
                             [f"{self.schema}.{self.TRACKING_TABLE}", f"{self.schema}.{BINDING_TABLE}"])
        return bool(existing and all(existing[0]))

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read, asked once more after a dropped connection."""
        try:
            return self._read_once(sql, params)
        except (InterfaceError, OperationalError) as problem:
            if not dropped(problem):
                raise
            replace_dropped(self.datastore)
        return self._read_once(sql, params)

    def standing_and_read(
        self, name: str, sql: str, params: Sequence[Any]
    ) -> tuple[tuple[int, Binding | None, str | None], list[tuple[Any, ...]]]:
        """Both statements in one round trip (psycopg's pipeline), asked once more after a
        dropped connection."""
        try:
            return self._standing_and_read_once(name, sql, params)
        except (InterfaceError, OperationalError) as problem:
            if not dropped(problem):
                raise
            replace_dropped(self.datastore)
        return self._standing_and_read_once(name, sql, params)

    def _standing_and_read_once(
        self, name: str, sql: str, params: Sequence[Any]
    ) -> tuple[tuple[int, Binding | None, str | None], list[tuple[Any, ...]]]:
        standing_sql = self.sql(STANDING_SQL.replace("tracking", self.TRACKING_TABLE, 1))
        with self.datastore.get_connection() as conn:
            first, second = conn.cursor(row_factory=tuple_row), conn.cursor(row_factory=tuple_row)
            with conn.pipeline():
                first.execute(SQL(standing_sql), [name, name])
                if sql:
                    second.execute(SQL(self.sql(sql)), list(params))
            row = first.fetchone()
            assert row is not None
            return standing_of(row), list(second.fetchall()) if sql else []

    def _read_once(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(SQL(self.sql(sql)), list(params))
            return list(curs.fetchall())

    def binding(self, name: str) -> Binding | None:
        rows = self.read(
            f"SELECT t.notification_id, b.chain_hash, b.layout FROM {self.TRACKING_TABLE} t "  # noqa: S608 (constant names)
            f"JOIN {BINDING_TABLE} b ON b.name = t.application_name WHERE t.application_name = ?", [name])
        return Binding(int(rows[0][0]), rows[0][1], str(rows[0][2])) if rows else None

    @contextlib.contextmanager
    def write(self, name: str) -> Iterator[ModelWriter]:
        with self._guard(), self.datastore.transaction(commit=True) as curs:
            # The fold runs inside this transaction: no idle timeout while it does.
            curs.execute(SQL("SET LOCAL idle_in_transaction_session_timeout = 0"))
            curs.execute(SQL("SET LOCAL statement_timeout = 0"))
            curs.execute(SQL("SELECT pg_advisory_xact_lock(%s, hashtext(%s))"), [_CATCH_UP_LOCK, f"{self.schema}.{name}"])
            yield _PostgresModelWriter(self, curs, name)

    @contextlib.contextmanager
    def waiter(self) -> Iterator[Callable[[float], bool]]:
        """`wait(timeout)`: True as soon as the ledger has new events (the NOTIFY every write
        sends at commit), False after `timeout` seconds; on a connection of its own that LISTENs."""
        connect = self.datastore.pool.kwargs
        assert isinstance(connect, dict)
        with psycopg.connect(**connect, autocommit=True) as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(notify_channel(self.schema))))

            def wait(timeout: float) -> bool:
                return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))

            yield wait


def notify_channel(schema: str) -> str:
    """The channel a write to the ledger in `schema` notifies (LISTEN/NOTIFY)."""
    return f"creditledger_{schema}"[:63]
