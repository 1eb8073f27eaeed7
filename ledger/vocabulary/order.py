"""The one place that decides in which order a fold sees events."""

from __future__ import annotations

import datetime
import operator
from collections.abc import Iterable
from itertools import islice
from typing import TypeVar

from ledger.vocabulary.events import Event

E = TypeVar("E", bound=Event)


def fold_key(event: Event, position: int) -> tuple[datetime.date, datetime.datetime, int]:
    """Effective date first; ties on one date go by recorded order (docs/rules.md, "Time").

    `position` is the event's place in recorded order (its stream version or
    notification id); it breaks ties between equal `recorded` stamps.
    """
    return (event.effective, event.recorded, position)


def in_fold_order(events: Iterable[E]) -> list[E]:
    """`events`, given in recorded order, sorted into fold order."""
    listed = list(events)
    keys = [(event.effective, event.recorded) for event in listed]
    if all(map(operator.le, keys, islice(keys, 1, None))):
        return listed  # recorded in fold order already, as most streams are: nothing to sort
    indexed = list(enumerate(listed))
    indexed.sort(key=lambda pair: fold_key(pair[1], pair[0]))
    return [event for _, event in indexed]


def known_at(events: Iterable[E], moment: datetime.datetime | None) -> list[E]:
    """Only the events recorded up to `moment` (all of them when None)."""
    if moment is None:
        return list(events)
    return [event for event in events if event.recorded <= moment]
