"""Query arguments as users give them (text, dates, timestamps), read into dates and UTC moments.

Every query, the CLI and the export read `as_of`, `known_at` and `period` here,
so that each is refused with the same words wherever it is given.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from ledger.vocabulary.errors import LedgerError


def day_argument(value: Any, field: str) -> datetime.date:
    """A date given as a date, a timestamp (its day) or ISO text."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise LedgerError(f"{value!r} is not a date (write 2025-03-31)", field=field) from None


def as_of_argument(arguments: Mapping[str, Any], today: datetime.date) -> datetime.date:
    """`as_of` as a date (default: today)."""
    value = arguments.get("as_of")
    return today if value is None else day_argument(value, "as_of")


def moment_argument(value: Any, field: str) -> datetime.datetime:
    """A UTC timestamp; a bare date means the end of that day, a naive time is UTC."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value, datetime.time(23, 59, 59, 999999, tzinfo=datetime.UTC))
    moment: datetime.datetime
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value)
        if len(text) == 10:
            return moment_argument(day_argument(text, field), field)
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LedgerError(f"{text!r} is not a timestamp (write 2025-03-10T09:00:00Z)", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise LedgerError(f"{moment} is out of range", field=field) from None


def period_argument(value: Any) -> str:
    """A declaration period name: 2025, 2025-Q1 or 2025-03."""
    period = str(value or "")
    if not re.fullmatch(r"(19|2\d)\d\d(-Q[1-4]|-(0[1-9]|1[0-2]))?", period):  # years as in events.Period
        raise LedgerError(f"{period!r} is not a period such as 2025, 2025-Q1 or 2025-03", field="period")
    return period


def known_at_argument(arguments: Mapping[str, Any]) -> datetime.datetime | None:
    """`known_at` (default: now, i.e. everything recorded)."""
    value = arguments.get("known_at")
    return None if value is None else moment_argument(value, "known_at")
