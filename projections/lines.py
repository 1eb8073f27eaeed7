"""A line of an invoice to the insured: premium, a fee, a top-up charge or refund."""

from __future__ import annotations

import datetime
from decimal import Decimal

import msgspec

from ledger.vocabulary.money import Minor


class PremiumLine(msgspec.Struct, frozen=True):
    """One line, rounded half-up to the minor unit once (docs/rules.md, "Money"), with its tax.

    `basis` is what the rate applies to (turnover, a top-up amount, the
    minimum premium); `period` and `country` say which declaration it bills.
    """

    day: datetime.date
    kind: str  # premium, adjustment, investigation_fee, monitoring_fee, top_up_premium, top_up_refund, top_up_admin_fee
    buyer: str | None
    amount: Minor
    tax: Minor
    basis: Minor = 0
    rate: Decimal = Decimal(0)
    period: str | None = None
    country: str | None = None
