"""A buyer's exposure as a step function of `as_of`, from every event known.

`exposure_timeline` folds a buyer's stream once, forward, and samples the
exposure at the end of each day on which a figure can change: an event's day,
a day the calendar changes something (on stop, a deadline, a loss, a top-up
month), a delivery day, the day after each due date (the balance becomes
overdue), and the days only `available` changes on (`availability_days`).
Between those days nothing moves, so the timeline keeps one entry per change:
an `ExposureStep`, in force from its `since` until the next one's.

It answers `Exposure.of(buyer_cover(..., as_of=day), terms)` for every day,
without a fold per question: the read model behind the book's exposure stores it.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Sequence
from itertools import groupby

import msgspec

from ledger.vocabulary.events import Event, PoliticalEvent
from ledger.vocabulary.order import in_fold_order
from projections.cover import CoverFold, limit_decisions
from projections.exposure import Exposure, ExposureValues, availability_days, exposure_values
from projections.terms import TermsTimeline


class ExposureStep(msgspec.Struct, frozen=True):
    """The exposure in force from the end of day `since` until the next step."""

    since: datetime.date
    exposure: Exposure


Timeline = list[ExposureStep]


def exposure_timeline(buyer: str, buyer_events: Sequence[Event], policy_events: Sequence[Event]) -> Timeline:
    """Every change of the buyer's exposure, from its registration on (empty if none)."""
    return [ExposureStep(day, Exposure(*values)) for day, values in exposure_changes(buyer, buyer_events, policy_events)]


def exposure_changes(
    buyer: str, buyer_events: Sequence[Event], policy_events: Sequence[Event]
) -> list[tuple[datetime.date, ExposureValues]]:
    """`exposure_timeline` as (since, the exposure's fields in order): what the read model stores."""
    terms = TermsTimeline(policy_events)
    events = list(in_fold_order(buyer_events))
    if not terms or not events:
        return []
    political = [e for e in policy_events if isinstance(e, PoliticalEvent)]
    decisions = limit_decisions(events)
    decision_days = {decision.effective for decision in decisions}
    quiet_changes = availability_days(terms, decisions)
    by_day = [(day, list(group)) for day, group in groupby(events, key=lambda e: e.effective)]
    timeline: list[tuple[datetime.date, ExposureValues]] = []
    fold = CoverFold(buyer, terms, decisions, political)
    position, day = 0, by_day[0][0]
    while True:
        if position < len(by_day) and by_day[position][0] == day:
            if day in decision_days and fold.delivering_across(day):
                # buyer_cover(as_of=day) locks those caps knowing this decision: fold again
                fold = CoverFold(buyer, terms, decisions, political)
                fold.fold_through(day, [event for _, todays in by_day[:position + 1] for event in todays])
            else:
                fold.fold_through(day, by_day[position][1])
            position += 1
        fold.close_day(day)
        reading = fold.reading_on(day)
        if reading.registered is not None:
            values = exposure_values(reading, terms, fold.open_totals(day))
            if not timeline or timeline[-1][1] != values:
                timeline.append((day, values))
        following = _next_day(fold, day, by_day[position][0] if position < len(by_day) else None, quiet_changes)
        if following is None:
            return timeline
        day = following


def _next_day(
    fold: CoverFold, day: datetime.date, next_event: datetime.date | None, quiet_changes: Sequence[datetime.date]
) -> datetime.date | None:
    """The first day after `day` on which the exposure can change: the next event's, one the fold
    names, or one of `quiet_changes` (sorted)."""
    after = bisect.bisect_right(quiet_changes, day)
    quiet = quiet_changes[after] if after < len(quiet_changes) else None
    candidates = [moment for moment in (next_event, fold.next_figure_change(day), quiet) if moment is not None]
    return min(candidates) if candidates else None


def exposure_on(timeline: Timeline, day: datetime.date) -> Exposure | None:
    """The entry in force on `day` (None before the buyer's registration)."""
    found = None
    for step in timeline:
        if step.since > day:
            break
        found = step.exposure
    return found
