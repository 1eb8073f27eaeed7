"""The event store: eventsourcing's Application, recorders and one msgspec Mapper.

Streams (docs/design.md): one per buyer and one for the policy. Beside the
library's `stored_events` table each recorder keeps `ledger_index`, written in
the same transaction: one row per event with its notification id, event id,
idempotency key, recorded stamp, effective date, type and buyer. It is what
lets a query select "recorded up to T" or "this key" without decoding events,
and the recorder refuses, inside the write transaction, a recorded stamp
that goes backwards (on PostgreSQL a trigger does, so that the library's
error path rolls the transaction back).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import register_topic

from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES, Event, buyer_of, format_recorded

LEDGER_NAMESPACE = uuid.UUID("5c1d3c4e-8f0b-4a43-9a55-2f6c2b1e7d10")
POLICY_STREAM = uuid.uuid5(LEDGER_NAMESPACE, "policy")

# Schema version of each event type's stored form. Bump one and add an
# upcaster to `UPCASTERS` when a stored form changes; old rows keep decoding.
SCHEMA_VERSIONS: dict[str, int] = {name: 1 for name in EVENT_TYPES}
UPCASTERS: dict[tuple[str, int], Any] = {}


def stream_of(event: Event) -> uuid.UUID:
    """The stream an event belongs to: its buyer's, or the policy's."""
    buyer = buyer_of(event)
    return POLICY_STREAM if buyer is None else buyer_stream(buyer)


@functools.lru_cache(maxsize=65536)
def buyer_stream(buyer: str) -> uuid.UUID:
    """Stable stream id of a buyer (the same in every ledger and backend)."""
    return uuid.uuid5(LEDGER_NAMESPACE, "buyer:" + buyer)


def topic_of(type_name: str) -> str:
    """Stored topic: the public type name and schema version, never a class path."""
    return f"creditledger:{type_name}:v{SCHEMA_VERSIONS[type_name]}"


class Envelope(msgspec.Struct, frozen=True):
    """An event placed in a stream: what eventsourcing stores and returns."""

    originator_id: uuid.UUID
    originator_version: int
    event: Event


for _name, _cls in EVENT_TYPES.items():
    register_topic(topic_of(_name), _cls)


class LedgerMapper(Mapper[uuid.UUID]):
    """The one place where events are encoded, decoded and upcast.

    State is the event's msgspec JSON (readable in any SQLite tool); decoding
    goes straight from the stored bytes to the typed Struct.
    """

    def __init__(self, transcoder: Any = None, compressor: Any = None, cipher: Any = None) -> None:
        super().__init__(transcoder or JSONTranscoder(), compressor, cipher)
        self._encoder = msgspec.json.Encoder()
        self.decoders = {
            topic_of(name): msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()
        }

    def encode(self, event: Event) -> bytes:
        return self._encoder.encode(event)

    def decode(self, topic: str, state: bytes) -> Event:
        """Decode stored state, upcasting an older schema version first."""
        decoder = self.decoders.get(topic)
        if decoder is not None:
            return decoder.decode(state)
        match = re.fullmatch(r"creditledger:(\w+):v(\d+)", topic)
        if match is None or match.group(1) not in EVENT_TYPES:
            raise LedgerError(f"stored event has an unknown topic {topic!r}")
        name, version = match.group(1), int(match.group(2))
        data = msgspec.json.decode(state)
        while version < SCHEMA_VERSIONS[name]:
            data = UPCASTERS[(name, version)](data)
            version += 1
        return msgspec.convert(data, EVENT_TYPES[name])

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        envelope: Envelope = domain_event
        return StoredEvent(
            originator_id=envelope.originator_id,
            originator_version=envelope.originator_version,
            topic=topic_of(envelope.event.type),
            state=self.encode(envelope.event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        originator_id = stored_event.originator_id
        return Envelope(
            originator_id=originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(originator_id),
            originator_version=stored_event.originator_version,
            event=self.decode(stored_event.topic, stored_event.state),
        )


@dataclass(frozen=True)
class IndexRow:
    """The searchable facts of one stored event (see module docstring)."""

    event_id: str
    key: str | None
    recorded: str
    effective: str
    type: str
    buyer: str | None

    @classmethod
    def of(cls, event: Event, recorded: str | None = None) -> IndexRow:
        """The row of `event`; `recorded` may pass its stamp already formatted."""
        return cls(
            event_id=str(event.id), key=event.key, recorded=recorded or format_recorded(event.recorded),
            effective=event.effective.isoformat(), type=event.type, buyer=buyer_of(event),
        )


RECORDED_BACKWARDS = "recorded went backwards"

# The hash chain (docs/reliability.md, "Tamper evidence"): one `ledger_chain`
# row per stored event, written in the insert transaction, in notification
# order. Each hash covers the previous hash and the stored event as stored.
GENESIS = "0" * 64
CHAIN_BROKEN = "the hash chain does not end at the event before this write; run `creditledger verify`"
_CHAIN_COLUMNS = "notification_id, previous_id, event_id, hash"


def chain_hash(
    previous_hash: str,
    notification_id: int,
    previous_id: int,
    stored: StoredEvent,
    row: IndexRow,
) -> str:
    """sha256 over the previous hash and one stored event's canonical content.

    The header is a JSON array (unambiguous field boundaries, and JSON text
    has no raw newline), then a newline, then the state bytes as stored.
    """
    originator = stored.originator_id
    header = msgspec.json.encode([
        notification_id, previous_id,
        originator.hex if isinstance(originator, uuid.UUID) else str(originator).replace("-", "").lower(),
        stored.originator_version, stored.topic,
        row.event_id, row.key, row.recorded, row.effective, row.type, row.buyer,
    ])
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(header)
    digest.update(b"\n")
    digest.update(bytes(stored.state))
    return digest.hexdigest()


def chain_links(
    previous_id: int,
    previous_hash: str,
    ids: Sequence[int],
    stored_events: Sequence[StoredEvent],
    rows: Sequence[IndexRow],
) -> list[tuple[int, int, str, str]]:
    """The `ledger_chain` rows (notification id, previous id, event id, hash) that extend a chain."""
    links = []
    for notification_id, stored, row in zip(ids, stored_events, rows, strict=True):
        previous_hash = chain_hash(previous_hash, notification_id, previous_id, stored, row)
        links.append((notification_id, previous_id, row.event_id, previous_hash))
        previous_id = notification_id
    return links


def _unchained_page(fetch: Any, sql: Any, after: int) -> list[tuple[int, StoredEvent, IndexRow]]:
    """A page of stored events with their index rows after notification `after` (chaining old ledgers)."""
    rows = fetch(sql, [after])
    return [
        (int(r[0]), StoredEvent(originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4])),
         IndexRow(event_id=r[5], key=r[6], recorded=r[7], effective=r[8], type=r[9], buyer=r[10]))
        for r in rows
    ]


def chain_existing(fetch: Any, insert: Any, sql: Any) -> int:
    """Chain a ledger written before the hash chain existed (opened for the first time since).

    Called inside one write transaction with `ledger_chain` empty; returns
    how many events were chained.
    """
    previous_id, previous_hash, done = 0, GENESIS, 0
    while page := _unchained_page(fetch, sql, previous_id):
        ids = [n for n, _, _ in page]
        links = chain_links(previous_id, previous_hash, ids, [s for _, s, _ in page], [r for _, _, r in page])
        insert(links)
        previous_id, previous_hash = links[-1][0], links[-1][3]
        done += len(links)
    return done

_INDEX_COLUMNS = "notification_id, event_id, key, recorded, effective, type, buyer"
_INDEX_FILTERS = {
    "buyer": "i.buyer = {p}",
    "recorded_upto": "i.recorded <= {p}",
    "effective_from": "i.effective >= {p}",
    "effective_to": "i.effective <= {p}",
}


# Stored events with their index rows, after a notification id, a page at a time.
_UNCHAINED_SQL = (
    "SELECT i.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
    "i.event_id, i.key, i.recorded, i.effective, i.type, i.buyer FROM {events} e "
    "JOIN ledger_index i ON i.notification_id = e.{notification} "
    "WHERE i.notification_id > ? ORDER BY i.notification_id LIMIT 5000"
)


class IndexQueries:
    """Queries over `ledger_index`, the same SQL for SQLite and PostgreSQL."""

    placeholder = "?"

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    events_table_name: str

    def _sql(self, sql: str, schema: str = "") -> str:
        """Placeholders and (schema-qualified) table names for this backend."""
        prefix = f"{schema}." if schema else ""
        sql = sql.replace("?", self.placeholder).replace("ledger_index", prefix + "ledger_index")
        return sql.replace("{events}", prefix + self.events_table_name)

    def last_recorded(self) -> str | None:
        """The latest recorded stamp in the ledger."""
        rows = self._fetch("SELECT max(recorded) FROM ledger_index", [])
        return rows[0][0] if rows else None

    def cutoff(self, recorded_upto: str) -> int:
        """The last notification id recorded up to the stamp (0: none)."""
        rows = self._fetch(
            "SELECT max(notification_id) FROM ledger_index WHERE recorded <= ?", [recorded_upto]
        )
        return rows[0][0] or 0

    def _where_in(self, columns: str, column: str, values: Iterable[str]) -> list[Any]:
        """Rows of `columns` whose `column` is one of `values`, asked in chunks (SQL has a limit)."""
        batch = list(dict.fromkeys(values))
        rows: list[Any] = []
        for start in range(0, len(batch), 500):
            chunk = batch[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self._fetch(
                f"SELECT {columns} FROM ledger_index WHERE {column} IN ({marks})", chunk  # noqa: S608 (constant names, values are parameters)
            )
        return rows

    def find_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """Event ids of the keys already recorded, by key."""
        return {key: event_id for key, event_id in self._where_in("key, event_id", "key", keys)}

    def find_ids(self, event_ids: Iterable[str]) -> set[str]:
        """The given event ids that are already recorded."""
        return {row[0] for row in self._where_in("event_id", "event_id", event_ids)}

    def buyers(self) -> list[str]:
        """Every registered buyer."""
        # A buyer's first event is its registration (the ledger refuses any other before it),
        # so the buyers are the distinct buyers of the index: a walk of the buyer index.
        rows = self._fetch("SELECT DISTINCT buyer FROM ledger_index WHERE buyer IS NOT NULL ORDER BY buyer", [])
        return [row[0] for row in rows]

    def positions(self, event_ids: Iterable[str]) -> dict[str, int]:
        """Notification ids (places in recorded order) of the given events."""
        return {e: int(n) for e, n in self._where_in("event_id, notification_id", "event_id", event_ids)}

    def count(self) -> int:
        """How many events the ledger holds."""
        return int(self._fetch("SELECT count(*) FROM ledger_index", [])[0][0])

    def position(self) -> tuple[int, str | None]:
        """(the last notification id, the first event's id): where the log ends, and which log it is."""
        last = self._fetch("SELECT max(notification_id) FROM ledger_index", [])[0][0] or 0
        first = self._fetch("SELECT event_id FROM ledger_index ORDER BY notification_id LIMIT 1", [])
        return int(last), first[0][0] if first else None

    def last_policy_event(self) -> int:
        """The notification id of the policy stream's latest event (0: none)."""
        return int(self._fetch("SELECT max(notification_id) FROM ledger_index WHERE buyer IS NULL", [])[0][0] or 0)

    def touched_after(self, position: int) -> set[str | None]:
        """The buyers with events after notification `position` (None: the policy stream)."""
        return {row[0] for row in self._fetch("SELECT DISTINCT buyer FROM ledger_index WHERE notification_id > ?", [position])}

    def earliest_effective_after(self, recorded: str) -> dict[str | None, str]:
        """For each stream (buyer, or None for the policy) with events recorded after the stamp,
        the earliest effective date among them."""
        rows = self._fetch(  # materialised first, so that the planners seek on `recorded` (few rows)
            "WITH later AS MATERIALIZED (SELECT buyer, effective FROM ledger_index WHERE recorded > ?) "
            "SELECT buyer, min(effective) FROM later GROUP BY buyer", [recorded])
        return {row[0]: row[1] for row in rows}

    def stream_rows(self, stream_id: uuid.UUID) -> list[tuple[str, bytes]]:
        """(topic, state) of a stream's events in order, with no StoredEvent objects."""
        return self._fetch(
            "SELECT topic, state FROM {events} WHERE originator_id = ? ORDER BY originator_version",
            [self.stream_key(stream_id)],
        )

    def stream_key(self, stream_id: uuid.UUID) -> Any:
        return stream_id.hex  # as eventsourcing's SQLite recorder stores it

    def scan(self, after: int, stop: int | None, limit: int) -> list[tuple[int, str, bytes]]:
        """(notification id, topic, state) of up to `limit` events after `after`, up to `stop`,
        straight from the events table: the replay path, with no Notification objects."""
        sql = (
            f"SELECT {self.notification_column}, topic, state FROM {{events}} "  # noqa: S608 (values are parameters)
            f"WHERE {self.notification_column} > ?"
        )
        params: list[Any] = [after]
        if stop is not None:
            sql += f" AND {self.notification_column} <= ?"
            params.append(stop)
        sql += f" ORDER BY {self.notification_column} LIMIT ?"
        params.append(limit)
        return self._fetch(sql, params)

    def select_indexed(
        self,
        *,
        types: Sequence[str] = (),
        limit: int | None = None,
        **filters: Any,
    ) -> list[tuple[int, str, bytes]]:
        """(notification id, topic, state) of the events matching, in recorded order."""
        where, params = [], []
        for name, value in filters.items():
            if value is not None:
                where.append(_INDEX_FILTERS[name].format(p="?"))
                params.append(value)
        if types:
            where.append(f"i.type IN ({','.join('?' * len(types))})")
            params.extend(types)
        sql = (
            f"SELECT e.{self.notification_column}, e.topic, e.state FROM {{events}} e "  # noqa: S608 (values are parameters)
            f"JOIN ledger_index i ON i.notification_id = e.{self.notification_column}"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY i.notification_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [(row[0], row[1], bytes(row[2])) for row in self._fetch(sql, params)]

    notification_column = "rowid"


class LedgerSQLiteRecorder(IndexQueries, SQLiteApplicationRecorder):
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
        ]

    def create_table(self) -> None:
        super().create_table()
        self._chain_existing()

    def _chain_existing(self) -> None:
        """Chain a ledger written before the hash chain, on its first open (see `chain_existing`)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT EXISTS (SELECT 1 FROM ledger_chain)")
            chained = c.fetchone()[0]
            c.execute(f"SELECT EXISTS (SELECT 1 FROM {self.events_table_name})")  # noqa: S608 (constant name)
            if chained or not c.fetchone()[0]:
                return
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT EXISTS (SELECT 1 FROM ledger_chain)")  # again, now under the write lock
            if c.fetchone()[0]:
                return

            def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
                c.execute(sql, list(params))
                return list(c.fetchall())

            def insert(links: list[tuple[int, int, str, str]]) -> None:
                c.executemany(f"INSERT INTO ledger_chain ({_CHAIN_COLUMNS}) VALUES (?,?,?,?)", links)  # noqa: S608 (constant columns)

            chain_existing(fetch, insert, self._sql(_UNCHAINED_SQL.replace("{notification}", "rowid")))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs["index"]
        assert ids is not None and len(ids) == len(rows)
        # Checked here, inside the write transaction, so that no other writer
        # can slip in between; a per-row trigger cost as much as the insert.
        c.execute("SELECT max(recorded) FROM ledger_index")
        latest = c.fetchone()[0]
        stamps = [row.recorded for row in rows]
        if (latest is not None and stamps and stamps[0] < latest) or stamps != sorted(stamps):
            raise IntegrityError(RECORDED_BACKWARDS)
        c.executemany(
            f"INSERT INTO ledger_index ({_INDEX_COLUMNS}) VALUES (?,?,?,?,?,?,?)",  # noqa: S608 (constant columns)
            [(n, r.event_id, r.key, r.recorded, r.effective, r.type, r.buyer) for n, r in zip(ids, rows, strict=False)],
        )
        # The chain's last row must be the event just before this write (the
        # write lock is held); anything else is a ledger edited behind our back.
        c.execute("SELECT notification_id, hash FROM ledger_chain ORDER BY notification_id DESC LIMIT 1")
        last = c.fetchone()
        c.execute(f"SELECT max(rowid) FROM {self.events_table_name} WHERE rowid < ?", [ids[0]])  # noqa: S608 (constant name)
        before = c.fetchone()[0] or 0
        previous_id, previous_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        if previous_id != before:
            raise DatabaseError(CHAIN_BROKEN)
        c.executemany(
            f"INSERT INTO ledger_chain ({_CHAIN_COLUMNS}) VALUES (?,?,?,?)",  # noqa: S608 (constant columns)
            chain_links(previous_id, previous_hash, ids, stored_events, rows),
        )
        return ids

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(sql), list(params))
            return list(c.fetchall())


@functools.cache
def _postgres_recorder_class() -> type:
    """Built on demand: a SQLite ledger needs no PostgreSQL recorder."""
    from eventsourcing.persistence import InterfaceError
    from eventsourcing.postgres import PostgresApplicationRecorder
    from eventsourcing.utils import retry
    from psycopg.sql import SQL

    class LedgerPostgresRecorder(IndexQueries, PostgresApplicationRecorder):
        """eventsourcing's PostgreSQL recorder, plus `ledger_index`, same transaction."""

        placeholder = "%s"
        notification_column = "notification_id"

        def stream_key(self, stream_id: uuid.UUID) -> Any:
            return stream_id

        def __init__(self, datastore: Any, **kwargs: Any) -> None:
            super().__init__(datastore, **kwargs)
            schema = self.datastore.schema
            for statement in (
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
                f"OR NEW.previous_id <> coalesce((SELECT max(notification_id) FROM {schema}.{self.events_table_name} "
                "WHERE notification_id < NEW.notification_id), 0) THEN "
                f"RAISE EXCEPTION '{CHAIN_BROKEN}' USING ERRCODE = 'data_corrupted'; "
                "END IF; RETURN NEW; END $$",
                f"CREATE OR REPLACE TRIGGER ledger_chain_follows BEFORE INSERT ON {schema}.ledger_chain "
                f"FOR EACH ROW EXECUTE FUNCTION {schema}.ledger_chain_follows()",
            ):
                self.sql_create_statements.append(SQL(statement))  # type: ignore[arg-type]

        def create_table(self) -> None:
            super().create_table()
            self._chain_existing()

        def _chain_existing(self) -> None:
            """Chain a ledger written before the hash chain, on its first open (see `chain_existing`)."""
            schema = self.datastore.schema
            if self._fetch(
                f"SELECT EXISTS (SELECT 1 FROM {schema}.ledger_chain) OR NOT EXISTS (SELECT 1 FROM {{events}})", []  # noqa: S608 (checked identifier)
            )[0][0]:
                return
            with self.datastore.transaction(commit=True) as curs:
                for statement in self.lock_table_statements:
                    curs.execute(statement)
                curs.execute(SQL(f"SELECT EXISTS (SELECT 1 FROM {schema}.ledger_chain)"))  # noqa: S608 (checked identifier)
                found = curs.fetchone()
                if found is None or next(iter(found.values())):
                    return

                def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
                    curs.execute(SQL(sql), list(params))
                    return [tuple(row.values()) for row in curs.fetchall()]

                def insert(links: list[tuple[int, int, str, str]]) -> None:
                    curs.executemany(
                        SQL(f"INSERT INTO {schema}.ledger_chain ({_CHAIN_COLUMNS}) VALUES (%s,%s,%s,%s)"), links  # noqa: S608 (checked identifier)
                    )

                chain_existing(fetch, insert, self._sql(_UNCHAINED_SQL.replace("{notification}", "notification_id"), schema))

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
            curs.executemany(
                SQL(f"INSERT INTO {self.datastore.schema}.ledger_index ({_INDEX_COLUMNS}) "  # noqa: S608 (schema is a checked identifier)
                    "VALUES (%s,%s,%s,%s,%s,%s,%s)"),
                [(n, r.event_id, r.key, r.recorded, r.effective, r.type, r.buyer) for n, r in zip(ids, rows, strict=False)],
            )
            # The table lock is held: the chain's last row is the one just before
            # this write, unless the ledger was edited (the trigger refuses then).
            curs.execute(SQL(f"SELECT notification_id, hash FROM {self.datastore.schema}.ledger_chain "  # noqa: S608 (checked identifier)
                             "ORDER BY notification_id DESC LIMIT 1"))
            last = curs.fetchone()
            previous_id, previous_hash = (int(last["notification_id"]), str(last["hash"])) if last else (0, GENESIS)
            curs.executemany(
                SQL(f"INSERT INTO {self.datastore.schema}.ledger_chain ({_CHAIN_COLUMNS}) "  # noqa: S608 (checked identifier)
                    "VALUES (%s,%s,%s,%s)"),
                chain_links(previous_id, previous_hash, ids, stored_events, rows),
            )
            # Fetch once more so that a refused index row raises here, inside
            # the library's handler, and the whole transaction rolls back.
            curs.execute(SQL("SELECT 1"))
            curs.fetchone()
            return ids

        def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
            sql = self._sql(sql, self.datastore.schema)
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(SQL(sql), list(params))
                return [tuple(row.values()) for row in curs.fetchall()]

    return LedgerPostgresRecorder


REPLAY_PAGE = 5000  # events per query on the replay path


class LedgerStore(Application[uuid.UUID]):
    """The eventsourcing Application behind a ledger: persistence, mapper, log."""

    name = "creditledger"

    def construct_mapper(self) -> Mapper[uuid.UUID]:
        return LedgerMapper()

    @property
    def index(self) -> IndexQueries:
        """Queries over the stored recorded axis and keys."""
        recorder = self.recorder
        assert isinstance(recorder, IndexQueries)
        return recorder

    def append(self, envelopes: Sequence[Envelope], rows: Sequence[IndexRow]) -> None:
        """Store envelopes and their index rows in one transaction.

        Goes to the recorder through the mapper, as Application.save does,
        without its per-event protocol checks and notification objects.
        """
        stored = [self.mapper.to_stored_event(envelope) for envelope in envelopes]
        self.recorder.insert_events(stored, index=rows)

    def stream_events(self, stream_id: uuid.UUID) -> list[Event]:
        """A stream's events in recorded order, decoded straight from the stored bytes."""
        mapper = self.mapper
        assert isinstance(mapper, LedgerMapper)
        decoders = mapper.decoders
        events = []
        for topic, state in self.index.stream_rows(stream_id):
            decoder = decoders.get(topic)
            events.append(decoder.decode(state) if decoder is not None else mapper.decode(topic, state))
        return events

    def decode(self, topic: str, state: bytes) -> Event:
        """Decode one stored event (see LedgerMapper)."""
        mapper = self.mapper
        assert isinstance(mapper, LedgerMapper)
        return mapper.decode(topic, state)

    def replay(self, stop: int | None = None, page: int = REPLAY_PAGE) -> Iterator[Event]:
        """Every event in recorded order up to notification `stop`: one query per page and
        one msgspec decoder per topic, straight from the stored bytes."""
        mapper = self.mapper
        assert isinstance(mapper, LedgerMapper)
        decoders, index, after = mapper.decoders, self.index, 0
        while True:
            rows = index.scan(after, stop, page)
            for _, topic, state in rows:  # one at a time, so that a consumer's events die young
                decoder = decoders.get(topic)
                yield decoder.decode(state) if decoder is not None else mapper.decode(topic, state)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def read_notifications(self, start: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        """A page of the notification log, in recorded order."""
        return self.recorder.select_notifications(start=start, limit=limit, stop=stop)


_memory_counter = iter(range(1, 1 << 62))


def store_environment(location: str) -> dict[str, str]:
    """eventsourcing settings for a ledger location.

    `memory` (or `:memory:`): an in-memory SQLite database, private to this
    process; `postgresql://user@host:port/db?schema=name`: PostgreSQL;
    anything else: the path of a SQLite file.
    """
    if location in ("memory", ":memory:"):
        name = f"file:creditledger-{os.getpid()}-{next(_memory_counter)}?mode=memory&cache=shared"
        return _sqlite_env(name)
    if location.startswith(("postgresql://", "postgres://")):
        return _postgres_env(location)
    path = Path(location)
    if path.is_dir():
        raise LedgerError(f"{location} is a directory, not a ledger file", field="db")
    return _sqlite_env(str(path))


def _sqlite_env(db_name: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": db_name,
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "ledger.store:LedgerSQLiteRecorder",
    }


def _postgres_env(url: str) -> dict[str, str]:
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as e:
        raise LedgerError(f"not a valid postgresql:// URL: {e}", field="db") from None
    query = parse_qs(parsed.query)
    schema = query.get("schema", ["public"])[0]
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise LedgerError("schema must be a lower-case SQL identifier", field="db")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(port or 5432),
        "POSTGRES_USER": unquote(parsed.username or os.environ.get("PGUSER", "postgres")),
        "POSTGRES_PASSWORD": unquote(parsed.password or os.environ.get("PGPASSWORD", "")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "ledger.store:LedgerPostgresRecorder",
    }
    return env


def __getattr__(name: str) -> Any:
    # eventsourcing resolves the recorder by topic; build the PostgreSQL one lazily.
    if name == "LedgerPostgresRecorder":
        return _postgres_recorder_class()
    raise AttributeError(name)


_SCHEMA_LOCK = 727_001_001  # advisory lock key for creating a ledger's tables on PostgreSQL
OPEN_ATTEMPTS = 10


def open_store(location: str) -> LedgerStore:
    """Open (creating tables if needed) the ledger store at `location`.

    Several processes may open a new ledger at once: a locked SQLite file
    (switching to WAL, creating tables) is retried a bounded number of times.
    """
    env = store_environment(location)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        with _postgres_creation_lock(env):
            return _construct(env)
    return _construct(env)


def ledger_exists(location: str) -> bool:
    """Whether a ledger is already at `location` (never for `memory`)."""
    env = store_environment(location)
    if location in ("memory", ":memory:"):
        return False
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return Path(location).exists()
    import psycopg

    try:
        with _postgres_connection(env) as conn:
            row = conn.execute("SELECT to_regclass(%s)", [f"{env['POSTGRES_SCHEMA']}.ledger_index"]).fetchone()
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach PostgreSQL: {_redact(str(e), env)}", field="db") from None
    return row is not None and row[0] is not None


def _postgres_connection(env: dict[str, str]) -> Any:
    import psycopg

    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=5, autocommit=True,
    )


def _construct(env: dict[str, str]) -> LedgerStore:
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return LedgerStore(env=env)
        except (OperationalError, sqlite3.OperationalError) as e:
            if "locked" not in str(e) or attempt == OPEN_ATTEMPTS - 1:
                raise LedgerError(f"cannot open the ledger: {_redact(str(e), env)}", field="db") from None
            time.sleep(0.05 * (attempt + 1))
        except LedgerError:
            raise
        except Exception as e:  # the driver's own words, without credentials
            raise LedgerError(f"cannot open the ledger: {_redact(str(e), env)}", field="db") from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _postgres_creation_lock(env: dict[str, str]) -> Iterator[None]:
    """Create the schema, and hold a lock while the tables, types and trigger are made.

    Processes opening one ledger at once would otherwise race on CREATE TYPE
    and CREATE OR REPLACE ("tuple concurrently updated", duplicate keys).
    """
    import psycopg

    try:
        conn = _postgres_connection(env)
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach PostgreSQL: {_redact(str(e), env)}", field="db") from None
    with conn:
        conn.execute(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})")
        try:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {env['POSTGRES_SCHEMA']}")
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")


def _redact(message: str, env: dict[str, str]) -> str:
    password = env.get("POSTGRES_PASSWORD")
    return message.replace(password, "***") if password else message
