"""A claim uses the terms in force on its loss date: a later amendment does not rewrite it."""

from __future__ import annotations

import datetime

from ledger.queries.claims import claim_query
from ledger.service import Ledger
from ledger.vocabulary.terms import amend_policy, parse_policy

POLICY = {"id": "P-AM", "currency": "GBP", "start": datetime.date(2025, 1, 1), "end": datetime.date(2025, 12, 31),
          "cover": "proportional", "claim_filing_days": 30}


def test_a_later_amendment_does_not_revive_a_missed_filing():
    with Ledger("memory") as ledger:
        terms = parse_policy(POLICY)
        ledger.load_policy(terms)
        for raw in (
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB"},
            {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "10000"},
            {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "A", "amount": "1000.00",
             "due": "2025-04-01"},
            {"type": "insolvency", "effective": "2025-05-01", "buyer": "B1", "proceeding": "liquidation"},
            {"type": "claim_filed", "effective": "2025-06-20", "buyer": "B1"},
        ):
            ledger.append(raw)
        before = claim_query(ledger, {"buyer": "B1", "as_of": "2025-07-31"})
        ledger.load_policy(amend_policy(terms, {"claim_filing_days": 60, "excess": "100"}),
                           effective=datetime.date(2025, 6, 15))
        after = claim_query(ledger, {"buyer": "B1", "as_of": "2025-07-31"})
        assert before.status == after.status == "filing_missed"
        assert before.indemnity == after.indemnity == "0.00"
