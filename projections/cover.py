"""A buyer's cover at the end of any day, as known at any time (docs/rules.md, "Which invoices are insured").

`buyer_cover(buyer_events, policy_events, as_of, known_at)` folds only the
events recorded up to `known_at` and effective up to `as_of`, in fold order.
Between events the calendar moves on by itself: invoices fall overdue, the
buyer goes on stop, reporting deadlines pass, a protracted default matures,
top-up cover months turn. Those day-driven changes are applied at the start
of their day, before that day's events, from the state the previous day
ended with; the answer is the state at the end of day `as_of`. The fold
finds the next such day in heaps of scheduled days (each invoice's on-stop
day, the day after its reporting deadline, the day it falls overdue), so
that a step costs what changed, not a look at every open invoice; in the same way the
fold keeps what the open invoices add up to (`open_totals`), recounting only the invoices
changed since the day last asked.

`CoverFold` keeps its working state to itself and hands out frozen values: a
`BuyerCover` at the end (`cover`), or a read-only view of the day it has
reached (`reading_on`, for the exposure timeline, which samples every day).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from heapq import heappop, heappush
from itertools import compress
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from ledger.vocabulary.dates import ONE_DAY, add_months
from ledger.vocabulary.events import (
    BuyerRegistered,
    ClaimFiled,
    DueDateExtended,
    Event,
    IndemnityPaid,
    Insolvency,
    InvoiceIssued,
    LimitCancelled,
    LimitGranted,
    LimitReduced,
    OverdueCleared,
    OverdueReported,
    PaymentReceived,
    PaymentReversed,
    PoliticalEvent,
    RecoveryReceived,
    TopUpPurchased,
)
from ledger.vocabulary.money import Minor, round_half_up
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.balances import BuyerBook, InvoiceBalance
from projections.lines import PremiumLine
from projections.terms import TermsTimeline

_replace = msgspec.structs.replace


class LimitDecision(msgspec.Struct, frozen=True):
    """One limit decision: its date, the limit after it, and whether it cut the limit."""

    effective: datetime.date
    amount: Minor
    cut: bool  # a reduction or cancellation (outstanding_order_days applies)
    event: Event


class LimitInForce(msgspec.Struct, frozen=True):
    """The limit a delivery (or a sale) counts under, the decision it rests on (None: no
    limit yet), and whether a cut was passed over (it counts under an older limit)."""

    amount: Minor
    decision: LimitDecision | None
    in_grace: bool


class CapEntry(msgspec.Struct, frozen=True):
    """What an invoice's cap was locked from: min(amount, limit + top-up - insured outstanding)."""

    limit: Minor
    top_up: Minor
    insured_outstanding: Minor


NO_ENTRY = CapEntry(0, 0, 0)  # an invoice not insured at entry locked no cap from a limit


class InvoiceCover(msgspec.Struct, frozen=True, kw_only=True):
    """Cover facts of one invoice; its balance lives in the BuyerBook."""

    balance: InvoiceBalance
    cap: Minor
    decision: LimitDecision | None  # the limit decision it was insured under
    not_insured: str | None  # why the cap is 0, in words, or None
    lost_from: datetime.date | None = None  # uninsured from this day (a missed deadline, a term too long)
    lost_reason: str | None = None
    entry: CapEntry = NO_ENTRY

    def insured(self, day: datetime.date) -> Minor:
        """The insured part of the balance on `day`: min(cap, balance), or 0 once cover is lost."""
        if self.lost_from is not None and day >= self.lost_from:
            return 0
        return min(self.cap, self.balance.balance)


class Obligation(msgspec.Struct, frozen=True):
    """A duty with a deadline (docs/rules.md, "The calendar"): kind, buyer, due date, status."""

    kind: str  # report_overdue / file_claim / declare_turnover
    buyer: str | None
    due: datetime.date
    status: str  # pending / met / missed


class TopUp(msgspec.Struct, frozen=True, kw_only=True):
    """The top-up layer (docs/rules.md, "Top-up")."""

    purchased: datetime.date
    ends: datetime.date  # first day without cover
    amount: Minor = 0
    month_start: datetime.date = datetime.date.min
    month_end: datetime.date = datetime.date.min  # the next anniversary
    ended: bool = False


class Recovery(msgspec.Struct, frozen=True):
    """A recovery, and whether it came after the first indemnity (then it is shared: docs/rules.md, "Claims")."""

    event: RecoveryReceived
    after_indemnity: bool


class Stop(msgspec.Struct, frozen=True):
    """A past on-stop spell: from `since` until the day before `cleared`."""

    since: datetime.date
    cleared: datetime.date


class PoliticalLoss(msgspec.Struct, frozen=True):
    """The loss date a political event in the buyer's country sets (docs/rules.md, "Claims")."""

    day: datetime.date
    event: Event


class _Thresholds(msgspec.Struct, frozen=True):
    """An invoice's on-stop day and reporting deadline, from its current due date, and the
    first day it is overdue."""

    stop_day: datetime.date
    deadline: datetime.date
    overdue: datetime.date  # the day after the due date


class OpenTotals(NamedTuple):
    """What the open invoices add up to on a day (`CoverFigures.open_totals`)."""

    outstanding: Minor
    overdue: Minor
    insured: Minor


def _part(cover: InvoiceCover, day: datetime.date) -> tuple[Minor, Minor, Minor]:
    """One open invoice's share of `OpenTotals` at the end of `day`."""
    balance = cover.balance.balance
    return balance, balance if cover.balance.due < day else 0, cover.insured(day)


class CoverFigures:
    """The figures of a cover state, read from its facts (the frozen `BuyerCover`, or the
    fold's working state as `CoverFold.reading_on` shows it)."""

    buyer: str
    as_of: datetime.date
    registered: BuyerRegistered | None
    book: BuyerBook
    invoices: Mapping[str, InvoiceCover]
    top_up: TopUp | None
    claim_filed: datetime.date | None
    indemnity_paid: Minor
    insolvent_since: datetime.date | None
    on_stop_since: datetime.date | None
    decisions: Sequence[LimitDecision]  # those effective by the day the fold has reached
    loss_date: datetime.date | None

    @property
    def limit(self) -> Minor:
        """The limit in force (docs/rules.md, "The limit in force"): the latest decision, 0 if none."""
        return self.book.limit

    @property
    def top_up_amount(self) -> Minor:
        top_up = self.top_up
        if top_up is None or top_up.ended or self.as_of >= top_up.ends:
            return 0
        return top_up.amount

    def open_covers(self) -> list[InvoiceCover]:
        """Covers of the invoices with a balance: the only ones the figures add up."""
        return [self.invoices[name] for name in self.book.open_ids if name in self.invoices]

    def open_totals(self, day: datetime.date) -> OpenTotals:
        """The outstanding, overdue and insured balances of the open invoices at the end of `day`."""
        outstanding = overdue = insured = 0
        for cover in self.open_covers():
            balance, late, covered = _part(cover, day)
            outstanding, overdue, insured = outstanding + balance, overdue + late, insured + covered
        return OpenTotals(outstanding, overdue, insured)

    @property
    def outstanding(self) -> Minor:
        return sum(cover.balance.balance for cover in self.open_covers())

    @property
    def overdue(self) -> Minor:
        """Balances of invoices past their due date."""
        return sum(c.balance.balance for c in self.open_covers() if c.balance.due < self.as_of)

    def insured_on(self, day: datetime.date) -> Minor:
        return sum(cover.insured(day) for cover in self.open_covers())

    @property
    def insured(self) -> Minor:
        return self.insured_on(self.as_of)

    @property
    def status(self) -> str:
        """active / overdue / on_stop / insolvent / claim / closed, most serious first (docs/rules.md)."""
        return self.status_with(self.overdue, self.outstanding)

    def status_with(self, overdue: Minor, outstanding: Minor) -> str:
        """The status, given the overdue and outstanding figures already added up."""
        if self.claim_filed is not None or self.indemnity_paid:
            return "claim"
        if self.insolvent_since is not None:
            return "insolvent"
        if self.on_stop_since is not None:
            return "on_stop"
        if overdue > 0:
            return "overdue"
        if self.limit == 0 and outstanding == 0:
            return "closed"
        return "active"


@dataclass(frozen=True)
class BuyerCover(CoverFigures):
    """A buyer's cover state at the end of `as_of`; the exposure (docs/rules.md, "Exposure") is read from it.

    Every value in it is frozen: tuples, read-only tables, and the fold's own book sealed
    (`BuyerBook.sealed`) when the fold ends, with its invoices and payments.
    """

    buyer: str
    as_of: datetime.date
    registered: BuyerRegistered | None = None
    book: BuyerBook = field(default_factory=lambda: BuyerBook().sealed())
    invoices: Mapping[str, InvoiceCover] = field(default_factory=lambda: MappingProxyType({}))
    decisions: tuple[LimitDecision, ...] = ()
    on_stop_since: datetime.date | None = None
    cleared_on: datetime.date | None = None
    reported_since: datetime.date | None = None
    insolvent_since: datetime.date | None = None
    claim_filed: datetime.date | None = None
    indemnity_paid: Minor = 0
    first_indemnity: datetime.date | None = None
    balances_at_indemnity: Mapping[str, Minor] | None = None  # docs/rules.md: the insured loss takes balances here
    recoveries: tuple[Recovery, ...] = ()
    first_indemnity_event: Event | None = None
    claim_filed_event: Event | None = None
    payments_before_indemnity: frozenset[str] = frozenset()  # payment and recovery ids folded before it
    latest_report_event: Event | None = None
    loss_date: datetime.date | None = None
    loss_cause: str | None = None
    loss_event: Event | None = None
    past_stops: tuple[Stop, ...] = ()
    latest_report: datetime.date | None = None
    top_up: TopUp | None = None
    obligations: tuple[Obligation, ...] = ()
    premium_lines: tuple[PremiumLine, ...] = ()
    political_dates: tuple[PoliticalLoss, ...] = ()


@dataclass
class _Working(CoverFigures):
    """The fold's mutable state: `BuyerCover`'s facts while the fold runs (never handed out
    but as the read-only `CoverFigures`)."""

    buyer: str
    as_of: datetime.date = datetime.date.min
    registered: BuyerRegistered | None = None
    book: BuyerBook = field(default_factory=BuyerBook)
    invoices: dict[str, InvoiceCover] = field(default_factory=dict)
    decisions: list[LimitDecision] = field(default_factory=list)
    on_stop_since: datetime.date | None = None
    cleared_on: datetime.date | None = None
    reported_since: datetime.date | None = None
    insolvent_since: datetime.date | None = None
    claim_filed: datetime.date | None = None
    indemnity_paid: Minor = 0
    first_indemnity: datetime.date | None = None
    balances_at_indemnity: Mapping[str, Minor] | None = None  # a read-only table, taken once
    recoveries: list[Recovery] = field(default_factory=list)
    first_indemnity_event: Event | None = None
    claim_filed_event: Event | None = None
    payments_before_indemnity: frozenset[str] = frozenset()
    latest_report_event: Event | None = None
    loss_date: datetime.date | None = None
    loss_cause: str | None = None
    loss_event: Event | None = None
    past_stops: list[Stop] = field(default_factory=list)
    latest_report: datetime.date | None = None
    top_up: TopUp | None = None
    obligations: list[Obligation] = field(default_factory=list)
    premium_lines: list[PremiumLine] = field(default_factory=list)
    political_dates: list[PoliticalLoss] = field(default_factory=list)

    def frozen(self) -> BuyerCover:
        """The facts as a `BuyerCover`, field by field: lists become tuples, the invoices a
        read-only table, the book sealed (the fold ends: nothing of it is written again)."""
        return BuyerCover(**{name: _frozen(getattr(self, name)) for name in _FACTS})


_FACTS = tuple(f.name for f in fields(BuyerCover))
# The working state holds BuyerCover's facts, one for one (tests/test_timeline.py checks it).


def _frozen(value: Any) -> Any:
    """A fact of the working state as the frozen `BuyerCover` holds it."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return MappingProxyType(dict(value))
    if isinstance(value, BuyerBook):
        return value.sealed()
    return value


class _TrackedBook(BuyerBook):
    """The fold's book: a `BuyerBook` that notes each invoice whose balance (or open state)
    changed, for `CoverFold.open_totals`: every such change goes through `_touch`."""

    changed: set[str]

    def _touch(self, invoice: InvoiceBalance) -> None:
        self.changed.add(invoice.invoice)
        BuyerBook._touch(self, invoice)


class CoverFold:
    """Folds one buyer's events, day by day, into a BuyerCover.

    `decisions` are every limit decision the fold may come to know (`fold_through`
    knows those effective by its day); `political` the policy's political events.
    """

    def __init__(
        self, buyer: str, terms: TermsTimeline, decisions: Sequence[LimitDecision] = (),
        political: Sequence[PoliticalEvent] = (),
    ) -> None:
        book = _TrackedBook()
        # What `open_totals` keeps between days: each open invoice's share on the day last
        # asked, their sum, the invoices changed since (a balance, a due date, a cover), and
        # (day, invoice) when a share changes by the calendar alone (overdue, cover lost).
        self._changed: set[str] = set()
        book.changed = self._changed
        self._state = _Working(buyer=buyer, book=book)
        self._parts: dict[str, tuple[Minor, Minor, Minor]] = {}
        self._totals = OpenTotals(0, 0, 0)
        self._totals_day: datetime.date | None = None
        self._flips: list[tuple[datetime.date, str]] = []
        self.terms = terms
        self._all_decisions = decisions
        self._political = political
        self._today: datetime.date | None = None  # the day whose start was last processed
        self._awaiting: dict[str, datetime.date] = {}  # invoice -> delivery day, judged at the end of that day
        self._judged: set[str] = set()  # invoices whose reporting deadline has been met or missed
        self._thresholds_of: dict[str, _Thresholds] = {}  # by invoice, set at issue and when its due date moves
        self._thresholds_on: dict[datetime.date, _Thresholds] = {}  # by due date
        # The calendar's index: heaps of (day, invoice), pushed when an invoice is issued, its due
        # date moves or a reversal reopens it. An entry no longer valid (the invoice closed or
        # judged, its thresholds moved, its day past) is dropped when it comes to the top, so that
        # finding the next change costs what changed since, not one look at every open invoice.
        self._stop_days: list[tuple[datetime.date, str]] = []
        self._deadline_ends: list[tuple[datetime.date, str]] = []  # the day after each deadline
        self._overdue_days: list[tuple[datetime.date, str]] = []
        self._reports: list[Stop] = []  # past report spells: from a report until the day of its clearing
        self._moved: list[str] = []  # due dates moved since the last catch-up (their thresholds may lie behind)

    # ------------------------------------------------------------ the fold's interface

    def fold_through(self, day: datetime.date, events: Iterable[Event]) -> None:
        """Fold `events` (in fold order, effective by `day`), knowing the limit decisions made
        by `day`, then close `day`: a delivery after its invoice's issue date counts under the
        limit in force on the delivery date, as far as `day` knows (docs/rules.md)."""
        s = self._state
        s.decisions = [d for d in self._all_decisions if d.effective <= day]
        for event in events:
            if isinstance(event, BuyerRegistered):
                s.political_dates = political_losses(self._political, event.country, self.terms)
            self._apply(event)
        self.close_day(day)

    def close_day(self, day: datetime.date) -> None:
        """Bring the calendar to `day` and judge the deliveries made by its end."""
        self._advance(day)
        self._settle_deliveries(day)

    def reading_on(self, day: datetime.date) -> CoverFigures:
        """The state the fold has reached, read as of the end of `day` (after `close_day(day)`)."""
        self._state.as_of = day
        return self._state

    def cover(self, as_of: datetime.date) -> BuyerCover:
        """The frozen cover at the end of `as_of`, with the duties still open then; the fold ends here."""
        self._state.as_of = as_of
        self._close_obligations()
        return self._state.frozen()

    def open_totals(self, day: datetime.date) -> OpenTotals:
        """`CoverFigures.open_totals(day)` of the state the fold has reached, recounting only the
        invoices changed since the last day asked (days are asked in order as the fold goes on;
        an earlier day recounts every open invoice)."""
        s, changed, flips, parts = self._state, self._changed, self._flips, self._parts
        if self._totals_day is not None and day < self._totals_day:
            changed.update(parts)
        self._totals_day = day
        while flips and flips[0][0] <= day:
            changed.add(heappop(flips)[1])
        if not changed:
            return self._totals
        outstanding, overdue, insured = self._totals
        open_ids, invoices = s.book.open_ids, s.invoices
        for name in changed:
            old = parts.pop(name, None)
            if old is not None:
                outstanding, overdue, insured = outstanding - old[0], overdue - old[1], insured - old[2]
            cover = invoices.get(name)
            if cover is None or name not in open_ids:
                continue
            part = parts[name] = _part(cover, day)
            outstanding, overdue, insured = outstanding + part[0], overdue + part[1], insured + part[2]
            due, lost_from = cover.balance.due, cover.lost_from
            if due >= day:
                heappush(flips, (due + ONE_DAY, name))
            if lost_from is not None and lost_from > day:
                heappush(flips, (lost_from, name))
        changed.clear()
        self._totals = OpenTotals(outstanding, overdue, insured)
        return self._totals

    def delivering_across(self, day: datetime.date) -> bool:
        """An invoice issued before `day` and delivered on or after it (its cap waits for that day)."""
        return any(cover.balance.issued < day <= cover.balance.delivered for cover in self._state.invoices.values())

    def next_figure_change(self, day: datetime.date) -> datetime.date | None:
        """The first day after `day` on which a figure can change with no event: the calendar,
        a delivery, an invoice falling overdue, a top-up ending."""
        s = self._state
        calendar = self._next_change(datetime.date.max)
        candidates = [] if calendar is None else [calendar]
        candidates += [delivered for delivered in self._awaiting.values() if delivered > day]
        overdue = self._first_overdue_after(day)
        if overdue is not None:
            candidates.append(overdue)
        if s.top_up is not None and not s.top_up.ended and s.top_up.ends > day:
            candidates.append(s.top_up.ends)
        return min(candidates) if candidates else None

    # ------------------------------------------------------------ the calendar

    def _advance(self, day: datetime.date) -> None:
        """Apply every day-driven change dated after the last processed day, up to `day`."""
        if self._today is not None and day <= self._today:
            return  # nothing is dated after today and by `day` (most events of a day ask again)
        while True:
            moment = self._next_change(day)
            if moment is None:
                break
            self._change_on(moment)
            self._today = moment
        self._today = day if self._today is None or day > self._today else self._today

    def _next_change(self, limit: datetime.date) -> datetime.date | None:
        """The first day after today, up to `limit`, on which the calendar changes something."""
        s, today = self._state, self._today
        # a delivery is judged after that day's events: the day after it
        moments: list[datetime.date | None] = [delivered + ONE_DAY for delivered in self._awaiting.values()]
        if s.on_stop_since is None:
            moments.append(self._first_stop_day())
        moments.append(self._first_deadline_end())
        if s.latest_report is not None and s.loss_date is None:
            moments.append(self.terms.at(s.latest_report).protracted_default_on(s.latest_report))
        moments += [loss.day for loss in s.political_dates]
        if s.top_up is not None and not s.top_up.ended:
            moments.append(min(s.top_up.month_end, s.top_up.ends))
        best = None
        for moment in moments:
            if moment is not None and (today is None or moment > today) and moment <= limit and (
                best is None or moment < best
            ):
                best = moment
        return best

    def _first_stop_day(self) -> datetime.date | None:
        """The earliest on-stop day after today of an open invoice (the calendar asks while not on stop)."""
        heap, today, open_ids, known = self._stop_days, self._today, self._state.book.open_ids, self._thresholds_of
        while heap:
            day, name = heap[0]
            if (today is None or day > today) and name in open_ids and known[name].stop_day == day:
                return day
            heappop(heap)
        return None

    def _first_deadline_end(self) -> datetime.date | None:
        """The earliest day after today that follows the reporting deadline of an open invoice not yet judged."""
        heap, today, open_ids, known = self._deadline_ends, self._today, self._state.book.open_ids, self._thresholds_of
        while heap:
            day, name = heap[0]
            if (today is None or day > today) and name in open_ids and name not in self._judged and (
                known[name].deadline + ONE_DAY == day
            ):
                return day
            heappop(heap)
        return None

    def _first_overdue_after(self, day: datetime.date) -> datetime.date | None:
        """The earliest day after `day` on which an open invoice falls overdue."""
        heap, open_ids, known = self._overdue_days, self._state.book.open_ids, self._thresholds_of
        past = day if self._today is None or day < self._today else self._today  # never asked again
        while heap:
            moment, name = heap[0]
            if moment > past and name in open_ids and known[name].overdue == moment:
                break
            heappop(heap)
        if heap and heap[0][0] <= day:  # asked about a day beyond the calendar's: look through the rest
            return min((moment for moment, name in heap
                        if moment > day and name in open_ids and known[name].overdue == moment), default=None)
        return heap[0][0] if heap else None

    def _schedule(self, name: str) -> None:
        """Put an open invoice's thresholds in the calendar's index."""
        thresholds = self._thresholds_of[name]
        heappush(self._stop_days, (thresholds.stop_day, name))
        heappush(self._deadline_ends, (thresholds.deadline + ONE_DAY, name))
        heappush(self._overdue_days, (thresholds.overdue, name))

    def _set_thresholds(self, name: str) -> None:
        """An invoice's on-stop day and reporting deadline, from its due date (at issue, and
        again when the due date moves): the calendar reads them for every event."""
        due = self._state.book.invoices[name].due
        thresholds = self._thresholds_on.get(due)
        if thresholds is None:  # the same for every invoice due that day: many share it
            terms = self.terms.at(due)
            thresholds = self._thresholds_on[due] = _Thresholds(terms.stop_day(due), terms.reporting_deadline(due),
                                                                due + ONE_DAY)
        self._thresholds_of[name] = thresholds
        self._schedule(name)

    def _change_on(self, day: datetime.date) -> None:
        """What the start of `day` changes, from the state the day before ended with."""
        s = self._state
        self._settle_deliveries(day - ONE_DAY)  # judged at the end of their delivery day
        if s.on_stop_since is None and self._first_stop_day() == day and (s.cleared_on is None or day > s.cleared_on):
            s.on_stop_since = day
        while self._first_deadline_end() == day:
            name = heappop(self._deadline_ends)[1]
            self._deadline_passed(name, self._thresholds_of[name].deadline, day)
        if s.latest_report is not None and s.loss_date is None:
            matures = self.terms.at(s.latest_report).protracted_default_on(s.latest_report)
            if matures == day and s.insured_on(day) > 0:
                self._loss(day, "protracted_default", s.latest_report_event)
        for loss in s.political_dates:
            if loss.day == day and s.loss_date is None and s.insured_on(day) > 0:
                self._loss(day, "political", loss.event)
        if s.top_up is not None and not s.top_up.ended:
            if day >= s.top_up.ends:
                self._end_top_up(day)
            elif day == s.top_up.month_end:
                self._top_up_month(day)

    def _deadline_passed(self, name: str, deadline: datetime.date, day: datetime.date) -> None:
        """A reporting deadline has passed with the invoice unpaid (judged on `day`): met by a
        report in force at the end of the deadline day, dropped after a loss, else missed and
        uninsured from `day`."""
        s = self._state
        self._judged.add(name)
        if s.loss_date is not None and deadline > s.loss_date:
            return  # the duty became file_claim (docs/rules.md)
        if self._reported_on(deadline):
            self._oblige("report_overdue", deadline, "met")
            return
        self._oblige("report_overdue", deadline, "missed")
        self._lose(name, day, f"overdue not reported by {deadline}")

    def _reported_on(self, deadline: datetime.date) -> bool:
        """A report in force at the end of `deadline`: the one in force now, or one cleared
        since (an invoice unpaid again, or entered, after its deadline is judged as on that day)."""
        return _in_spell(self._state.reported_since, self._reports, deadline)

    def _lose(self, name: str, day: datetime.date, reason: str) -> None:
        """The invoice is uninsured from `day` (the first reason to end its cover stands)."""
        cover = self._state.invoices[name]
        if cover.lost_from is None:
            self._state.invoices[name] = _replace(cover, lost_from=day, lost_reason=reason)
            self._changed.add(name)

    def _catch_up(self, day: datetime.date, names: Iterable[str]) -> None:
        """An invoice unpaid again (reversed payment), issued late or whose due date moved can
        have passed its stop day or reporting deadline already: those count from `day`
        (docs/rules.md, "The calendar"). `names`: the invoices that can be behind the calendar;
        every other open invoice's thresholds were met by the calendar as their days came."""
        s = self._state
        names = [name for name in dict.fromkeys((*self._moved, *names)) if name in s.book.open_ids and name in s.invoices]
        self._moved.clear()
        for name in names:
            thresholds = self._thresholds_of[name]
            if s.on_stop_since is None and thresholds.stop_day < day and (
                s.cleared_on is None or thresholds.stop_day > s.cleared_on
            ):
                s.on_stop_since = day
            if thresholds.deadline < day and name not in self._judged:
                self._deadline_passed(name, thresholds.deadline, day)

    def _oblige(self, kind: str, due: datetime.date, status: str) -> None:
        obligations = self._state.obligations
        for number, obligation in enumerate(obligations):
            if obligation.kind == kind and obligation.due == due:
                if obligation.status != "missed":
                    obligations[number] = _replace(obligation, status=status)
                return
        obligations.append(Obligation(kind, self._state.buyer, due, status))

    def _loss(self, day: datetime.date, cause: str, event: Event | None) -> None:
        s = self._state
        if s.loss_date is not None:
            return
        s.loss_date, s.loss_cause, s.loss_event = day, cause, event

    def _close_obligations(self) -> None:
        """Duties still open at the end of as_of: pending reports, and the claim to file after a loss."""
        s = self._state
        for name, cover in s.invoices.items():
            if cover.balance.balance <= 0 or cover.balance.due >= s.as_of or name in self._judged:
                continue
            deadline = self._thresholds_of[name].deadline
            if s.loss_date is not None and deadline > s.loss_date:
                continue
            status = "met" if s.reported_since is not None else "pending"
            self._oblige("report_overdue", deadline, status)
        if s.loss_date is not None:
            due = self.terms.at(s.loss_date).claim_filing_due(s.loss_date)
            if due is not None:
                if s.claim_filed is not None and s.claim_filed <= due:
                    status = "met"
                elif due < s.as_of:
                    status = "missed"
                else:
                    status = "pending"
                s.obligations.append(Obligation("file_claim", s.buyer, due, status))
        s.obligations.sort(key=lambda o: (o.due, o.kind))

    # ------------------------------------------------------------ events

    def _apply(self, event: Event) -> None:
        """Fold one event, after the calendar has been brought to its day."""
        self._advance(event.effective)
        s = self._state
        match event:  # the commonest first: a match tries its cases in order
            case PaymentReceived():
                pass  # the book allocates it
            case InvoiceIssued():
                s.book.apply(event)
                self._set_thresholds(event.invoice)
                self._lock_cap(event)
                self._catch_up(event.effective, (event.invoice,))
                return
            case BuyerRegistered():
                s.registered = event
            case LimitGranted() | LimitReduced():
                s.book.apply(event)
                if s.top_up is not None and not s.top_up.ended:
                    self._top_up_change(event.effective, self._top_up_formula(event.amount))
                return
            case LimitCancelled():
                if s.top_up is not None and not s.top_up.ended:
                    self._end_top_up(event.effective)
            case PaymentReversed():
                s.book.apply(event)
                reopened = list(s.book.open_ids)  # the allocation ran again: any of them may be open again
                for name in reopened:
                    self._schedule(name)
                self._catch_up(event.effective, reopened)
                return
            case DueDateExtended():
                s.book.apply(event)
                self._changed.add(event.invoice)
                self._set_thresholds(event.invoice)
                self._moved.append(event.invoice)
                beyond = self.terms.at(event.effective).beyond_max_credit(s.invoices[event.invoice].balance.delivered,
                                                                          event.due, extended=True)
                if beyond is not None:
                    self._lose(event.invoice, event.effective, beyond)
                return
            case OverdueReported():
                if s.reported_since is None:
                    s.reported_since = event.effective
                s.latest_report = event.effective
                s.latest_report_event = event
                if s.on_stop_since is None:
                    s.on_stop_since = event.effective
            case OverdueCleared():
                if s.on_stop_since is not None:
                    s.past_stops.append(Stop(s.on_stop_since, event.effective))
                if s.reported_since is not None:
                    self._reports.append(Stop(s.reported_since, event.effective))
                s.reported_since = s.latest_report = s.on_stop_since = None
                s.latest_report_event = None
                s.cleared_on = event.effective
            case Insolvency():
                if s.insolvent_since is None:
                    s.insolvent_since = event.effective
                self._loss(event.effective, "insolvency", event)
            case ClaimFiled():
                if s.claim_filed is None:
                    s.claim_filed, s.claim_filed_event = event.effective, event
            case IndemnityPaid():
                if s.balances_at_indemnity is None:
                    s.balances_at_indemnity = MappingProxyType({name: c.balance.balance for name, c in s.invoices.items()})
                    s.first_indemnity, s.first_indemnity_event = event.effective, event
                    s.payments_before_indemnity = frozenset(str(p) for p in s.book.payments)
                s.indemnity_paid += event.amount
            case RecoveryReceived():
                s.recoveries.append(Recovery(event, s.balances_at_indemnity is not None))
            case TopUpPurchased():
                self._buy_top_up(event)  # before the book marks it bought
            case _:
                pass
        s.book.apply(event)

    def _ineligible(self, event: InvoiceIssued, terms: PolicyTerms) -> str | None:
        """Why an invoice is not insured at delivery (docs/rules.md, "Which invoices are insured"), or None."""
        s = self._state
        delivered = event.delivered
        buyer = s.registered
        if not terms.start <= delivered <= terms.end:
            return "delivered outside the policy period"
        if buyer is None:
            return "buyer not registered"
        excluded = buyer_exclusion(buyer, terms) or ("prepaid" if event.prepaid else None)
        if excluded is not None:
            return excluded.replace("_", " ")
        return terms.beyond_max_credit(delivered, event.due) or self._stopped_on(delivered)

    def _stopped_on(self, day: datetime.date) -> str | None:
        """Insolvent or on stop on `day`, as far as the fold has come."""
        s = self._state
        if s.insolvent_since is not None and s.insolvent_since <= day:
            return "buyer insolvent at delivery"
        if self._on_stop_on(day):
            return "buyer on stop at delivery"
        return None

    def _on_stop_on(self, day: datetime.date) -> bool:
        return _in_spell(self._state.on_stop_since, self._state.past_stops, day)

    def _lock_cap(self, event: InvoiceIssued) -> None:
        """The cap (docs/rules.md, "Which invoices are insured"): cap = min(amount, max(0, limit + top-up - insured outstanding)), at entry."""
        s = self._state
        terms = self.terms.at(event.delivered)
        balance = s.book.invoices[event.invoice]
        reason = self._ineligible(event, terms)
        in_force = limit_on(s.decisions, event.delivered, self.terms)
        if reason is None and in_force.amount <= 0:
            reason = "no limit in force at delivery"
        if reason is None:
            # A delivery under the old limit (outstanding_order_days) gets no top-up:
            # the top-up fills the gap a reduction opened, never more (docs/rules.md, "Top-up").
            entry = CapEntry(in_force.amount, 0 if in_force.in_grace else self._top_up_on(event.delivered),
                             self.open_totals(event.effective).insured)
            cap = min(event.amount, max(0, entry.limit + entry.top_up - entry.insured_outstanding))
            cover = InvoiceCover(balance=balance, cap=cap, decision=in_force.decision, not_insured=None, entry=entry)
        else:
            cover = InvoiceCover(balance=balance, cap=0, decision=in_force.decision, not_insured=reason)
        s.invoices[event.invoice] = cover
        self._changed.add(event.invoice)
        if reason is None and event.delivered >= event.effective:
            self._awaiting[event.invoice] = event.delivered

    def _settle_deliveries(self, up_to: datetime.date) -> None:
        """Judge every delivery dated up to `up_to` that was still waiting for its day: a delivery
        after its invoice's issue, the buyer's state that day decides (docs/rules.md)."""
        if not self._awaiting:
            return
        for name in [name for name, delivered in self._awaiting.items() if delivered <= up_to]:
            del self._awaiting[name]
            reason = self._stopped_on(self._state.invoices[name].balance.delivered)
            if reason is not None:
                self._state.invoices[name] = _replace(self._state.invoices[name], cap=0, not_insured=reason)
                self._changed.add(name)

    # ------------------------------------------------------------ the top-up layer

    def _top_up_formula(self, current: Minor) -> Minor:
        s = self._state
        terms = self.terms.at(s.book.first_reduction or self._today or datetime.date.min)
        return 0 if terms.top_up is None else s.book.top_up_for(current, terms.top_up.cap)

    def _top_up_on(self, day: datetime.date) -> Minor:
        top_up = self._state.top_up
        if top_up is None or top_up.ended or not top_up.purchased <= day < top_up.ends:
            return 0
        return top_up.amount

    def _buy_top_up(self, event: TopUpPurchased) -> None:
        s = self._state
        terms = self.terms.at(event.effective)
        first_reduction = s.book.first_reduction
        if terms.top_up is None or first_reduction is None or (s.top_up is not None and not s.top_up.ended):
            return  # refused at append (ledger.write.streams); nothing to fold
        ends = terms.top_up_window_end(first_reduction)
        s.top_up = TopUp(
            purchased=event.effective, ends=ends, amount=self._top_up_formula(s.book.limit),
            month_start=event.effective, month_end=add_months(event.effective, 1),
        )
        self._charge(event.effective, "top_up_premium", round_half_up(terms.top_up.rate * s.top_up.amount),
                     s.top_up.amount, terms.top_up.rate)
        self._charge(event.effective, "top_up_admin_fee", terms.top_up.admin_fee, 0, Decimal(0))

    def _top_up_month(self, day: datetime.date) -> None:
        """A monthly anniversary: charge the month on the amount in force."""
        top_up = self._state.top_up
        assert top_up is not None
        terms = self.terms.at(day)
        assert terms.top_up is not None
        self._state.top_up = top_up = _replace(
            top_up, month_start=day, month_end=add_months(top_up.purchased, _months_between(top_up.purchased, day) + 1)
        )
        self._charge(day, "top_up_premium", round_half_up(terms.top_up.rate * top_up.amount), top_up.amount,
                     terms.top_up.rate)

    def _prorata(self, day: datetime.date, change: Minor) -> Minor:
        top_up = self._state.top_up
        assert top_up is not None
        terms = self.terms.at(day)
        assert terms.top_up is not None
        days_left = (top_up.month_end - day).days
        days_in_month = (top_up.month_end - top_up.month_start).days
        return round_half_up(terms.top_up.rate * change * days_left / days_in_month)

    def _top_up_change(self, day: datetime.date, amount: Minor) -> None:
        """The primary limit moved: the top-up follows, charging or refunding the rest of the month."""
        top_up = self._state.top_up
        assert top_up is not None
        change = amount - top_up.amount
        if change == 0:
            return
        terms = self.terms.at(day)
        assert terms.top_up is not None
        self._charge(day, "top_up_premium" if change > 0 else "top_up_refund", self._prorata(day, change),
                     change, terms.top_up.rate)
        self._state.top_up = _replace(top_up, amount=amount)

    def _end_top_up(self, day: datetime.date) -> None:
        """Cover ends on `day`: refund the unused days of the cover month."""
        top_up = self._state.top_up
        assert top_up is not None
        if top_up.month_start <= day < top_up.month_end and day > top_up.purchased:
            terms = self.terms.at(day)
            assert terms.top_up is not None
            self._charge(day, "top_up_refund", self._prorata(day, -top_up.amount), -top_up.amount, terms.top_up.rate)
        elif day == top_up.purchased:
            terms = self.terms.at(day)
            assert terms.top_up is not None
            self._charge(day, "top_up_refund", -round_half_up(terms.top_up.rate * top_up.amount), -top_up.amount,
                         terms.top_up.rate)
        self._state.top_up = _replace(top_up, ended=True)

    def _charge(self, day: datetime.date, kind: str, amount: Minor, basis: Minor, rate: Decimal) -> None:
        terms = self.terms.at(day)
        tax_pct = terms.premium.tax_pct if terms.premium else Decimal(0)
        tax = round_half_up(Decimal(amount) * tax_pct / 100)
        self._state.premium_lines.append(PremiumLine(day, kind, self._state.buyer, amount, tax, basis, rate))


def buyer_exclusion(buyer: BuyerRegistered, terms: PolicyTerms) -> str | None:
    """Why a buyer's sales are never insured, in the precedence of docs/rules.md (kind, named
    exclusion, selection, country), or None. Cover and turnover both use it."""
    if buyer.kind != "company":
        return buyer.kind
    if buyer.excluded:
        return "named_exclusion"
    if terms.structure == "selected_risk" and not (
        buyer.buyer in terms.selected_buyers or buyer.country in terms.selected_countries
    ):
        return "outside_selection"
    if not terms.covers_country(buyer.country):
        return "country_not_covered"
    return None


def limit_decisions(events: Iterable[Event]) -> list[LimitDecision]:
    """The limit decisions among `events` (in fold order), as a timeline."""
    events = events if isinstance(events, Sequence) else list(events)
    return [
        LimitDecision(e.effective, 0 if isinstance(e, LimitCancelled) else e.amount,
                      not isinstance(e, LimitGranted), e)
        for e in of_types(events, _DECISIONS)
    ]


_DECISIONS = frozenset({LimitGranted, LimitReduced, LimitCancelled})


def of_types(events: Sequence[Event], types: frozenset[type]) -> Iterator[Any]:
    """The events of exactly these types (event types have no subtypes), picked without a
    Python-level step per event: most of a stream is invoices and payments, read past here."""
    return compress(events, map(types.__contains__, map(type, events)))


def limit_on(decisions: Sequence[LimitDecision], day: datetime.date, terms: TermsTimeline) -> LimitInForce:
    """The limit that counts for a delivery (or a sale) on `day`: the latest decision
    by then, except that a cut made within `outstanding_order_days` before `day`
    does not bind it yet (docs/rules.md)."""
    limit, used, in_grace = 0, None, False
    for decision in decisions:
        if decision.effective > day:
            break
        grace = terms.at(decision.effective).outstanding_order_days
        if decision.cut and day <= decision.effective + datetime.timedelta(days=grace):
            in_grace = True
            continue
        limit, used, in_grace = decision.amount, decision, False
    return LimitInForce(limit, used, in_grace)


def _months_between(start: datetime.date, day: datetime.date) -> int:
    months = (day.year - start.year) * 12 + day.month - start.month
    return months if add_months(start, months) <= day else months - 1


def buyer_cover(
    buyer: str,
    buyer_events: Sequence[Event],
    policy_events: Sequence[Event],
    as_of: datetime.date,
    known_at: datetime.datetime | None = None,
) -> BuyerCover:
    """The cover of `buyer` at the end of `as_of`, from the events recorded by `known_at`.

    `buyer_events` and `policy_events` are in recorded order (as stored).
    """
    known_policy = recorded_by(policy_events, known_at)
    terms = TermsTimeline(known_policy)
    if not terms:
        return BuyerCover(buyer=buyer, as_of=as_of)
    political = [e for e in known_policy if isinstance(e, PoliticalEvent)]
    events = [e for e in in_fold_order(recorded_by(buyer_events, known_at)) if e.effective <= as_of]
    fold = CoverFold(buyer, terms, limit_decisions(events), political)
    fold.fold_through(as_of, events)
    return fold.cover(as_of)


def political_losses(
    events: Sequence[PoliticalEvent], country: str | None, terms: TermsTimeline
) -> list[PoliticalLoss]:
    """Loss dates from political events in the buyer's country, where covered (docs/rules.md, "Claims")."""
    losses: list[PoliticalLoss] = []
    for event in events:
        at = terms.at(event.effective)
        if event.country == country and at.political_risk:
            losses.append(PoliticalLoss(at.protracted_default_on(event.effective), event))
    return losses


def _in_spell(current_since: datetime.date | None, past: Sequence[Stop], day: datetime.date) -> bool:
    """Whether a spell (a report in force, a stop) covered the end of `day`: the current one,
    begun by then, or a past one (`since`, `cleared`) begun by then and cleared after it.
    Past spells are in order, one after the other, so the latest is looked at first."""
    if current_since is not None and current_since <= day:
        return True
    for spell in reversed(past):
        if spell.cleared <= day:
            return False
        if spell.since <= day:
            return True
    return False


FULL_LIMIT = "limit fully used at delivery"


def why_not_insured(reason: str | None, cap: Minor) -> str | None:
    """Why an invoice's cap is 0, in words: the fold's reason for an invoice it did not insure,
    or else a limit already used up by the insured outstanding when the cap was locked."""
    if reason is None and cap == 0:
        return FULL_LIMIT
    return reason
