"""The stateful property test (issue 8; STYLE: Hypothesis stateful testing).

A `RuleBasedStateMachine` drives the real `Ledger` on a SQLite file (and, in
a shorter class, on PostgreSQL) side by side with a plain model: buyers,
their limits and, per buyer, the money events in recorded order. The model
folds those by effective date itself (allocation by due date, issue date,
recorded order; unallocated credit for later invoices) and so predicts, for
every command, whether the ledger must record it or refuse it and with which
field. Commands: register a buyer, request/grant/reduce/cancel a limit, issue
an invoice, a credit note, a payment (naming an invoice or not), report or
clear an overdue buyer, move the clock, with invoices, credit notes and
payments often back-dated; and invalid ones (an overpayment, an unknown
buyer, a credit note above its invoice, a known key with other content, a
recorded stamp going backwards).

After every step: the event count is the model's; money is conserved per
buyer (invoiced - credit notes - allocated = outstanding, in the exposure
query and in the model); every exposure answer remembered at an earlier
`known_at` is unchanged; and a ledger opened afresh on the same store answers
as the live one. Refused commands are checked at once to have left the log
and the exposure unchanged.

`make test` runs it briefly; `make soak` (CREDITLEDGER_SOAK=1) runs it long
and prints the counts.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import POLICY_FILE, POSTGRES_SERVER, POSTGRES_UNREACHABLE, UTC, Clock, drop_schema, postgres_available
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.adapters.policyfile import load_policy_file
from ledger.queries.answers import Obligations
from ledger.queries.book import book_covers, claims_folded, claims_of, losses_of
from ledger.queries.exposure import ExposureAnswer, book_exposures, exposure_query
from ledger.queries.obligations import obligations_query
from ledger.queries.premium import premium_account, premium_folded
from ledger.readmodels.book import BookModel
from ledger.readmodels.exposure import ExposureModel
from ledger.service import Ledger
from ledger.store import memory_tables
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import CreditNoteIssued, InvoiceIssued, PaymentReceived, format_recorded
from ledger.vocabulary.money import format_minor
from ledger.write.pipeline import Outcome
from projections.exposure import Exposure
from projections.terms import TermsTimeline

SOAK = os.environ.get("CREDITLEDGER_SOAK") == "1"
TERMS = load_policy_file(POLICY_FILE)
CURRENCY = TERMS.currency
FIRST_DAY = datetime.date(2025, 1, 2)
LAST_DAY = datetime.date(2025, 12, 31)
MAX_BUYERS = 4
MAX_SNAPSHOTS = 5
UNKNOWN_BUYER = "NOBODY"
DISCRETIONARY_MAX = TERMS.discretionary_limit_max
COUNTRIES = ["GB", "DE", "FR", "US"]
# The SQLite file goes to a memory-backed file system where there is one: every
# step commits, and on a shared disk the fsyncs made the run three times slower.
# It is still a file, opened and reopened by path; durability is the crash tests' subject.
MEMORY_BACKED = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
INVALID = ["overpayment", "credit_note_above_the_invoice", "unknown_buyer", "registered_again",
           "known_key_other_content", "recorded_going_backwards"]

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
SQLITE_RUN = (
    settings(max_examples=200, stateful_step_count=50, deadline=None, suppress_health_check=_HEALTH)
    if SOAK else settings(max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=_HEALTH)
)
POSTGRES_RUN = (
    settings(max_examples=30, stateful_step_count=40, deadline=None, suppress_health_check=_HEALTH)
    if SOAK else settings(max_examples=3, stateful_step_count=15, deadline=None, suppress_health_check=_HEALTH)
)

# What the runs did, summed over examples (printed by the soak run).
TOTALS: Counter[str] = Counter()


# ---------------------------------------------------------------- the model

class Refusal(Exception):
    """The model's prediction: the ledger must refuse, naming `field`."""

    def __init__(self, field: str, position: int) -> None:
        super().__init__(field)
        self.field = field
        self.position = position  # which op of the candidate list broke a rule


@dataclass(frozen=True)
class MoneyOp:
    """An invoice, credit note or payment of the model, in minor units."""

    kind: str  # invoice | credit_note | payment
    effective: datetime.date
    amount: int
    invoice: str | None
    due: datetime.date | None = None


@dataclass
class Balances:
    """What a buyer's money ops fold to."""

    open: dict[str, int] = field(default_factory=dict)  # invoice -> balance
    invoiced: int = 0
    credited: int = 0
    paid: int = 0
    credit: int = 0  # paid beyond everything open, waiting for later invoices
    due: dict[str, datetime.date] = field(default_factory=dict)

    def overdue(self, as_of: datetime.date) -> int:
        """What is open on invoices due before `as_of` (overdue from the day after the due date)."""
        return sum(balance for invoice, balance in self.open.items() if self.due[invoice] < as_of)

    @property
    def outstanding(self) -> int:
        return sum(self.open.values())

    @property
    def allocated(self) -> int:
        return self.paid - self.credit


def fold_money(registered: datetime.date, ops: Sequence[MoneyOp], upto: datetime.date | None = None) -> Balances:
    """The model's own fold of one buyer's ops (given in recorded order), written
    from SPEC 6.2 and 11 independently of `projections.balances`; raises
    `Refusal` at the first op (in fold order) that breaks a rule of SPEC 5."""
    state = Balances()
    order: dict[str, tuple[datetime.date, datetime.date, int]] = {}
    ranked = sorted(enumerate(ops), key=lambda pair: (pair[1].effective, pair[0]))
    for position, op in ranked:
        if upto is not None and op.effective > upto:
            break
        if op.effective < registered:
            raise Refusal("buyer", position)
        if op.kind == "invoice":
            assert op.invoice is not None and op.due is not None
            if op.invoice in state.open:
                raise Refusal("invoice", position)
            order[op.invoice] = (op.due, op.effective, position)
            state.due[op.invoice] = op.due
            taken = min(state.credit, op.amount)
            state.credit -= taken
            state.open[op.invoice] = op.amount - taken
            state.invoiced += op.amount
        elif op.invoice is not None:  # a credit note, or a payment naming its invoice
            if op.invoice not in state.open:
                raise Refusal("invoice", position)
            if op.amount > state.open[op.invoice]:
                raise Refusal("amount", position)
            state.open[op.invoice] -= op.amount
            if op.kind == "credit_note":
                state.credited += op.amount
            else:
                state.paid += op.amount
        else:  # a payment naming no invoice: oldest due date, then issue date, then recorded order
            left = op.amount
            for invoice in sorted(state.open, key=order.__getitem__):
                part = min(left, state.open[invoice])
                state.open[invoice] -= part
                left -= part
            state.credit += left
            state.paid += op.amount
    return state


@dataclass
class ModelBuyer:
    registered: datetime.date
    limit: int = 0
    non_cancellable: bool = False
    withdrawn: bool = False  # a cancellation withdrew the discretionary right
    ops: list[MoneyOp] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)

    def balances(self, upto: datetime.date | None = None) -> Balances:
        return fold_money(self.registered, self.ops, upto)

    def predict(self, op: MoneyOp) -> str | None:
        """None if the ledger must record `op`, else the field its refusal names:
        the op's own rule, or `effective` when, back-dated, it breaks a later op."""
        try:
            fold_money(self.registered, [*self.ops, op])
        except Refusal as refusal:
            return refusal.field if refusal.position == len(self.ops) else "effective"
        return None


@dataclass(frozen=True)
class Snapshot:
    as_of: datetime.date
    known_at: datetime.datetime
    answer: ExposureAnswer


def near(bound: int) -> st.SearchStrategy[int]:
    """An amount up to a little beyond `bound`, often exactly at it or one unit over."""
    return st.one_of(st.just(max(bound, 1)), st.just(bound + 1), st.integers(1, bound + 100))


def money(minor: int) -> str:
    return format_minor(minor, CURRENCY)


# ---------------------------------------------------------------- the machine

class LedgerMachine(RuleBasedStateMachine):
    """The real ledger and the model, command by command."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="creditledger-stateful-", dir=MEMORY_BACKED)
        self.location = self.make_location()
        self.clock = Clock(datetime.datetime.combine(FIRST_DAY, datetime.time(9), tzinfo=UTC))
        self.ledger = Ledger(self.location, clock=self.clock)
        self.ledger.load_policy(TERMS)
        self.today = FIRST_DAY
        self.buyers: dict[str, ModelBuyer] = {}
        self.count = 1
        (policy,) = self.ledger.events()
        self.last_id, self.last_recorded = str(policy.id), policy.recorded
        self.keys: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (event id, what was sent)
        self.serial = 0
        self.snapshots: list[Snapshot] = []
        self._answer: ExposureAnswer | None = None
        TOTALS["examples"] += 1

    def make_location(self) -> str:
        return os.path.join(self.directory, "ledger.db")

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def answer(self) -> ExposureAnswer:
        """The book's exposure at today, as known now; asked once between writes."""
        if self._answer is None:
            self._answer = exposure_query(self.ledger, {"as_of": self.today})
        return self._answer

    def next_key(self) -> str:
        self.serial += 1
        return f"k{self.serial}"

    def send(self, raw: dict[str, Any], expected: str | None) -> None:
        """Append `raw` (given a fresh key); `expected` None: it must be recorded,
        else refused naming that field and leaving everything as it was."""
        TOTALS["commands"] += 1
        self.clock.advance(seconds=1)
        raw = {**raw, "key": self.next_key()}
        if expected is None:
            outcome = self.ledger.append(raw)
            self.recorded(outcome, raw)
            return
        before = self.obligations()
        with pytest.raises(LedgerError) as caught:
            self.ledger.append(raw)
        self.refused(caught.value, expected)
        assert self.obligations() == before

    def obligations(self) -> Obligations:
        return obligations_query(self.ledger, {"as_of": self.today})

    def recorded(self, outcome: Outcome, raw: dict[str, Any]) -> None:
        assert len(outcome.recorded) == 1 and not outcome.skipped, outcome
        (event,) = outcome.recorded
        assert event.recorded > self.last_recorded, "a new stamp must come after every earlier one"
        self.keys[raw["key"]] = (str(event.id), raw)
        self.count += 1
        self.last_id, self.last_recorded = str(event.id), event.recorded
        self._answer = None
        TOTALS["recorded"] += 1

    def refused(self, error: LedgerError, expected: str) -> None:
        assert error.field == expected, f"refusal names {error.field!r}, the model expected {expected!r}: {error}"
        self.assert_unchanged()
        TOTALS["refused"] += 1

    def assert_unchanged(self) -> None:
        """Refused (or skipped) commands leave nothing: same count, same last event, same answers."""
        assert self.ledger.count() == self.count
        assert str(self.ledger.log(limit=None)[-1].id) == self.last_id
        assert self.ledger.store.index.last_recorded() == format_recorded(self.last_recorded)
        before = self.answer()
        self._answer = None
        assert self.answer() == before

    def buyer(self, data: st.DataObject) -> tuple[str, ModelBuyer]:
        name = data.draw(st.sampled_from(sorted(self.buyers)), label="buyer")
        return name, self.buyers[name]

    def day(self, data: st.DataObject, buyer: ModelBuyer) -> datetime.date:
        """Today, or often a back-dated day on or after the buyer's registration."""
        back = (self.today - buyer.registered).days
        days = data.draw(st.one_of(st.just(0), st.integers(0, min(back, 90))), label="days back")
        return self.today - datetime.timedelta(days=days)

    def has_invoices(self) -> bool:
        return any(b.invoices for b in self.buyers.values())

    def invoice(self, data: st.DataObject) -> tuple[str, ModelBuyer, str]:
        name = data.draw(st.sampled_from(sorted(n for n, b in self.buyers.items() if b.invoices)), label="buyer")
        buyer = self.buyers[name]
        return name, buyer, data.draw(st.sampled_from(buyer.invoices), label="invoice")

    # ------------------------------------------------------------ valid (or model-judged) commands
    # Few rules, so that hypothesis (which picks rules evenly) spends most steps
    # on money: the limit decisions share one rule, the invalid commands another.

    @initialize(countries=st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=2),
                limit=st.integers(0, 50_000))
    def open_the_book(self, countries: list[str], limit: int) -> None:
        """One or two buyers registered on the first day, the first with an underwriter limit."""
        for country in countries:
            self.register_buyer(country)
        self.send({"type": "limit_granted", "effective": self.today.isoformat(), "buyer": "B1",
                   "amount": money(limit * 100)}, None)
        self.buyers["B1"].limit = limit * 100

    @precondition(lambda self: len(self.buyers) < MAX_BUYERS)
    @rule(country=st.sampled_from(COUNTRIES))
    def register_buyer(self, country: str) -> None:
        name = f"B{len(self.buyers) + 1}"
        self.send({"type": "buyer_registered", "effective": self.today.isoformat(), "buyer": name,
                   "name": f"Buyer {name}", "country": country}, None)
        self.buyers[name] = ModelBuyer(registered=self.today)

    @rule(data=st.data(), kind=st.sampled_from(["request", "grant", "discretionary", "reduce", "cancel"]))
    def decide_a_limit(self, data: st.DataObject, kind: str) -> None:
        """limit_requested, limit_granted (underwriter or discretionary), limit_reduced, limit_cancelled."""
        name, buyer = self.buyer(data)
        raw: dict[str, Any] = {"effective": self.today.isoformat(), "buyer": name}
        expected: str | None = None
        if kind == "request":
            raw.update(type="limit_requested", amount=money(data.draw(st.integers(0, 100_000)) * 100))
            self.send(raw, None)
        elif kind in ("grant", "discretionary"):
            minor = data.draw(st.integers(0, 60_000 if kind == "grant" else 6_000), label="limit") * 100
            non_cancellable = data.draw(st.booleans(), label="non_cancellable")
            raw.update(type="limit_granted", amount=money(minor), non_cancellable=non_cancellable)
            if kind == "discretionary":
                criterion = data.draw(st.sampled_from([None, "credit_report", "trading_history"]), label="criterion")
                raw.update(basis="discretionary", **({"criterion": criterion} if criterion else {}))
                # The ledger checks in this order: the criterion, the maximum, the withdrawn right.
                if criterion is None:
                    expected = "criterion"
                elif minor > DISCRETIONARY_MAX:
                    expected = "amount"
                elif buyer.withdrawn:
                    expected = "basis"
            self.send(raw, expected)
            if expected is None:
                buyer.limit, buyer.non_cancellable = minor, non_cancellable
                buyer.withdrawn = buyer.withdrawn and kind == "discretionary"
        elif kind == "reduce":
            minor = data.draw(st.integers(0, buyer.limit // 100 + 5), label="new limit") * 100
            expected = "buyer" if buyer.non_cancellable else "amount" if minor >= buyer.limit else None
            self.send({**raw, "type": "limit_reduced", "amount": money(minor)}, expected)
            if expected is None:
                buyer.limit = minor
        else:
            expected = "buyer" if buyer.non_cancellable else None
            self.send({**raw, "type": "limit_cancelled"}, expected)
            if expected is None:
                buyer.limit, buyer.withdrawn = 0, True

    @rule(data=st.data(), amount=st.integers(1, 2_000_000), term=st.integers(0, 150))
    def issue_invoice(self, data: st.DataObject, amount: int, term: int) -> None:
        name, buyer = self.buyer(data)
        day = self.day(data, buyer)
        invoice = f"I{self.serial + 1}"
        op = MoneyOp("invoice", day, amount, invoice, day + datetime.timedelta(days=term))
        expected = buyer.predict(op)
        assert op.due is not None
        self.send({"type": "invoice_issued", "effective": day.isoformat(), "buyer": name, "invoice": invoice,
                   "amount": money(amount), "due": op.due.isoformat()}, expected)
        if expected is None:
            buyer.ops.append(op)
            buyer.invoices.append(invoice)

    def open_on(self, buyer: ModelBuyer, invoice: str, day: datetime.date) -> int:
        return buyer.balances(upto=day).open.get(invoice, 0)

    @precondition(has_invoices)
    @rule(data=st.data(), kind=st.sampled_from(["credit_note", "payment"]))
    def settle_an_invoice(self, data: st.DataObject, kind: str) -> None:
        """A credit note or a payment naming its invoice, often back-dated, of up to
        what is open on its day and a little beyond: the model decides whether it
        fits, or (back-dated) would turn a later one into an overpayment."""
        name, buyer, invoice = self.invoice(data)
        day = self.day(data, buyer)
        amount = data.draw(near(self.open_on(buyer, invoice, day)), label="amount")
        op = MoneyOp(kind, day, amount, invoice)
        expected = buyer.predict(op)
        self.send({"type": "credit_note_issued" if kind == "credit_note" else "payment_received",
                   "effective": day.isoformat(), "buyer": name, "invoice": invoice, "amount": money(amount)},
                  expected)
        if expected is None:
            buyer.ops.append(op)

    @rule(data=st.data())
    def receive_a_payment_naming_no_invoice(self, data: st.DataObject) -> None:
        """Allocated by due date, issue date, recorded order; the rest waits as credit."""
        name, buyer = self.buyer(data)
        day = self.day(data, buyer)
        amount = data.draw(st.one_of(near(buyer.balances(upto=day).outstanding), st.integers(1, 1_000_000)),
                           label="amount")
        op = MoneyOp("payment", day, amount, None)
        expected = buyer.predict(op)
        self.send({"type": "payment_received", "effective": day.isoformat(), "buyer": name,
                   "amount": money(amount)}, expected)
        if expected is None:
            buyer.ops.append(op)

    @rule(data=st.data(), kind=st.sampled_from(["overdue_reported", "overdue_cleared"]))
    def report_overdue(self, data: st.DataObject, kind: str) -> None:
        name, _ = self.buyer(data)
        self.send({"type": kind, "effective": self.today.isoformat(), "buyer": name}, None)

    @precondition(lambda self: self.today < LAST_DAY)
    @rule(days=st.integers(1, 45))
    def advance_clock(self, days: int) -> None:
        self.today = min(self.today + datetime.timedelta(days=days), LAST_DAY)
        morning = datetime.datetime.combine(self.today, datetime.time(9), tzinfo=UTC)
        self.clock.set(max(self.clock.now, morning))
        self._answer = None

    @precondition(lambda self: len(self.snapshots) < MAX_SNAPSHOTS)
    @rule(days_back=st.integers(0, 120))
    def remember_an_answer(self, days_back: int) -> None:
        """Keep the exposure at some as_of, as known now, to ask again after later writes."""
        as_of = max(self.today - datetime.timedelta(days=days_back), FIRST_DAY)
        known_at = self.clock.now
        answer = exposure_query(self.ledger, {"as_of": as_of, "known_at": known_at})
        self.snapshots.append(Snapshot(as_of, known_at, answer))

    # ------------------------------------------------------------ invalid commands

    @rule(data=st.data(), kind=st.sampled_from(INVALID))
    def send_an_invalid_command(self, data: st.DataObject, kind: str) -> None:
        """One of the commands the ledger must refuse (or, a known key, skip), leaving nothing."""
        if kind in ("overpayment", "credit_note_above_the_invoice") and self.has_invoices():
            name, buyer, invoice = self.invoice(data)
            beyond = data.draw(st.integers(1, 100_000), label="beyond")
            credit_note = kind == "credit_note_above_the_invoice"
            op = MoneyOp("credit_note" if credit_note else "payment", self.today,
                         self.open_on(buyer, invoice, self.today) + beyond, invoice)
            assert buyer.predict(op) == "amount"
            self.send({"type": "credit_note_issued" if credit_note else "payment_received",
                       "effective": self.today.isoformat(), "buyer": name, "invoice": invoice,
                       "amount": money(op.amount)}, "amount")
        elif kind == "registered_again":
            name, _ = self.buyer(data)
            self.send({"type": "buyer_registered", "effective": self.today.isoformat(), "buyer": name,
                       "name": "Again", "country": "GB"}, "buyer")
        elif kind == "known_key_other_content":
            self.known_key_with_other_content(data)
        elif kind == "recorded_going_backwards":
            self.recorded_time_going_backwards(data)
        else:
            self.command_for_an_unknown_buyer(data)

    def command_for_an_unknown_buyer(self, data: st.DataObject) -> None:
        today = self.today.isoformat()
        raw = data.draw(st.sampled_from([
            {"type": "invoice_issued", "invoice": "X1", "amount": "10.00", "due": today},
            {"type": "payment_received", "amount": "10.00"},
            {"type": "limit_granted", "amount": "1000"},
            {"type": "overdue_reported"},
        ]), label="event")
        self.send({**raw, "effective": today, "buyer": UNKNOWN_BUYER}, "buyer")

    def known_key_with_other_content(self, data: st.DataObject) -> None:
        """A key already recorded is skipped, whatever the content (even content the rules would refuse)."""
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        earlier_id, sent = self.keys[key]
        effective = datetime.date.fromisoformat(sent["effective"]) + datetime.timedelta(days=1)
        raw = {**sent, "effective": effective.isoformat()}
        if data.draw(st.booleans(), label="unknown buyer"):
            raw["buyer"] = UNKNOWN_BUYER
        self.clock.advance(seconds=1)
        outcome = self.ledger.append(raw)
        assert outcome.recorded == []
        assert [s.earlier for s in outcome.skipped] == [earlier_id]
        self.assert_unchanged()
        TOTALS["skipped"] += 1
        TOTALS["commands"] += 1

    def recorded_time_going_backwards(self, data: st.DataObject) -> None:
        """An import keeping its stamps may not put one before the latest."""
        name, _ = self.buyer(data)
        stamp = self.last_recorded - datetime.timedelta(seconds=data.draw(st.integers(1, 7 * 86400)))
        raw = {"type": "overdue_reported", "effective": self.today.isoformat(), "buyer": name,
               "key": self.next_key(), "recorded": stamp.isoformat().replace("+00:00", "Z")}
        self.clock.advance(seconds=1)
        TOTALS["commands"] += 1
        with pytest.raises(LedgerError) as caught:
            self.ledger.record(self.ledger.parse([(1, raw)], "history.jsonl"), keep_recorded=True)
        assert caught.value.source == "history.jsonl" and caught.value.line == 1, str(caught.value)
        self.refused(caught.value, "recorded")

    # ------------------------------------------------------------ invariants

    @invariant()
    def events_counted(self) -> None:
        assert self.ledger.count() == self.count
        TOTALS["states checked"] += 1

    @invariant()
    def money_conserved(self) -> None:
        """Per buyer: invoiced - credit notes - allocated = outstanding, in the
        model and in the exposure query; the book total is the sum."""
        answer = self.answer()
        rows = {row.buyer: row for row in answer.buyers}
        assert sorted(rows) == sorted(self.buyers)
        total = 0
        for name, buyer in self.buyers.items():
            state = buyer.balances()
            assert state.invoiced - state.credited - state.allocated == state.outstanding
            stored = self.ledger.buyer_events(name)
            assert (sum(e.amount for e in stored if isinstance(e, InvoiceIssued)),
                    sum(e.amount for e in stored if isinstance(e, CreditNoteIssued)),
                    sum(e.amount for e in stored if isinstance(e, PaymentReceived))) == (
                state.invoiced, state.credited, state.paid), "the stored money events are the model's"
            assert state.credit == 0 or state.outstanding == 0, "credit waits only while nothing is open"
            assert rows[name].outstanding == money(state.outstanding), (name, rows[name], state)
            # Which invoices a payment naming none went to shows in what is overdue.
            assert rows[name].overdue == money(state.overdue(self.today)), (name, rows[name], state)
            total += state.outstanding
        assert answer.outstanding == money(total)

    @invariant()
    def earlier_known_at_answers_the_same(self) -> None:
        for snapshot in self.snapshots:
            again = exposure_query(self.ledger, {"as_of": snapshot.as_of, "known_at": snapshot.known_at})
            assert again == snapshot.answer, (snapshot.as_of, snapshot.known_at)

    @invariant()
    def incremental_read_models_equal_full_replay(self) -> None:
        """The live ledger's exposure read model, caught up step by step, against one
        rebuilt from nothing (in memory) over a ledger opened afresh, and the
        book it answers against a plain fold of every buyer; the same for the book
        read model, and the claims and premium account it answers."""
        self.ledger.exposure_model.catch_up()
        with Ledger(self.location, clock=self.clock) as fresh:
            assert [(e.id, e.recorded) for e in fresh.events()] == [(e.id, e.recorded) for e in self.ledger.events()]
            rebuilt = ExposureModel(fresh, memory_tables())
            assert rebuilt.stored() == self.ledger.exposure_model.stored()
            terms = TermsTimeline(fresh.policy_events())
            folded = [(cover.buyer, Exposure.of(cover, terms)) for cover in book_covers(fresh, self.today, None)]
            assert book_exposures(self.ledger, self.today, None) == folded
            rebuilt.close()
            # The book read model too, and the claims and the premium account it answers against the fold.
            self.ledger.book_model.catch_up()
            rebuilt_book = BookModel(fresh, memory_tables())
            assert rebuilt_book.stored_facts() == self.ledger.book_model.stored_facts()
            rebuilt_book.close()
            register = claims_folded(fresh, self.today, None)
            assert claims_of(self.ledger, self.today, None) == register
            assert losses_of(self.ledger, self.today, None) == [claim for claim in register if claim.loss_date]
            assert premium_account(self.ledger, self.today, None) == premium_folded(fresh, self.today, None)


class PostgresLedgerMachine(LedgerMachine):
    """The same machine on a PostgreSQL ledger in a schema of its own."""

    def make_location(self) -> str:
        self.schema = "t_" + uuid.uuid4().hex[:16]
        return f"{POSTGRES_SERVER}?schema={self.schema}"

    def teardown(self) -> None:
        super().teardown()
        drop_schema(self.schema)


def report(backend: str) -> None:
    """One line of counts (shown by `make soak`, which runs pytest with -rP)."""
    print(f"stateful ({backend}): " + ", ".join(f"{count} {name}" for name, count in sorted(TOTALS.items())))


@pytest.mark.slow
@pytest.mark.soak
def test_ledger_against_the_model_on_sqlite() -> None:
    TOTALS.clear()
    run_state_machine_as_test(LedgerMachine, settings=SQLITE_RUN)
    report("sqlite")


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.postgres
def test_ledger_against_the_model_on_postgres() -> None:
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    TOTALS.clear()
    run_state_machine_as_test(PostgresLedgerMachine, settings=POSTGRES_RUN)
    report("postgres")
