"""The book as the queries read it: one buyer's cover, every buyer's cover, and the whole
book read in one pass over the log and folded once (`fold_book`), which the claims
register and the export share, and whose pieces the premium account and turnover use.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ledger.queries.reading import LedgerReader
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    BuyerRegistered,
    Event,
    Insolvency,
    OverdueReported,
    PoliticalEvent,
    TopUpPurchased,
)
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.claims import Claim, claims_register
from projections.cover import BuyerCover, buyer_cover
from projections.lines import PremiumLine
from projections.premium import fee_lines, maximum_liability, premium_lines
from projections.terms import TermsTimeline
from projections.turnover import BuyerSales, buyer_sales, declarations

Progress = Callable[[int], None]


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


def book_covers(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> list[BuyerCover]:
    """Every buyer's cover state, in buyer order."""
    policy = ledger.policy_events()
    covers = []
    for buyer in ledger.buyers():
        cover = buyer_cover(buyer, ledger.buyer_events(buyer), policy, as_of, known_at)
        if cover.registered is not None:  # a buyer registered later is not in the book yet
            covers.append(cover)
    return covers


# ---------------------------------------------------------------- the whole book, one pass

def book_events(ledger: LedgerReader) -> tuple[list[Event], dict[str, list[Event]]]:
    """The policy stream and every buyer's stream (in buyer order), from one pass over the log:
    a stream's events lie scattered through the file, the log is read in order."""
    policy: list[Event] = []
    buyers: dict[str, list[Event]] = {}
    for event in ledger.events():
        if isinstance(event, BuyerEvent):
            buyers.setdefault(event.buyer, []).append(event)
        else:
            policy.append(event)
    return policy, dict(sorted(buyers.items()))


def terms_timeline(policy: list[Event], known_at: datetime.datetime | None) -> TermsTimeline:
    """The policy's terms over time as known at `known_at`; refused when there is no policy then."""
    timeline = TermsTimeline(recorded_by(policy, known_at))
    if not timeline:
        raise NoPolicy("the ledger has no policy yet")
    return timeline


def book_sales(
    buyers: Mapping[str, list[Event]], terms: TermsTimeline, known_at: datetime.datetime | None
) -> list[BuyerSales]:
    """Each buyer's sales as known at `known_at` (buyers with none left out)."""
    found = (buyer_sales(events, terms, known_at) for events in buyers.values())
    return [sales for sales in found if sales is not None]


def account_lines(
    terms: PolicyTerms,
    sales: list[BuyerSales],
    policy: list[Event],
    buyers: Mapping[str, list[Event]],
    known_at: datetime.datetime | None,
    cover: Callable[[str, list[Event]], BuyerCover | None],
) -> list[PremiumLine]:
    """The premium account's lines in date order: premium and adjustments from the sales and
    declarations, fees, and the top-up lines of the buyers that bought one (`cover` gives a
    buyer's cover, or None when it is not in the book)."""
    lines = premium_lines(terms, sales, declarations(policy, known_at))
    lines += fee_lines(terms, buyers.values(), known_at)
    for buyer, events in buyers.items():
        if _bought_top_up(events):
            found = cover(buyer, events)
            if found is not None:
                lines += found.premium_lines
    lines.sort(key=lambda line: (line.day, line.kind, line.buyer or "", line.period or "", line.country or ""))
    return lines


@dataclass(frozen=True)
class BookFold:
    """The whole book at `as_of` as known at `known_at`: every stream, the covers of the buyers
    in the book (by buyer), the sales, the premium account, the maximum liability, the claims."""

    as_of: datetime.date
    known_at: datetime.datetime | None
    policy: list[Event]
    buyers: dict[str, list[Event]]
    timeline: TermsTimeline
    terms: PolicyTerms
    covers: dict[str, BuyerCover]
    sales: list[BuyerSales]
    lines: list[PremiumLine]
    max_liability: int | None
    claims: list[Claim]


def fold_book(
    ledger: LedgerReader,
    as_of: datetime.date,
    known_at: datetime.datetime | None,
    *,
    every_cover: bool = True,
    progress: Progress | None = None,
) -> BookFold:
    """Read the book in one pass over the log and fold it once.

    With `every_cover` false, only the buyers whose stream can hold a loss, or that bought a
    top-up, are folded whole; the others are only looked up in the book: their claim is
    `none`, and they add nothing to the premium account. `progress` counts buyers folded."""
    policy, buyers = book_events(ledger)
    timeline = terms_timeline(policy, known_at)
    terms = timeline.at(as_of)
    political = {e.country for e in policy if isinstance(e, PoliticalEvent)}
    covers: dict[str, BuyerCover] = {}
    for buyer, events in buyers.items():
        if every_cover or _may_lose(events, political) or _bought_top_up(events):
            cover = buyer_cover(buyer, events, policy, as_of, known_at)
        else:
            cover = _registered(buyer, events, as_of, known_at)
        if cover.registered is not None:  # registered later (or recorded later): not in the book yet
            covers[buyer] = cover
        if progress:
            progress(1)
    sales = book_sales(buyers, timeline, known_at)
    lines = account_lines(terms, sales, policy, buyers, known_at, lambda buyer, _: covers.get(buyer))
    cap = maximum_liability(terms, lines, as_of)
    causes = [str(c.loss_event.id) for c in covers.values() if c.loss_event is not None]
    positions = ledger.positions(causes) if causes else {}
    claims = claims_register(covers.values(), timeline, cap, as_of, positions)
    return BookFold(as_of, known_at, policy, buyers, timeline, terms, covers, sales, lines, cap, claims)


def _may_lose(events: list[Event], political_countries: set[str]) -> bool:
    """Whether a buyer's stream can hold a loss: an insolvency, an overdue report (protracted
    default), or a political event in its country."""
    for event in events:
        if isinstance(event, (Insolvency, OverdueReported)):
            return True
        if isinstance(event, BuyerRegistered) and event.country in political_countries:
            return True
    return False


def _bought_top_up(events: list[Event]) -> bool:
    return any(isinstance(e, TopUpPurchased) for e in events)


def _registered(buyer: str, events: list[Event], as_of: datetime.date, known_at: datetime.datetime | None) -> BuyerCover:
    """The cover of a buyer with no loss possible and no top-up: only whether it is in the book."""
    known = [e for e in recorded_by(events, known_at) if isinstance(e, BuyerRegistered) and e.effective <= as_of]
    return BuyerCover(buyer=buyer, as_of=as_of, registered=known[0] if known else None)
