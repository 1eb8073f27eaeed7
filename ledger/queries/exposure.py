"""`exposure` (one buyer, or the book) and `exposure_diff` (the same date known at two times)."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

from ledger.queries import answers
from ledger.queries.arguments import ExposureArgs, ExposureDiffArgs, Query
from ledger.queries.book import cover_of, not_registered
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import BuyerRegistered, Event, format_recorded, to_public
from ledger.vocabulary.money import format_minor
from ledger.vocabulary.order import known_at as recorded_by
from projections.cover import buyer_cover
from projections.exposure import EXPOSURE_FIGURES, Exposure, book_totals
from projections.terms import TermsTimeline

ExposureAnswer = answers.BuyerExposure | answers.BookExposure


def buyer_exposure(ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> Exposure:
    """One buyer's exposure: from the read model when nothing recorded after `known_at` reaches
    back to `as_of`, else folded from the events known then."""
    model = ledger.exposure_model
    if known_at is None or model.unchanged_since(known_at, as_of)(buyer):
        exposure = model.buyer_on(buyer, as_of)
        if exposure is None:
            raise not_registered(buyer, as_of, known_at)
        return exposure
    return Exposure.of(cover_of(ledger, buyer, as_of, known_at), known_terms(ledger.policy_events(), known_at))


def known_terms(policy: Sequence[Event], known_at: datetime.datetime | None) -> TermsTimeline:
    """The policy's terms over time as known at `known_at` (what `buyer_cover` folds under)."""
    return TermsTimeline(recorded_by(policy, known_at))


def book_exposures(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None,
    streams: Callable[[str], list[Event]] | None = None,
) -> list[tuple[str, Exposure]]:
    """Every registered buyer's exposure, in buyer order: the read model's, refolding only
    the buyers with something recorded after `known_at` that reaches back to `as_of`.

    `streams` reads a buyer's events for those refolds (default `ledger.buyer_events`): a
    caller asking about many dates passes a cached reader, to read each stream once."""
    model = ledger.exposure_model
    known_now = model.book_on(as_of)
    if known_at is None:
        return known_now
    unchanged = model.unchanged_since(known_at, as_of)
    stored = dict(known_now)
    policy = ledger.policy_events()
    terms = known_terms(policy, known_at)
    rows = []
    for buyer in ledger.buyers():
        if unchanged(buyer):
            if buyer in stored:
                rows.append((buyer, stored[buyer]))
            continue
        cover = buyer_cover(buyer, (streams or ledger.buyer_events)(buyer), policy, as_of, known_at)
        if cover.registered is not None:
            rows.append((buyer, Exposure.of(cover, terms)))
    return rows


def exposure_answer(registered: BuyerRegistered, exposure: Exposure, currency: str) -> answers.BuyerExposure:
    """One buyer's name and country, its figures as decimal strings, and its status."""
    money = functools.partial(format_minor, currency=currency)
    return answers.BuyerExposure(
        buyer=registered.buyer, name=registered.name, country=registered.country, outstanding=money(exposure.outstanding), overdue=money(exposure.overdue),
        insured=money(exposure.insured), uninsured=money(exposure.uninsured), limit=money(exposure.limit),
        top_up=money(exposure.top_up), headroom=money(exposure.headroom), available=money(exposure.available),
        status=cast(answers.ExposureStatus, exposure.status),
        not_available=cast(answers.NotAvailable, exposure.not_available),
    )


def _exposure(ledger: LedgerReader, arguments: ExposureArgs) -> ExposureAnswer:
    """`exposure` for one buyer, or for the book: the totals of the buyers of the chosen statuses
    and country (all by default), and their rows in `sort` order, the first `top` of them."""
    currency = ledger.terms().currency
    as_of = arguments.as_of or ledger.clock().date()
    known_at, buyer = arguments.known_at, arguments.buyer
    if buyer is not None:
        for name in ("statuses", "countries", "top"):
            if getattr(arguments, name) is not None:
                raise LedgerError(f"{name} chooses among the book's buyers: not with one buyer", field=name)
        exposure = buyer_exposure(ledger, buyer, as_of, known_at)
        return exposure_answer(registrations(ledger, known_at, buyer)[buyer], exposure, currency)
    registered = registrations(ledger, known_at)
    rows = [
        (registered[name], row) for name, row in book_exposures(ledger, as_of, known_at)
        if (arguments.statuses is None or row.status in arguments.statuses)
        and (arguments.countries is None or registered[name].country in arguments.countries)
    ]
    totals = book_totals(row for _, row in rows)
    rows.sort(key=_sort_key(arguments.sort or ("buyer" if arguments.top is None else "outstanding")))
    money = functools.partial(format_minor, currency=currency)
    return answers.BookExposure(
        outstanding=money(totals["outstanding"]), overdue=money(totals["overdue"]), insured=money(totals["insured"]),
        uninsured=money(totals["uninsured"]), limit=money(totals["limit"]), top_up=money(totals["top_up"]),
        headroom=money(totals["headroom"]), available=money(totals["available"]), matched=len(rows),
        buyers=tuple(exposure_answer(who, row, currency) for who, row in rows[:arguments.top]),
    )


def registrations(
    ledger: LedgerReader, known_at: datetime.datetime | None, buyer: str | None = None
) -> dict[str, BuyerRegistered]:
    """Each buyer's registration (its name and country) as known at `known_at`: one index read."""
    found = ledger.log(buyer=buyer, types=("buyer_registered",), known_at=known_at)
    return {event.buyer: event for event in found if isinstance(event, BuyerRegistered)}


def _sort_key(sort: str) -> Callable[[tuple[BuyerRegistered, Exposure]], tuple[Any, ...]]:
    """Rows by a figure, largest first, or by name or buyer, A to Z; ties by buyer."""
    if sort == "buyer":
        return lambda row: (row[0].buyer,)
    if sort == "name":
        return lambda row: (row[0].name.casefold(), row[0].buyer)
    return lambda row: (-getattr(row[1], sort), row[0].buyer)


exposure_query = Query(ExposureArgs, _exposure)


def rows_of(answer: ExposureAnswer) -> tuple[answers.BuyerExposure, ...]:
    """The buyers' rows of an exposure answer: the one buyer's, or the book's."""
    return (answer,) if isinstance(answer, answers.BuyerExposure) else answer.buyers


# ---------------------------------------------------------------- exposure_diff

DIFF_FIELDS = (*EXPOSURE_FIGURES, "status", "not_available")


def _exposure_diff(ledger: LedgerReader, arguments: ExposureDiffArgs) -> answers.ExposureDiff:
    """`exposure_diff`: the same `as_of` (for one buyer, or the book) known at two recorded
    times (`known_at`, two of them, in either order): the figures that changed, by buyer,
    and the late events behind them (recorded in between, effective by `as_of`)."""
    as_of = arguments.as_of or ledger.clock().date()
    early, late = arguments.known_at
    buyer = arguments.buyer
    before = rows_of(_exposure(ledger, ExposureArgs(buyer=buyer, as_of=as_of, known_at=early)))
    after = rows_of(_exposure(ledger, ExposureArgs(buyer=buyer, as_of=as_of, known_at=late)))
    rows_before = {row.buyer: row for row in before}
    rows_after = {row.buyer: row for row in after}
    currency = ledger.terms().currency
    late_events = [
        e for e in ledger.log(buyer=buyer, effective_to=as_of, known_at=late)
        if e.recorded > early
    ]
    changes = []
    for name in sorted(set(rows_before) | set(rows_after)):
        changed = _changed(rows_before.get(name), rows_after.get(name))
        if changed:
            because = tuple(_public(e, currency) for e in late_events if getattr(e, "buyer", None) == name)
            changes.append(answers.BuyerChange(buyer=name, changed=changed, because=because))
    return answers.ExposureDiff(
        as_of=as_of.isoformat(), known_at=(format_recorded(early), format_recorded(late)), changes=tuple(changes),
        late_events=len(late_events),
    )


exposure_diff_query = Query(ExposureDiffArgs, _exposure_diff)


def _changed(
    old: answers.BuyerExposure | None, new: answers.BuyerExposure | None
) -> dict[str, answers.FieldChange]:
    """Each figure (and the status) that differs; None: the buyer was not in the book then."""
    changes = {}
    for field in DIFF_FIELDS:
        before = None if old is None else str(getattr(old, field))
        after = None if new is None else str(getattr(new, field))
        if before != after:
            changes[field] = answers.FieldChange(before=before, after=after)
    return changes


def _public(event: Event, currency: str) -> answers.PublicEvent:
    """The event as `log` prints it, its dates as text."""
    return {
        name: value.isoformat() if isinstance(value, datetime.date) else value
        for name, value in to_public(event, currency).items()
    }
