"""A buyer's exposure as a step function of `as_of`, from every event known.

`exposure_timeline` folds a buyer's stream once, forward, and samples the
exposure at the end of each day on which a figure can change: an event's day,
a day the calendar changes something (on stop, a deadline, a loss, a top-up
month), a delivery day, and the day after each due date (the balance becomes
overdue). Between those days nothing moves, so the timeline keeps one entry per
change: `(since, Exposure)`, in force from `since` until the next entry.

It answers `Exposure.of(buyer_cover(..., as_of=day))` for every day, without a
fold per question: the read model behind the book's exposure stores it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from itertools import groupby

from ledger.vocabulary.dates import ONE_DAY
from ledger.vocabulary.events import BuyerEvent, BuyerRegistered, Event, PoliticalEvent
from ledger.vocabulary.order import in_fold_order
from projections.cover import CoverFold, LimitDecision, limit_decisions, political_losses
from projections.exposure import Exposure
from projections.terms import TermsTimeline

Timeline = list[tuple[datetime.date, Exposure]]


def exposure_timeline(buyer: str, buyer_events: Sequence[Event], policy_events: Sequence[Event]) -> Timeline:
    """Every change of the buyer's exposure, from its registration on (empty if none)."""
    terms = TermsTimeline(policy_events)
    events = list(in_fold_order(buyer_events))
    if not terms or not events:
        return []
    political = [e for e in policy_events if isinstance(e, PoliticalEvent)]
    decisions = limit_decisions(events)
    by_day = [(day, list(group)) for day, group in groupby(events, key=lambda e: e.effective)]

    def fold_days(fold: CoverFold, days: Sequence[tuple[datetime.date, list[Event]]], known_by: datetime.date) -> None:
        fold.state.decisions = [d for d in decisions if d.effective <= known_by]
        for day, todays in days:
            for event in todays:
                if isinstance(event, BuyerRegistered):
                    fold.state.political_dates = political_losses(political, event.country, terms)
                assert isinstance(event, BuyerEvent)
                fold.apply(event)
            fold.advance(day)
            fold.settle_deliveries(day)

    timeline: Timeline = []
    fold = CoverFold(buyer, terms, by_day[0][0])
    position, day = 0, by_day[0][0]
    while True:
        if position < len(by_day) and by_day[position][0] == day:
            if _decided_while_delivering(fold, decisions, day):
                # buyer_cover(as_of=day) locks those caps knowing this decision: fold again
                fold = CoverFold(buyer, terms, by_day[0][0])
                fold_days(fold, by_day[:position + 1], day)
            else:
                fold_days(fold, by_day[position:position + 1], day)
            position += 1
        fold.advance(day)
        fold.settle_deliveries(day)
        state = fold.state
        state.as_of = day
        if state.registered is not None:
            exposure = Exposure.of(state)
            if not timeline or timeline[-1][1] != exposure:
                timeline.append((day, exposure))
        following = _next_day(fold, day, by_day[position][0] if position < len(by_day) else None)
        if following is None:
            return timeline
        day = following


def _decided_while_delivering(fold: CoverFold, decisions: Sequence[LimitDecision], day: datetime.date) -> bool:
    """A limit decision on `day` for an invoice issued earlier and delivered on or after `day`:
    its cap takes the limit in force on the delivery day, as far as `as_of` knows (SPEC 11)."""
    return any(d.effective == day for d in decisions) and any(
        cover.balance.issued < day <= cover.balance.delivered for cover in fold.state.invoices.values()
    )


def _next_day(fold: CoverFold, day: datetime.date, next_event: datetime.date | None) -> datetime.date | None:
    """The first day after `day` on which the exposure can change."""
    candidates = [moment for moment in (next_event, fold.next_change()) if moment is not None]
    candidates += [delivered for delivered in fold.awaiting_deliveries() if delivered > day]
    state = fold.state
    for name in state.book.open_ids:
        cover = state.invoices.get(name)
        if cover is not None and cover.balance.due + ONE_DAY > day:
            candidates.append(cover.balance.due + ONE_DAY)
    if state.top_up is not None and not state.top_up.ended and state.top_up.ends > day:
        candidates.append(state.top_up.ends)
    return min(candidates) if candidates else None


def exposure_on(timeline: Timeline, day: datetime.date) -> Exposure | None:
    """The entry in force on `day` (None before the buyer's registration)."""
    found = None
    for since, exposure in timeline:
        if since > day:
            break
        found = exposure
    return found
