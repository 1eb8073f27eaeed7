"""A buyer's cover at the end of any day, as known at any time (SPEC 6, 11).

`buyer_cover(buyer_events, policy_events, as_of, known_at)` folds only the
events recorded up to `known_at` and effective up to `as_of`, in fold order.
Between events the calendar moves on by itself: invoices fall overdue, the
buyer goes on stop, reporting deadlines pass, a protracted default matures,
top-up cover months turn. Those day-driven changes are applied at the start
of their day, before that day's events, from the state the previous day
ended with; the answer is the state at the end of day `as_of`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.vocabulary.dates import ONE_DAY, add_months
from ledger.vocabulary.events import (
    BuyerEvent,
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
    PaymentReversed,
    PoliticalEvent,
    RecoveryReceived,
    TopUpPurchased,
)
from ledger.vocabulary.money import round_half_up
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.balances import BuyerBook, InvoiceBalance
from projections.lines import PremiumLine
from projections.terms import TermsTimeline


@dataclass
class LimitDecision:
    """One limit decision: its date, the limit after it, and whether it cut the limit."""

    effective: datetime.date
    amount: int
    cut: bool  # a reduction or cancellation (outstanding_order_days applies)
    event: Event


@dataclass
class InvoiceCover:
    """Cover facts of one invoice; its balance lives in the BuyerBook."""

    balance: InvoiceBalance
    cap: int
    decision: LimitDecision | None  # the limit decision it was insured under
    not_insured: str | None  # why the cap is 0, in words, or None
    lost_from: datetime.date | None = None  # uninsured from this day (a missed deadline, a term too long)
    lost_reason: str | None = None
    awaiting_delivery: bool = False  # judged again at the end of its delivery day
    deadline_judged: bool = False  # its reporting deadline has been met or missed
    thresholds: tuple[datetime.date, datetime.date, datetime.date] | None = None  # (due, stop day, deadline)
    entry: tuple[int, int, int] = (0, 0, 0)  # (limit, top-up, insured outstanding) when the cap was locked

    def insured(self, day: datetime.date) -> int:
        """The insured part of the balance on `day`: min(cap, balance), or 0 once cover is lost."""
        if self.lost_from is not None and day >= self.lost_from:
            return 0
        return min(self.cap, self.balance.balance)


@dataclass
class Obligation:
    """A duty with a deadline (SPEC 6.3): kind, buyer, due date, status."""

    kind: str  # report_overdue / file_claim / declare_turnover
    buyer: str | None
    due: datetime.date
    status: str  # pending / met / missed


@dataclass
class TopUp:
    """The top-up layer of SPEC 6.4 and 11."""

    purchased: datetime.date
    ends: datetime.date  # first day without cover
    amount: int = 0
    month_start: datetime.date = datetime.date.min
    month_end: datetime.date = datetime.date.min  # the next anniversary
    ended: bool = False


@dataclass
class BuyerCover:
    """A buyer's cover state; the exposure of SPEC 6.5 is read from it."""

    buyer: str
    as_of: datetime.date
    registered: BuyerRegistered | None = None
    book: BuyerBook = field(default_factory=BuyerBook)
    invoices: dict[str, InvoiceCover] = field(default_factory=dict)
    decisions: list[LimitDecision] = field(default_factory=list)
    on_stop_since: datetime.date | None = None
    cleared_on: datetime.date | None = None
    reported_since: datetime.date | None = None
    insolvent_since: datetime.date | None = None
    claim_filed: datetime.date | None = None
    indemnity_paid: int = 0
    first_indemnity: datetime.date | None = None
    balances_at_indemnity: dict[str, int] | None = None  # SPEC 11: the insured loss takes balances here
    # Each recovery, and whether it came after the first indemnity (then it is shared, SPEC 8.4).
    recoveries: list[tuple[RecoveryReceived, bool]] = field(default_factory=list)
    first_indemnity_event: Event | None = None
    claim_filed_event: Event | None = None
    payments_before_indemnity: frozenset[str] = frozenset()  # payment and recovery ids folded before it
    latest_report_event: Event | None = None
    loss_date: datetime.date | None = None
    loss_cause: str | None = None
    loss_event: Event | None = None
    past_stops: list[tuple[datetime.date, datetime.date]] = field(default_factory=list)  # [since, cleared)
    latest_report: datetime.date | None = None
    top_up: TopUp | None = None
    obligations: list[Obligation] = field(default_factory=list)
    premium_lines: list[PremiumLine] = field(default_factory=list)
    political_dates: list[tuple[datetime.date, Event]] = field(default_factory=list)

    # ------------------------------------------------------------ figures

    @property
    def limit(self) -> int:
        """The limit in force (SPEC 6.1): the latest decision, 0 if none."""
        return self.book.limit

    @property
    def top_up_amount(self) -> int:
        top_up = self.top_up
        if top_up is None or top_up.ended or self.as_of >= top_up.ends:
            return 0
        return top_up.amount

    def open_covers(self) -> list[InvoiceCover]:
        """Covers of the invoices with a balance: the only ones the figures add up."""
        return [self.invoices[name] for name in self.book.open_ids if name in self.invoices]

    @property
    def outstanding(self) -> int:
        return sum(cover.balance.balance for cover in self.open_covers())

    @property
    def overdue(self) -> int:
        """Balances of invoices past their due date."""
        return sum(c.balance.balance for c in self.open_covers() if c.balance.due < self.as_of)

    def insured_on(self, day: datetime.date) -> int:
        return sum(cover.insured(day) for cover in self.open_covers())

    @property
    def insured(self) -> int:
        return self.insured_on(self.as_of)

    @property
    def status(self) -> str:
        """active / overdue / on_stop / insolvent / claim / closed, most serious first (docs/rules.md)."""
        return self.status_with(self.overdue, self.outstanding)

    def status_with(self, overdue: int, outstanding: int) -> str:
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


class CoverFold:
    """Folds one buyer's events, day by day, into a BuyerCover."""

    def __init__(self, buyer: str, terms: TermsTimeline, as_of: datetime.date) -> None:
        self.state = BuyerCover(buyer=buyer, as_of=as_of)
        self.terms = terms
        self.today: datetime.date | None = None  # the day whose start was last processed
        self._awaiting: list[InvoiceCover] = []  # invoices to judge at the end of their delivery day

    # ------------------------------------------------------------ the calendar

    def advance(self, day: datetime.date) -> None:
        """Apply every day-driven change dated after the last processed day, up to `day`."""
        while True:
            moment = self._next_change(day)
            if moment is None:
                break
            self._change_on(moment)
            self.today = moment
        self.today = day if self.today is None or day > self.today else self.today

    def next_change(self) -> datetime.date | None:
        """The next day on which the calendar alone changes something."""
        return self._next_change(datetime.date.max)

    def awaiting_deliveries(self) -> list[datetime.date]:
        """Delivery days of the invoices still to be judged at the end of that day."""
        return [cover.balance.delivered for cover in self._awaiting]

    def _next_change(self, limit: datetime.date) -> datetime.date | None:
        """The first day after today, up to `limit`, on which the calendar changes something."""
        today, best = self.today, None
        for moment in self._scheduled():  # the fold's hot loop: one pass, no list
            if (today is None or moment > today) and moment <= limit and (best is None or moment < best):
                best = moment
        return best

    def _scheduled(self) -> Iterable[datetime.date]:
        s = self.state
        for cover in self._awaiting:
            yield cover.balance.delivered + ONE_DAY  # after that day's events
        watch_stop = s.on_stop_since is None
        for cover in s.open_covers():
            stop_day, deadline = self._thresholds(cover)
            if watch_stop:
                yield stop_day
            if not cover.deadline_judged:
                yield deadline + ONE_DAY
        if s.latest_report is not None and s.loss_date is None:
            terms = self.terms.at(s.latest_report)
            yield s.latest_report + datetime.timedelta(days=terms.protracted_default_days)
        for moment, _ in s.political_dates:
            yield moment
        if s.top_up is not None and not s.top_up.ended:
            yield min(s.top_up.month_end, s.top_up.ends)

    def _thresholds(self, cover: InvoiceCover) -> tuple[datetime.date, datetime.date]:
        """An invoice's on-stop day and reporting deadline, from its current due date
        (kept with the cover until the due date moves: the calendar asks often)."""
        due = cover.balance.due
        thresholds = cover.thresholds
        if thresholds is None or thresholds[0] != due:
            terms = self.terms.at(due)
            thresholds = cover.thresholds = (due, due + datetime.timedelta(days=terms.on_stop_days),
                                             due + datetime.timedelta(days=terms.notify_days))
        return thresholds[1], thresholds[2]

    def _change_on(self, day: datetime.date) -> None:
        """What the start of `day` changes, from the state the day before ended with."""
        s = self.state
        self.settle_deliveries(day - ONE_DAY)  # judged at the end of their delivery day
        for cover in s.invoices.values():
            if cover.balance.balance <= 0:
                continue
            stop_day, deadline = self._thresholds(cover)
            if s.on_stop_since is None and stop_day == day and (s.cleared_on is None or day > s.cleared_on):
                s.on_stop_since = day
            if deadline + ONE_DAY == day and not cover.deadline_judged:
                self._deadline_passed(cover, deadline, day)
        if s.latest_report is not None and s.loss_date is None:
            terms = self.terms.at(s.latest_report)
            if s.latest_report + datetime.timedelta(days=terms.protracted_default_days) == day and s.insured_on(day) > 0:
                self._loss(day, "protracted_default", s.latest_report_event)
        for moment, event in s.political_dates:
            if moment == day and s.loss_date is None and s.insured_on(day) > 0:
                self._loss(day, "political", event)
        if s.top_up is not None and not s.top_up.ended:
            if day >= s.top_up.ends:
                self._end_top_up(day)
            elif day == s.top_up.month_end:
                self._top_up_month(day)

    def _deadline_passed(self, cover: InvoiceCover, deadline: datetime.date, day: datetime.date) -> None:
        """A reporting deadline has passed with the invoice unpaid (judged on `day`): met by a
        report in force, dropped after a loss, else missed and uninsured from `day`."""
        s = self.state
        cover.deadline_judged = True
        if s.loss_date is not None and deadline > s.loss_date:
            return  # the duty became file_claim (SPEC 11)
        if s.reported_since is not None and s.reported_since <= deadline:
            self._oblige("report_overdue", deadline, "met")
            return
        self._oblige("report_overdue", deadline, "missed")
        if cover.lost_from is None:
            cover.lost_from = day
            cover.lost_reason = f"overdue not reported by {deadline}"

    def _catch_up(self, day: datetime.date) -> None:
        """An invoice unpaid again (reversed payment) or issued late can have passed its
        stop day or reporting deadline already: those count from `day` (SPEC 6.3, 11)."""
        s = self.state
        for cover in self.state.open_covers():
            stop_day, deadline = self._thresholds(cover)
            if s.on_stop_since is None and stop_day < day and (s.cleared_on is None or stop_day > s.cleared_on):
                s.on_stop_since = day
            if deadline < day and not cover.deadline_judged:
                self._deadline_passed(cover, deadline, day)

    def _oblige(self, kind: str, due: datetime.date, status: str) -> None:
        for obligation in self.state.obligations:
            if obligation.kind == kind and obligation.due == due:
                if obligation.status != "missed":
                    obligation.status = status
                return
        self.state.obligations.append(Obligation(kind, self.state.buyer, due, status))

    def _loss(self, day: datetime.date, cause: str, event: Event | None) -> None:
        s = self.state
        if s.loss_date is not None:
            return
        s.loss_date, s.loss_cause, s.loss_event = day, cause, event

    # ------------------------------------------------------------ events

    def apply(self, event: Event) -> None:
        """Fold one event, after the calendar has been brought to its day."""
        self.advance(event.effective)
        s = self.state
        match event:
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
            case InvoiceIssued():
                s.book.apply(event)
                self._lock_cap(event)
                self._catch_up(event.effective)
                return
            case PaymentReversed():
                s.book.apply(event)
                self._catch_up(event.effective)
                return
            case DueDateExtended():
                s.book.apply(event)
                cover = s.invoices[event.invoice]
                terms = self.terms.at(event.effective)
                if (event.due - cover.balance.delivered).days > terms.max_credit_days and cover.lost_from is None:
                    cover.lost_from = event.effective
                    cover.lost_reason = f"due date extended beyond max_credit_days {terms.max_credit_days}"
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
                    s.past_stops.append((s.on_stop_since, event.effective))
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
                    s.balances_at_indemnity = {name: c.balance.balance for name, c in s.invoices.items()}
                    s.first_indemnity, s.first_indemnity_event = event.effective, event
                    s.payments_before_indemnity = frozenset(str(p) for p in s.book.payments)
                s.indemnity_paid += event.amount
            case RecoveryReceived():
                s.recoveries.append((event, s.balances_at_indemnity is not None))
            case TopUpPurchased():
                self._buy_top_up(event)  # before the book marks it bought
            case _:
                pass
        s.book.apply(event)

    def limit_for_delivery(self, delivered: datetime.date) -> tuple[int, LimitDecision | None]:
        """The limit a delivery counts under (see `limit_on`)."""
        limit, decision, _ = limit_on(self.state.decisions, delivered, self.terms)
        return limit, decision

    def _ineligible(self, event: InvoiceIssued, terms: PolicyTerms) -> str | None:
        """Why an invoice is not insured at delivery (SPEC 6.2), or None."""
        s = self.state
        delivered = event.delivered
        buyer = s.registered
        if not terms.start <= delivered <= terms.end:
            return "delivered outside the policy period"
        if buyer is None:
            return "buyer not registered"
        excluded = buyer_exclusion(buyer, terms) or ("prepaid" if event.prepaid else None)
        if excluded is not None:
            return excluded.replace("_", " ")
        if (event.due - delivered).days > terms.max_credit_days:
            return f"payment term beyond max_credit_days {terms.max_credit_days}"
        return self._stopped_on(delivered)

    def _stopped_on(self, day: datetime.date) -> str | None:
        """Insolvent or on stop on `day`, as far as the fold has come."""
        s = self.state
        if s.insolvent_since is not None and s.insolvent_since <= day:
            return "buyer insolvent at delivery"
        if self._on_stop_on(day):
            return "buyer on stop at delivery"
        return None

    def _on_stop_on(self, day: datetime.date) -> bool:
        s = self.state
        if s.on_stop_since is not None and s.on_stop_since <= day:
            return True
        return any(since <= day < cleared for since, cleared in s.past_stops)

    def _lock_cap(self, event: InvoiceIssued) -> None:
        """SPEC 6.2: cap = min(amount, max(0, limit + top-up - insured outstanding)), at entry."""
        s = self.state
        terms = self.terms.at(event.delivered)
        balance = s.book.invoices[event.invoice]
        reason = self._ineligible(event, terms)
        limit, decision, in_grace = limit_on(s.decisions, event.delivered, self.terms)
        cap = 0
        if reason is None and limit <= 0:
            reason = "no limit in force at delivery"
        if reason is None:
            # A delivery under the old limit (outstanding_order_days) gets no top-up:
            # the top-up fills the gap a reduction opened, never more (SPEC 6.4).
            top_up = 0 if in_grace else self._top_up_on(event.delivered)
            insured_outstanding = s.insured_on(event.effective)
            cap = min(event.amount, max(0, limit + top_up - insured_outstanding))
        cover = InvoiceCover(balance=balance, cap=cap, decision=decision, not_insured=reason)
        if reason is None:
            cover.entry = (limit, top_up, insured_outstanding)
        cover.awaiting_delivery = reason is None and event.delivered >= event.effective
        s.invoices[event.invoice] = cover
        if cover.awaiting_delivery:
            self._awaiting.append(cover)

    def _deliver(self, cover: InvoiceCover) -> None:
        """A delivery after its invoice's issue: the buyer's state that day decides (SPEC 11)."""
        cover.awaiting_delivery = False
        reason = self._stopped_on(cover.balance.delivered)
        if reason is not None:
            cover.cap, cover.not_insured = 0, reason

    def settle_deliveries(self, up_to: datetime.date) -> None:
        """Judge every delivery dated up to `up_to` that was still waiting for its day."""
        for cover in [c for c in self._awaiting if c.balance.delivered <= up_to]:
            self._deliver(cover)
            self._awaiting.remove(cover)

    # ------------------------------------------------------------ the top-up layer

    def _top_up_formula(self, current: int) -> int:
        s = self.state
        terms = self.terms.at(s.book.first_reduction or self.today or datetime.date.min)
        return 0 if terms.top_up is None else s.book.top_up_for(current, terms.top_up.cap)

    def _top_up_on(self, day: datetime.date) -> int:
        top_up = self.state.top_up
        if top_up is None or top_up.ended or not top_up.purchased <= day < top_up.ends:
            return 0
        return top_up.amount

    def _buy_top_up(self, event: TopUpPurchased) -> None:
        s = self.state
        terms = self.terms.at(event.effective)
        first_reduction = s.book.first_reduction
        if terms.top_up is None or first_reduction is None or (s.top_up is not None and not s.top_up.ended):
            return  # refused at append (ledger.commands); nothing to fold
        ends = min(add_months(first_reduction, terms.top_up.months), terms.end + ONE_DAY)
        s.top_up = TopUp(
            purchased=event.effective, ends=ends, amount=self._top_up_formula(s.book.limit),
            month_start=event.effective, month_end=add_months(event.effective, 1),
        )
        self._charge(event.effective, "top_up_premium", round_half_up(terms.top_up.rate * s.top_up.amount),
                     s.top_up.amount, terms.top_up.rate)
        self._charge(event.effective, "top_up_admin_fee", terms.top_up.admin_fee, 0, Decimal(0))

    def _top_up_month(self, day: datetime.date) -> None:
        """A monthly anniversary: charge the month on the amount in force."""
        top_up = self.state.top_up
        assert top_up is not None
        terms = self.terms.at(day)
        assert terms.top_up is not None
        top_up.month_start, top_up.month_end = day, add_months(top_up.purchased, _months_between(top_up.purchased, day) + 1)
        self._charge(day, "top_up_premium", round_half_up(terms.top_up.rate * top_up.amount), top_up.amount,
                     terms.top_up.rate)

    def _prorata(self, day: datetime.date, change: int) -> int:
        top_up = self.state.top_up
        assert top_up is not None
        terms = self.terms.at(day)
        assert terms.top_up is not None
        days_left = (top_up.month_end - day).days
        days_in_month = (top_up.month_end - top_up.month_start).days
        return round_half_up(terms.top_up.rate * change * days_left / days_in_month)

    def _top_up_change(self, day: datetime.date, amount: int) -> None:
        """The primary limit moved: the top-up follows, charging or refunding the rest of the month."""
        top_up = self.state.top_up
        assert top_up is not None
        change = amount - top_up.amount
        if change == 0:
            return
        terms = self.terms.at(day)
        assert terms.top_up is not None
        self._charge(day, "top_up_premium" if change > 0 else "top_up_refund", self._prorata(day, change),
                     change, terms.top_up.rate)
        top_up.amount = amount

    def _end_top_up(self, day: datetime.date) -> None:
        """Cover ends on `day`: refund the unused days of the cover month."""
        top_up = self.state.top_up
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
        top_up.ended = True

    def _charge(self, day: datetime.date, kind: str, amount: int, basis: int, rate: Decimal) -> None:
        terms = self.terms.at(day)
        tax_pct = terms.premium.tax_pct if terms.premium else Decimal(0)
        tax = round_half_up(Decimal(amount) * tax_pct / 100)
        self.state.premium_lines.append(PremiumLine(day, kind, self.state.buyer, amount, tax, basis, rate))


def buyer_exclusion(buyer: BuyerRegistered, terms: PolicyTerms) -> str | None:
    """Why a buyer's sales are never insured, in SPEC 11 precedence (kind, named
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
    return [
        LimitDecision(e.effective, 0 if isinstance(e, LimitCancelled) else e.amount,
                      not isinstance(e, LimitGranted), e)
        for e in events if isinstance(e, (LimitGranted, LimitReduced, LimitCancelled))
    ]


def limit_on(
    decisions: Sequence[LimitDecision], day: datetime.date, terms: TermsTimeline
) -> tuple[int, LimitDecision | None, bool]:
    """The limit that counts for a delivery (or a sale) on `day`: the latest decision
    by then, except that a cut made within `outstanding_order_days` before `day`
    does not bind it yet (SPEC 11). Also returns the decision it rests on, and
    whether a cut was passed over (the delivery counts under an older limit)."""
    limit, used, in_grace = 0, None, False
    for decision in decisions:
        if decision.effective > day:
            break
        grace = terms.at(decision.effective).outstanding_order_days
        if decision.cut and day <= decision.effective + datetime.timedelta(days=grace):
            in_grace = True
            continue
        limit, used, in_grace = decision.amount, decision, False
    return limit, used, in_grace


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
    terms = TermsTimeline(recorded_by(policy_events, known_at))
    fold = CoverFold(buyer, terms, as_of)
    if not terms:
        return fold.state
    country = None
    political = [e for e in recorded_by(policy_events, known_at) if isinstance(e, PoliticalEvent)]
    events = [e for e in in_fold_order(recorded_by(buyer_events, known_at)) if e.effective <= as_of]
    # Every decision known by as_of: a delivery after its invoice's issue date
    # counts under the limit in force on the delivery date (SPEC 11).
    fold.state.decisions = limit_decisions(events)
    for event in events:
        if isinstance(event, BuyerRegistered):
            country = event.country
            fold.state.political_dates = political_losses(political, country, terms)
        assert isinstance(event, BuyerEvent)
        fold.apply(event)
    fold.advance(as_of)
    fold.settle_deliveries(as_of)
    _close_obligations(fold)
    return fold.state


def political_losses(
    events: list[PoliticalEvent], country: str | None, terms: TermsTimeline
) -> list[tuple[datetime.date, Event]]:
    """Loss dates from political events in the buyer's country, where covered (SPEC 8.1)."""
    losses: list[tuple[datetime.date, Event]] = []
    for event in events:
        at = terms.at(event.effective)
        if event.country == country and at.political_risk:
            losses.append((event.effective + datetime.timedelta(days=at.protracted_default_days), event))
    return losses


def _close_obligations(fold: CoverFold) -> None:
    """Duties still open at the end of as_of: pending reports, and the claim to file after a loss."""
    s = fold.state
    for cover in s.invoices.values():
        if cover.balance.balance <= 0 or cover.balance.due >= s.as_of or cover.deadline_judged:
            continue
        deadline = cover.balance.due + datetime.timedelta(days=fold.terms.at(cover.balance.due).notify_days)
        if s.loss_date is not None and deadline > s.loss_date:
            continue
        status = "met" if s.reported_since is not None else "pending"
        fold._oblige("report_overdue", deadline, status)
    if s.loss_date is not None:
        days = fold.terms.at(s.loss_date).claim_filing_days
        if days is not None:
            due = s.loss_date + datetime.timedelta(days=days)
            if s.claim_filed is not None and s.claim_filed <= due:
                status = "met"
            elif due < s.as_of:
                status = "missed"
            else:
                status = "pending"
            s.obligations.append(Obligation("file_claim", s.buyer, due, status))
    s.obligations.sort(key=lambda o: (o.due, o.kind))
