"""Exposure (docs/rules.md, "Exposure") and obligations (docs/rules.md, "The calendar") from cover states."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ledger.vocabulary.dates import ONE_DAY, add_months
from ledger.vocabulary.events import Event, LimitCancelled, TurnoverDeclared
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PERIOD_MONTHS, PolicyTerms
from projections.cover import (
    BuyerCover,
    CoverFigures,
    LimitDecision,
    Obligation,
    OpenTotals,
    buyer_exclusion,
    limit_on,
)
from projections.terms import TermsTimeline

QUARTER_MONTHS = PERIOD_MONTHS["quarterly"]
EXPOSURE_FIGURES = ("outstanding", "overdue", "insured", "uninsured", "limit", "top_up", "headroom", "available")
# Why `available` is 0 whatever the headroom, the first that applies (docs/rules.md, "Exposure");
# "" when new deliveries are insured up to `available`.
NOT_AVAILABLE = (
    "outside_policy_period", "private_individual", "related_company", "public_body", "named_exclusion",
    "outside_selection", "country_not_covered", "claim", "insolvent", "on_stop", "limit_cancelled", "no_limit",
)


@dataclass(frozen=True)
class Exposure:
    """The exposure figures (docs/rules.md, "Exposure") in minor units, the status, and why
    nothing is available (`not_available`, one of NOT_AVAILABLE, or "")."""

    outstanding: Minor
    overdue: Minor
    insured: Minor
    uninsured: Minor
    limit: Minor
    top_up: Minor
    headroom: Minor
    available: Minor
    status: str
    not_available: str

    @classmethod
    def of(cls, cover: CoverFigures, terms: TermsTimeline) -> Exposure:
        return cls(*exposure_values(cover, terms))


ExposureValues = tuple[Minor, Minor, Minor, Minor, Minor, Minor, Minor, Minor, str, str]


def exposure_values(cover: CoverFigures, terms: TermsTimeline, totals: OpenTotals | None = None) -> ExposureValues:
    """The fields of `Exposure.of(cover, terms)`, in order, as a plain tuple (the exposure
    timeline samples thousands and keeps the changes); `totals`, the cover's
    `open_totals(as_of)` when the caller has them (the timeline's fold keeps them as it goes)."""
    outstanding, overdue, insured = cover.open_totals(cover.as_of) if totals is None else totals
    limit, top_up = cover.limit, cover.top_up_amount
    available, not_available = availability(cover, terms, insured)
    return (outstanding, overdue, insured, outstanding - insured, limit, top_up, max(0, limit + top_up - insured),
            available, cover.status_with(overdue, outstanding), not_available)


def availability(cover: CoverFigures, terms: TermsTimeline, insured: Minor) -> tuple[Minor, str]:
    """What a delivery on `cover.as_of` would be insured for at most, and why it is 0 when a
    rule, not the headroom, makes it so (docs/rules.md, "Exposure"): the cap rule
    (docs/rules.md, "Which invoices are insured") for a delivery of any amount that day, and
    nothing once the buyer's one loss has come (a later delivery is in no claim)."""
    day = cover.as_of
    buyer = cover.registered
    if not terms or buyer is None:
        return 0, "no_limit"
    today = terms.at(day)
    if not today.start <= day <= today.end:
        return 0, "outside_policy_period"
    excluded = buyer_exclusion(buyer, today)
    if excluded is not None:
        return 0, excluded
    if cover.claim_filed is not None or cover.indemnity_paid:
        return 0, "claim"
    if cover.insolvent_since is not None:
        return 0, "insolvent"
    if cover.on_stop_since is not None:
        return 0, "on_stop"
    if cover.loss_date is not None:
        return 0, "claim"  # a loss without a claim yet (political, or a protracted default after a clearing)
    limit = limit_on(cover.decisions, day, terms)
    if limit.amount <= 0:
        decision = limit.decision
        return 0, "limit_cancelled" if decision is not None and isinstance(decision.event, LimitCancelled) else "no_limit"
    # Under the limit before a cut (outstanding_order_days) a delivery gets no top-up (docs/rules.md, "Top-up").
    top_up = 0 if limit.in_grace else cover.top_up_amount
    return max(0, limit.amount + top_up - insured), ""


def availability_days(terms: TermsTimeline, decisions: Sequence[LimitDecision]) -> list[datetime.date]:
    """The days `available` can change on with no event of the buyer's and no change of the
    other figures: each change of terms, the first day of each policy period and the day after
    it, and the day a cut starts to bind deliveries (after its `outstanding_order_days`)."""
    days: set[datetime.date] = set()
    for effective, version in terms.changes:
        days.update((effective, version.start, version.end + ONE_DAY))
    for decision in decisions:
        if decision.cut:
            grace = terms.at(decision.effective).outstanding_order_days
            days.add(decision.effective + datetime.timedelta(days=grace + 1))
    return sorted(days)


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
    none when empty), missed first (they cost cover), then by due date, kind and buyer: the
    `obligations` query and the export's table."""
    duties = [duty for cover in covers for duty in cover.obligations]
    duties += declaration_duties(policy_events, as_of, known_at)
    duties.sort(key=lambda d: (d.status != "missed", d.due, d.kind, d.buyer or ""))
    return duties
