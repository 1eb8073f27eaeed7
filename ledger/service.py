"""The application service: every write and read of a ledger goes through `Ledger`.

A write is one pipeline, top to bottom (`_record_once`), whose pure steps and
their order are told in ledger/write/pipeline.py; the service does their reads
and saves everything in one transaction.
A conflict with another writer (a stream version taken, a key recorded, the
recorded axis moved) re-runs the pipeline on fresh state, a bounded number
of times, so concurrent writers never lose, duplicate or over-allocate.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

from eventsourcing.persistence import DatabaseError, IntegrityError, OperationalError

from ledger.readmodels.exposure import ExposureModel
from ledger.store import (
    POLICY_STREAM,
    Envelope,
    IndexRow,
    LedgerStore,
    buyer_stream,
    open_store,
    stream_of,
)
from ledger.store import ledger_exists as ledger_exists  # the CLI asks here: it may not open the store
from ledger.vocabulary.bulk import BULK, ProgressHook, collector_paused
from ledger.vocabulary.errors import ConcurrencyConflict, LedgerError
from ledger.vocabulary.events import (
    NIL_ID,
    UNRECORDED,
    BuyerEvent,
    Event,
    PolicyAmended,
    PolicyStarted,
    format_recorded,
    parse_event,
    parse_recorded,
)
from ledger.vocabulary.location import Location
from ledger.vocabulary.terms import PolicyTerms
from ledger.write.pipeline import (
    Admitted,
    Draft,
    Outcome,
    Trial,
    admit,
    keep_stamps,
    skip_known,
    stamp,
)
from ledger.write.streams import BuyerStream, PolicyStream

Clock = Callable[[], datetime.datetime]
MAX_ATTEMPTS = 8
SAVE_BATCH = 10_000  # events per batch of a large write (see `_record_in_batches`)


def utc_now() -> datetime.datetime:
    """The wall clock, in UTC. Only the write side reads it."""
    return datetime.datetime.now(datetime.UTC)


class Ledger:
    """One ledger (one policy's book) in one store."""

    def __init__(self, location: str, *, clock: Clock = utc_now) -> None:
        self.location = location
        self.store: LedgerStore = open_store(location)
        self.clock = clock
        self._policy: tuple[int, list[Event]] | None = None  # (last policy notification, its events)

    def close(self) -> None:
        if "exposure_model" in self.__dict__:
            self.exposure_model.close()
        self.store.close()

    @functools.cached_property
    def exposure_model(self) -> ExposureModel:
        """The read model of every buyer's exposure timeline (ledger/readmodels/exposure.py)."""
        return ExposureModel(self, Location.parse(self.location).read_models)

    def fold_afresh(self) -> None:
        """Answer from now on from read models rebuilt in memory from the stored events,
        not from the cache beside the ledger (for checks that must not trust it)."""
        if "exposure_model" in self.__dict__:
            self.exposure_model.close()
        self.__dict__["exposure_model"] = ExposureModel(self, ":memory:")

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading

    def policy_stream(self) -> PolicyStream:
        """The policy stream as recorded now."""
        return PolicyStream(events=self.policy_events())

    def policy_events(self) -> list[Event]:
        """The policy stream's events in recorded order (a fresh list: callers may add to it).

        Kept between calls while the index shows no newer policy event: an append reads the
        terms three times, and decoding them each time was a third of its cost."""
        mark = self.store.index.last_policy_event()
        if self._policy is None or self._policy[0] != mark:
            self._policy = (mark, self.store.stream_events(POLICY_STREAM))
        return list(self._policy[1])

    def terms(self) -> PolicyTerms:
        """The policy terms in force after every amendment (refuses if none)."""
        return self.policy_stream().current()

    def has_policy(self) -> bool:
        return self.policy_stream().started is not None

    def buyer_events(self, buyer: str, known_at: datetime.datetime | None = None) -> list[Event]:
        """One buyer's events in recorded order, as known at `known_at`."""
        events = self.store.stream_events(buyer_stream(buyer))
        if known_at is not None:
            events = [e for e in events if e.recorded <= known_at]
        return events

    def events(self, known_at: datetime.datetime | None = None) -> Iterator[Event]:
        """Every event in recorded order, as known at `known_at`, page by page."""
        stop = None if known_at is None else self.store.index.cutoff(format_recorded(known_at))
        return iter(()) if stop == 0 else self.store.replay(stop)

    def log(
        self,
        *,
        buyer: str | None = None,
        types: Sequence[str] = (),
        effective_from: datetime.date | None = None,
        effective_to: datetime.date | None = None,
        known_at: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events matching the filters, in recorded order; selected on the index, not decoded first."""
        rows = self.store.index.select_indexed(
            buyer=buyer,
            types=types,
            effective_from=effective_from.isoformat() if effective_from else None,
            effective_to=effective_to.isoformat() if effective_to else None,
            recorded_upto=format_recorded(known_at) if known_at else None,
            limit=limit,
        )
        return [self.store.decode(topic, state) for _, topic, state in rows]

    def count(self) -> int:
        return self.store.index.count()

    def buyers(self) -> list[str]:
        """Every registered buyer, in order, from the index (nothing decoded)."""
        return self.store.index.buyers()

    def positions(self, event_ids: Iterable[str]) -> dict[str, int]:
        """The log position (notification id) of each of these events."""
        return self.store.index.positions(event_ids)

    def last_recorded(self) -> str | None:
        """The latest recorded stamp, as stored; None for an empty ledger."""
        return self.store.index.last_recorded()

    def log_position(self) -> tuple[int, str | None]:
        """The last notification id and the id of the ledger's first event."""
        return self.store.index.position()

    def streams_touched_after(self, position: int) -> set[str | None]:
        """The buyers (None: the policy) with an event after log position `position`."""
        return self.store.index.touched_after(position)

    def earliest_effective_after(self, recorded: str) -> dict[str | None, str]:
        """Per stream (None: the policy), the earliest `effective` of events recorded after `recorded`."""
        return self.store.index.earliest_effective_after(recorded)

    # ------------------------------------------------------------ writing

    def load_policy(self, terms: PolicyTerms, *, effective: datetime.date | None = None) -> Outcome:
        """Start the ledger's policy, or amend it (effective `effective`, default today)."""
        if not self.has_policy():
            event: Event = PolicyStarted(effective=terms.start, terms=terms)
        else:
            event = PolicyAmended(effective=effective or self.clock().date(), terms=terms)
        return self.record([Draft(event)])

    def parse(
        self,
        rows: Iterable[tuple[int | None, Mapping[str, Any]]],
        source: str | None = None,
        *,
        currency: str | None = None,
    ) -> list[Draft]:
        """Read raw events (line, fields) into drafts; the first bad one refuses them all.

        Money is read in `currency`, by default the ledger's policy currency
        (or that of a `policy_started` among the rows).
        """
        drafts = []
        currency = currency or self._currency()
        # Taken one at a time: a caller may hand an iterator that lets each row go once read.
        with collector_paused(len(rows) if isinstance(rows, Sized) else BULK):
            for line, raw in rows:
                try:
                    event = parse_event(raw, currency)
                except LedgerError as problem:
                    raise problem.located(source=source, line=line) from None
                if isinstance(event, (PolicyStarted, PolicyAmended)):
                    currency = event.terms.currency
                drafts.append(Draft(event, source, line))
        return drafts

    def _currency(self) -> str:
        """The policy currency; with no policy yet a placeholder (such events are refused
        when admitted, and a `policy_started` among the rows sets the real one)."""
        return self.terms().currency if self.has_policy() else "XXX"

    @staticmethod
    def starting_draft(terms: PolicyTerms, following: Sequence[Draft], source: str | None = None) -> Draft:
        """The `policy_started` of a file that carries its own policy.

        When the file's events carry recorded stamps (a historical ledger),
        the policy is stamped one second before the earliest of them and of
        the start date's midnight, so that it is recorded before all of them.
        """
        stamps = [d.event.recorded for d in following if d.event.recorded != UNRECORDED]
        recorded = UNRECORDED
        if stamps:
            midnight = datetime.datetime.combine(terms.start, datetime.time(tzinfo=datetime.UTC))
            recorded = min(min(stamps), midnight) - datetime.timedelta(seconds=1)
        return Draft(PolicyStarted(effective=terms.start, terms=terms, recorded=recorded), source)

    def append(self, raw: Mapping[str, Any], *, source: str | None = None) -> Outcome:
        """Record one event given in its public form."""
        return self.record(self.parse([(None, raw)], source))

    def record(
        self,
        drafts: Sequence[Draft],
        *,
        keep_recorded: bool = False,
        progress: ProgressHook | None = None,
    ) -> Outcome:
        """Record `drafts` atomically: all of them (less known keys) or none.

        Retries a bounded number of times when another writer got there
        first; the retry re-reads the streams, so its checks see that write.
        """
        for attempt in range(MAX_ATTEMPTS):
            try:
                with collector_paused(len(drafts)):
                    return self._record_once(drafts, keep_recorded=keep_recorded, progress=progress)
            except ConcurrencyConflict:
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise LedgerError(
            f"other writers kept changing the ledger; gave up after {MAX_ATTEMPTS} attempts and recorded nothing"
        )

    def trial(self, drafts: Sequence[Draft], *, progress: ProgressHook | None = None) -> Trial:
        """What `record` would do now, recording nothing (a dry run).

        Instead of stopping at the first refusal it checks every draft and
        collects the refused ones; a refused draft is left out of the state
        the later drafts are checked against, as if it had never been given.
        """
        outcome = Outcome()
        fresh = self._stamp(self._skip_known(drafts, outcome), False, outcome)
        trial = Trial(outcome)
        self._admit(fresh, outcome, progress, trial)
        return trial

    def _record_once(
        self, drafts: Sequence[Draft], *, keep_recorded: bool, progress: ProgressHook | None
    ) -> Outcome:
        outcome = Outcome()
        fresh = self._stamp(self._skip_known(drafts, outcome), keep_recorded, outcome)
        if len(fresh) > SAVE_BATCH:
            self._record_in_batches(fresh, outcome, progress)
            return outcome
        admitted = self._admit(fresh, outcome, progress)
        if admitted:
            self._save([Envelope(stream_of(a.event), a.version, a.event) for a in admitted])
        return outcome

    def _record_in_batches(self, fresh: Sequence[Draft], outcome: Outcome, progress: ProgressHook | None) -> None:
        """A large write: every stream it touches read first (on an in-memory ledger a reader
        waits for the writer) and every draft admitted (drafts of one moment are checked
        together, see ledger/write/pipeline.py), then saved a batch at a time in one
        transaction (the store's `bulk_append`): only one batch's stored forms are alive at once."""
        policy = self.policy_stream()
        buyers: dict[str, BuyerStream] = {}
        touched = {d.event.buyer for d in fresh if isinstance(d.event, BuyerEvent)}
        if any(isinstance(d.event, PolicyAmended) for d in fresh):
            touched |= set(self.buyers())  # an amendment re-checks every buyer
        for buyer in sorted(touched):
            self._buyer_stream(buyers, buyer)

        def recheck() -> None:
            for buyer in sorted(buyers):
                buyers[buyer].recheck(policy.terms_at)

        admitted = admit(fresh, policy, buyers.__getitem__, recheck, outcome, progress)
        with self._saving(), self.store.bulk_append() as write:
            for start in range(0, len(admitted), SAVE_BATCH):
                envelopes = [Envelope(stream_of(a.event), a.version, a.event) for a in admitted[start:start + SAVE_BATCH]]
                write(envelopes, _index_rows(envelopes))

    def _admit(
        self, fresh: Sequence[Draft], outcome: Outcome, progress: ProgressHook | None, trial: Trial | None = None
    ) -> list[Admitted]:
        """Each draft against its stream, each stream read once for the whole write."""
        policy = self.policy_stream()
        buyers: dict[str, BuyerStream] = {}
        return admit(
            fresh, policy, lambda buyer: self._buyer_stream(buyers, buyer),
            lambda: self._recheck_buyers(buyers, policy), outcome, progress, trial,
        )

    def _recheck_buyers(self, buyers: dict[str, BuyerStream], policy: PolicyStream) -> None:
        """An amendment may be back-dated: every buyer's events must still pass.

        Reads every buyer stream; amendments are rare, deliberate acts.
        """
        for buyer in sorted(set(self.buyers()) | set(buyers)):
            self._buyer_stream(buyers, buyer).recheck(policy.terms_at)

    def _buyer_stream(self, buyers: dict[str, BuyerStream], buyer: str) -> BuyerStream:
        """The buyer's stream as stored, read once per write and kept for the rest of it."""
        stream = buyers.get(buyer)
        if stream is None:
            stream = buyers[buyer] = BuyerStream.replay(self.buyer_events(buyer))
        return stream

    def _stamp(self, drafts: Sequence[Draft], keep_recorded: bool, outcome: Outcome) -> list[Draft]:
        """Give each draft its id and recorded stamp, from the ledger's clock and last stamp."""
        last_text = self.store.index.last_recorded()
        last = parse_recorded(last_text) if last_text else None
        now = self.clock().astimezone(datetime.UTC)
        return keep_stamps(drafts, last, now) if keep_recorded else stamp(drafts, last, now, outcome)

    def _skip_known(self, drafts: Sequence[Draft], outcome: Outcome) -> list[Draft]:
        """Drop drafts whose key (or given id) is already recorded.

        Runs before stamping, so that re-running a --keep-recorded import skips
        its events instead of refusing their (old) stamps.
        """
        keys = [d.event.key for d in drafts if d.event.key]
        given = [str(d.event.id) for d in drafts if d.event.id != NIL_ID]
        known_keys = self.store.index.find_keys(keys) if keys else {}
        known_ids = self.store.index.find_ids(given) if given else set()
        return skip_known(drafts, known_keys, known_ids, outcome)

    def _save(self, envelopes: list[Envelope]) -> None:
        """Write in one transaction; another writer's commit becomes a ConcurrencyConflict."""
        with self._saving():
            self.store.append(envelopes, _index_rows(envelopes))

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """Around a write: another writer's commit becomes a ConcurrencyConflict, a database
        failure a refusal that says nothing was recorded."""
        try:
            yield
        except Exception as problem:
            if _is_conflict(problem):
                raise ConcurrencyConflict(str(problem)) from None
            if isinstance(problem, (OperationalError, DatabaseError, sqlite3.Error)):
                raise LedgerError(f"cannot write the ledger: {problem}; nothing was recorded", field="db") from None
            raise


def _index_rows(envelopes: Sequence[Envelope]) -> list[IndexRow]:
    """The index rows of envelopes about to be saved (each recorded stamp formatted once)."""
    stamps: dict[datetime.datetime, str] = {}
    rows = []
    for envelope in envelopes:
        moment = envelope.event.recorded
        text = stamps.get(moment) or stamps.setdefault(moment, format_recorded(moment))
        rows.append(IndexRow.of(envelope.event, text))
    return rows


def _is_conflict(problem: Exception) -> bool:
    """Another writer got there first: a stream version or key taken, the recorded
    axis moved, a lock held. Anything else (a full disk, a lost connection) is not."""
    import psycopg

    if isinstance(problem, (IntegrityError, psycopg.IntegrityError, psycopg.errors.LockNotAvailable)):
        return True
    # After a conflict rolled back the transaction that prepared a statement, psycopg may
    # still name it once ("prepared statement ... does not exist"); the retry prepares it again.
    if isinstance(problem.__cause__ or problem, psycopg.errors.InvalidSqlStatementName):
        return True
    return isinstance(problem, (OperationalError, sqlite3.OperationalError)) and "locked" in str(problem)
