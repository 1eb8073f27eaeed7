"""`available` (docs/rules.md, "Exposure"): what a delivery today would be insured for, 0 with a
reason. The rules themselves are scenarios (scenarios/cover/available_*.toml); here the days
on which only `available` moves (a change of terms, the policy's end, the end of
`outstanding_order_days`) reach the read model's timeline, and every output carries it."""

from __future__ import annotations

import datetime
import typing
from typing import Any

from helpers import UTC
from test_cover_properties import SPEC_TERMS, new_ledger

from ledger.queries import answers
from ledger.queries.exposure import exposure_query
from ledger.service import Ledger
from ledger.vocabulary.terms import amend_policy
from projections.cover import buyer_cover
from projections.exposure import EXPOSURE_FIGURES, NOT_AVAILABLE, Exposure
from projections.terms import TermsTimeline
from projections.timeline import exposure_on, exposure_timeline

BUYERS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "A", "amount": "3000.00",
     "due": "2025-03-10"},
    {"type": "payment_received", "effective": "2025-03-05", "buyer": "B1", "invoice": "A", "amount": "3000.00"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Beta GmbH", "country": "DE"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "8000"},
    {"type": "limit_cancelled", "effective": "2025-04-01", "buyer": "B2"},
]


def record(ledger: Ledger, rows: list[dict[str, Any]]) -> None:
    for hour, row in enumerate(rows):
        stamp = datetime.datetime(2025, 1, 1, 8, tzinfo=UTC) + datetime.timedelta(hours=hour)
        ledger.record(ledger.parse([(None, {**row, "recorded": stamp.isoformat()})]), keep_recorded=True)


def every_day(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def test_the_timeline_follows_available_on_days_without_events():
    """GB stops being covered by an amendment on 1 June (no buyer event that day); B2's
    cancellation binds deliveries only after outstanding_order_days (15); the policy ends on
    31 December. The timeline agrees with the fold on every day around those changes."""
    terms = amend_policy(SPEC_TERMS, {"outstanding_order_days": 15})
    with new_ledger(terms) as ledger:
        record(ledger, BUYERS)
        ledger.load_policy(amend_policy(terms, {"countries": ["DE", "FR"]}), effective=datetime.date(2025, 6, 1))
        policy = ledger.policy_events()
        timeline_terms = TermsTimeline(policy)
        days = [*every_day(datetime.date(2025, 3, 28), datetime.date(2025, 4, 20)),
                *every_day(datetime.date(2025, 5, 29), datetime.date(2025, 6, 3)),
                *every_day(datetime.date(2025, 12, 29), datetime.date(2026, 1, 3))]
        seen: dict[tuple[str, datetime.date], Exposure | None] = {}
        for buyer in ("B1", "B2"):
            timeline = exposure_timeline(buyer, ledger.buyer_events(buyer), policy)
            for day in days:
                expected = Exposure.of(buyer_cover(buyer, ledger.buyer_events(buyer), policy, day), timeline_terms)
                seen[buyer, day] = exposure_on(timeline, day)
                assert seen[buyer, day] == expected, (buyer, day)
                # The read model (the exposure query known now) answers the same.
                answer = exposure_query(ledger, {"buyer": buyer, "as_of": day})
                assert (answer.available, answer.not_available) == (
                    f"{expected.available // 100}.{expected.available % 100:02d}", expected.not_available)

    def available(buyer: str, day: datetime.date) -> tuple[int, str]:
        exposure = seen[buyer, day]
        assert exposure is not None
        return exposure.available, exposure.not_available

    assert available("B1", datetime.date(2025, 5, 31)) == (20000_00, "")
    assert available("B1", datetime.date(2025, 6, 1)) == (0, "country_not_covered")
    assert available("B2", datetime.date(2025, 4, 16)) == (8000_00, "")  # the cut + 15 days: still the old limit
    assert available("B2", datetime.date(2025, 4, 17)) == (0, "limit_cancelled")
    assert available("B2", datetime.date(2025, 12, 31)) == (0, "limit_cancelled")
    assert available("B2", datetime.date(2026, 1, 1)) == (0, "outside_policy_period")


def test_headroom_keeps_its_meaning():
    """On stop, headroom is still the limit left (a credit manager's figure for the insurer's
    limit), and the book's available is the sum of the buyers'."""
    with new_ledger(SPEC_TERMS) as ledger:
        record(ledger, [*BUYERS[:3], {"type": "overdue_reported", "effective": "2025-03-20", "buyer": "B1"},
                        *BUYERS[4:]])
        book = exposure_query(ledger, {"as_of": "2025-03-31"})
    assert isinstance(book, answers.BookExposure)
    rows = {row.buyer: row for row in book.buyers}
    assert (rows["B1"].headroom, rows["B1"].available, rows["B1"].not_available) == ("17000.00", "0.00", "on_stop")
    assert (rows["B2"].headroom, rows["B2"].available, rows["B2"].not_available) == ("8000.00", "8000.00", "")
    assert (book.headroom, book.available) == ("25000.00", "8000.00")


def test_the_reasons_are_one_vocabulary():
    """The projection's reasons are the answer's (and so docs/json.md's), with "" for none."""
    assert typing.get_args(answers.NotAvailable) == ("", *NOT_AVAILABLE)
    assert EXPOSURE_FIGURES[-1] == "available"
