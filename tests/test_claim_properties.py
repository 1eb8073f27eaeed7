"""Claim properties (SPEC 8): indemnity <= insured loss; the period's indemnities stay within
the maximum liability; recovery shares add up to the recovery to the minor unit; a replay of
the same events reproduces every claim figure exactly."""

from __future__ import annotations

import datetime
from typing import Any

from helpers import record_book
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.queries.book import claim_of, fold_book
from ledger.queries.claims import claims_of
from ledger.service import Ledger
from ledger.vocabulary.events import to_public

AS_OF = datetime.date(2025, 12, 31)
days = st.integers(0, 300).map(lambda n: datetime.date(2025, 1, 10) + datetime.timedelta(days=n))
cents = st.integers(1, 2_000_000).map(lambda n: f"{n // 100}.{n % 100:02d}")


def policy_table(cover: str, deduction: str, cap: str | None, pct: str, political: bool) -> dict[str, Any]:
    table: dict[str, Any] = {"id": "P-CLAIMS", "currency": "GBP", "start": datetime.date(2025, 1, 1),
                             "end": AS_OF, "cover": cover, "indemnity_pct": pct, "political_risk": political,
                             "top_up": {"cap": "1000000", "min_cover": "100", "rate": "0.02", "months": 6,
                                        "admin_fee": "60"}}
    if cover == "proportional":
        table["excess"] = deduction
        table["non_qualifying_loss"] = deduction
    else:
        table["per_loss_deductible"] = deduction
        table["annual_aggregate_deductible"] = deduction
    if cap == "multiple":  # a cap from the premium invoiced, which top-up lines must not raise
        table["max_liability_multiple"] = "2"
        table["premium"] = {"rate": "0.01", "minimum": "50", "tax_pct": "12"}
    elif cap is not None:
        table["max_liability"] = cap
    return table


policies = st.builds(policy_table, st.sampled_from(["proportional", "excess_of_loss"]),
                     st.sampled_from(["0", "500", "5000"]), st.sampled_from([None, "3000", "50000", "multiple"]),
                     st.sampled_from(["70", "90", "100"]), st.booleans())
# How a buyer's year ends: insolvent, reported overdue (a protracted default), in a country hit by a
# political event, or nothing (a buyer that cannot lose, whose cover the claims register does not fold).
fates = st.sampled_from(["insolvency", "overdue", "political", "none"])


@st.composite
def books(draw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    table = draw(policies)
    rows: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 4))):
        rows += draw(buyer_rows(f"B{number}", draw(fates)))
    if draw(st.booleans()):  # covered when the policy covers political risk
        rows.append({"type": "political_event", "effective": draw(days).isoformat(), "country": "AR",
                     "description": "Transfer moratorium"})
    rows.sort(key=lambda row: row["effective"])
    return table, rows


@st.composite
def buyer_rows(draw: Any, buyer: str, fate: str) -> list[dict[str, Any]]:
    """One buyer's events: registered (in AR or GB), a limit, perhaps reduced and topped up, invoices, its fate."""
    country = draw(st.sampled_from(["GB", "AR"]))
    limit = draw(st.sampled_from([2000, 10000, 40000]))
    rows: list[dict[str, Any]] = [
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": buyer, "name": buyer, "country": country},
        {"type": "limit_granted", "effective": "2025-01-03", "buyer": buyer, "amount": str(limit)},
    ]
    if draw(st.booleans()):  # a top-up on a reduced limit: premium lines that are not premium
        rows.append({"type": "limit_reduced", "effective": "2025-01-04", "buyer": buyer, "amount": str(limit // 2)})
        rows.append({"type": "top_up_purchased", "effective": "2025-01-05", "buyer": buyer})
    insolvency = draw(days) if fate == "insolvency" else AS_OF + datetime.timedelta(days=1)
    for index, (issued, amount) in enumerate(draw(st.lists(st.tuples(days, cents), min_size=1, max_size=5))):
        if issued < insolvency:
            rows.append({"type": "invoice_issued", "effective": issued.isoformat(), "buyer": buyer,
                         "invoice": f"I{index}", "amount": amount,
                         "due": (issued + datetime.timedelta(days=draw(st.sampled_from([20, 90])))).isoformat()})
    if fate == "overdue" or (fate == "insolvency" and draw(st.booleans())):
        reported = min(insolvency - datetime.timedelta(days=1), draw(days))
        rows.append({"type": "overdue_reported", "effective": reported.isoformat(), "buyer": buyer})
    if fate != "insolvency":
        return rows
    rows.append({"type": "insolvency", "effective": insolvency.isoformat(), "buyer": buyer,
                 "proceeding": "administration"})
    paid_on = insolvency + datetime.timedelta(days=draw(st.integers(1, 40)))
    if draw(st.booleans()) and paid_on <= AS_OF:
        rows.append({"type": "indemnity_paid", "effective": paid_on.isoformat(), "buyer": buyer,
                     "amount": draw(cents)})
        for offset, amount in draw(st.lists(st.tuples(st.integers(-20, 40), cents), max_size=3)):
            day = paid_on + datetime.timedelta(days=offset)
            if insolvency < day <= AS_OF:
                rows.append({"type": "recovery_received", "effective": day.isoformat(), "buyer": buyer,
                             "amount": amount})
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=books())
def test_claim_figures_hold_together(book: tuple[dict[str, Any], list[dict[str, Any]]]):
    table, rows = book
    with record_book(table, rows) as ledger:
        register = claims_of(ledger, AS_OF, None)
        # The register folds only the buyers that can lose and counts only premium lines toward the
        # maximum liability; folding every buyer with every line (as the export does) changes nothing.
        assert list(fold_book(ledger, AS_OF, None).claims) == register
        losses = [claim for claim in register if claim.loss_date is not None]
        for claim in losses:
            assert 0 <= claim.indemnity <= claim.insured_loss
            assert claim.retained == claim.insured_loss - claim.indemnity
            assert claim.insured_loss == sum(line.insured for line in claim.invoices)
            assert claim.insurer_recovery + claim.insured_recovery == claim.recovered
            for _, _, amount, insurer, insured in claim.recovery_shares:
                assert insurer + insured == amount and 0 <= insurer <= amount
            steps = claim.steps
            assert steps[0].after == claim.insured_loss and steps[-1].after == claim.indemnity
            assert all(earlier.after == later.before for earlier, later in zip(steps, steps[1:], strict=False))
        # One buyer's claim folds only the buyers whose loss can come first: the same claim.
        for claim in register:
            assert claim_of(ledger, claim.buyer, AS_OF, None) == claim
        if "max_liability" in table:
            cap = int(table["max_liability"]) * 100
            assert sum(claim.indemnity for claim in losses) <= cap
        # A replay of the stored events (same ids and stamps) into a fresh ledger gives every figure, bit for bit.
        stored = [(number, to_public(event, "GBP")) for number, event in enumerate(ledger.events(), 1)]
        with Ledger("memory") as again:
            again.record(again.parse(stored, "replay"), keep_recorded=True)
            assert claims_of(again, AS_OF, None) == register


def test_top_up_lines_do_not_raise_the_maximum_liability_of_the_register():
    """The register counts only premium lines toward a cap of a multiple of the premium, as the
    whole-book fold does: a top-up bought by the insolvent buyer leaves its indemnity at the cap."""
    table = policy_table("proportional", "0", "multiple", "100", False)
    rows = [
        {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B0", "name": "B0", "country": "GB"},
        {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B0", "amount": "40000"},
        {"type": "limit_reduced", "effective": "2025-01-04", "buyer": "B0", "amount": "20000"},
        {"type": "top_up_purchased", "effective": "2025-01-05", "buyer": "B0"},
        {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B0", "invoice": "I", "amount": "15000.00",
         "due": "2025-03-01"},
        {"type": "insolvency", "effective": "2025-04-01", "buyer": "B0", "proceeding": "administration"},
    ]
    with record_book(table, rows) as ledger:
        book = fold_book(ledger, AS_OF, None)
        assert any(line.kind == "top_up_premium" for line in book.lines)
        assert book.max_liability == 2 * 15000  # twice the premium (1% of 15,000.00); the top-up lines left out
        register = claims_of(ledger, AS_OF, None)
        assert register == list(book.claims) and register[0].indemnity == 30000
