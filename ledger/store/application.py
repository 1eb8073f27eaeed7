"""`LedgerStore`: the eventsourcing Application behind a ledger, and the store's one way in.

The service writes and reads through it; the recorder (SQLite or PostgreSQL,
chosen by the settings, see `opening`) is reached through `index` and the
methods here, never directly.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from ledger.store.chain import ChainQueries, stored_bytes
from ledger.store.index import BulkInsert, IndexQueries, IndexRow
from ledger.store.mapper import Envelope, LedgerMapper
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import Event

REPLAY_PAGE = 5000  # events per query on the replay path
# What decoding a stored event edited behind the ledger's back can raise.
UNDECODABLE = (msgspec.DecodeError, LedgerError, TypeError, ValueError, KeyError)


def undecodable(notification_id: int | None, problem: Exception) -> LedgerError:
    """The one-line refusal of a query that met a stored event it cannot decode."""
    where = f"the stored event at notification {notification_id}" if notification_id else "a stored event"
    detail = problem.message if isinstance(problem, LedgerError) else str(problem)
    return LedgerError(f"{where} does not decode ({detail}): the database was changed behind the ledger's "
                       "back; run `creditledger verify`", field="db")


@dataclass(frozen=True)
class BulkAppend:
    """An open `LedgerStore.bulk_append`: as `BulkInsert`, its writer taking envelopes."""

    held: int
    write: Callable[[Sequence[Envelope], Sequence[IndexRow]], None]
    head: Callable[[], tuple[int, str]]


class _BulkRecorder(Protocol):
    """What both of our recorders add for `LedgerStore.bulk_insert`."""

    def bulk_insert(self) -> contextlib.AbstractContextManager[BulkInsert]: ...


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

    @property
    def chain(self) -> ChainQueries:
        """Reads of the hash chain, for `creditledger verify`."""
        recorder = self.recorder
        assert isinstance(recorder, ChainQueries)
        return recorder

    @property
    def _mapper(self) -> LedgerMapper:
        mapper = self.mapper
        assert isinstance(mapper, LedgerMapper)
        return mapper

    def append(self, envelopes: Sequence[Envelope], rows: Sequence[IndexRow]) -> Sequence[int]:
        """Store envelopes and their index rows in one transaction.

        Goes to the recorder through the mapper, as Application.save does,
        without its per-event protocol checks and notification objects.
        """
        stored = [self.mapper.to_stored_event(envelope) for envelope in envelopes]
        return self.recorder.insert_events(stored, index=rows) or ()

    def bulk_insert(self) -> contextlib.AbstractContextManager[BulkInsert]:
        """One write transaction for many batches of stored events taken as they are (stream,
        version, topic and state: so ids, keys and recorded stamps are kept), each batch
        with its index rows; the chain is extended as by any write. All or nothing: it
        commits when the block ends and rolls back entirely if the block raises.
        `held` is how many events the ledger held when the transaction began, counted
        under the write lock (a copy refuses a ledger that holds any)."""
        return cast(_BulkRecorder, self.recorder).bulk_insert()

    def write_turn(self) -> contextlib.AbstractContextManager[None]:
        """The ledger's other writes held off until this thread's write ends (PostgreSQL, see
        `LedgerPostgresRecorder.write_turn`); a no-op on SQLite."""
        turn = getattr(self.recorder, "write_turn", None)
        return turn() if callable(turn) else contextlib.nullcontext()

    def server_clock(self) -> Callable[[], datetime.datetime] | None:
        """The database server's clock, where there is one (PostgreSQL); None for SQLite."""
        clock = getattr(self.recorder, "server_clock", None)
        return clock if callable(clock) else None

    @contextlib.contextmanager
    def bulk_append(self) -> Iterator[BulkAppend]:
        """One write transaction for a large write given a batch at a time: each call of the
        writer it yields stores envelopes and their index rows (one executemany per table), so
        that only one batch's stored forms are alive at once. All or nothing, as `bulk_insert`
        (whose `held` and `head` it passes on)."""
        mapper = self.mapper
        with self.bulk_insert() as bulk:

            def write(envelopes: Sequence[Envelope], rows: Sequence[IndexRow]) -> None:
                bulk.write([mapper.to_stored_event(envelope) for envelope in envelopes], rows)

            yield BulkAppend(bulk.held, write, bulk.head)

    def last_notification(self) -> int:
        """The notification id of the last stored event (0: none)."""
        return self.recorder.max_notification_id() or 0

    def stream_events(self, stream_id: uuid.UUID) -> list[Event]:
        """A stream's events in recorded order, decoded straight from the stored bytes."""
        mapper = self._mapper
        decoders = mapper.decoders
        events = []
        n = None
        try:
            for n, topic, state in self.index.stream_rows(stream_id):  # noqa: B007 (n names a bad row)
                decoder = decoders.get(topic)
                if type(state) is not bytes:
                    raise TypeError(f"its state is stored as {stored_bytes(state)[1]}, not bytes")
                events.append(decoder.decode(state) if decoder is not None else mapper.decode(topic, state))
        except UNDECODABLE as problem:
            raise undecodable(n, problem) from None
        return events

    def decode(self, topic: str, state: bytes, notification_id: int | None = None) -> Event:
        """Decode one stored event (see LedgerMapper); refused in one line when it does not decode."""
        try:
            if type(state) is not bytes:
                raise TypeError(f"its state is stored as {stored_bytes(state)[1]}, not bytes")
            return self._mapper.decode(topic, state)
        except UNDECODABLE as problem:
            raise undecodable(notification_id, problem) from None

    def replay(self, stop: int | None = None, page: int = REPLAY_PAGE) -> Iterator[Event]:
        """Every event in recorded order up to notification `stop`: one query per page and
        one msgspec decoder per topic, straight from the stored bytes."""
        mapper = self._mapper
        decoders, index, after = mapper.decoders, self.index, 0
        while True:
            rows = index.scan(after, stop, page)
            n = None
            try:
                for n, topic, state in rows:  # one at a time, so that a consumer's events die young  # noqa: B007
                    decoder = decoders.get(topic)
                    if type(state) is not bytes:
                        raise TypeError(f"its state is stored as {stored_bytes(state)[1]}, not bytes")
                    yield decoder.decode(state) if decoder is not None else mapper.decode(topic, state)
            except UNDECODABLE as problem:
                raise undecodable(n, problem) from None
            if len(rows) < page:
                return
            after = rows[-1][0]

    def read_notifications(self, start: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        """A page of the notification log, in recorded order."""
        return self.recorder.select_notifications(start=start, limit=limit, stop=stop)
