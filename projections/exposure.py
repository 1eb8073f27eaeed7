"""Exposure (docs/rules.md, "Exposure") and obligations (docs/rules.md, "The calendar") from cover states."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ledger.vocabulary.dates import ONE_DAY, add_months
from ledger.vocabulary.events import Event, TurnoverDeclared
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PERIOD_MONTHS, PolicyTerms
from projections.cover import BuyerCover, CoverFigures, Obligation
from projections.terms import TermsTimeline

QUARTER_MONTHS = PERIOD_MONTHS["quarterly"]
EXPOSURE_FIGURES = ("outstanding", "overdue", "insured", "uninsured", "limit", "top_up", "headroom")


@dataclass(frozen=True)
class Exposure:
    """The exposure figures (docs/rules.md, "Exposure") in minor units, and the status."""

    outstanding: Minor
    overdue: Minor
    insured: Minor
    uninsured: Minor
    limit: Minor
    top_up: Minor
    headroom: Minor
    status: str

    @classmethod
    def of(cls, cover: CoverFigures) -> Exposure:
        as_of = cover.as_of
        outstanding = overdue = insured = 0
        for invoice in cover.open_covers():  # one pass: the read model samples every change day
            balance = invoice.balance.balance
            outstanding += balance
            if invoice.balance.due < as_of:
                overdue += balance
            insured += invoice.insured(as_of)
        limit, top_up = cover.limit, cover.top_up_amount
        return cls(
            outstanding=outstanding, overdue=overdue, insured=insured, uninsured=outstanding - insured,
            limit=limit, top_up=top_up, headroom=max(0, limit + top_up - insured),
            status=cover.status_with(overdue, outstanding),
        )


def book_totals(rows: Iterable[Exposure]) -> dict[str, Minor]:
    """The book's figures: the sum of each buyer's."""
    totals = dict.fromkeys(EXPOSURE_FIGURES, 0)
    for row in rows:
        for name in EXPOSURE_FIGURES:
            totals[name] += getattr(row, name)
    return totals


def declaration_duties(
    policy_events: Sequence[Event], as_of: datetime.date, known_at: datetime.datetime | None = None
) -> list[Obligation]:
    """`declare_turnover` for each declaration period ended by `as_of` (docs/rules.md, "The calendar").

    Periods are calendar months, quarters or years clipped to the policy
    period; each is due `declaration_days` after it ends; any declaration
    for the period meets it.
    """
    known = recorded_by(policy_events, known_at)
    timeline = TermsTimeline(known)
    if not timeline:
        return []
    terms = timeline.at(as_of)
    if terms.premium is None:
        return []
    declared: dict[str, datetime.date] = {}
    for event in known:
        if isinstance(event, TurnoverDeclared) and event.effective <= as_of:
            declared[event.period] = min(declared.get(event.period, event.effective), event.effective)
    duties = []
    for name, _first, last in policy_periods(terms):
        if last > as_of:  # a period has ended by the end of its last day
            break
        due = terms.premium.declaration_due(last)
        made = declared.get(name)
        if made is not None and made <= due:
            status = "met"
        elif due < as_of:
            status = "missed"  # none by the due date, or a late one
        else:
            status = "pending"
        duties.append(Obligation("declare_turnover", None, due, status))
    return duties


class DeclarationPeriod(NamedTuple):
    """A declaration period: its name (2025, 2025-Q1, 2025-03) and its days, clipped to the policy."""

    name: str
    first: datetime.date
    last: datetime.date


def policy_periods(terms: PolicyTerms) -> list[DeclarationPeriod]:
    """The declaration periods of the policy period: its premium's kind, or quarters without premium terms."""
    months = terms.premium.period_months if terms.premium is not None else QUARTER_MONTHS
    return declaration_periods(terms.start, terms.end, months)


def declaration_periods(start: datetime.date, end: datetime.date, months: int) -> list[DeclarationPeriod]:
    """Each calendar period of `months` months overlapping [start, end], clipped."""
    periods = []
    first = datetime.date(start.year, 1 + (start.month - 1) // months * months, 1)
    while first <= end:
        last = add_months(first, months) - ONE_DAY
        if months == 12:
            name = f"{first.year}"
        elif months == 3:
            name = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
        else:
            name = f"{first.year}-{first.month:02d}"
        periods.append(DeclarationPeriod(name, max(first, start), min(last, end)))
        first = last + ONE_DAY
    return periods


def book_obligations(
    covers: Iterable[BuyerCover], policy_events: Sequence[Event], as_of: datetime.date,
    known_at: datetime.datetime | None = None,
) -> list[Obligation]:
    """The duties of these buyers and of the policy (`declare_turnover`, from `policy_events`;
    none when empty) by due date, then kind, then buyer: the `obligations` query and the
    export's table."""
    duties = [duty for cover in covers for duty in cover.obligations]
    duties += declaration_duties(policy_events, as_of, known_at)
    duties.sort(key=lambda d: (d.due, d.kind, d.buyer or ""))
    return duties
