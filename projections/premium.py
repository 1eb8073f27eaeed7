"""Premium, fees and maximum liability (docs/rules.md, "Premium"), as dated lines.

Every charge is a `PremiumLine`: its date, kind, period, country, basis,
rate, amount and tax, each rounded half-up to the minor unit once. The
premium query sums the lines dated up to `as_of`. Lines are computed from
all events known at `known_at`; a line dated after `as_of` is simply not
invoiced yet.
"""

from __future__ import annotations

import calendar
import datetime
import functools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import msgspec

from ledger.vocabulary.dates import ONE_DAY
from ledger.vocabulary.events import BuyerRegistered, Event, LimitRequested, TurnoverDeclared
from ledger.vocabulary.money import Minor, round_half_up
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import limit_decisions, of_types
from projections.exposure import policy_periods
from projections.lines import PremiumLine
from projections.turnover import BuyerSales, turnover_by_country

PREMIUM_KINDS = ("premium", "adjustment")
SUMMARY = ("premium", "adjustment", "investigation_fees", "monitoring_fees", "top_up", "tax", "total")


def minimum_premium(terms: PolicyTerms) -> Minor:
    """The minimum premium: an amount, or minimum_pct of the premium on the estimate at the default rate."""
    premium = terms.premium
    if premium is None:
        return 0
    if premium.minimum is not None:
        return premium.minimum
    if premium.minimum_pct is not None and premium.estimated_turnover is not None:
        return round_half_up(premium.estimated_turnover * premium.rates["default"] * premium.minimum_pct / 100)
    return 0


def rate_for(terms: PolicyTerms, country: str) -> Decimal:
    assert terms.premium is not None
    return terms.premium.rates.get(country, terms.premium.rates["default"])


def _taxed(terms: PolicyTerms, line: PremiumLine, *, fee: bool = False) -> PremiumLine:
    """The line with its insurance premium tax (on fees only where fees.taxable)."""
    premium = terms.premium
    pct = premium.tax_pct if premium is not None else Decimal(0)
    if fee and not (terms.fees and terms.fees.taxable):
        pct = Decimal(0)
    return msgspec.structs.replace(line, tax=round_half_up(Decimal(line.amount) * pct / 100))


def premium_lines(
    terms: PolicyTerms,
    sales: Sequence[BuyerSales],
    declared: Mapping[tuple[str, str], list[TurnoverDeclared]],
) -> list[PremiumLine]:
    """Premium and adjustment lines for the whole policy period (docs/rules.md, "Premium")."""
    premium = terms.premium
    if premium is None:
        return []
    periods = policy_periods(terms)
    minimum = minimum_premium(terms)
    adjustment_day = premium.declaration_due(terms.end)
    lines: list[PremiumLine] = []
    period_charges: list[PremiumLine] = []  # basis x rate per period and country, as bases change
    for index, (name, first, last) in enumerate(periods):
        due = premium.declaration_due(last)
        computed = turnover_by_country(sales, first, last)
        countries = sorted(set(computed) | {c for (p, c) in declared if p == name})
        period_lines: list[PremiumLine] = []
        for country in countries:
            rate = rate_for(terms, country)
            period_lines += _declared_period_lines(
                name, country, rate, last + ONE_DAY, due, computed[country].insurable if country in computed else 0,
                declared.get((name, country), []),
            )
        period_charges += period_lines
        if premium.invoicing == "declared":
            lines += period_lines
        else:
            instalment = round_half_up(Decimal(minimum) / len(periods))
            if index == len(periods) - 1:  # the last absorbs the rounding remainder
                instalment = minimum - instalment * (len(periods) - 1)
            lines.append(PremiumLine(first, "premium", None, instalment, 0, period=name, basis=minimum))
    lines += _adjustments(premium.invoicing, minimum, adjustment_day, period_charges)
    return [_taxed(terms, line) for line in lines]


def _adjustments(
    invoicing: str, minimum: Minor, day: datetime.date, charges: Sequence[PremiumLine]
) -> list[PremiumLine]:
    """The adjustment after the policy period (docs/rules.md, "Premium"), on the bases in force on its
    date; a declaration dated later corrects it on its own date.

    `declared`: up to the minimum (minimum - sum of rounded lines, if positive).
    `advance`: the premium on the bases beyond the minimum (the reverse, if positive).
    """
    checkpoints = sorted({day} | {c.day for c in charges if c.day > day})
    lines, adjusted = [], 0
    for checkpoint in checkpoints:
        earned = sum(c.amount for c in charges if c.day <= checkpoint)
        due = max(0, minimum - earned) if invoicing == "declared" else max(0, earned - minimum)
        if due != adjusted:
            lines.append(PremiumLine(checkpoint, "adjustment", None, due - adjusted, 0, basis=earned))
            adjusted = due
    return lines


def _declared_period_lines(
    period: str, country: str, rate: Decimal, closes: datetime.date, due: datetime.date, computed: Minor,
    declared: list[TurnoverDeclared],
) -> list[PremiumLine]:
    """One period and country: the line, then one correcting line per later declaration
    (each brings the invoiced total to the new basis). A closed period is invoiced:
    a declaration made before the period `closes` is invoiced on that day."""
    on_time = [d for d in declared if d.effective <= due]
    steps: list[tuple[datetime.date, Minor]] = []
    if on_time:
        steps.append((on_time[0].effective, on_time[0].amount))
        later = [d for d in declared if d is not on_time[0]]
    else:
        steps.append((due, computed))
        later = list(declared)
    steps += [(d.effective, d.amount) for d in later]
    steps = [(max(day, closes), basis) for day, basis in steps]
    lines: list[PremiumLine] = []
    invoiced = 0
    for day, basis in steps:
        target = round_half_up(Decimal(basis) * rate)
        if target != invoiced or not lines:
            if target or lines:
                lines.append(PremiumLine(day, "premium", None, target - invoiced, 0,
                                         period=period, country=country, basis=basis, rate=rate))
            invoiced = target
    return lines


_REQUESTS = frozenset({LimitRequested})


class FeeBasis(msgspec.Struct, frozen=True, array_like=True):
    """What a buyer's fees are computed from (docs/rules.md, "Fees"): its country, the days of
    its limit requests, and its limit decisions (effective, amount), each in fold order. The
    book read model keeps one per buyer, so the fees need no buyer's stream."""

    buyer: str
    country: str
    requests: tuple[datetime.date, ...]
    decisions: tuple[tuple[datetime.date, Minor], ...]


def fee_basis(events: Sequence[Event], known_at: datetime.datetime | None) -> FeeBasis | None:
    """A buyer's fee basis from its stream as known at `known_at` (None: not registered)."""
    ordered = in_fold_order(recorded_by(events, known_at))
    registration = next((e for e in ordered if isinstance(e, BuyerRegistered)), None)
    if registration is None:
        return None
    return FeeBasis(registration.buyer, registration.country,
                    tuple(event.effective for event in of_types(ordered, _REQUESTS)),
                    tuple((decision.effective, decision.amount) for decision in limit_decisions(ordered)))


def fee_lines(terms: PolicyTerms, buyer_events: Iterable[Sequence[Event]], known_at: datetime.datetime | None) -> list[PremiumLine]:
    """Investigation and monitoring fees, invoiced on the last day of each month (docs/rules.md, "Fees")."""
    return fees_of(terms, (fee_basis(events, known_at) for events in buyer_events))


def fees_of(terms: PolicyTerms, bases: Iterable[FeeBasis | None]) -> list[PremiumLine]:
    """The fee lines of `fee_lines`, from each buyer's fee basis (in buyer order)."""
    fees = terms.fees
    if fees is None:
        return []
    lines: list[PremiumLine] = []
    months = [(first, _month_end(first)) for first in _policy_months(terms)]
    month_end = functools.cache(_month_end)
    taxes: dict[tuple[str, Minor], Minor] = {}  # the same fee has the same tax: reckoned once

    def line(day: datetime.date, kind: str, buyer: str, amount: Minor) -> PremiumLine:
        if (kind, amount) not in taxes:
            taxes[kind, amount] = _taxed(terms, PremiumLine(day, kind, buyer, amount, 0), fee=True).tax
        return PremiumLine(day, kind, buyer, amount, taxes[kind, amount])

    for basis in bases:
        if basis is None or basis.country not in fees.zones:
            continue
        zone = fees.zones[basis.country]
        for day in basis.requests:
            if _in_policy_month(terms, day) and zone in fees.investigation:
                lines.append(line(month_end(day), "investigation_fee", basis.buyer, fees.investigation[zone]))
        if zone not in fees.monitoring:
            continue
        decisions = basis.decisions
        for month_first, month_last in months:
            limit_at_start = 0  # the limit in force on the 1st (the limit in force: decisions effective by then)
            for effective, amount in decisions:
                if effective <= month_first:
                    limit_at_start = amount
            during = [amount for effective, amount in decisions if month_first < effective <= month_last]
            if limit_at_start > 0 or any(amount > 0 for amount in during):
                lines.append(line(month_last, "monitoring_fee", basis.buyer, fees.monitoring[zone]))
    return lines


def _month_end(day: datetime.date) -> datetime.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _policy_months(terms: PolicyTerms) -> list[datetime.date]:
    """First days of the calendar months that overlap the policy period."""
    months, first = [], terms.start.replace(day=1)
    while first <= terms.end:
        months.append(first)
        first = _month_end(first) + ONE_DAY
    return months


def _in_policy_month(terms: PolicyTerms, day: datetime.date) -> bool:
    return _month_end(day) >= terms.start and day.replace(day=1) <= terms.end


def summarise(lines: Iterable[PremiumLine], as_of: datetime.date) -> dict[str, Minor]:
    """The `premium` query's totals: what was invoiced up to `as_of`, by kind, with tax and total."""
    totals = dict.fromkeys(SUMMARY, 0)
    kinds = {
        "premium": "premium", "adjustment": "adjustment", "investigation_fee": "investigation_fees",
        "monitoring_fee": "monitoring_fees", "top_up_premium": "top_up", "top_up_refund": "top_up",
        "top_up_admin_fee": "top_up",
    }
    for line in lines:
        if line.day <= as_of:
            totals[kinds[line.kind]] += line.amount
            totals["tax"] += line.tax
    totals["total"] = sum(totals[name] for name in SUMMARY if name != "total")
    return totals


def maximum_liability(terms: PolicyTerms, lines: Iterable[PremiumLine], as_of: datetime.date) -> Minor | None:
    """The cap on indemnities for the period in force at `as_of` (None: no cap)."""
    if terms.max_liability is not None:
        return terms.max_liability
    if terms.max_liability_multiple is None:
        return None
    invoiced = sum(line.amount for line in lines if line.kind in PREMIUM_KINDS and line.day <= as_of)
    return round_half_up(terms.max_liability_multiple * max(minimum_premium(terms), invoiced))
