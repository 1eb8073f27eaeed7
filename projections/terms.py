"""The policy terms in force on any date (docs/rules.md, "The policy": a start, then amendments)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from ledger.vocabulary.events import Event, PolicyAmended, PolicyStarted
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.terms import PolicyTerms


class TermsTimeline:
    """Terms by effective date, from the policy stream's events."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.changes: list[tuple[datetime.date, PolicyTerms]] = [
            (event.effective, event.terms)
            for event in in_fold_order(events)
            if isinstance(event, (PolicyStarted, PolicyAmended))
        ]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def at(self, day: datetime.date) -> PolicyTerms:
        """Terms of the latest start or amendment effective by `day` (the first before any)."""
        terms = self.changes[0][1]
        for effective, candidate in self.changes:
            if effective > day:
                break
            terms = candidate
        return terms

    def latest(self) -> PolicyTerms:
        """The terms after every amendment."""
        return self.changes[-1][1]
