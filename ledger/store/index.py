"""`ledger_index`: the searchable facts of each stored event, and the queries over them.

Beside the library's `stored_events` table each recorder keeps `ledger_index`,
written in the same transaction: one row per event with its notification id,
event id, idempotency key, recorded stamp, effective date, type and buyer. It
is what lets a query select "recorded up to T" or "this key" without decoding
events. The recorder refuses, inside the write transaction, a recorded stamp
that goes backwards (on PostgreSQL a trigger does, so that the library's error
path rolls the transaction back).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eventsourcing.persistence import StoredEvent

from ledger.vocabulary.events import Event, buyer_of, format_recorded

RECORDED_BACKWARDS = "recorded went backwards"
INDEX_COLUMNS = "notification_id, event_id, key, recorded, effective, type, buyer"
_INDEX_FILTERS = {
    "after": "i.notification_id > {p}",
    "buyer": "i.buyer = {p}",
    "recorded_upto": "i.recorded <= {p}",
    "effective_from": "i.effective >= {p}",
    "effective_to": "i.effective <= {p}",
}


class IndexRow(NamedTuple):
    """The searchable facts of one stored event (see module docstring). A tuple: an import
    makes one per event, and a frozen dataclass cost a microsecond more each."""

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


def index_values(ids: Sequence[int], rows: Sequence[IndexRow]) -> list[tuple[Any, ...]]:
    """The `ledger_index` rows (in INDEX_COLUMNS order) of events given these notification ids."""
    return [(n, r.event_id, r.key, r.recorded, r.effective, r.type, r.buyer) for n, r in zip(ids, rows, strict=False)]


BatchWriter = Callable[[Sequence[StoredEvent], Sequence[IndexRow]], None]


@dataclass(frozen=True)
class BulkInsert:
    """An open bulk-insert transaction (`LedgerStore.bulk_insert`): how many events the
    ledger held when it began, counted under the write lock, and the writer of each batch."""

    held: int
    write: BatchWriter
    head: Callable[[], tuple[int, str]]  # the chain's last link as this transaction sees it (before it commits)


_OUR_TABLES = re.compile(r"\b(?:ledger_index|ledger_chain_log|ledger_chain|ledger_checkpoint)\b")


class IndexQueries:
    """Queries over `ledger_index`, the same SQL for SQLite and PostgreSQL."""

    placeholder = "?"
    notification_column = "rowid"
    events_table_name: str

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _sql(self, sql: str, schema: str = "") -> str:
        """Placeholders and (schema-qualified) table names for this backend."""
        prefix = f"{schema}." if schema else ""
        # One pass: a schema may itself be called, or contain, ledger_chain.
        sql = _OUR_TABLES.sub(lambda m: prefix + m.group(0), sql.replace("?", self.placeholder))
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

    def stream_rows(self, stream_id: uuid.UUID) -> list[tuple[int, str, bytes]]:
        """(notification id, topic, state) of a stream's events in order, with no StoredEvent objects."""
        return self._fetch(
            f"SELECT {self.notification_column}, topic, state FROM {{events}} "  # noqa: S608 (constant names)
            "WHERE originator_id = ? ORDER BY originator_version",
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
        return [(row[0], row[1], bytes(row[2]) if isinstance(row[2], (memoryview, bytearray)) else row[2])
                for row in self._fetch(sql, params)]
