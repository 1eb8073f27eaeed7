"""Query arguments as users give them (text, dates, timestamps), read into dates and UTC moments,
and each query's arguments as a typed Struct (`ExposureArgs`, ...) with the `Query` that reads them.

Every query, the CLI and the export read `as_of`, `known_at` and `period` here,
so that each is refused with the same words wherever it is given.
"""

from __future__ import annotations

import datetime
import functools
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import msgspec

from ledger.queries import answers
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.dates import ISO_TIMESTAMP, parse_iso_date
from ledger.vocabulary.errors import LedgerError
from projections.exposure import EXPOSURE_FIGURES


def day_argument(value: Any, field: str) -> datetime.date:
    """A date given as a date, a timestamp (its day) or ISO text."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return parse_iso_date(str(value), field)
    except LedgerError:
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
            if not ISO_TIMESTAMP.match(text):  # fromisoformat alone takes 20251230T0900Z too
                raise ValueError(text)
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


# ---------------------------------------------------------------- each query's arguments, typed

class Arguments(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A query's arguments, typed (what a later HTTP API derives its parameters from), read from
    a mapping of what users give (`read`): each by its name, absent or None leaving the default."""

    @classmethod
    def read(cls, given: Mapping[str, Any]) -> Self:
        values = {}
        for name, required in _fields(cls):
            value = given.get(name)
            if value is not None or required:
                values[name] = _READERS[name](value)
        return cls(**values)


@functools.cache
def _fields(arguments: type[Arguments]) -> tuple[tuple[str, bool], ...]:
    """Each argument's name and whether it is required, worked out once per query: msgspec
    evaluates the (string) annotations on every call, which cost a buyer's exposure a third."""
    return tuple((field.name, field.required) for field in msgspec.structs.fields(arguments))


def _flag(value: Any, field: str) -> bool:
    """A yes/no argument: a bool, or the words true/false (as an HTTP query string gives it);
    bool("false") would be True."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise LedgerError(f"{value!r} is not true or false", field=field)


def _day(value: Any) -> datetime.date:
    return day_argument(value, "as_of")


def _listed(value: Any) -> tuple[str, ...]:
    """A list, or text with commas (as an HTTP query string gives it)."""
    given = [str(item) for item in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(item.strip() for item in given if item.strip())


def _choices(value: Any, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """One or more of `allowed`."""
    chosen = _listed(value)
    for item in chosen:
        if item not in allowed:
            raise LedgerError(f"{item!r} is not one of {', '.join(allowed)}", field=field)
    if not chosen:
        raise LedgerError(f"give one or more of {', '.join(allowed)}", field=field)
    return chosen


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed`."""
    if str(value) not in allowed:
        raise LedgerError(f"{value!r} is not one of {', '.join(allowed)}", field=field)
    return str(value)


def _count(value: Any, field: str, least: int, most: int | None = None) -> int:
    """A whole number from `least` to `most`, given as a number or as text."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise LedgerError(f"{value!r} is not a whole number", field=field)
    number = int(value)
    if number < least:
        raise LedgerError(f"{number} is below {least}", field=field)
    if most is not None and number > most:
        raise LedgerError(f"{number} is above {most}", field=field)
    return number


def _country(value: Any, field: str = "country") -> str:
    """A country code: two letters, ISO 3166 alpha-2 as the events hold it (gb reads as GB)."""
    code = str(value).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise LedgerError(f"{value!r} is not a country code such as GB", field=field)
    return code


# What the queries filter, sort and group by (one place: the CLI's help and the HTTP API read them too).
EXPOSURE_STATUSES: tuple[str, ...] = typing.get_args(answers.ExposureStatus)
EXPOSURE_SORTS = ("buyer", "name", *EXPOSURE_FIGURES)
LINE_KINDS: tuple[str, ...] = typing.get_args(answers.LineKind)
LINE_GROUPS = ("kind", "period", "buyer")
MAX_DUE_WITHIN = 36_600  # days (a century): a date beyond the calendar's end is no deadline


def _moment(value: Any) -> datetime.datetime:
    return moment_argument(value, "known_at")


_READERS: dict[str, Callable[[Any], Any]] = {
    "as_of": _day,
    "known_at": _moment,
    "period": period_argument,
    "buyer": str,
    "country": _country,
    "statuses": functools.partial(_choices, field="statuses", allowed=EXPOSURE_STATUSES),
    "countries": lambda value: tuple(_country(code, "countries") for code in _listed(value)),
    "sort": functools.partial(_choice, field="sort", allowed=EXPOSURE_SORTS),
    "top": functools.partial(_count, field="top", least=1),
    "due_within": functools.partial(_count, field="due_within", least=0, most=MAX_DUE_WITHIN),
    "kind": functools.partial(_choices, field="kind", allowed=LINE_KINDS),
    "by": functools.partial(_choice, field="by", allowed=LINE_GROUPS),
    "explain": functools.partial(_flag, field="explain"),
    "open": functools.partial(_flag, field="open"),
    "lines": functools.partial(_flag, field="lines"),
}


class SummaryArgs(Arguments, frozen=True):
    """`summary` takes no arguments."""


class ExposureArgs(Arguments, frozen=True):
    as_of: datetime.date | None = None  # default: the ledger's today
    known_at: datetime.datetime | None = None  # default: everything recorded
    buyer: str | None = None  # default: the whole book
    # Which of the book's buyers to list (not with `buyer`): the figures sum the buyers of these
    # statuses and countries; `top` then keeps the first N rows in `sort` order. (Plural names: an
    # answer's `status` and `country` are what a scenario expects, not what it asks.)
    statuses: tuple[str, ...] | None = None  # default: every status
    countries: tuple[str, ...] | None = None  # default: every country
    sort: str | None = None  # a figure (largest first), name or buyer (A to Z); default buyer, outstanding with top
    top: int | None = None  # default: every row


class ExposureDiffArgs(Arguments, frozen=True):
    known_at: tuple[datetime.datetime, datetime.datetime]  # in either order
    as_of: datetime.date | None = None
    buyer: str | None = None

    @classmethod
    def read(cls, given: Mapping[str, Any]) -> Self:
        moments = given.get("known_at")
        if not isinstance(moments, (list, tuple)) or len(moments) != 2:
            raise LedgerError(TWO_MOMENTS, field="known_at")
        early, late = sorted(_moment(moment) for moment in moments)
        rest = {name: value for name, value in given.items() if name != "known_at"}
        return cls(known_at=(early, late), **{name: _READERS[name](value) for name, value in rest.items()
                                               if name in ("as_of", "buyer") and value is not None})


TWO_MOMENTS = "the exposure diff needs two known_at moments (two --known-at)"  # one wording, CLI and library


class ObligationsArgs(Arguments, frozen=True):
    as_of: datetime.date | None = None
    known_at: datetime.datetime | None = None
    buyer: str | None = None  # default: every buyer's duties and the policy's
    open: bool = False  # only the duties still to act on: missed (first) and pending
    due_within: int | None = None  # only those due by as_of + this many days


class TurnoverArgs(Arguments, frozen=True):
    period: str  # 2025, 2025-Q1 or 2025-03
    country: str | None = None  # default: all
    known_at: datetime.datetime | None = None


class DeclarationArgs(Arguments, frozen=True):
    period: str
    known_at: datetime.datetime | None = None


class PremiumArgs(Arguments, frozen=True):
    as_of: datetime.date | None = None
    known_at: datetime.datetime | None = None
    lines: bool = True  # every line too (the CLI asks for them only with --lines)
    # Which lines to list and group (the account's totals are always the whole account's):
    kind: tuple[str, ...] | None = None  # default: every kind
    period: str | None = None  # lines billing a period inside this one (a line without a period: its date)
    by: str | None = None  # group the chosen lines by kind, period or buyer: a sum per group


class ClaimArgs(Arguments, frozen=True):
    buyer: str
    as_of: datetime.date | None = None
    known_at: datetime.datetime | None = None
    explain: bool = False  # the whole computation

    @classmethod
    def read(cls, given: Mapping[str, Any]) -> Self:
        if given.get("buyer") is None:
            raise LedgerError("the claim query needs a buyer", field="buyer")
        return super().read(given)


class ClaimsArgs(Arguments, frozen=True):
    as_of: datetime.date | None = None
    known_at: datetime.datetime | None = None


A = TypeVar("A", bound=Arguments)
R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True)
class Query(Generic[A, R]):
    """A query: its typed arguments and what answers it. Called with a mapping of what users
    give (the CLI, the scenario runner), it reads the arguments first."""

    arguments: type[A]
    answer: Callable[[LedgerReader, A], R]

    def __call__(self, ledger: LedgerReader, given: Mapping[str, Any]) -> R:
        return self.answer(ledger, self.arguments.read(given))
