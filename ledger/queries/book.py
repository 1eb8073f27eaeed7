"""The book as the queries read it: one buyer's cover, and the whole book read in one pass
over the log (`read_book`), which the premium account, turnover, the declaration, the
obligations, the claims register and the export share; `fold_book` folds every buyer of it
once (the export), `claims_of` only what the claims register needs, `claim_of` only what one
buyer's claim needs.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ledger.queries.reading import LedgerReader
from ledger.vocabulary.bulk import ProgressHook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    BuyerRegistered,
    Event,
    Insolvency,
    OverdueReported,
    PoliticalEvent,
    TopUpPurchased,
    format_recorded,
)
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.claims import Claim, claim_for, claims_register
from projections.cover import BuyerCover, buyer_cover, of_types
from projections.lines import PremiumLine
from projections.premium import fee_lines, maximum_liability, premium_lines
from projections.terms import TermsTimeline
from projections.turnover import BuyerSales, buyer_sales, declarations


class NoPolicy(LedgerError):
    """The ledger has no policy (as known at that time): there is no book to fold."""


# ---------------------------------------------------------------- covers

def cover_of(
    ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None
) -> BuyerCover:
    """One buyer's cover state, folded from its stream and the policy's."""
    cover = buyer_cover(buyer, ledger.buyer_events(buyer), ledger.policy_events(), as_of, known_at)
    if cover.registered is None:
        raise not_registered(buyer, as_of, known_at)
    return cover


def not_registered(buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> LedgerError:
    when = f" as known at {known_at.isoformat()}" if known_at else ""
    return LedgerError(f"{buyer} is not a registered buyer on {as_of}{when}", field="buyer")


# ---------------------------------------------------------------- the whole book, one pass

@dataclass(frozen=True)
class BookRead:
    """The book as known at `known_at`, read in one pass over the log: the policy stream, every
    buyer's stream (in buyer order), the policy's terms over time, and each buyer's sales."""

    known_at: datetime.datetime | None
    policy: tuple[Event, ...]
    buyers: Mapping[str, tuple[Event, ...]]
    timeline: TermsTimeline

    @functools.cached_property
    def sales(self) -> tuple[BuyerSales, ...]:
        """Each buyer's sales (buyers with none left out); computed when first asked for, since
        the obligations do not need them."""
        found = (buyer_sales(events, self.timeline, self.known_at) for events in self.buyers.values())
        return tuple(sales for sales in found if sales is not None)


def read_book(ledger: LedgerReader, known_at: datetime.datetime | None) -> BookRead:
    """The whole book in one pass over the log (a stream's events lie scattered through it);
    refused when there is no policy as known at `known_at`."""
    policy: list[Event] = []
    buyers: dict[str, list[Event]] = {}
    for event in ledger.events(known_at):  # what was recorded later is not read at all
        if isinstance(event, BuyerEvent):
            buyers.setdefault(event.buyer, []).append(event)
        else:
            policy.append(event)
    timeline = TermsTimeline(recorded_by(policy, known_at))
    if not timeline:
        raise NoPolicy("the ledger has no policy yet" if known_at is None
                       else f"the ledger had no policy as known at {format_recorded(known_at)}", field="known_at")
    streams = {buyer: tuple(events) for buyer, events in sorted(buyers.items())}
    return BookRead(known_at, tuple(policy), MappingProxyType(streams), timeline)


def book_covers(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[BuyerCover]:
    """Every buyer's cover at `as_of`, in buyer order, each stream read by itself from the index.

    Not from `read_book`: the obligations need no sales, and on SQLite reading the streams one by
    one was about 10% faster than the whole-log pass (on a 100,000-event book)."""
    policy = ledger.policy_events()
    covers = []
    for buyer in ledger.buyers():
        cover = buyer_cover(buyer, ledger.buyer_events(buyer), policy, as_of, known_at)
        if cover.registered is not None:  # a buyer registered later is not in the book yet
            covers.append(cover)
    return covers


def fold_covers(book: BookRead, as_of: datetime.date, *, progress: ProgressHook | None = None) -> dict[str, BuyerCover]:
    """Every buyer's cover at `as_of`, by buyer, folded whole; buyers registered later (or
    recorded later) are not in the book yet. `progress` counts buyers folded."""
    covers: dict[str, BuyerCover] = {}
    for buyer, events in book.buyers.items():
        cover = buyer_cover(buyer, events, book.policy, as_of, book.known_at)
        if cover.registered is not None:
            covers[buyer] = cover
        if progress:
            progress(1)
    return covers


def account_lines(book: BookRead, terms: PolicyTerms, covers: Mapping[str, BuyerCover]) -> list[PremiumLine]:
    """The premium account's lines in date order: premium and adjustments from the sales and
    declarations, fees, and the top-up lines of the buyers in `covers` that bought one."""
    lines = _premium_lines(book, terms)
    lines += fee_lines(terms, book.buyers.values(), book.known_at)
    for buyer, events in book.buyers.items():
        if buyer in covers and bought_top_up(events):
            lines += covers[buyer].premium_lines
    lines.sort(key=lambda line: (line.day, line.kind, line.buyer or "", line.period or "", line.country or ""))
    return lines


def _premium_lines(book: BookRead, terms: PolicyTerms) -> list[PremiumLine]:
    """The premium and adjustment lines: all the maximum liability counts (fees and top-ups do not)."""
    return premium_lines(terms, book.sales, declarations(book.policy, book.known_at))


@dataclass(frozen=True)
class BookFold:
    """The whole book at `as_of` as known at `known_at`: the book read, the terms at `as_of`, the
    cover of every buyer in the book (by buyer), the premium account, the maximum liability and
    the claims register."""

    as_of: datetime.date
    book: BookRead
    terms: PolicyTerms
    covers: Mapping[str, BuyerCover]
    lines: tuple[PremiumLine, ...]
    max_liability: Minor | None
    claims: tuple[Claim, ...]


def fold_book(
    ledger: LedgerReader,
    as_of: datetime.date,
    known_at: datetime.datetime | None,
    *,
    progress: ProgressHook | None = None,
) -> BookFold:
    """Read the book in one pass over the log and fold every buyer once (the export's tables).
    `progress` counts buyers folded."""
    book = read_book(ledger, known_at)
    terms = book.timeline.at(as_of)
    covers = fold_covers(book, as_of, progress=progress)
    lines = account_lines(book, terms, covers)
    cap = maximum_liability(terms, lines, as_of)
    claims = _register(ledger, book, covers.values(), cap, as_of)
    return BookFold(as_of, book, terms, MappingProxyType(covers), tuple(lines), cap, tuple(claims))


def claims_of(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[Claim]:
    """The claims register of the book at `as_of`: every buyer in the book, those with a loss
    first, in loss-date order. The same register as `fold_book`'s, for less: only the buyers
    that can lose are folded whole (the others' claim is `none`: their cover is only looked up
    in the book), and the maximum liability counts only premium lines (no fees, no top-ups)."""
    book = read_book(ledger, known_at)
    terms = book.timeline.at(as_of)
    political = {e.country for e in book.policy if isinstance(e, PoliticalEvent)}
    covers: list[BuyerCover] = []
    for buyer, events in book.buyers.items():
        if _may_lose(events, political):
            cover = buyer_cover(buyer, events, book.policy, as_of, known_at)
        else:
            cover = _registered(buyer, events, as_of, known_at)
        if cover.registered is not None:
            covers.append(cover)
    cap = maximum_liability(terms, _premium_lines(book, terms), as_of)
    return _register(ledger, book, covers, cap, as_of)


def claim_of(ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> Claim:
    """One buyer's claim, as the register of `claims_of` has it, folding only the buyers whose
    loss can come before or on the same day as this buyer's: the aggregate deductible and the
    maximum liability go to losses in loss-date order, so no later loss changes this claim."""
    book = read_book(ledger, known_at)
    cover = buyer_cover(buyer, book.buyers.get(buyer, ()), book.policy, as_of, known_at)
    if cover.registered is None:
        raise not_registered(buyer, as_of, known_at)
    if cover.loss_date is None or cover.loss_date > as_of:
        return claim_for(claims_register([cover], book.timeline, None, as_of), buyer)  # none / watch
    loss_date, timeline = cover.loss_date, book.timeline

    def matures_by(event: Event) -> bool:  # a protracted default (or a political loss) waits after its event
        return timeline.at(event.effective).protracted_default_on(event.effective) <= loss_date

    political = {e.country for e in book.policy if isinstance(e, PoliticalEvent) and matures_by(e)}
    covers = [cover]
    for other, events in book.buyers.items():
        if other != buyer and _may_lose(events, political, by=loss_date, matures_by=matures_by):
            covers.append(buyer_cover(other, events, book.policy, as_of, known_at))
    terms = book.timeline.at(as_of)
    cap = maximum_liability(terms, _premium_lines(book, terms), as_of)
    return claim_for(_register(ledger, book, [c for c in covers if c.registered is not None], cap, as_of), buyer)


def _register(
    ledger: LedgerReader, book: BookRead, covers: Collection[BuyerCover], cap: Minor | None, as_of: datetime.date
) -> list[Claim]:
    """The claims register of `covers`, losses ordered by their position in the log."""
    causes = [str(c.loss_event.id) for c in covers if c.loss_event is not None]
    positions = ledger.positions(causes) if causes else {}
    return claims_register(covers, book.timeline, cap, as_of, positions)


_MAY_LOSE = frozenset({Insolvency, OverdueReported, BuyerRegistered})


def _may_lose(
    events: Sequence[Event], political_countries: set[str], by: datetime.date | None = None,
    matures_by: Callable[[Event], bool] | None = None,
) -> bool:
    """Whether a buyer's stream can hold a loss (dated by `by`, if given): an insolvency, an
    overdue report (protracted default: `matures_by` says whether its waiting period ends by
    then), or a political event in its country."""
    for event in of_types(events, _MAY_LOSE):
        if isinstance(event, Insolvency) and (by is None or event.effective <= by):
            return True
        if isinstance(event, OverdueReported) and (matures_by is None or matures_by(event)):
            return True
        if isinstance(event, BuyerRegistered) and event.country in political_countries:
            return True
    return False


def bought_top_up(events: Sequence[Event]) -> bool:
    """Whether a buyer's stream holds a top-up purchase (its cover then has premium lines)."""
    return TopUpPurchased in map(type, events)  # no Python-level step per event (event types have no subtypes)


def _registered(
    buyer: str, events: Sequence[Event], as_of: datetime.date, known_at: datetime.datetime | None
) -> BuyerCover:
    """The cover of a buyer with no loss possible: only whether it is in the book (its claim is `none`)."""
    known = [e for e in recorded_by(events, known_at) if isinstance(e, BuyerRegistered) and e.effective <= as_of]
    return BuyerCover(buyer=buyer, as_of=as_of, registered=known[0] if known else None)
