"""The hash chain (docs/reliability.md, "Tamper evidence").

One `ledger_chain` row per stored event, written in the insert transaction, in
notification order. Each hash covers the previous hash and the stored event as
stored, so that an event changed, deleted, inserted or reordered behind the
ledger's back breaks the chain (`creditledger verify` walks it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from ledger.store.index import IndexQueries, IndexRow

GENESIS = "0" * 64
CHAIN_BROKEN = "the hash chain does not end at the event before this write; run `creditledger verify`"
CHAIN_COLUMNS = "notification_id, previous_id, event_id, hash"

# Stored events with their index rows, after a notification id, a page at a time.
UNCHAINED_SQL = (
    "SELECT i.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
    "i.event_id, i.key, i.recorded, i.effective, i.type, i.buyer FROM {events} e "
    "JOIN ledger_index i ON i.notification_id = e.{notification} "
    "WHERE i.notification_id > ? ORDER BY i.notification_id LIMIT 5000"
)


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


WALK_PAGE = 5000


@dataclass(frozen=True)
class ChainSlot:
    """What the three tables hold at one notification id (None: no row)."""

    notification_id: int
    stored: StoredEvent | None
    index: IndexRow | None
    previous_id: int | None
    chain_event_id: str | None
    chain_hash: str | None


class ChainQueries(IndexQueries):
    """Reads of `ledger_chain` beside the events and the index, for `creditledger verify`."""

    def slots(self) -> Iterator[ChainSlot]:
        """Every notification id held by any of the three tables, in order, a page at a time.

        Each branch of the union is limited to a page, so a page never scans the
        rest of the ledger.
        """
        column = self.notification_column
        sql = (
            "SELECT n.id, e.originator_id, e.originator_version, e.topic, e.state, "  # noqa: S608 (constant names)
            "i.event_id AS index_event_id, i.key, i.recorded, i.effective, i.type, i.buyer, "
            "c.previous_id, c.event_id AS chain_event_id, c.hash FROM ("
            f"SELECT id FROM (SELECT {column} AS id FROM {{events}} WHERE {column} > ? "
            f"ORDER BY {column} LIMIT {WALK_PAGE}) a "
            "UNION SELECT id FROM (SELECT notification_id AS id FROM ledger_index WHERE notification_id > ? "
            f"ORDER BY notification_id LIMIT {WALK_PAGE}) b "
            "UNION SELECT id FROM (SELECT notification_id AS id FROM ledger_chain WHERE notification_id > ? "
            f"ORDER BY notification_id LIMIT {WALK_PAGE}) d"
            f") n LEFT JOIN {{events}} e ON e.{column} = n.id "
            "LEFT JOIN ledger_index i ON i.notification_id = n.id "
            f"LEFT JOIN ledger_chain c ON c.notification_id = n.id ORDER BY n.id LIMIT {WALK_PAGE}"
        )
        after = 0
        while True:
            rows = self._fetch(sql, [after, after, after])
            yield from (_slot(row) for row in rows)
            if len(rows) < WALK_PAGE:
                return
            after = int(rows[-1][0])

    def position_of(self, event_id: str) -> int | None:
        """Where the chain recorded the event (its notification id), if anywhere."""
        rows = self._fetch("SELECT notification_id FROM ledger_chain WHERE event_id = ?", [event_id])
        return int(rows[0][0]) if rows else None

    def hash_at(self, notification_id: int) -> str | None:
        """The chain's hash at a notification id (GENESIS at 0; None: no link there)."""
        if notification_id == 0:
            return GENESIS
        rows = self._fetch("SELECT hash FROM ledger_chain WHERE notification_id = ?", [notification_id])
        return str(rows[0][0]) if rows else None

    def holds(self, head: str) -> bool:
        """Whether some link of the chain has the hash `head`."""
        return bool(self._fetch("SELECT notification_id FROM ledger_chain WHERE hash = ?", [head]))


def _slot(r: Sequence[Any]) -> ChainSlot:
    return ChainSlot(
        notification_id=int(r[0]),
        stored=None if r[3] is None else StoredEvent(
            originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4])
        ),
        index=None if r[5] is None else IndexRow(
            event_id=r[5], key=r[6], recorded=r[7], effective=r[8], type=r[9], buyer=r[10]
        ),
        previous_id=None if r[11] is None else int(r[11]),
        chain_event_id=r[12],
        chain_hash=r[13],
    )
