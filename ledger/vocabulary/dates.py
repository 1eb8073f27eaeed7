"""Date arithmetic the rules need: months, and declaration periods."""

from __future__ import annotations

import calendar
import datetime
import re

from ledger.vocabulary.errors import LedgerError

ONE_DAY = datetime.timedelta(days=1)
# ISO 8601 calendar dates in their extended form, as documented (docs/rules.md): `date.fromisoformat`
# alone also takes 20251230, 2025-W52-2 and 2025-364.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


# The start of an ISO 8601 timestamp in its extended form: a date, T (or a space), hours and minutes.
ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", re.ASCII)


def parse_iso_date(text: str, field: str) -> datetime.date:
    """A date written YYYY-MM-DD (surrounding spaces aside); anything else refused naming `field`."""
    stripped = text.strip()
    if _ISO_DATE.fullmatch(stripped):
        try:
            return datetime.date.fromisoformat(stripped)
        except ValueError:
            pass
    raise LedgerError(f"{text!r} is not a valid date (write 2025-01-31)", field=field)


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` later, clipped to the month's end (Jan 31 + 1 = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


def period_bounds(period: str) -> tuple[datetime.date, datetime.date]:
    """First and last day of `2025`, `2025-Q1` or `2025-03`."""
    year = int(period[:4])
    if len(period) == 4:
        return datetime.date(year, 1, 1), datetime.date(year, 12, 31)
    if "Q" in period:
        first = datetime.date(year, 3 * int(period[-1]) - 2, 1)
        months = 3
    else:
        first = datetime.date(year, int(period[5:7]), 1)
        months = 1
    return first, add_months(first, months) - ONE_DAY
