"""The rules an event must pass before it is recorded (docs/rules.md, "Events").

Each check looks at the state folded so far and either refuses the event
(raises `LedgerError` naming the field and the rule) or returns warnings.
`admit` runs the checks for one new event against a stream, re-checking the
whole stream when the event is back-dated, so that nothing already recorded
becomes invalid.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.vocabulary.dates import period_bounds
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    BuyerRegistered,
    CreditNoteIssued,
    DueDateExtended,
    Event,
    InvoiceIssued,
    LimitCancelled,
    LimitGranted,
    LimitReduced,
    PaymentReceived,
    PaymentReversed,
    PolicyAmended,
    PolicyStarted,
    TopUpPurchased,
    TurnoverDeclared,
)
from ledger.vocabulary.money import Minor, format_minor
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.terms import PolicyTerms
from projections.balances import BuyerBook, InvoiceBalance
from projections.terms import TermsTimeline

TermsAt = Callable[[datetime.date], PolicyTerms]


def check_buyer_event(book: BuyerBook, event: BuyerEvent, terms: PolicyTerms) -> list[str]:
    """Refuse `event` if it breaks a rule given `book`; return its warnings."""
    if book.registered is None and not isinstance(event, BuyerRegistered):
        raise LedgerError(f"{event.buyer} is not a registered buyer on {event.effective}", field="buyer")
    match event:
        case BuyerRegistered():
            _check_registration(book, event, terms)
        case LimitGranted() | LimitReduced() | LimitCancelled():
            _check_limit(book, event, terms)
        case InvoiceIssued():
            if event.invoice in book.invoices:
                raise LedgerError(f"{event.invoice} is already an invoice of {event.buyer}", field="invoice")
            beyond = terms.beyond_max_credit(event.delivered, event.due)
            if beyond is not None:
                return [f"invoice {event.invoice}: {beyond}; recorded but not insured"]
        case CreditNoteIssued() | PaymentReceived() if event.invoice is not None:
            invoice = _invoice_of(book, event, event.invoice)
            if event.amount > invoice.balance:
                raise LedgerError(
                    f"{_money(terms, event.amount)} is more than the {_money(terms, invoice.balance)} open on "
                    f"invoice {event.invoice}", field="amount",
                )
        case PaymentReversed():
            record = book.find_payment(event.payment)
            if record is None:
                raise LedgerError(f"{event.buyer} has no payment {event.payment} on {event.effective}", field="payment")
            if record.reversed:
                raise LedgerError(f"payment {event.payment} is already reversed", field="payment")
        case DueDateExtended():
            return _check_due_date(book, event, terms)
        case TopUpPurchased():
            _check_top_up(book, event, terms)
        case _:
            pass
    return []


def _money(terms: PolicyTerms, amount: Minor) -> str:
    return format_minor(amount, terms.currency)


def _invoice_of(book: BuyerBook, event: BuyerEvent, invoice: str) -> InvoiceBalance:
    """The invoice `event` names, or a refusal: the buyer has none by that name yet."""
    found = book.invoices.get(invoice)
    if found is None:
        raise LedgerError(f"{event.buyer} has no invoice {invoice} on {event.effective}", field="invoice")
    return found


def _check_registration(book: BuyerBook, event: BuyerRegistered, terms: PolicyTerms) -> None:
    if book.registered is not None:
        raise LedgerError(f"{event.buyer} is already registered", field="buyer")
    if terms.fees and event.country not in terms.fees.zones:
        raise LedgerError(
            f"{event.country} has no risk zone in policy.fees.zones; with fees configured every buyer's country needs one",
            field="country",
        )


def _check_limit(book: BuyerBook, event: LimitGranted | LimitReduced | LimitCancelled, terms: PolicyTerms) -> None:
    """A discretionary grant within its rules; no cut of a non-cancellable limit; a reduction reduces."""
    match event:
        case LimitGranted(basis="discretionary"):
            if event.criterion is None:
                raise LedgerError("a discretionary limit needs a criterion", field="criterion")
            if event.amount > terms.discretionary_limit_max:
                raise LedgerError(
                    f"{_money(terms, event.amount)} is above discretionary_limit_max "
                    f"{_money(terms, terms.discretionary_limit_max)}", field="amount",
                )
            if book.discretionary_withdrawn:
                raise LedgerError(
                    f"the limit of {event.buyer} was cancelled; only an underwriter can grant a new one",
                    field="basis",
                )
        case LimitGranted():
            if event.criterion is not None:
                raise LedgerError("a criterion is for discretionary limits only", field="criterion")
        case LimitReduced():
            if book.limit_non_cancellable:
                raise LedgerError("the limit in force is non_cancellable; it cannot be reduced", field="buyer")
            if event.amount >= book.limit:
                raise LedgerError(
                    f"{_money(terms, event.amount)} is not lower than the limit in force {_money(terms, book.limit)}",
                    field="amount",
                )
        case LimitCancelled():
            if book.limit_non_cancellable:
                raise LedgerError("the limit in force is non_cancellable; it cannot be cancelled", field="buyer")


def _check_due_date(book: BuyerBook, event: DueDateExtended, terms: PolicyTerms) -> list[str]:
    invoice = _invoice_of(book, event, event.invoice)
    if event.due <= invoice.due:
        raise LedgerError(f"{event.due} is not later than the current due date {invoice.due}", field="due")
    beyond = terms.beyond_max_credit(invoice.delivered, event.due, extended=True)
    return [] if beyond is None else [f"invoice {event.invoice}: {beyond}; not insured from now on"]


def _check_top_up(book: BuyerBook, event: TopUpPurchased, terms: PolicyTerms) -> None:
    """A top-up (docs/rules.md, "Top-up") on a reduced (not cancelled) limit, once, within its window, above min_cover."""
    if terms.top_up is None:
        raise LedgerError("the policy has no top_up terms", field="type")
    if book.reduction_base is None or book.limit == 0:
        raise LedgerError("a top-up needs a primary limit that was reduced (not cancelled)", field="buyer")
    if book.top_up_bought:
        raise LedgerError(f"{event.buyer} already has a top-up on this limit", field="buyer")
    assert book.first_reduction is not None
    window_end = terms.top_up_window_end(book.first_reduction)
    if event.effective >= window_end:
        raise LedgerError(
            f"the top-up window ended on {window_end} ({terms.top_up.months} months after the first "
            f"reduction, or the policy end)", field="effective",
        )
    amount = book.top_up_for(book.limit, terms.top_up.cap)
    if amount < terms.top_up.min_cover:
        raise LedgerError(
            f"the top-up would be {_money(terms, amount)}, below min_cover {_money(terms, terms.top_up.min_cover)}",
            field="buyer",
        )


@dataclass
class BuyerStream:
    """A buyer's recorded events (recorded order) and the book they fold to."""

    events: list[Event] = field(default_factory=list)
    book: BuyerBook = field(default_factory=BuyerBook)

    @classmethod
    def replay(cls, events: list[Event]) -> BuyerStream:
        stream = cls(events=list(events))
        for event in in_fold_order(events):
            stream.book.apply(event)
        return stream

    def recheck(self, terms_at: TermsAt) -> None:
        """Check every event again under `terms_at` (after a policy amendment)."""
        book = BuyerBook()
        for earlier in in_fold_order(self.events):
            assert isinstance(earlier, BuyerEvent)
            try:
                check_buyer_event(book, earlier, terms_at(earlier.effective))
            except LedgerError as refusal:
                raise LedgerError(
                    f"the amended terms would make the {earlier.type} of {earlier.buyer} on "
                    f"{earlier.effective} ({earlier.key or earlier.id}) invalid: {refusal}",
                    field="terms",
                ) from None
            book.apply(earlier)

    def admit(self, event: BuyerEvent, terms_at: TermsAt) -> list[str]:
        """Check and add `event` (recorded after every event here); return warnings.

        Most events are the newest by effective date and are checked against
        the book as it stands. A back-dated one is checked by folding the
        whole stream again with it in place, so that a later event it would
        invalidate (a payment turned into an overpayment, say) refuses it.
        """
        newest = self.book.last_effective is None or event.effective >= self.book.last_effective
        if newest:
            warnings = check_buyer_event(self.book, event, terms_at(event.effective))
            self.book.apply(event)
            self.events.append(event)
            return warnings
        candidate = [*self.events, event]
        book = BuyerBook()
        warnings = []
        for earlier in in_fold_order(candidate):
            assert isinstance(earlier, BuyerEvent)
            try:
                found = check_buyer_event(book, earlier, terms_at(earlier.effective))
            except LedgerError as refusal:
                if earlier is event:
                    raise
                raise LedgerError(
                    f"back-dated to {event.effective}, it would make the {earlier.type} of "
                    f"{earlier.effective} ({earlier.key or earlier.id}) invalid: {refusal}",
                    field="effective",
                ) from None
            if earlier is event:
                warnings = found
            book.apply(earlier)
        self.book, self.events = book, candidate
        return warnings


class EventRefused(Exception):
    """`admit_all` refused the event at `index` of those it was given, after adding the
    first `added` of them to the stream (those before it, when they came in date order),
    whose warnings are `warnings`."""

    def __init__(self, index: int, problem: LedgerError, added: int = 0, warnings: list[list[str]] | None = None) -> None:
        super().__init__(str(problem))
        self.index, self.problem, self.added, self.warnings = index, problem, added, warnings or []


# The warnings of an event that has none, one list shared by all (read, never added to): a write
# of a million events held a million empty lists.
NO_WARNINGS: list[str] = []


def admit_all(stream: BuyerStream, events: list[BuyerEvent], terms_at: TermsAt) -> list[list[str]]:
    """Check and add events recorded at one moment (one write's stamp); return each one's warnings.

    No query can see the stream between two events of one moment, so they are checked
    together: the stream folded once with all of them in place, in fold order (a file
    in any order costs a sort, not a fold per back-dated event). When they come in
    date order after everything here, that fold is just each checked against the book.
    Refuses with `EventRefused` naming the event to blame: the one that breaks a rule,
    or, when an event already recorded no longer passes, the latest of these folded
    before it (see `EventRefused` for what was added).
    """
    last = stream.book.last_effective
    if all(last is None or e.effective >= last for e in events[:1]) and all(
        a.effective <= b.effective for a, b in zip(events, events[1:], strict=False)
    ):
        warnings = []
        for index, event in enumerate(events):
            try:
                warnings.append(check_buyer_event(stream.book, event, terms_at(event.effective)) or NO_WARNINGS)
            except LedgerError as problem:
                raise EventRefused(index, problem, added=index, warnings=warnings) from None
            stream.book.apply(event)
            stream.events.append(event)
        return warnings
    given = {id(event): index for index, event in enumerate(events)}
    candidate = [*stream.events, *events]
    book, latest = BuyerBook(), None
    found: list[list[str]] = [NO_WARNINGS] * len(events)
    for earlier in in_fold_order(candidate):
        assert isinstance(earlier, BuyerEvent)
        place = given.get(id(earlier))
        try:
            checked = check_buyer_event(book, earlier, terms_at(earlier.effective))
        except LedgerError as refusal:
            if place is not None or latest is None:
                raise EventRefused(place or 0, refusal) from None
            raise EventRefused(given[id(latest)], LedgerError(
                f"back-dated to {latest.effective}, it would make the {earlier.type} of "
                f"{earlier.effective} ({earlier.key or earlier.id}) invalid: {refusal}",
                field="effective",
            )) from None
        if place is not None:
            found[place], latest = checked or NO_WARNINGS, earlier
        book.apply(earlier)
    stream.book, stream.events = book, candidate
    return found


@dataclass
class PolicyStream:
    """The policy stream: the terms over time and the declarations."""

    events: list[Event] = field(default_factory=list)
    _timeline: tuple[int, TermsTimeline] | None = None

    @property
    def started(self) -> PolicyTerms | None:
        """The terms the policy started with, if it has."""
        for event in self.events:
            if isinstance(event, PolicyStarted):
                return event.terms
        return None

    def terms_at(self, day: datetime.date) -> PolicyTerms:
        """Terms in force on `day` (projections.terms)."""
        if self._timeline is None or self._timeline[0] != len(self.events):
            self._timeline = (len(self.events), TermsTimeline(self.events))
        timeline = self._timeline[1]
        if not timeline:
            raise LedgerError("the ledger has no policy yet; load one first (creditledger policy load FILE)")
        return timeline.at(day)

    def current(self) -> PolicyTerms:
        """The terms in force after every amendment."""
        return self.terms_at(datetime.date.max)

    def admit(self, event: Event) -> list[str]:
        """Check and add a policy-wide event."""
        started = self.started
        match event:
            case PolicyStarted():
                if started is not None:
                    raise LedgerError(
                        f"the ledger already has policy {started.id}; amend it instead", field="type"
                    )
            case PolicyAmended():
                if started is None:
                    raise LedgerError("there is no policy to amend; load one first", field="type")
                if event.terms.id != started.id:
                    raise LedgerError(f"{event.terms.id} is not the ledger's policy {started.id}", field="terms.id")
                if event.effective < started.start:
                    raise LedgerError(
                        f"{event.effective} is before the policy start {started.start}; an amendment takes effect "
                        "within the policy",
                        field="effective",
                    )
                if event.effective > event.terms.end:
                    raise LedgerError(
                        f"{event.effective} is after the policy end {event.terms.end}; an amendment takes effect "
                        f"within the policy ({started.start} to {event.terms.end})",
                        field="effective",
                    )
                if event.terms.currency != started.currency:
                    raise LedgerError(
                        f"the policy currency is {started.currency}; it cannot change", field="terms.currency"
                    )
            case TurnoverDeclared():
                terms = self.terms_at(event.effective)
                first, last = period_bounds(event.period)
                if last < terms.start or first > terms.end:
                    raise LedgerError(
                        f"{event.period} is outside the policy period {terms.start} to {terms.end}", field="period"
                    )
                if terms.premium is not None and _granularity(event.period) != terms.premium.declarations:
                    raise LedgerError(
                        f"{event.period} is not a {terms.premium.declarations} declaration period of the policy",
                        field="period",
                    )
            case _:
                if started is None:
                    raise LedgerError("the ledger has no policy yet; load one first")
        self.events.append(event)
        return []


def _granularity(period: str) -> str:
    """`annual`, `quarterly` or `monthly`: the kind of period a name like 2025-Q1 is."""
    if len(period) == 4:
        return "annual"
    return "quarterly" if "Q" in period else "monthly"
