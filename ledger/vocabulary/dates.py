"""Date arithmetic the rules need: months, and declaration periods."""

from __future__ import annotations

import calendar
import datetime

ONE_DAY = datetime.timedelta(days=1)


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
