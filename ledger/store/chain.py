"""The hash chain (docs/reliability.md, "Tamper evidence").

One `ledger_chain` row per stored event, written in the insert transaction, in
notification order. Each hash covers the previous hash and the stored event as
stored, so that an event changed, deleted, inserted or reordered behind the
ledger's back breaks the chain (`creditledger verify` walks it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from ledger.store.index import IndexRow

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
