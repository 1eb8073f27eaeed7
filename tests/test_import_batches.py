"""A large write is admitted and saved a batch at a time inside one transaction
(`Ledger._record_in_batches`): it records exactly what the one-batch write records
(the hash chain intact),
and a refusal in its last batch leaves nothing of the earlier batches behind."""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers import refusal

import ledger.service
from ledger.operations.verify import verify
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import parse_policy
from ledger.write.streams import BuyerStream


def book_rows() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return samplebook.generate(seed=5, buyers=8, events=300)


def recorded(location: str, rows: list[dict[str, Any]], policy: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every event of the ledger after recording `rows`: stream, version, type, key, effective, amount."""
    with Ledger(location) as opened:
        opened.load_policy(parse_policy(policy))
        outcome = opened.record(opened.parse(list(enumerate(rows, 1)), "book"))
        assert len(outcome.recorded) == len(rows)
        report = verify(opened)
        assert report.clean and report.events == len(rows) + 1, report.findings
        return [
            (n.originator_id, n.originator_version, event.type, event.key, event.effective, getattr(event, "amount", None))
            for n in opened.store.read_notifications(1, 100_000)
            for event in [opened.store.decode(n.topic, n.state)]
        ]


def test_batches_record_what_one_write_records(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy, rows = book_rows()
    whole = recorded("memory", rows, policy)
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 37)  # many batches, one ragged
    assert recorded(location, rows, policy) == whole


def test_a_refusal_in_the_last_batch_records_nothing(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy, rows = book_rows()
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 50)
    bad = {"type": "payment_received", "effective": "2025-06-01", "buyer": "NOBODY", "amount": "1.00"}
    with Ledger(location) as opened:
        opened.load_policy(parse_policy(policy))
        with pytest.raises(LedgerError) as caught:
            opened.record(opened.parse(list(enumerate([*rows, bad], 1)), "book"))
        assert f"book:{len(rows) + 1}" in str(caught.value)
        assert opened.count() == 1  # the policy alone
        assert len(opened.record(opened.parse(list(enumerate(rows, 1)), "book")).recorded) == len(rows)


def test_a_batched_amendment_rechecks_every_buyer(monkeypatch: pytest.MonkeyPatch) -> None:
    """An amendment in a large write re-checks buyers recorded before it, not only those it touches."""
    policy, _ = book_rows()
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 1)
    with Ledger("memory") as opened:
        opened.load_policy(parse_policy(policy))
        opened.append({"type": "buyer_registered", "effective": "2025-02-01", "buyer": "U1", "name": "x", "country": "US"})
        zones = {country: zone for country, zone in policy["fees"]["zones"].items() if country != "US"}
        amended = {**policy, "fees": {**policy["fees"], "zones": zones}}
        writes = [
            {"type": "policy_amended", "effective": "2025-01-01", "terms": amended},
            {"type": "buyer_registered", "effective": "2025-02-01", "buyer": "G1", "name": "y", "country": "GB"},
        ]
        with pytest.raises(LedgerError, match="amended terms would make the buyer_registered of U1"):
            opened.record(opened.parse(list(enumerate(writes, 1)), "book"))
        assert opened.count() == 2


# ------------------------------------------------------------ one moment, any order

def buyer_view(opened: Ledger) -> dict[str, Any]:
    """What each buyer's stream folds to: its invoices' balances and its limit."""
    streams = {buyer: BuyerStream.replay(opened.buyer_events(buyer)) for buyer in opened.buyers()}
    return {
        buyer: (stream.book.limit, {number: invoice.balance for number, invoice in stream.book.invoices.items()})
        for buyer, stream in streams.items()
    }


@pytest.mark.parametrize("order", ["latest first", "days shuffled", "by type"])
def test_a_file_in_any_date_order_imports_as_the_sorted_one(order: str) -> None:
    """A write's events share one recorded stamp, so they are checked as one state: a file whose
    lines are not in date order (same-day lines kept in order) records the same book."""
    policy, rows = book_rows()
    if order == "latest first":
        shuffled = sorted(rows, key=lambda r: r["effective"], reverse=True)  # stable: a day keeps its order
    elif order == "days shuffled":
        days = sorted({r["effective"] for r in rows})
        random.Random(3).shuffle(days)
        shuffled = sorted(rows, key=lambda r: days.index(r["effective"]))
    else:
        rank = {"buyer_registered": 0, "limit_requested": 1, "limit_granted": 2, "invoice_issued": 3}
        shuffled = sorted(rows, key=lambda r: rank.get(r["type"], 4))
    assert shuffled != rows
    views = []
    for given in (rows, shuffled):
        with Ledger("memory") as opened:
            opened.load_policy(parse_policy(policy))
            assert len(opened.record(opened.parse(list(enumerate(given, 1)), "book")).recorded) == len(rows)
            views.append(buyer_view(opened))
    assert views[0] == views[1]


def test_one_moment_blames_the_event_that_breaks_a_rule_in_fold_order(book: Ledger) -> None:
    """A payment and, later in the file, a credit note dated before it that leaves too little open:
    checked in fold order, the payment is the overpayment, the credit note fine."""
    from test_refusals import credit_note, payment

    error = refusal(book, [payment("800.00", effective="2025-03-01"), credit_note("300.00")], "amount")
    assert "800.00 is more than the 700.00 open on invoice I1" in error.message


def test_one_moment_blames_the_latest_new_event_before_a_recorded_one_it_breaks(book: Ledger) -> None:
    from test_refusals import credit_note, payment

    book.append(payment("800.00", effective="2025-03-01", key="PAY-800"))
    other = {"type": "buyer_registered", "effective": "2025-01-05", "buyer": "B9", "name": "n", "country": "GB"}
    error = refusal(book, [credit_note("100.00", effective="2025-01-20"), other, credit_note("200.00")], "effective")
    assert "back-dated to 2025-02-01" in error.message  # the credit note of 200.00, not that of 100.00
    assert "payment_received of 2025-03-01 (PAY-800)" in error.message


def test_a_dry_run_of_one_moment_refuses_only_the_bad_lines(book: Ledger) -> None:
    """A trial goes on as if a refused line had never been given, lines in any order."""
    lines = [
        {"type": "payment_received", "effective": "2025-02-20", "buyer": "B1", "invoice": "I2", "amount": "50.00"},
        {"type": "payment_received", "effective": "2025-02-21", "buyer": "B1", "invoice": "I9", "amount": "1.00"},
        {"type": "invoice_issued", "effective": "2025-02-10", "buyer": "B1", "invoice": "I2", "amount": "100.00",
         "due": "2025-04-01"},
        {"type": "payment_received", "effective": "2025-02-22", "buyer": "B1", "invoice": "I2", "amount": "60.00"},
    ]
    trial = book.trial(book.parse(list(enumerate(lines, 1)), "pay.csv"))
    assert [(r.draft.line, r.problem.field) for r in trial.refused] == [(2, "invoice"), (4, "amount")]
    assert [d.line for d in trial.admitted] == [1, 3]
    assert book.count() == 4  # a trial records nothing
