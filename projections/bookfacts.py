"""What the book's figures need of one buyer's stream: the premium account, turnover and the
claims register read these (kept per buyer by ledger/readmodels/book.py) instead of the whole
log (docs/design.md "Read models").

A buyer's facts are its sales summed by issue day and bucket (`buyer_sales`), the basis of its
fees (`fee_basis`), whether it bought a top-up, the events through which it can lose, and the
day of its loss as known now (`loss_on`). They are folded from the buyer's stream and the
policy's, as known now: the read model refolds a buyer whenever its stream changes, and
every buyer after a policy event.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import msgspec

from ledger.vocabulary.events import (
    BuyerRegistered,
    Event,
    Insolvency,
    InvoiceIssued,
    OverdueReported,
    PoliticalEvent,
    TopUpPurchased,
)
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import known_at as recorded_by
from projections.cover import buyer_cover, limit_decisions, of_types
from projections.premium import FeeBasis, fee_basis
from projections.terms import TermsTimeline
from projections.turnover import BuyerSales, Sale, buyer_sales

# Far enough that every loss the stream holds has happened by then (a fold at a later date than
# any event and waiting period finds the loss of every earlier date, and no other).
LOSSES_SETTLED = datetime.date(9000, 1, 1)


class LossFact(NamedTuple):
    """An event through which a buyer can lose: an insolvency, an overdue report, or (for a
    political loss) its registration, with the buyer's country."""

    kind: str  # insolvency | overdue_reported | buyer_registered
    effective: datetime.date
    country: str | None = None


_KINDS: dict[type, str] = {Insolvency: "insolvency", OverdueReported: "overdue_reported", BuyerRegistered: "buyer_registered"}
_MAY_LOSE = frozenset(_KINDS)


def loss_facts(events: Sequence[Event]) -> tuple[LossFact, ...]:
    """The events of a stream through which the buyer can lose, in stream order."""
    return tuple(
        LossFact(_KINDS[type(event)], event.effective, event.country if isinstance(event, BuyerRegistered) else None)
        for event in of_types(events, _MAY_LOSE)
    )


def may_lose(
    facts: Iterable[LossFact], political_countries: set[str], by: datetime.date | None = None,
    matures_by: Callable[[datetime.date], bool] | None = None,
) -> bool:
    """Whether a buyer can have a loss (dated by `by`, if given): an insolvency, an overdue
    report (protracted default: `matures_by` says whether the waiting period of a report made
    on that day ends by then), or a political event in its country."""
    for fact in facts:
        if fact.kind == "insolvency" and (by is None or fact.effective <= by):
            return True
        if fact.kind == "overdue_reported" and (matures_by is None or matures_by(fact.effective)):
            return True
        if fact.kind == "buyer_registered" and fact.country in political_countries:
            return True
    return False


def political_countries(policy: Iterable[Event]) -> set[str]:
    """The countries with a political event in the policy stream."""
    return {event.country for event in policy if isinstance(event, PoliticalEvent)}


def bought_top_up(events: Sequence[Event]) -> bool:
    """Whether a buyer's stream holds a top-up purchase (its cover then has premium lines)."""
    return TopUpPurchased in map(type, events)  # no Python-level step per event (event types have no subtypes)


class BuyerFacts(msgspec.Struct, frozen=True):
    """One registered buyer's facts, as known now (see the module docstring)."""

    buyer: str
    country: str
    registered: datetime.date
    top_up: bool
    fees: FeeBasis
    losses: tuple[LossFact, ...]
    # Its loss date as known now, or, where a fold at an earlier as_of may find another loss (a
    # delivery after a limit decision), its earliest loss event's day; None: no loss, whenever asked.
    loss_on: datetime.date | None


class DaySales(NamedTuple):
    """A buyer's sales (credit notes negative) of one issue day and bucket: the sum and how many."""

    day: datetime.date
    bucket: str
    amount: Minor
    lines: int


def day_sales(sales: BuyerSales) -> tuple[DaySales, ...]:
    """The sales summed by issue day and bucket, in that order: what the turnover and the
    premium need of them (they sum by period and country)."""
    summed: dict[tuple[datetime.date, str], list[int]] = {}
    for issued, bucket, amount in sales.lines:
        found = summed.setdefault((issued, bucket), [0, 0])
        found[0] += amount
        found[1] += 1
    return tuple(DaySales(day, bucket, amount, lines) for (day, bucket), (amount, lines) in sorted(summed.items()))


def buyer_facts(
    buyer: str, events: Sequence[Event], policy: Sequence[Event]
) -> tuple[BuyerFacts, tuple[DaySales, ...]] | None:
    """A buyer's facts and its day sales from its stream and the policy's, as known now
    (None: not registered, or no policy)."""
    timeline = TermsTimeline(policy)
    sales = buyer_sales(events, timeline, None)
    basis = fee_basis(events, None)
    registration = next((e for e in recorded_by(events, None) if isinstance(e, BuyerRegistered)), None)
    if sales is None or basis is None or registration is None:
        return None
    losses = loss_facts(events)
    loss_on = None
    if may_lose(losses, political_countries(policy)):
        if _delivered_across_a_decision(events):
            # Its cap is locked on delivery from a limit decided after issue: a fold at an earlier
            # as_of, not knowing that decision yet, can find a loss the settled fold does not.
            loss_on = min(fact.effective for fact in losses)
        else:
            loss_on = buyer_cover(buyer, events, policy, LOSSES_SETTLED).loss_date
    facts = BuyerFacts(buyer, registration.country, registration.effective, bought_top_up(events), basis, losses,
                       loss_on)
    return facts, day_sales(sales)


def _delivered_across_a_decision(events: Sequence[Event]) -> bool:
    """Whether an invoice is issued before a limit decision's day and delivered on or after it."""
    days = sorted({decision.effective for decision in limit_decisions(events)})
    for invoice in of_types(events, _INVOICES):
        assert isinstance(invoice, InvoiceIssued)
        after = bisect.bisect_right(days, invoice.effective)
        if after < len(days) and days[after] <= invoice.delivered:
            return True
    return False


_INVOICES = frozenset({InvoiceIssued})


def book_sales(sales: Iterable[tuple[str, Iterable[DaySales]]]) -> list[BuyerSales]:
    """The book's sales by country (one `BuyerSales` per country, lines summed by day and bucket)
    from (country, day sales) pairs: the same turnover and premium as the buyers' own sales
    (both only sum amounts by period and country)."""
    summed: dict[str, dict[tuple[datetime.date, str], Minor]] = {}
    for country, lines in sales:
        days = summed.setdefault(country, {})
        for line in lines:
            days[line.day, line.bucket] = days.get((line.day, line.bucket), 0) + line.amount
    return [BuyerSales(country, [Sale(day, bucket, amount) for (day, bucket), amount in sorted(days.items())])
            for country, days in sorted(summed.items())]
