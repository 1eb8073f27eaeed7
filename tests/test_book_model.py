"""The book read model (ledger/readmodels/book.py): the premium account, turnover, the
declaration and the claims answered from it (known now) are exactly those of the fold of the
whole log (`premium_folded`, `claims_folded`, `read_book`), on random books recorded in two
parts (the second caught up incrementally) and on a seeded sample book after appends (a
back-dated payment, a new buyer, a limit cut, a policy amendment); its rows equal a rebuild
from nothing; `verify` names an edited row and rebuilds it; an earlier `known_at` is folded.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import test_claim_properties as claims_books
import test_premium_properties as premium_books
from helpers import record_book
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readmodels import sample_ledger

from ledger.operations.verify import verify
from ledger.queries import book as queries
from ledger.queries.premium import premium_account, premium_folded
from ledger.queries.turnover import declaration_query, turnover_query
from ledger.readmodels import book as readmodel
from ledger.readmodels.book import BookModel
from ledger.service import Ledger
from ledger.store import memory_tables
from ledger.vocabulary.events import format_recorded
from ledger.vocabulary.terms import amend_policy
from projections.turnover import clipped_period, declarations, declared_amount, period_turnover, turnover_by_country

DAYS = [datetime.date(2025, 1, 31), datetime.date(2025, 6, 30), datetime.date(2025, 9, 30),
        datetime.date(2025, 12, 31), datetime.date(2026, 3, 31)]
PERIODS = ["2025-Q1", "2025-Q3", "2025-04", "2025"]


def rebuilt(ledger: Ledger) -> Any:
    """The rows of a book model rebuilt from nothing, in memory."""
    fresh = BookModel(ledger, memory_tables())
    try:
        return fresh.stored_facts()
    finally:
        fresh.close()


def assert_model_answers_as_the_fold(ledger: Ledger, days: list[datetime.date] = DAYS) -> None:
    """Every figure from the book model equals the fold's, and its rows a rebuild's."""
    assert ledger.book_model.stored_facts() == rebuilt(ledger)
    for day in days:
        assert premium_account(ledger, day, None) == premium_folded(ledger, day, None), day
        register = queries.claims_folded(ledger, day, None)
        assert queries.claims_of(ledger, day, None) == register, day
        assert queries.losses_of(ledger, day, None) == [claim for claim in register if claim.loss_date], day
        for claim in register:
            assert queries.claim_of(ledger, claim.buyer, day, None) == queries._claim_folded(
                ledger, claim.buyer, day, None), (claim.buyer, day)
    book = queries.read_book(ledger, None)
    terms = book.timeline.latest()
    for period in PERIODS:
        answer = turnover_query(ledger, {"period": period})
        figures = period_turnover(book.sales, period, terms)
        assert answer.insurable == f"{figures.insurable / 100:.2f}", period
        declared = declared_amount(declarations(book.policy, None), period, None)
        assert answer.declared == ("" if declared is None else f"{declared / 100:.2f}"), period
        countries = turnover_by_country(book.sales, *clipped_period(period, terms))
        rows = declaration_query(ledger, {"period": period}).countries
        assert [(row.country, row.insurable_turnover) for row in rows] == [
            (country, f"{countries[country].insurable / 100:.2f}") for country in sorted(countries)], period


def recorded_in_two_parts(table: dict[str, Any], rows: list[dict[str, Any]], split: int) -> Ledger:
    """A ledger of the book, its model caught up after the first `split` rows and again after the rest."""
    ledger = record_book(table, rows[:split])
    ledger.book_model.catch_up()
    if rows[split:]:
        ledger.record(ledger.parse(list(enumerate(rows[split:], split + 1)), "book"))
    return ledger


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=claims_books.books(), share=st.floats(0, 1))
def test_claims_from_the_model_are_the_fold(book: tuple[dict[str, Any], list[dict[str, Any]]], share: float):
    table, rows = book
    with recorded_in_two_parts(table, rows, int(len(rows) * share)) as ledger:
        assert_model_answers_as_the_fold(ledger)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=premium_books.books(), share=st.floats(0, 1))
def test_premium_and_turnover_from_the_model_are_the_fold(book: tuple[dict[str, Any], list[dict[str, Any]]],
                                                          share: float):
    table, rows = book
    with recorded_in_two_parts(table, rows, int(len(rows) * share)) as ledger:
        assert_model_answers_as_the_fold(ledger, [datetime.date(2025, 3, 31), datetime.date(2026, 1, 31)])


def test_a_loss_an_earlier_fold_finds_before_a_later_limit_decision_is_in_the_register():
    """An invoice issued before a limit cancellation and delivered after it takes its cap from
    the cancelled limit: folded as of a day before the cancellation, the buyer has a protracted
    default (03-12) that the fold after every event has not. The register from the model must
    still have it (it once left the buyer out)."""
    table = {"id": "P1", "currency": "GBP", "start": datetime.date(2025, 1, 1), "end": datetime.date(2025, 12, 31),
             "cover": "proportional", "indemnity_pct": "90", "excess": "0", "non_qualifying_loss": "0",
             "protracted_default_days": 30}
    rows = [
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "B1", "country": "GB"},
        {"type": "invoice_issued", "effective": "2025-01-05", "buyer": "B1", "invoice": "A", "amount": "100",
         "due": "2025-02-04"},
        {"type": "limit_granted", "effective": "2025-01-06", "buyer": "B1", "amount": "1000"},
        {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "X", "amount": "500",
         "due": "2025-08-01", "delivered": "2025-05-01"},
        {"type": "overdue_reported", "effective": "2025-02-10", "buyer": "B1"},
        {"type": "limit_cancelled", "effective": "2025-04-01", "buyer": "B1"},
    ]
    with record_book(table, rows) as ledger:
        day = datetime.date(2025, 3, 20)
        assert [(c.buyer, c.loss_date) for c in queries.losses_of(ledger, day, None)] == [
            ("B1", datetime.date(2025, 3, 12))]
        assert_model_answers_as_the_fold(ledger, [day, datetime.date(2025, 4, 15), datetime.date(2025, 5, 15)])


def test_appends_refold_only_the_buyers_they_touch(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        assert ledger.book_model.catch_up() == len(ledger.buyers())
        assert_model_answers_as_the_fold(ledger)
        buyers = ledger.buyers()
        ledger.append({"type": "invoice_issued", "buyer": buyers[1], "effective": "2025-03-01",
                       "invoice": "LATE-1", "amount": "900.00", "due": "2025-05-01"})  # back-dated
        ledger.append({"type": "limit_reduced", "effective": "2025-03-01", "buyer": buyers[2], "amount": "100"})
        ledger.append({"type": "buyer_registered", "effective": "2025-05-01", "buyer": "NEW", "name": "New",
                       "country": "DE"})
        ledger.append({"type": "limit_requested", "effective": "2025-05-01", "buyer": "NEW", "amount": "5000"})
        assert ledger.book_model.catch_up() == 3
        assert_model_answers_as_the_fold(ledger)
        ledger.load_policy(amend_policy(ledger.terms(), {"max_credit_days": 60}), effective=DAYS[1])
        assert ledger.book_model.catch_up() == len(ledger.buyers())
        assert_model_answers_as_the_fold(ledger)


def test_an_earlier_known_at_is_folded_and_a_later_one_read_from_the_model(monkeypatch: Any):
    with sample_ledger("memory", events=600) as ledger:
        before = ledger.clock()
        account = premium_folded(ledger, DAYS[3], None)
        ledger.append({"type": "limit_requested", "effective": "2025-06-01", "buyer": ledger.buyers()[0],
                       "amount": "5000"})  # an investigation fee more
        later = ledger.clock()
        assert premium_account(ledger, DAYS[3], None) != account
        assert premium_account(ledger, DAYS[3], before) == account  # as known then: folded
        assert queries.claims_of(ledger, DAYS[3], before) == queries.claims_folded(ledger, DAYS[3], before)
        register = queries.claims_folded(ledger, DAYS[3], None)
        monkeypatch.setattr(queries, "read_book", lambda *args: pytest.fail("folded"))
        assert ledger.last_recorded() <= format_recorded(later)  # nothing recorded after `later`: the model
        assert queries.claims_of(ledger, DAYS[3], later) == register
        assert queries.losses_of(ledger, DAYS[3], later) == [claim for claim in register if claim.loss_date]


def test_verify_names_an_edited_row_and_the_model_is_rebuilt(durable_location: str):
    with sample_ledger(durable_location) as ledger:
        assert verify(ledger).clean
        buyer = ledger.buyers()[4]
        with ledger.book_model.tables.write(readmodel.NAME) as writer:
            writer.execute("UPDATE book_sales SET amount = amount + 1 WHERE day = (SELECT min(day) FROM book_sales)")
            writer.execute("UPDATE book_buyers SET facts = replace(facts, 'false', 'true') WHERE buyer = ?", [buyer])
    with Ledger(durable_location) as reopened:
        findings = verify(reopened).findings
        assert [f.check for f in findings] == ["read_models", "read_models"]
        assert f"buyer {buyer} " in findings[0].message and "sales by country" in findings[1].message
        assert reopened.book_model.stored_facts() == rebuilt(reopened)
    with Ledger(durable_location) as again:
        assert verify(again).clean
