"""Insurable turnover per declaration period and country (docs/rules.md, "Insurable turnover").

A sale counts in the period of its issue (effective) date, at its full amount
in the policy currency; a credit note counts in the period it is issued,
against the same bucket as its invoice. Each excluded amount carries one
reason, the first that applies in `EXCLUSION_REASONS` order.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ledger.vocabulary.dates import period_bounds
from ledger.vocabulary.events import BuyerRegistered, CreditNoteIssued, Event, InvoiceIssued, TurnoverDeclared
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import buyer_exclusion, limit_decisions, limit_on, of_types
from projections.terms import TermsTimeline

# The precedence of docs/rules.md ("Insurable turnover"): kind, named exclusion, selection, country, prepaid, no limit.
EXCLUSION_REASONS = (
    "private_individual", "related_company", "public_body", "named_exclusion",
    "outside_selection", "country_not_covered", "prepaid", "no_limit",
)
INSURABLE = "insurable"


@dataclass
class Turnover:
    """One period's turnover for one country, or for all: minor units by bucket."""

    insurable: Minor = 0
    excluded: dict[str, Minor] = field(default_factory=lambda: dict.fromkeys(EXCLUSION_REASONS, 0))

    def add(self, bucket: str, amount: Minor) -> None:
        if bucket == INSURABLE:
            self.insurable += amount
        else:
            self.excluded[bucket] += amount


def sale_bucket(
    buyer: BuyerRegistered, invoice: InvoiceIssued, terms: PolicyTerms, limit: Minor
) -> str:
    """`insurable`, or the one reason the sale is excluded from insurable turnover."""
    excluded = buyer_exclusion(buyer, terms)
    if excluded is not None:
        return excluded
    if invoice.prepaid:
        return "prepaid"
    if limit <= 0:
        return "no_limit"
    return INSURABLE


_SOLD = frozenset({InvoiceIssued, CreditNoteIssued})


class Sale(NamedTuple):
    """An invoice (or, negative, a credit note against its invoice's bucket) on its issue date."""

    issued: datetime.date
    bucket: str
    amount: Minor  # signed


@dataclass
class BuyerSales:
    """A buyer's sales and credit notes, each with its bucket, by issue date."""

    country: str
    lines: list[Sale] = field(default_factory=list)


def buyer_sales(buyer_events: Sequence[Event], terms: TermsTimeline, known_at: datetime.datetime | None) -> BuyerSales | None:
    """Classify one buyer's invoices (at issue) and credit notes (by their invoice)."""
    events = in_fold_order(recorded_by(buyer_events, known_at))
    registration = next((e for e in events if isinstance(e, BuyerRegistered)), None)
    if registration is None or not terms:
        return None
    # Sales and credit notes first, in one pass: most of a stream is payments.
    sold = of_types(events, _SOLD)
    decisions = limit_decisions(events)
    sales = BuyerSales(country=registration.country)
    buckets: dict[str, str] = {}
    for event in sold:
        if isinstance(event, InvoiceIssued):
            limit = limit_on(decisions, event.effective, terms).amount
            bucket = sale_bucket(registration, event, terms.at(event.effective), limit)
            buckets[event.invoice] = bucket
            sales.lines.append(Sale(event.effective, bucket, event.amount))
        else:
            sales.lines.append(Sale(event.effective, buckets[event.invoice], -event.amount))
    return sales


def turnover_by_country(
    sales: Iterable[BuyerSales], first: datetime.date, last: datetime.date
) -> dict[str, Turnover]:
    """Turnover of the days `first`..`last`, by buyer country."""
    by_country: dict[str, Turnover] = defaultdict(Turnover)
    for buyer in sales:
        for issued, bucket, amount in buyer.lines:
            if first <= issued <= last:
                by_country[buyer.country].add(bucket, amount)
    return dict(by_country)


def declarations(
    policy_events: Sequence[Event], known_at: datetime.datetime | None
) -> dict[tuple[str, str], list[TurnoverDeclared]]:
    """Declarations by (period, country), in fold order: the last one is the one in force."""
    found: dict[tuple[str, str], list[TurnoverDeclared]] = defaultdict(list)
    for event in in_fold_order(recorded_by(policy_events, known_at)):
        if isinstance(event, TurnoverDeclared):
            found[(event.period, event.country)].append(event)
    return dict(found)


def clipped_period(period: str, terms: PolicyTerms) -> tuple[datetime.date, datetime.date]:
    """The days of a period that lie in the policy period (periods are clipped to the policy)."""
    first, last = period_bounds(period)
    return max(first, terms.start), min(last, terms.end)


def period_turnover(
    sales: Sequence[BuyerSales], period: str, terms: PolicyTerms, country: str | None = None
) -> Turnover:
    """The turnover of one period (`2025-Q1` ...), clipped to the policy, for one country or all."""
    first, last = clipped_period(period, terms)
    total = Turnover()
    for name, figures in turnover_by_country(sales, first, last).items():
        if country is None or name == country:
            total.insurable += figures.insurable
            for reason, amount in figures.excluded.items():
                total.excluded[reason] += amount
    return total


def declared_amount(
    found: Mapping[tuple[str, str], list[TurnoverDeclared]], period: str, country: str | None
) -> Minor | None:
    """The declared turnover in force for the period (all countries summed), or None."""
    amounts = [events[-1].amount for (p, c), events in found.items() if p == period and country in (None, c)]
    return sum(amounts) if amounts else None
