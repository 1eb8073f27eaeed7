"""Choosing what a query lists (ledger/queries/arguments.py): `exposure` by status and country,
sorted, the first N; `premium` lines by kind and period, summed by kind, period or buyer. They
are query arguments, so the registry (scenarios, the HTTP API) reads them as the CLI does."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import msgspec
from helpers import cli, record_book

from ledger.queries import answers
from ledger.queries.registry import run_query

POLICY = {"id": "P-CHOICES", "currency": "GBP", "start": datetime.date(2025, 1, 1),
          "end": datetime.date(2025, 12, 31), "cover": "proportional",
          "premium": {"rate": "0.01", "minimum": "50", "tax_pct": "10"},
          "fees": {"zones": {"GB": "home", "FR": "europe", "DE": "europe"},
                   "investigation": {"home": "100", "europe": "150"}, "monitoring": {"home": "10", "europe": "15"}}}
ROWS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Zeta Ltd", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "alpha SARL", "country": "FR"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B3", "name": "Mitte GmbH", "country": "DE"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B4", "name": "Beta plc", "country": "GB"},
    {"type": "limit_requested", "effective": "2025-01-02", "buyer": "B1", "amount": "10000"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "10000"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "30000"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B3", "amount": "5000"},
    {"type": "limit_granted", "effective": "2025-05-03", "buyer": "B4", "amount": "2000"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1", "amount": "3000.00",
     "due": "2025-03-01"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B2", "invoice": "I2", "amount": "8000.00",
     "due": "2025-06-30"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B3", "invoice": "I3", "amount": "1000.00",
     "due": "2025-06-30"},
    {"type": "overdue_reported", "effective": "2025-03-20", "buyer": "B1"},
]
AS_OF = "2025-03-31"


def book(**arguments: object) -> answers.BookExposure:
    with record_book(POLICY, ROWS) as ledger:
        answer = run_query("exposure", ledger, {"as_of": AS_OF, **arguments})
    assert isinstance(answer, answers.BookExposure)
    return answer


def test_exposure_shows_names_and_countries():
    rows = {row.buyer: row for row in book().buyers}
    assert (rows["B2"].name, rows["B2"].country) == ("alpha SARL", "FR")
    with record_book(POLICY, ROWS) as ledger:
        one = run_query("exposure", ledger, {"as_of": AS_OF, "buyer": "B3"})
    assert isinstance(one, answers.BuyerExposure) and (one.name, one.country) == ("Mitte GmbH", "DE")


def test_exposure_by_status_and_country_sums_the_buyers_chosen():
    every = book()
    assert [row.buyer for row in every.buyers] == ["B1", "B2", "B3", "B4"] and every.matched == 4
    stopped = book(statuses="on_stop")
    assert [row.buyer for row in stopped.buyers] == ["B1"] and stopped.matched == 1
    assert (stopped.outstanding, stopped.headroom, stopped.available) == ("3000.00", "7000.00", "0.00")
    two = book(statuses=["on_stop", "closed"], countries="gb")  # a list, or text with commas; gb reads as GB
    assert [row.buyer for row in two.buyers] == ["B1", "B4"] and two == book(statuses="on_stop,closed", countries=["GB"])
    assert Decimal(two.limit) == sum(Decimal(row.limit) for row in two.buyers) == Decimal("10000.00")
    assert book(countries="DE").outstanding == "1000.00"
    assert book(countries="DE,FR").matched == 2


def test_exposure_sorted_largest_first_or_by_name_and_cut_to_the_top():
    assert [row.buyer for row in book(sort="outstanding").buyers] == ["B2", "B1", "B3", "B4"]
    assert [row.buyer for row in book(sort="headroom").buyers] == ["B2", "B1", "B3", "B4"]
    assert [row.buyer for row in book(sort="available").buyers] == ["B2", "B3", "B1", "B4"]  # ties by buyer
    assert [row.name for row in book(sort="name").buyers] == ["alpha SARL", "Beta plc", "Mitte GmbH", "Zeta Ltd"]
    top = book(top="2")
    assert [row.buyer for row in top.buyers] == ["B2", "B1"]  # with --top, largest outstanding first
    assert top.matched == 4 and top.outstanding == book().outstanding  # the figures stay the book's
    assert [row.buyer for row in book(top=1, sort="name").buyers] == ["B2"]


def test_exposure_table_shows_names_and_the_total_of_the_buyers_chosen(tmp_path):
    db = str(tmp_path / "ledger.db")
    cli("init", "--db", db)
    source = tmp_path / "book.toml"
    lines = ["[policy]", 'id = "P-CHOICES"', 'currency = "GBP"', "start = 2025-01-01", "end = 2025-12-31",
             'cover = "proportional"', ""]
    for row in ROWS:
        lines += ["[[events]]", *(f"{key} = {json.dumps(value)}" for key, value in row.items()), ""]
    source.write_text("\n".join(lines))
    cli("import", str(source), "--db", db)
    table = cli("exposure", "--as-of", AS_OF, "--status", "on_stop", "--status", "closed", "--country", "GB",
                "--db", db).stdout
    assert "Zeta Ltd" in table and "Beta plc" in table and "alpha SARL" not in table
    assert "total" in table and "2 buyers" in table
    assert "book" in cli("exposure", "--as-of", AS_OF, "--top", "1", "--db", db).stdout


def premium(**arguments: object) -> answers.Premium:
    with record_book(POLICY, ROWS) as ledger:
        answer = run_query("premium", ledger, {"as_of": "2025-12-31", **arguments})
    assert isinstance(answer, answers.Premium)
    return answer


def test_premium_lines_by_kind_and_period():
    every = premium()
    assert every.lines is not msgspec.UNSET and len(every.lines) > 20
    fees = premium(kind="monitoring_fee", period="2025-Q2")
    assert fees.lines is not msgspec.UNSET and {line.kind for line in fees.lines} == {"monitoring_fee"}
    assert {line.date for line in fees.lines} == {"2025-04-30", "2025-05-31", "2025-06-30"}
    assert fees.total == every.total  # the account stays whole
    quarter = premium(kind="premium", period="2025")
    assert quarter.lines is not msgspec.UNSET and quarter.lines and all(line.kind == "premium" for line in quarter.lines)
    assert {line.period for line in quarter.lines} <= {"2025-Q1", "2025-Q2", "2025-Q3"}
    assert premium(period="2025-01").lines == tuple(line for line in every.lines if line.date == "2025-01-31")


def test_premium_lines_summed_by_kind_period_or_buyer():
    every = premium()
    assert every.lines is not msgspec.UNSET and every.groups is msgspec.UNSET
    by_kind = premium(by="kind", lines=False)
    assert by_kind.lines is msgspec.UNSET and by_kind.groups is not msgspec.UNSET
    kinds = {group.key: group for group in by_kind.groups}
    assert set(kinds) == {line.kind for line in every.lines}
    for kind, group in kinds.items():
        chosen = [line for line in every.lines if line.kind == kind]
        assert group.lines == len(chosen)
        assert Decimal(group.amount) == sum(Decimal(line.amount) for line in chosen)
        assert Decimal(group.tax) == sum(Decimal(line.tax) for line in chosen)
    assert Decimal(kinds["premium"].amount) == Decimal(every.premium)
    buyers = {group.key: group.lines for group in premium(by="buyer").groups}  # type: ignore[union-attr]
    assert buyers[""] == sum(1 for line in every.lines if line.kind in ("premium", "adjustment"))
    assert buyers["B1"] == sum(1 for line in every.lines if line.buyer == "B1")
    periods = [group.key for group in premium(by="period", kind="monitoring_fee").groups]  # type: ignore[union-attr]
    assert periods == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
