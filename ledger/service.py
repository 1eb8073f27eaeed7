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
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import msgspec
from eventsourcing.persistence import DatabaseError, IntegrityError, OperationalError

from ledger.readmodels.book import BookModel
from ledger.readmodels.exposure import ExposureModel
from ledger.store import (
    GENESIS,
    POLICY_STREAM,
    Envelope,
    IndexRow,
    LedgerStore,
    TokenTable,
    buyer_stream,
    memory_tables,
    model_tables,
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
    CLOCK_TOLERANCE_VARIABLE,
    Admitted,
    Draft,
    Outcome,
    Stamps,
    Trial,
    admit,
    clock_bound,
    keep_stamps,
    skip_known,
    stamp,
)
from ledger.write.streams import BuyerStream, PolicyStream

Clock = Callable[[], datetime.datetime]
MAX_ATTEMPTS = 8
SAVE_BATCH = 10_000  # events per batch of a large write (see `_record_in_batches`)
UNCHANGED_TERMS = "the terms are those in force; nothing recorded"
READ_MODELS: dict[str, type[ExposureModel]] = {"exposure_model": ExposureModel, "book_model": BookModel}


class WritersRaced(LedgerError):
    """A write that kept losing the race to other writers and gave up (the HTTP API answers 409)."""


def utc_now() -> datetime.datetime:
    """The wall clock, in UTC. Only the write side reads it."""
    return datetime.datetime.now(datetime.UTC)


DEFAULT_CLOCK_TOLERANCE = datetime.timedelta(minutes=5)


def clock_tolerance() -> datetime.timedelta:
    """How far the ledger's last stamp may be ahead of a writer's clock: CREDITLEDGER_CLOCK_TOLERANCE
    seconds, 5 minutes by default."""
    text = os.environ.get(CLOCK_TOLERANCE_VARIABLE)
    if text is None:
        return DEFAULT_CLOCK_TOLERANCE
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 10**10:  # also refuses nan and inf
        raise LedgerError(f"{text!r} is not a number of seconds (e.g. 300)", field=CLOCK_TOLERANCE_VARIABLE)
    return datetime.timedelta(seconds=seconds)


class Ledger:
    """One ledger (one policy's book) in one store."""

    def __init__(self, location: str, *, clock: Clock | None = None) -> None:
        self.location = location
        self.store: LedgerStore = open_store(location)
        # On PostgreSQL every writer stamps by the server's clock, not its own (docs/reliability.md).
        self.clock: Clock = clock or self.store.server_clock() or utc_now
        self._policy: tuple[int, list[Event]] | None = None  # (last policy notification, its events)

    def close(self) -> None:
        for model in READ_MODELS:
            if model in self.__dict__:
                self.__dict__[model].close()
        self.store.close()

    @functools.cached_property
    def exposure_model(self) -> ExposureModel:
        """The read model of every buyer's exposure timeline (ledger/readmodels/exposure.py), in
        the ledger's database; in memory when that refuses the writes."""
        shared = Location.parse(self.location).kind != "memory"  # another process can open it
        return ExposureModel(self, model_tables(self.store), memory_tables,
                             (lambda: Ledger(self.location)) if shared else None)

    @functools.cached_property
    def book_model(self) -> BookModel:
        """The read model of every buyer's facts and the book's sales (ledger/readmodels/book.py)
        that the premium account, turnover and the claims register read; where the exposure one is."""
        return BookModel(self, model_tables(self.store), memory_tables)

    def catch_up_models(self) -> int:
        """Catch every read model up (serve's follower); returns the buyers refolded."""
        return self.exposure_model.catch_up() + self.book_model.catch_up()

    def fold_afresh(self) -> None:
        """Answer from now on from read models rebuilt in memory from the stored events,
        not from the ones stored in the ledger (for checks that must not trust them)."""
        for model, kind in READ_MODELS.items():
            if model in self.__dict__:
                self.__dict__[model].close()
            self.__dict__[model] = kind(self, memory_tables())

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
        for event in events:
            if getattr(event, "buyer", None) != buyer:  # only an edit of the database puts it there
                raise LedgerError(f"event {event.id} is stored in the stream of buyer {buyer}, not its own: the "
                                  "database was changed behind the ledger's back; run `creditledger verify`", field="db")
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
        return [self.store.decode(topic, state, n) for n, topic, state in rows]

    def page(
        self, after: int, limit: int, *, buyer: str | None = None, types: Sequence[str] = ()
    ) -> list[tuple[int, Event]]:
        """Up to `limit` events after log position `after`, each with its position, in recorded order."""
        rows = self.store.index.select_indexed(after=after, buyer=buyer, types=types, limit=limit)
        return [(position, self.store.decode(topic, state, position)) for position, topic, state in rows]

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

    def head(self, known_at: datetime.datetime | None = None) -> tuple[int, str]:
        """The chain's head: (notification id, hash) of its last link, the anchor every write
        reports and `verify --expect-head` checks later; (0, zeros) for an empty ledger.
        With `known_at`: the link of the last event recorded by then (what an export holds)."""
        if known_at is None:
            return self.store.chain.head()
        position = self.store.index.cutoff(format_recorded(known_at))
        return (self.store.chain.link(position) if position else None) or (0, GENESIS)

    def chain_init(self) -> tuple[int, int, str]:
        """Chain a ledger that holds events but no hash chain (written before the chain, or its
        chain dropped), logged with the time: (events chained, head id, head hash). Never done
        on opening: a chain that vanished is a finding of `verify` until someone runs this."""
        return self.store.chain.chain_init(format_recorded(self.clock()))

    def chain_hash_at(self, position: int) -> str | None:
        """The hash chain's link at log position `position` (None: no link there)."""
        return self.store.chain.hash_at(position)

    def streams_touched_after(self, position: int) -> set[str | None]:
        """The buyers (None: the policy) with an event after log position `position`."""
        return self.store.index.touched_after(position)

    def earliest_effective_after(self, recorded: str) -> dict[str | None, str]:
        """Per stream (None: the policy), the earliest `effective` of events recorded after `recorded`."""
        return self.store.index.earliest_effective_after(recorded)

    # ------------------------------------------------------------ the web service's tokens

    @functools.cached_property
    def tokens(self) -> TokenTable:
        """The write tokens of `creditledger serve`, and which token wrote which events."""
        return TokenTable(self.store.recorder)

    def note_writer(self, token: str, outcome: Outcome) -> None:
        """Note that the events `outcome` recorded were written with `token` (ledger/store/tokens.py)."""
        if outcome.recorded:
            positions = self.positions(str(event.id) for event in outcome.recorded).values()
            self.tokens.note_write(token, min(positions), max(positions), self.clock())

    # ------------------------------------------------------------ writing

    def load_policy(self, terms: PolicyTerms, *, effective: datetime.date | None = None) -> Outcome:
        """Start the ledger's policy, or amend it (effective `effective`, default today).

        Terms equal to those in force (on `effective`, or after every amendment) record
        nothing: an identical amendment would only add noise, dated today."""
        if not self.has_policy():
            event: Event = PolicyStarted(effective=terms.start, terms=terms)
        else:
            policy = self.policy_stream()
            if terms == (policy.terms_at(effective) if effective else policy.current()):
                return Outcome(warnings=[UNCHANGED_TERMS], head=self.head())
            event = PolicyAmended(effective=effective or self.clock().date(), terms=terms)
        return self.record([Draft(event)])

    def parse(
        self,
        rows: Iterable[tuple[int | None, Mapping[str, Any]]],
        source: str | None = None,
        *,
        currency: str | None = None,
        checked: bool = True,
    ) -> list[Draft]:
        """Read raw events (line, fields) into drafts; the first bad one refuses them all.

        Money is read in `currency`, by default the ledger's policy currency
        (or that of a `policy_started` among the rows). Not `checked`: see `parse_event`.
        """
        drafts = []
        currency = currency or self._currency()
        # Taken one at a time: a caller may hand an iterator that lets each row go once read.
        with collector_paused(len(rows) if isinstance(rows, Sized) else BULK):
            for line, raw in rows:
                try:
                    event = parse_event(raw, currency, checked=checked)
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
        refusal = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                with collector_paused(len(drafts)):
                    # A write that lost a race takes its turn: it cannot lose again (a large import
                    # beside a stream of small appends would lose every time).
                    return self._record_once(drafts, keep_recorded=keep_recorded, progress=progress,
                                             turn=attempt > 0)
            except ConcurrencyConflict as conflict:
                refusal = conflict.__cause__
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        if isinstance(refusal, LedgerError):  # refused every time: the refusal is the answer
            raise refusal
        raise WritersRaced(
            f"other writers kept changing the ledger; gave up after {MAX_ATTEMPTS} attempts and recorded nothing"
        )

    def trial(self, drafts: Sequence[Draft], *, progress: ProgressHook | None = None) -> Trial:
        """What `record` would do now, recording nothing (a dry run).

        Instead of stopping at the first refusal it checks every draft and
        collects the refused ones; a refused draft is left out of the state
        the later drafts are checked against, as if it had never been given.
        """
        outcome = Outcome()
        # Stamped on copies: the caller records the same drafts after, and prints the trial's.
        copies = [Draft(msgspec.structs.replace(d.event), d.source, d.line) for d in drafts]
        fresh = self._skip_known(copies, outcome)
        self._stamp(fresh, False, outcome)
        trial = Trial(outcome)
        self._admit(fresh, outcome, progress, trial)
        return trial

    def _record_once(
        self, drafts: Sequence[Draft], *, keep_recorded: bool, progress: ProgressHook | None, turn: bool = False
    ) -> Outcome:
        with contextlib.ExitStack() as held:
            if turn:
                with self._saving():  # a database error taking the turn refuses the write, as in a save
                    held.enter_context(self.store.write_turn())
            return self._check_and_save(drafts, keep_recorded, progress)

    def _check_and_save(self, drafts: Sequence[Draft], keep_recorded: bool, progress: ProgressHook | None) -> Outcome:
        outcome = Outcome()
        mark = self.store.last_notification()  # the ledger as its keys are looked up
        fresh = self._skip_known(drafts, outcome)
        stamps = self._stamp(fresh, keep_recorded, outcome)
        try:
            if len(fresh) > SAVE_BATCH:
                self._record_in_batches(fresh, outcome, progress)
                last = 0
            else:
                admitted = self._admit(fresh, outcome, progress)
                last = self._save([Envelope(stream_of(a.event), a.version, a.event) for a in admitted]) if admitted else 0
        except LedgerError as refusal:
            # Keys recorded by another writer after the look-up (a racing import of the same file)
            # would be refused here as, say, "already registered": a refusal stands only when the
            # ledger did not move during the checks; otherwise the write runs again and skips them.
            stamps.undo()
            if self.store.last_notification() != mark:
                raise ConcurrencyConflict("the ledger moved while this write was checked") from refusal
            raise
        except BaseException:
            stamps.undo()  # nothing was recorded: the drafts go back as they were given (a retry stamps them)
            raise
        # The link this write left (another writer may already have added more), else the ledger's.
        outcome.head = (self.store.chain.link(last) if last else None) or self.head()
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

        versions = {POLICY_STREAM: len(policy.events)} | {buyer_stream(b): len(s.events) for b, s in buyers.items()}
        admit(fresh, policy, buyers.__getitem__, recheck, outcome, progress, listed=False)
        # Each admitted event took its stream's next version, in input order: counted again as they
        # are saved, instead of a million (event, version) pairs kept; the folds are let go first.
        ends = {POLICY_STREAM: len(policy.events)} | {buyer_stream(b): len(s.events) for b, s in buyers.items()}
        buyers.clear()
        recorded = outcome.recorded
        with self._saving(), self.store.bulk_append() as bulk:
            for start in range(0, len(recorded), SAVE_BATCH):
                envelopes = []
                for event in recorded[start:start + SAVE_BATCH]:
                    stream = stream_of(event)
                    version = versions[stream] = versions[stream] + 1
                    envelopes.append(Envelope(stream, version, event))
                bulk.write(envelopes, _index_rows(envelopes))
            assert versions == ends, "the versions counted differ from those admitted"

    def record_verified(
        self, drafts: Sequence[Draft], source_head: str, *, progress: ProgressHook | None = None
    ) -> Outcome:
        """Record every event of a verified ledger, as it held them, into this empty ledger: the
        trusted path of a re-import (`import --keep-recorded --source-head`, docs/rules.md).

        The events are not admitted again, nor their keys looked up: they are saved as they come,
        each stream's versions counted in order, and the chain this ledger computes must end at
        `source_head`, the verified source's head, before the write commits. Equal heads prove every
        stored event, stream, version, stamp and place is what the source held, so what was skipped
        would have passed; any other head refuses the whole write."""
        outcome = Outcome()
        versions: dict[Any, int] = {}
        try:
            with collector_paused(len(drafts)), self._saving(), self.store.bulk_append() as bulk:
                if bulk.held:
                    raise LedgerError(f"the ledger holds {bulk.held} events; a verified ledger's events are recorded "
                                      "as it held them only into an empty one", field="source-head")
                keep_stamps(drafts, None, self.clock().astimezone(datetime.UTC))
                for start in range(0, len(drafts), SAVE_BATCH):
                    envelopes = []
                    for draft in drafts[start:start + SAVE_BATCH]:
                        stream = stream_of(draft.event)
                        version = versions[stream] = versions.get(stream, 0) + 1
                        envelopes.append(Envelope(stream, version, draft.event))
                    bulk.write(envelopes, _index_rows(envelopes))
                    if progress:
                        progress(len(envelopes))
                head = bulk.head()
                if head[1] != source_head:
                    raise LedgerError(
                        f"the events end the chain at {head[0]} {head[1][:16]}..., not at the source's head "
                        f"{source_head[:16]}...: they are not the verified ledger's events as it held them "
                        "(import without --source-head to check each one); nothing was recorded", field="source-head")
        except ConcurrencyConflict as conflict:  # under the write lock of an empty ledger: an id or key repeats
            raise LedgerError(f"cannot record the events as the source held them ({conflict}); nothing was recorded",
                              field="source-head") from None
        outcome.recorded = [draft.event for draft in drafts]
        outcome.head = head
        return outcome

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

    def _stamp(self, drafts: Sequence[Draft], keep_recorded: bool, outcome: Outcome) -> Stamps:
        """Give each draft its id and recorded stamp (in place), from the ledger's clock and last stamp."""
        last_text = self.store.index.last_recorded()
        last = parse_recorded(last_text) if last_text else None
        now = self.clock().astimezone(datetime.UTC)
        clock_bound(last, now, clock_tolerance())
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

    def _save(self, envelopes: list[Envelope]) -> int:
        """Write in one transaction and return the last notification id written."""
        with self._saving():
            ids = self.store.append(envelopes, _index_rows(envelopes))
        return int(ids[-1]) if ids else 0

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
