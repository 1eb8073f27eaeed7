"""Copy one ledger into an empty one, on either backend, and verify the copy.

A copy moves the stored events as they are: the same stream and version,
topic and state bytes (so event ids, keys and recorded stamps), in the
source's recorded order, each with the `ledger_index` row a live write would
have given it. The events are not admitted again: the source already
admitted them, and the verification compares everything a user can see.

All or nothing: every batch is written inside one destination transaction,
which commits only after the last one, so a failure (a bad stored event, a
lost connection, Ctrl-C) leaves the destination as empty as it was: the
store's `bulk_insert`.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent

from ledger.queries.claims import claim_answer, claims_of
from ledger.queries.exposure import exposure_query
from ledger.queries.obligations import obligations_query
from ledger.queries.premium import premium_query
from ledger.queries.summary import summary_query
from ledger.queries.turnover import turnover_query
from ledger.service import Ledger
from ledger.store import IndexRow
from ledger.vocabulary.bulk import ProgressHook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import format_recorded
from projections.exposure import policy_periods

BATCH = 5000
SHOW_DIFFERENCES = 20  # a broken copy can differ everywhere; the first few say enough


def copy_events(source: Ledger, destination: Ledger, progress: ProgressHook | None = None) -> int:
    """Copy every event of `source` into the empty `destination`; return how many.

    Refuses a destination that holds any event. Events appended to the source
    while copying are not copied: the copy stops at the last notification
    recorded when it started, so it is one consistent state of the source.
    """
    stop = source.store.last_notification()
    copied = 0
    try:
        with destination.store.bulk_insert() as bulk:
            if bulk.held:
                raise LedgerError(f"the destination already holds {bulk.held} events; a copy goes only into an "
                                  "empty ledger", field="to")
            start = 1
            while start <= stop:
                page = source.store.read_notifications(start, BATCH, stop)
                if not page:
                    break
                bulk.write([_stored(n) for n in page], [_index_row(source, n) for n in page])
                copied += len(page)
                if progress:
                    progress(len(page))
                start = page[-1].id + 1
    except PersistenceError as problem:
        raise LedgerError(f"cannot write the copy: {problem}; nothing was copied", field="to") from None
    return copied


def _stored(notification: Notification) -> StoredEvent:
    originator = notification.originator_id
    return StoredEvent(
        originator_id=originator if isinstance(originator, uuid.UUID) else uuid.UUID(str(originator)),
        originator_version=notification.originator_version,
        topic=notification.topic,
        state=bytes(notification.state),
    )


def _index_row(source: Ledger, notification: Notification) -> IndexRow:
    try:
        return IndexRow.of(source.store.decode(notification.topic, notification.state))
    except (msgspec.DecodeError, LedgerError) as problem:
        raise LedgerError(
            f"stored event {notification.id} of the source cannot be read "
            f"({problem.message if isinstance(problem, LedgerError) else problem}); nothing was copied",
            field="from",
        ) from None


# ---------------------------------------------------------------- verification

@dataclass(frozen=True)
class Check:
    """One comparison of the verification: a query and its arguments."""

    label: str
    run: Callable[[Ledger], Any]


def verify(
    source: Ledger,
    destination: Ledger,
    as_of: Sequence[datetime.date] = (),
    progress: ProgressHook | None = None,
) -> list[str]:
    """Every difference between the two ledgers, as lines (none: the copy is faithful).

    Compares the event count, every event (with its stream and version) in
    recorded order, then every query of the book on both at the `as_of`
    dates (default: see `verification_dates`).
    """
    for ledger in (source, destination):
        ledger.fold_afresh()  # compare what the stored events say, not what a cache kept
    differences: list[str] = []
    if source.count() != destination.count():
        differences.append(f"event count: {source.count()} in the source, {destination.count()} in the copy")
    middle = _compare_events(source, destination, differences, progress)
    if source.has_policy():
        checks = query_checks(source, as_of or verification_dates(source), middle)
        for check in checks:
            expected, got = _answer(check, source), _answer(check, destination)
            if expected != got:
                differences.append(f"{check.label}: {_first_difference(expected, got)}")
            if progress:
                progress(1)
    return differences


def verification_steps(source: Ledger, as_of: Sequence[datetime.date] = ()) -> int:
    """How many progress steps `verify` takes (events, then queries), for a progress bar."""
    steps = source.count()
    if source.has_policy():
        steps += len(query_checks(source, as_of or verification_dates(source), None))
    return steps


def _compare_events(
    source: Ledger, destination: Ledger, differences: list[str], progress: ProgressHook | None
) -> datetime.datetime | None:
    """Compare the logs event by event; return the recorded stamp of the middle event."""
    middle_position = source.count() // 2 + 1
    middle = None
    pairs = itertools.zip_longest(_placed(source), _placed(destination))
    for position, (expected, got) in enumerate(pairs, 1):
        if expected is not None and position == middle_position:
            middle = expected[2].recorded
        if expected != got:
            differences.append(f"event {position}: {_describe(expected)} in the source, {_describe(got)} in the copy")
        if progress and position % 1000 == 0:
            progress(1000)
    if progress:
        progress(source.count() % 1000)
    return middle


def _placed(ledger: Ledger) -> Iterator[tuple[uuid.UUID, int, Any]]:
    """(stream, version, event) of every event, in recorded order."""
    start = 1
    while True:
        page = ledger.store.read_notifications(start, BATCH)
        for n in page:
            stream = n.originator_id if isinstance(n.originator_id, uuid.UUID) else uuid.UUID(str(n.originator_id))
            yield stream, n.originator_version, ledger.store.decode(n.topic, n.state)
        if len(page) < BATCH:
            return
        start = page[-1].id + 1


def _describe(placed: tuple[uuid.UUID, int, Any] | None) -> str:
    if placed is None:
        return "nothing"
    stream, version, event = placed
    return f"{event.type} {event.id} recorded {format_recorded(event.recorded)} (stream {stream} v{version})"


def verification_dates(ledger: Ledger) -> list[datetime.date]:
    """The middle and the end of the policy period, and the day its last declaration falls due
    (when the premium adjustment is invoiced): three dates that see most rules at work."""
    terms = ledger.terms()
    days = (terms.end - terms.start).days
    dates = [terms.start + datetime.timedelta(days=days // 2), terms.end]
    if terms.premium is not None:
        dates.append(terms.premium.declaration_due(terms.end))
    return sorted(set(dates))


def query_checks(
    ledger: Ledger, dates: Sequence[datetime.date], middle: datetime.datetime | None
) -> list[Check]:
    """Every query of the book: the summary; exposure (book and each buyer), obligations, premium and
    claims at each date, turnover of each declaration period; the book's exposure once
    more as known at the middle of the log, which reads the recorded index."""
    buyers = ledger.buyers()
    checks: list[Check] = [Check("summary", _query(summary_query, {}))]
    for day in dates:
        on = {"as_of": day}
        checks.append(Check(f"exposure of the book at {day}", _query(exposure_query, on)))
        checks += [Check(f"exposure of {b} at {day}", _query(exposure_query, {**on, "buyer": b})) for b in buyers]
        checks.append(Check(f"obligations at {day}", _query(obligations_query, on)))
        checks.append(Check(f"premium at {day}", _query(premium_query, on)))
        checks.append(Check(f"claims at {day}", _claims(day)))
    terms = ledger.terms()
    for period, _first, _last in policy_periods(terms):
        checks.append(Check(f"turnover of {period}", _query(turnover_query, {"period": period})))
    if middle is not None and dates:
        known = {"as_of": dates[-1], "known_at": middle}
        checks.append(Check(f"exposure of the book at {dates[-1]} known at {format_recorded(middle)}",
                            _query(exposure_query, known)))
    return checks


def _query(query: Callable[[Ledger, Mapping[str, Any]], Any], arguments: Mapping[str, Any]) -> Callable[[Ledger], Any]:
    return lambda ledger: msgspec.to_builtins(query(ledger, arguments))  # compared field by field


def _claims(day: datetime.date) -> Callable[[Ledger], Any]:
    def run(ledger: Ledger) -> Any:
        currency = ledger.terms().currency
        return [msgspec.to_builtins(claim_answer(claim, currency)) for claim in claims_of(ledger, day, None)]

    return run


def _answer(check: Check, ledger: Ledger) -> Any:
    """The query's values, or its refusal: a refusal on both sides is agreement too."""
    try:
        return check.run(ledger)
    except LedgerError as problem:
        return f"refused: {problem}"


def _first_difference(expected: Any, got: Any, path: str = "") -> str:
    """Where two query answers first differ, e.g. `buyers[3].insured: 100.00 / 90.00`."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            if expected.get(key) != got.get(key):
                return _first_difference(expected.get(key), got.get(key), f"{path}.{key}" if path else str(key))
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{path or 'rows'}: {len(expected)} rows in the source, {len(got)} in the copy"
        for index, (a, b) in enumerate(zip(expected, got, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{index}]")
    return f"{path or 'value'}: {expected!r} in the source, {got!r} in the copy"


__all__ = ["BATCH", "SHOW_DIFFERENCES", "copy_events", "verification_dates", "verification_steps", "verify"]
