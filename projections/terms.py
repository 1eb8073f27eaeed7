"""The policy terms in force on any date (docs/rules.md, "The policy": a start, then amendments)."""

from __future__ import annotations

import datetime
from bisect import bisect_right
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
        self._days = [effective for effective, _ in self.changes]  # for the search in `at`, read for every invoice

    def __bool__(self) -> bool:
        return bool(self.changes)

    def at(self, day: datetime.date) -> PolicyTerms:
        """Terms of the latest start or amendment effective by `day` (the first before any)."""
        changes = self.changes
        if len(changes) == 1:
            return changes[0][1]
        return changes[max(0, bisect_right(self._days, day) - 1)][1]

    def latest(self) -> PolicyTerms:
        """The terms after every amendment."""
        return self.changes[-1][1]
