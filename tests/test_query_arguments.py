"""Each query's typed arguments (ledger/queries/arguments.py): read from what users give, the
same refusals wherever given; and the book read once (`read_book`) as the queries share it."""

from __future__ import annotations

import datetime

import msgspec
import pytest
from helpers import record_book

from ledger.queries import arguments as args
from ledger.queries.book import NoPolicy, book_covers, fold_book
from ledger.queries.registry import QUERIES, run_query
from ledger.vocabulary.errors import LedgerError

POLICY = {"id": "P-ARGS", "currency": "GBP", "start": datetime.date(2025, 1, 1), "end": datetime.date(2025, 12, 31),
          "cover": "proportional", "premium": {"rate": "0.01", "minimum": "50", "tax_pct": "12"}}
ROWS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "B1", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "B2", "country": "FR"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "10000"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1", "amount": "3000.00",
     "due": "2025-03-01"},
]


def test_every_query_reads_typed_arguments():
    for name, query in QUERIES.items():
        assert issubclass(query.arguments, args.Arguments), name
        assert msgspec.json.schema(query.arguments), name  # what an HTTP API derives its parameters from
    read = args.ExposureArgs.read({"as_of": "2025-03-31", "known_at": "2025-04-01", "buyer": "B1", "period": "x"})
    assert read == args.ExposureArgs(
        as_of=datetime.date(2025, 3, 31), buyer="B1",
        known_at=datetime.datetime(2025, 4, 1, 23, 59, 59, 999999, tzinfo=datetime.UTC),
    )  # arguments a query does not take are left aside, as the scenario runner relies on
    assert args.ExposureArgs.read({"as_of": None}) == args.ExposureArgs()
    assert args.PremiumArgs.read({}).lines and not args.ObligationsArgs.read({}).open


@pytest.mark.parametrize(("kind", "given", "field", "words"), [
    (args.ExposureArgs, {"as_of": "31/03/2025"}, "as_of", "is not a date"),
    (args.ClaimsArgs, {"known_at": "soon"}, "known_at", "is not a timestamp"),
    (args.TurnoverArgs, {}, "period", "is not a period"),
    (args.DeclarationArgs, {"period": "2025-Q5"}, "period", "is not a period"),
    (args.ClaimArgs, {"as_of": "2025-03-31"}, "buyer", "the claim query needs a buyer"),
    (args.ExposureDiffArgs, {"known_at": ["2025-03-01"]}, "known_at", "two --known-at"),
    (args.ObligationsArgs, {"due_within": "651359187"}, "due_within", "is above 36600"),  # past the calendar's end
])
def test_arguments_are_refused_in_one_wording(kind, given, field, words):
    with pytest.raises(LedgerError) as refused:
        kind.read(given)
    assert refused.value.field == field and words in str(refused.value)


def test_the_diff_sorts_its_two_moments():
    read = args.ExposureDiffArgs.read({"known_at": ["2025-06-01", "2025-03-15"], "buyer": "B1"})
    assert read.known_at[0] < read.known_at[1] and read.buyer == "B1" and read.as_of is None


def test_turnover_before_the_policy_was_known_is_refused():
    with record_book(POLICY, ROWS) as ledger:
        before = "2000-01-01T00:00:00Z"
        for query in ("turnover", "declaration"):
            with pytest.raises(NoPolicy, match="no policy as known at 2000-01-01T00:00:00"):
                run_query(query, ledger, {"period": "2025-Q1", "known_at": before})
        assert run_query("obligations", ledger, {"as_of": "2025-12-31", "known_at": before}).obligations == ()


def test_the_whole_book_fold_holds_every_cover_whole():
    """`fold_book.covers` are real covers (no registration-only stubs): the same as folding each stream."""
    with record_book(POLICY, ROWS) as ledger:
        book = fold_book(ledger, datetime.date(2025, 12, 31), None)
        assert list(book.covers.values()) == book_covers(ledger, datetime.date(2025, 12, 31), None)
        assert book.covers["B2"].invoices == {} and book.covers["B1"].invoices
        with pytest.raises(TypeError):
            book.covers["B3"] = book.covers["B1"]  # type: ignore[index]


def test_a_yes_no_argument_reads_a_bool_or_the_words_true_and_false():
    assert args.ObligationsArgs.read({"open": "false"}).open is False  # bool("false") would be True
    assert args.ObligationsArgs.read({"open": "TRUE"}).open is True
    assert args.PremiumArgs.read({"lines": False}).lines is False
    with pytest.raises(LedgerError, match="'maybe' is not true or false") as refused:
        args.ClaimArgs.read({"buyer": "B1", "explain": "maybe"})
    assert refused.value.field == "explain"
