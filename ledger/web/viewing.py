"""What every page of the web view shares: the time-travel context read from the URL, money
as people read it, the buyers' names, and the verify status of the footer.

The pages show figures as the queries answer them; nothing here computes a figure. Money
stays a decimal string: `grouped` only inserts thousands separators into the text.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

from ledger.operations.verify import Report, verify
from ledger.queries.arguments import day_argument, moment_argument
from ledger.queries.reading import LedgerReader
from ledger.service import Ledger
from ledger.vocabulary.events import BuyerRegistered, Event
from ledger.vocabulary.location import Location


@dataclass(frozen=True)
class When:
    """A page's two time axes as the URL gives them: `as_of` (the effective date, default today)
    and `known_at` (the recorded time, default: everything recorded)."""

    as_of: datetime.date
    known_at: datetime.datetime | None
    as_of_given: str  # as typed, "" when absent: links keep what the user chose
    known_at_given: str

    @classmethod
    def read(cls, ledger: Ledger, as_of: str | None, known_at: str | None) -> When:
        """Read both from the query string (a blank field counts as absent); a bad one is refused
        with the words of the CLI (`ledger.queries.arguments`)."""
        as_of_text, known_at_text = (as_of or "").strip(), (known_at or "").strip()
        day = day_argument(as_of_text, "as_of") if as_of_text else ledger.clock().date()
        moment = moment_argument(known_at_text, "known_at") if known_at_text else None
        return cls(day, moment, as_of_text, known_at_text)

    def arguments(self, **more: Any) -> dict[str, Any]:
        """The query arguments of this time: as_of always (the page says which day it shows),
        known_at when given, and `more` where not None."""
        given: dict[str, Any] = {"as_of": self.as_of}
        if self.known_at is not None:
            given["known_at"] = self.known_at
        given.update({name: value for name, value in more.items() if value is not None})
        return given

    def link(self, path: str, **params: Any) -> str:
        """`path` with this time and `params` (blank ones left out) in its query string."""
        query = {"as_of": self.as_of_given, "known_at": self.known_at_given, **params}
        text = urlencode({name: value for name, value in query.items() if value not in (None, "")})
        return f"{path}?{text}" if text else path

    def buyer_link(self, buyer: str, anchor: str = "") -> str:
        return self.link(f"/buyers/{quote(buyer, safe='')}") + (f"#{anchor}" if anchor else "")

    def event_link(self, buyer: str, event: str) -> str:
        """Where an event is shown: in its buyer's list of events."""
        return self.buyer_link(buyer, f"event-{event}")

    @property
    def known_at_picker(self) -> str:
        """known_at as a datetime-local field shows it (UTC, to the millisecond)."""
        if self.known_at is None:
            return ""
        moment = self.known_at.astimezone(datetime.UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")

    @property
    def known_at_label(self) -> str:
        if self.known_at is None:
            return "everything recorded"
        return self.known_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def grouped(amount: object) -> str:
    """A decimal string with thousands separators ("-1234567.50" -> "-1,234,567.50"); a blank stays blank."""
    text = str(amount)
    if not text:
        return ""
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    if not whole.isdigit():
        return text
    return f"{sign}{int(whole):,}{dot}{fraction}"


def words(name: str) -> str:
    """An identifier as a heading reads it: `on_stop` -> `on stop`."""
    return name.replace("_", " ")


@dataclass(frozen=True)
class Buyer:
    """A buyer as registered: what the book shows beside its figures."""

    buyer: str
    name: str
    country: str
    kind: str
    effective: datetime.date


def buyer_directory(ledger: Ledger, known_at: datetime.datetime | None) -> dict[str, Buyer]:
    """Every registered buyer's name and country as known at `known_at`, from the
    `buyer_registered` events (selected on the log's index)."""
    return {
        event.buyer: Buyer(event.buyer, event.name, event.country, event.kind, event.effective)
        for event in ledger.log(types=[BuyerRegistered.type], known_at=known_at)
        if isinstance(event, BuyerRegistered)
    }


class _OnePass:
    """The ledger as the queries of one page read it: the whole log, which each of them walks
    (`events`), read once and kept for the page; every other read goes to the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._events: dict[datetime.datetime | None, list[Event]] = {}

    def events(self, known_at: datetime.datetime | None = None) -> Iterator[Event]:
        if known_at not in self._events:
            self._events[known_at] = list(self._ledger.events(known_at))
        return iter(self._events[known_at])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def one_pass(ledger: Ledger) -> LedgerReader:
    """`ledger` for several queries of one page that each read the whole log."""
    return cast(LedgerReader, _OnePass(ledger))


# ---------------------------------------------------------------- the footer: verify status

# A full verify walks the whole chain (about 4 s for 20,000 events), so no page waits for
# one beyond a small ledger: up to VERIFY_ON_PAGE_EVENTS the page verifies itself; up to
# VERIFY_BEHIND_EVENTS a thread verifies with a ledger of its own while the page shows the
# last result; above that only the verify page runs it. Each result is kept per log
# position: a page verifies again only once an event was recorded.
VERIFY_ON_PAGE_EVENTS = 2_000
VERIFY_BEHIND_EVENTS = 50_000


@dataclass(frozen=True)
class Verified:
    """A verify report and the log position it was run at."""

    position: int
    report: Report


@dataclass(frozen=True)
class Footer:
    position: int  # the ledger's last log position now
    verified: Verified | None  # the latest verify of this ledger (maybe at an earlier position)
    running: bool = False  # a verify of the ledger as it is now runs behind the page

    @property
    def current(self) -> bool:
        return self.verified is not None and self.verified.position == self.position


_lock = threading.Lock()
_verified: dict[tuple[str, str | None], Verified] = {}  # by ledger (location, first event id)
_running: set[tuple[str, str | None]] = set()


def run_verify(ledger: Ledger) -> Verified:
    """Verify the ledger now and keep the report for the footers at this log position."""
    position, first = ledger.log_position()
    verified = Verified(position, verify(ledger))
    with _lock:
        kept = _verified.get((ledger.location, first))
        if kept is None or kept.position <= position:
            _verified[(ledger.location, first)] = verified
    return verified


def _verify_behind(location: str, key: tuple[str, str | None]) -> None:
    """Verify with a ledger of this thread's own (a ledger's read-model connection stays on its thread)."""
    try:
        with Ledger(location) as ledger:
            run_verify(ledger)
    finally:
        with _lock:
            _running.discard(key)


def footer(ledger: Ledger) -> Footer:
    """The footer's verify status: the kept report when the log has not moved since; else a
    fresh verify, on the page or behind it by the ledger's size, and meanwhile the last report."""
    position, first = ledger.log_position()
    key = (ledger.location, first)
    with _lock:
        verified = _verified.get(key)
    if verified is not None and verified.position == position:
        return Footer(position, verified)
    events = ledger.count()
    private = Location.parse(ledger.location).kind == "memory"  # another connection would see another ledger
    if events <= VERIFY_ON_PAGE_EVENTS or (private and events <= VERIFY_BEHIND_EVENTS):
        return Footer(position, run_verify(ledger))
    if events <= VERIFY_BEHIND_EVENTS:
        with _lock:
            start = key not in _running
            _running.add(key)
        if start:
            threading.Thread(target=_verify_behind, args=(ledger.location, key), daemon=True,
                             name="creditledger-verify").start()
        return Footer(position, verified, running=True)
    return Footer(position, verified)


def template_globals() -> Mapping[str, Any]:
    return {"words": words}
