"""The book as the queries read it: one buyer's cover, and the whole book read in one pass
over the log (`read_book`), which the obligations and the export share, and the premium
account, turnover, the declaration and the claims register as known at an earlier time;
`fold_book` folds every buyer of it once (the export). Known now (or nothing recorded after
the `known_at` asked), the premium account, turnover and the claims read the book read model
instead (`book_now`: ledger/readmodels/book.py) and only the streams they fold: `claims_of`
the buyers that can lose, `losses_of` those whose loss falls by `as_of`, `claim_of` one buyer
and those whose loss comes by its own.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from ledger.queries.reading import LedgerReader
from ledger.readmodels.book import BookModel
from ledger.vocabulary.bulk import ProgressHook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    BuyerRegistered,
    Event,
    PoliticalEvent,
    format_recorded,
)
from ledger.vocabulary.money import Minor
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.bookfacts import BuyerFacts, loss_facts, may_lose, political_countries
from projections.bookfacts import bought_top_up as bought_top_up  # where the premium query looks
from projections.claims import Claim, claim_for, claims_register
from projections.cover import BuyerCover, buyer_cover
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
    return in_account_order(lines, [covers[buyer] for buyer, events in book.buyers.items()
                                    if buyer in covers and bought_top_up(events)])


def in_account_order(lines: list[PremiumLine], top_ups: Iterable[BuyerCover]) -> list[PremiumLine]:
    """`lines` and the top-up lines of `top_ups` (in buyer order), in the account's order."""
    for cover in top_ups:
        lines += cover.premium_lines
    lines.sort(key=lambda line: (line.day, line.kind, line.buyer or "", line.period or "", line.country or ""))
    return lines


def _premium_lines(book: BookSales, terms: PolicyTerms) -> list[PremiumLine]:
    """The premium and adjustment lines: all the maximum liability counts (fees and top-ups do not)."""
    return premium_lines(terms, book.sales, declarations(book.policy, book.known_at))


# ---------------------------------------------------------------- the book known now, from its read model

class BookSales(Protocol):
    """What turnover and premium read of a book: `BookRead` (folded) or `BookNow` (the read model)."""

    @property
    def known_at(self) -> datetime.datetime | None: ...
    @property
    def policy(self) -> Sequence[Event]: ...
    @property
    def timeline(self) -> TermsTimeline: ...
    @property
    def sales(self) -> Sequence[BuyerSales]: ...


@dataclass(frozen=True)
class BookNow:
    """The book as known now, from the book read model (ledger/readmodels/book.py): the policy
    stream, its terms over time, and, read when first asked for, every registered buyer's
    facts (in buyer order) and the book's sales by country."""

    model: BookModel
    policy: tuple[Event, ...]
    timeline: TermsTimeline
    known_at: None = None

    @functools.cached_property
    def facts(self) -> Mapping[str, BuyerFacts]:
        return MappingProxyType(self.model.facts())

    @functools.cached_property
    def sales(self) -> tuple[BuyerSales, ...]:
        return tuple(self.model.sales())


def book_now(ledger: LedgerReader, known_at: datetime.datetime | None) -> BookNow | None:
    """The book from its read model where that is the book as known at `known_at`: known now,
    or nothing recorded after `known_at`; None where it must be folded from the log (as it
    was known then, or with no policy: the fold says why)."""
    if known_at is not None:
        last = ledger.last_recorded()
        if last is not None and last > format_recorded(known_at):
            return None
    policy = tuple(ledger.policy_events())
    timeline = TermsTimeline(policy)
    if not timeline:
        return None
    return BookNow(ledger.book_model, policy, timeline)


def book_sales(ledger: LedgerReader, known_at: datetime.datetime | None) -> BookSales:
    """The book's sales and policy as known at `known_at`: from the read model, else read from the log."""
    return book_now(ledger, known_at) or read_book(ledger, known_at)


def _max_liability(book: BookSales, as_of: datetime.date) -> Minor | None:
    terms = book.timeline.at(as_of)
    return maximum_liability(terms, _premium_lines(book, terms), as_of)


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
    claims = _register(ledger, book.timeline, covers.values(), cap, as_of)
    return BookFold(as_of, book, terms, MappingProxyType(covers), tuple(lines), cap, tuple(claims))


# ---------------------------------------------------------------- claims

def claims_of(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[Claim]:
    """The claims register of the book at `as_of`: every buyer in the book, those with a loss
    first, in loss-date order. The same register as `fold_book`'s, for less: only the buyers
    that can lose are folded whole (the others' claim is `none`), their streams read through
    the index, the others and the maximum liability (premium lines only: no fees, no top-ups)
    from the book read model; folded from the whole log as known at an earlier `known_at`."""
    now = book_now(ledger, known_at)
    if now is None:
        return claims_folded(ledger, as_of, known_at)
    political = political_countries(now.policy)
    covers: list[BuyerCover] = []
    for buyer, facts in now.facts.items():
        if may_lose(facts.losses, political):
            cover = buyer_cover(buyer, ledger.buyer_events(buyer), now.policy, as_of, None)
            if cover.registered is not None:
                covers.append(cover)
        elif facts.registered <= as_of:
            covers.append(BuyerCover(buyer=buyer, as_of=as_of))  # in the book, no loss possible: `none`
    return _register(ledger, now.timeline, covers, _max_liability(now, as_of), as_of)


def claims_folded(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[Claim]:
    """`claims_of`, read from the whole log as known at `known_at` (no read model)."""
    book = read_book(ledger, known_at)
    political = political_countries(book.policy)
    covers: list[BuyerCover] = []
    for buyer, events in book.buyers.items():
        if may_lose(loss_facts(events), political):
            cover = buyer_cover(buyer, events, book.policy, as_of, known_at)
        else:
            cover = _registered(buyer, events, as_of, known_at)
        if cover.registered is not None:
            covers.append(cover)
    return _register(ledger, book.timeline, covers, _max_liability(book, as_of), as_of)


def losses_of(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[Claim]:
    """The claims with a loss by `as_of`, in loss-date order (the register `claims` shows):
    from the read model, only the buyers whose `loss_on` falls by `as_of` are folded (a loss
    depends on nothing dated after it, so a fold at `as_of` finds that loss, and no other
    buyer's; where a delivery waits on a later limit decision, `loss_on` is the earliest day a
    loss can fall, projections/bookfacts.py)."""
    now = book_now(ledger, known_at)
    if now is None:
        return [claim for claim in claims_folded(ledger, as_of, known_at) if claim.loss_date is not None]
    covers = [buyer_cover(buyer, ledger.buyer_events(buyer), now.policy, as_of, None)
              for buyer, facts in now.facts.items() if facts.loss_on is not None and facts.loss_on <= as_of]
    register = _register(ledger, now.timeline, [c for c in covers if c.registered is not None],
                         _max_liability(now, as_of), as_of)
    return [claim for claim in register if claim.loss_date is not None]


def claim_of(ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> Claim:
    """One buyer's claim, as the register of `claims_of` has it, folding only the buyers whose
    loss can come before or on the same day as this buyer's: the aggregate deductible and the
    maximum liability go to losses in loss-date order, so no later loss changes this claim.
    From the read model: this buyer's stream, and those of the buyers whose loss as known now
    comes by then; folded from the whole log as known at an earlier `known_at`."""
    now = book_now(ledger, known_at)
    if now is None:
        return _claim_folded(ledger, buyer, as_of, known_at)
    cover = buyer_cover(buyer, ledger.buyer_events(buyer), now.policy, as_of, None)
    if cover.registered is None:
        raise not_registered(buyer, as_of, known_at)
    if cover.loss_date is None or cover.loss_date > as_of:
        return claim_for(claims_register([cover], now.timeline, None, as_of), buyer)  # none / watch
    loss_date = cover.loss_date
    covers = [cover]
    for other, facts in now.facts.items():
        if other != buyer and facts.loss_on is not None and facts.loss_on <= loss_date:
            covers.append(buyer_cover(other, ledger.buyer_events(other), now.policy, as_of, None))
    covers = [c for c in covers if c.registered is not None]
    return claim_for(_register(ledger, now.timeline, covers, _max_liability(now, as_of), as_of), buyer)


def _claim_folded(ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> Claim:
    book = read_book(ledger, known_at)
    cover = buyer_cover(buyer, book.buyers.get(buyer, ()), book.policy, as_of, known_at)
    if cover.registered is None:
        raise not_registered(buyer, as_of, known_at)
    if cover.loss_date is None or cover.loss_date > as_of:
        return claim_for(claims_register([cover], book.timeline, None, as_of), buyer)  # none / watch
    loss_date, timeline = cover.loss_date, book.timeline

    def matures_by(day: datetime.date) -> bool:  # a protracted default (or a political loss) waits after its event
        return timeline.at(day).protracted_default_on(day) <= loss_date

    political = {e.country for e in book.policy if isinstance(e, PoliticalEvent) and matures_by(e.effective)}
    covers = [cover]
    for other, events in book.buyers.items():
        if other != buyer and may_lose(loss_facts(events), political, by=loss_date, matures_by=matures_by):
            covers.append(buyer_cover(other, events, book.policy, as_of, known_at))
    cap = _max_liability(book, as_of)
    return claim_for(_register(ledger, book.timeline, [c for c in covers if c.registered is not None], cap, as_of), buyer)


def _register(
    ledger: LedgerReader, timeline: TermsTimeline, covers: Collection[BuyerCover], cap: Minor | None,
    as_of: datetime.date,
) -> list[Claim]:
    """The claims register of `covers`, losses ordered by their position in the log."""
    causes = [str(c.loss_event.id) for c in covers if c.loss_event is not None]
    positions = ledger.positions(causes) if causes else {}
    return claims_register(covers, timeline, cap, as_of, positions)


def _registered(
    buyer: str, events: Sequence[Event], as_of: datetime.date, known_at: datetime.datetime | None
) -> BuyerCover:
    """The cover of a buyer with no loss possible: only whether it is in the book (its claim is `none`)."""
    known = [e for e in recorded_by(events, known_at) if isinstance(e, BuyerRegistered) and e.effective <= as_of]
    return BuyerCover(buyer=buyer, as_of=as_of, registered=known[0] if known else None)
