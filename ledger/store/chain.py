"""The hash chain (docs/reliability.md, "Tamper evidence").

One `ledger_chain` row per stored event, written in the insert transaction, in
notification order. Each hash covers the previous hash and the stored event as
stored, so that an event changed, deleted, inserted or reordered behind the
ledger's back breaks the chain (`creditledger verify` walks it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
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
        (int(r[0]), StoredEvent(originator_id=r[1], originator_version=r[2], topic=r[3], state=stored_bytes(r[4])[0]),
         IndexRow(event_id=r[5], key=r[6], recorded=r[7], effective=r[8], type=r[9], buyer=r[10]))
        for r in rows
    ]


def chain_existing(fetch: Any, insert: Any, sql: Any) -> int:
    """Chain a ledger that holds events but no chain (written before the hash chain existed,
    or whose chain was dropped): `creditledger chain init`, never a side effect of opening.

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


ALREADY_CHAINED = "the ledger is already chained; `creditledger verify` names any event without its chain link"
# Each `chain init`: when, how many events it chained, and the head it left (docs/reliability.md).
CHAIN_LOG_COLUMNS = "at, events, head_id, head_hash"
# With CREDITLEDGER_CHAIN_KEY set, each write stores an HMAC of the head it leaves.
CHAIN_KEY_VARIABLE = "CREDITLEDGER_CHAIN_KEY"
CHECKPOINT_COLUMNS = "notification_id, mac"


def chain_key() -> bytes | None:
    """The key of the keyed checkpoints, if one is set (the environment, never a file or the ledger)."""
    key = os.environ.get(CHAIN_KEY_VARIABLE)
    return key.encode() if key else None


def checkpoint_mac(key: bytes, notification_id: int, head_hash: str) -> str:
    """HMAC-SHA256 of a head (its notification id and hash) under the chain key."""
    return hmac.new(key, f"{notification_id}:{head_hash}".encode(), hashlib.sha256).hexdigest()


def checkpoint_row(links: Sequence[tuple[int, int, str, str]]) -> tuple[int, str] | None:
    """The checkpoint of the head these links leave, when a chain key is set."""
    key = chain_key()
    if key is None or not links:
        return None
    return links[-1][0], checkpoint_mac(key, links[-1][0], links[-1][3])


WALK_PAGE = 5000


@dataclass(frozen=True)
class ChainSlot:
    """What the three tables hold at one notification id (None: no row), as stored: a row
    edited behind the ledger's back may hold any type in any column.

    `state_type` names what the state column held when it was not bytes (`text`, `integer`,
    `null`...): the ledger only writes bytes. `previous_id` is None when there is no chain
    row; a chain row whose previous id is not a number keeps it as found."""

    notification_id: int
    stored: StoredEvent | None
    index: IndexRow | None
    previous_id: Any
    chain_event_id: Any
    chain_hash: Any
    state_type: str | None = None


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
            f"c.previous_id, c.event_id AS chain_event_id, c.hash, e.{column} AS present, "
            "c.notification_id AS chained FROM ("
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

    def with_prefix(self, prefix: str) -> list[tuple[int, str]]:
        """(notification id, hash) of up to two links whose hash begins with `prefix` (hex digits)."""
        rows = self._fetch("SELECT notification_id, hash FROM ledger_chain WHERE substr(hash, 1, ?) = ? "
                           "ORDER BY notification_id LIMIT 2", [len(prefix), prefix])
        return [(int(r[0]), str(r[1])) for r in rows]

    def head(self) -> tuple[int, str]:
        """(notification id, hash) of the chain's last link; (0, GENESIS) when there is none."""
        rows = self._fetch("SELECT notification_id, hash FROM ledger_chain ORDER BY notification_id DESC LIMIT 1", [])
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def link(self, notification_id: int) -> tuple[int, str] | None:
        """(notification id, hash) of the link at a notification id."""
        rows = self._fetch("SELECT notification_id, hash FROM ledger_chain WHERE notification_id = ?", [notification_id])
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def chained(self) -> bool:
        """Whether the chain has any link."""
        return bool(self._fetch("SELECT 1 FROM ledger_chain LIMIT 1", []))

    def log(self) -> list[tuple[str, int, int, str]]:
        """Every `chain init`: (when, events chained, head id, head hash), oldest first."""
        return [(str(r[0]), int(r[1]), int(r[2]), str(r[3]))
                for r in self._fetch(f"SELECT {CHAIN_LOG_COLUMNS} FROM ledger_chain_log ORDER BY at", [])]  # noqa: S608 (constant columns)

    def checkpoints(self) -> list[tuple[Any, Any, Any]]:
        """(notification id, mac, the chain's hash there or None) of every keyed checkpoint, in order."""
        return self._fetch("SELECT k.notification_id, k.mac, c.hash FROM ledger_checkpoint k "
                           "LEFT JOIN ledger_chain c ON c.notification_id = k.notification_id "
                           "ORDER BY k.notification_id", [])

    def chain_init(self, at: str) -> tuple[int, int, str]:
        """Chain a ledger that holds events but no chain, logged with `at`: (events chained, head id,
        head hash). Refused when the chain has any link."""
        raise NotImplementedError


def _slot(r: Sequence[Any]) -> ChainSlot:
    state, state_type = stored_bytes(r[4])
    return ChainSlot(
        notification_id=int(r[0]),
        stored=None if r[14] is None else StoredEvent(
            originator_id=r[1], originator_version=r[2], topic=r[3], state=state
        ),
        index=None if r[5] is None else IndexRow(
            event_id=r[5], key=r[6], recorded=r[7], effective=r[8], type=r[9], buyer=r[10]
        ),
        previous_id=None if r[15] is None else r[11],
        chain_event_id=r[12],
        chain_hash=r[13],
        state_type=state_type,
    )


def stored_bytes(value: Any) -> tuple[bytes, str | None]:
    """A state column's value as bytes, and what it held if it was not bytes (SQLite keeps
    whatever type an edit gives it; the hash is over the same bytes either way)."""
    if isinstance(value, bytes):
        return value, None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value), None
    if value is None:
        return b"", "null"
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass"), "text"
    return str(value).encode(), type(value).__name__
