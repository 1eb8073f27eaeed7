"""The exposure timeline (projections/timeline.py) answers what the fold answers, on every day.

The read model of the book's exposure stores each buyer's timeline; these
tests hold it to `Exposure.of(buyer_cover(..., as_of=day), terms)` on random books
(the generator of tests/test_cover_properties.py), and pin the fold fix the
comparison found.
"""

from __future__ import annotations

import datetime

from helpers import UTC
from hypothesis import given
from hypothesis import strategies as st
from test_cover_properties import ACME, FIRST_DAY, LAST_DAY, RUNS, SPEC_TERMS, UNIT, books, fold_one, new_ledger

from ledger.vocabulary.events import PoliticalEvent
from ledger.vocabulary.order import in_fold_order
from projections.cover import CoverFold, buyer_cover, limit_decisions
from projections.exposure import Exposure
from projections.terms import TermsTimeline
from projections.timeline import exposure_on, exposure_timeline

DAYS = st.dates(FIRST_DAY - datetime.timedelta(days=5), LAST_DAY + datetime.timedelta(days=200))


@RUNS
@given(data=st.data())
def test_the_timeline_gives_the_folds_exposure_on_any_day(data: st.DataObject):
    book = data.draw(books())
    policy = book.policy_events()
    terms = TermsTimeline(policy)
    for buyer in book.buyers:
        events = book.buyer_events(buyer)
        timeline = exposure_timeline(buyer, events, policy)
        assert [step.since for step in timeline] == sorted({step.since for step in timeline})
        for day in data.draw(st.lists(DAYS, min_size=20, max_size=20)):
            cover = buyer_cover(buyer, events, policy, day)
            expected = Exposure.of(cover, terms) if cover.registered is not None else None
            assert exposure_on(timeline, day) == expected, (buyer, day)


@RUNS
@given(data=st.data())
def test_the_folds_running_totals_are_what_its_open_invoices_add_up_to(data: st.DataObject):
    """`CoverFold.open_totals` recounts only what changed since the last day asked (balances,
    due dates, covers, days passing a due date or a loss of cover); on every day it is the sum
    over the open invoices of the state the fold has reached."""
    book = data.draw(books())
    policy = book.policy_events()
    terms = TermsTimeline(policy)
    political = [event for event in policy if isinstance(event, PoliticalEvent)]
    for buyer in book.buyers:
        events = list(in_fold_order(book.buyer_events(buyer)))
        fold = CoverFold(buyer, terms, limit_decisions(events), political)
        for day in sorted({event.effective for event in events} | set(data.draw(st.lists(DAYS, max_size=10)))):
            fold.fold_through(day, [event for event in events if event.effective == day])
            assert fold.open_totals(day) == fold.reading_on(day).open_totals(day), (buyer, day)


def test_a_delivery_is_judged_at_the_end_of_its_day_before_later_caps_are_locked():
    """Invoice A is delivered on a day the buyer goes on stop, so it is not insured; invoice B,
    after the stop is cleared, finds the whole limit free (A took none of it)."""
    rows = [
        *ACME[:2],
        {"type": "invoice_issued", "effective": "2025-03-05", "invoice": "A", "amount": "1000.00",
         "due": "2025-05-05"},
        {"type": "overdue_reported", "effective": "2025-03-05"},
        {"type": "overdue_cleared", "effective": "2025-03-10"},
        {"type": "invoice_issued", "effective": "2025-03-20", "invoice": "B", "amount": "20000.00",
         "due": "2025-05-20"},
    ]
    cover = fold_one(rows, datetime.date(2025, 3, 31))
    assert (cover.invoices["A"].cap, cover.invoices["B"].cap) == (0, 20000 * UNIT)
    assert cover.insured == 20000 * UNIT


def test_a_decision_between_issue_and_delivery_reaches_the_cap_from_its_day():
    """The limit is cancelled between an invoice's issue (1 March) and its delivery (10 March):
    before the cancellation the cap stands on the old limit, from it on the invoice is uninsured."""
    rows = [*ACME, {"type": "limit_cancelled", "effective": "2025-03-05"}]
    with new_ledger(SPEC_TERMS) as ledger:
        for hour, row in enumerate(rows):
            stamp = datetime.datetime(2025, 1, 1, 8, tzinfo=UTC) + datetime.timedelta(hours=hour)
            ledger.record(ledger.parse([(None, {**row, "buyer": "B1", "recorded": stamp.isoformat()})]),
                          keep_recorded=True)
        events, policy = ledger.buyer_events("B1"), ledger.policy_events()
    timeline = exposure_timeline("B1", events, policy)
    for day in (datetime.date(2025, 3, d) for d in (1, 4, 5, 9, 10, 31)):
        assert exposure_on(timeline, day) == Exposure.of(buyer_cover("B1", events, policy, day), TermsTimeline(policy)), day
    assert exposure_on(timeline, datetime.date(2025, 3, 4)).insured == 1000 * UNIT  # type: ignore[union-attr]
    assert exposure_on(timeline, datetime.date(2025, 3, 5)).insured == 0  # type: ignore[union-attr]


def test_the_folds_working_state_holds_the_facts_it_hands_out() -> None:
    """`_Working` (mutable, private to the fold) and `BuyerCover` (frozen, handed out) declare the
    same facts in the same order: one added to one and not the other would be lost or crash."""
    from dataclasses import fields

    from projections.cover import BuyerCover, _Working

    assert [f.name for f in fields(_Working)] == [f.name for f in fields(BuyerCover)]


def test_a_sealed_book_is_equal_to_the_book_it_was() -> None:
    """Sealing (the fold's hand-over) makes a book read-only; it stays equal to an unsealed copy."""
    import copy
    import datetime
    from dataclasses import FrozenInstanceError

    import pytest

    from ledger.vocabulary.events import InvoiceIssued, PaymentReceived
    from projections.balances import BuyerBook

    def book() -> BuyerBook:
        made = BuyerBook()
        made.apply(InvoiceIssued(effective=datetime.date(2025, 1, 10), buyer="B1", invoice="I1", amount=10_000,
                                 due=datetime.date(2025, 3, 10), delivered=datetime.date(2025, 1, 10)))
        made.apply(PaymentReceived(effective=datetime.date(2025, 2, 1), buyer="B1", invoice="I1", amount=2_500))
        return made

    open_book, sealed = book(), book().sealed()
    assert sealed == open_book and open_book == sealed and copy.deepcopy(open_book) == sealed
    assert sealed.invoices["I1"] == open_book.invoices["I1"]
    with pytest.raises(FrozenInstanceError):
        sealed.invoices["I1"].balance = 0
    with pytest.raises(TypeError):
        sealed.invoices["I2"] = open_book.invoices["I1"]  # type: ignore[index]
