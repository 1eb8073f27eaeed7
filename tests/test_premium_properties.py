"""Premium properties (SPEC 7, 11): the lines add up to the account, each line is whole
minor units, and the year's premium ends at max(minimum, sum of rounded period lines)."""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from helpers import record_book
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.queries.premium import premium_account, premium_query
from projections.premium import PREMIUM_KINDS, minimum_premium, summarise

COUNTRIES = ("GB", "DE", "US")
YEAR_END = datetime.date(2025, 12, 31)


def policy_table(invoicing: str, declarations: str, rate: str, us_rate: str, minimum: str, tax: str) -> dict[str, Any]:
    return {
        "id": "P-PROP", "currency": "GBP", "start": datetime.date(2025, 1, 1), "end": YEAR_END,
        "cover": "proportional",
        "premium": {"rates": {"default": rate, "US": us_rate}, "minimum": minimum, "invoicing": invoicing,
                    "declarations": declarations, "tax_pct": tax},
        "fees": {"zones": {"GB": "A", "DE": "A", "US": "B"}, "investigation": {"A": "150", "B": "250"},
                 "monitoring": {"A": "10", "B": "25"}, "taxable": True},
    }


policies = st.builds(
    policy_table,
    st.sampled_from(["declared", "advance"]), st.sampled_from(["monthly", "quarterly", "annual"]),
    st.sampled_from(["0.003", "0.0035", "0.00125"]), st.sampled_from(["0.0045", "0.007"]),
    st.sampled_from(["0", "999.99", "1500", "24000"]), st.sampled_from(["0", "12", "9.5"]),
)
days = st.integers(0, 364).map(lambda n: datetime.date(2025, 1, 1) + datetime.timedelta(days=n))
cents = st.integers(1, 5_000_000).map(lambda n: f"{n // 100}.{n % 100:02d}")


@st.composite
def books(draw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    table = draw(policies)
    rows: list[dict[str, Any]] = []
    for number, country in enumerate(draw(st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=3))):
        buyer = f"B{number}"
        rows.append({"type": "buyer_registered", "effective": "2025-01-01", "buyer": buyer, "name": buyer,
                     "country": country})
        rows.append({"type": "limit_requested", "effective": "2025-01-01", "buyer": buyer, "amount": "10000"})
        rows.append({"type": "limit_granted", "effective": "2025-01-01", "buyer": buyer, "amount": "1000000"})
        for index, (issued, amount) in enumerate(draw(st.lists(st.tuples(days, cents), max_size=8))):
            rows.append({"type": "invoice_issued", "effective": issued.isoformat(), "buyer": buyer,
                         "invoice": f"I{index}", "amount": amount,
                         "due": (issued + datetime.timedelta(days=30)).isoformat()})
    for declared_on, amount in draw(st.lists(st.tuples(days, cents), max_size=3)):
        rows.append({"type": "turnover_declared", "effective": declared_on.isoformat(),
                     "period": period_of(declared_on, table["premium"]["declarations"]),
                     "country": draw(st.sampled_from(COUNTRIES)), "amount": amount})
    rows.sort(key=lambda row: row["effective"])
    return table, rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=books(), as_of=days | st.just(datetime.date(2026, 3, 1)))
def test_lines_add_up_to_the_account_in_whole_minor_units(book: tuple[dict[str, Any], list[dict[str, Any]]],
                                                          as_of: datetime.date):
    table, rows = book
    with record_book(table, rows) as ledger:
        terms, lines = premium_account(ledger, as_of, None)
        totals = summarise(lines, as_of)
        due = [line for line in lines if line.day <= as_of]
        assert all(isinstance(line.amount, int) and isinstance(line.tax, int) for line in lines)
        assert totals["premium"] + totals["adjustment"] == sum(line.amount for line in due if line.kind in PREMIUM_KINDS)
        assert totals["tax"] == sum(line.tax for line in due)
        assert totals["total"] == sum(line.amount + line.tax for line in due)
        assert terms.premium is not None
        for line in lines:  # tax is computed per line, half-up
            pct = terms.premium.tax_pct
            assert line.tax == int((Decimal(line.amount) * pct / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        answer = premium_query(ledger, {"as_of": as_of})
        assert Decimal(answer.total) * 100 == totals["total"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=books())
def test_the_year_ends_at_the_minimum_or_the_turnover_premium(book: tuple[dict[str, Any], list[dict[str, Any]]]):
    """After the adjustment, both invoicing methods have charged max(minimum, sum over periods and
    countries of round(basis x rate)), the basis being the declaration in force, else the turnover."""
    table, rows = book
    with record_book(table, rows) as ledger:
        terms, lines = premium_account(ledger, datetime.date(2026, 6, 30), None)
        charged = sum(line.amount for line in lines if line.kind in PREMIUM_KINDS)
        assert charged == max(minimum_premium(terms), earned_premium(table, rows))


def period_of(day: datetime.date, declarations: str) -> str:
    if declarations == "monthly":
        return f"{day.year}-{day.month:02d}"
    if declarations == "quarterly":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def earned_premium(table: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """The premium on the final bases, worked out here from the rows alone."""
    premium = table["premium"]
    country_of = {row["buyer"]: row["country"] for row in rows if row["type"] == "buyer_registered"}
    bases: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        if row["type"] == "invoice_issued":
            key = (period_of(datetime.date.fromisoformat(row["effective"]), premium["declarations"]),
                   country_of[row["buyer"]])
            bases[key] = bases.get(key, Decimal(0)) + Decimal(row["amount"])
    for row in rows:  # in effective order: the last declaration of a period and country is in force
        if row["type"] == "turnover_declared":
            bases[(row["period"], row["country"])] = Decimal(row["amount"])
    total = Decimal(0)
    for (_, country), basis in bases.items():
        rate = Decimal(premium["rates"].get(country, premium["rates"]["default"]))
        total += (basis * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(total * 100)
