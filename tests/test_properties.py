"""Properties (hypothesis): the event forms round-trip, re-imports are no-ops,
the recorded order is kept, a failed import changes nothing, money is exact."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from helpers import POLICY_FILE, UTC, Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.adapters.policyfile import load_policy_file
from ledger.service import Ledger
from ledger.store import Envelope, LedgerMapper, topic_of
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES, NIL_ID, Event, PolicyStarted, parse_event, to_public
from ledger.vocabulary.money import MAX_AMOUNT_MINOR, format_minor, minor_units, round_half_up, to_minor
from ledger.vocabulary.terms import PolicyTerms, parse_policy, terms_to_table
from ledger.write.pipeline import Draft

SPEC_TERMS = load_policy_file(POLICY_FILE)
CURRENCY = SPEC_TERMS.currency
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LEDGER_RUNS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

idents = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=12
)
names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30)
countries = st.sampled_from(["GB", "DE", "FR", "US", "JP", "BR"])
dates = st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 31))
stamps = st.datetimes(
    min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2099, 12, 31), timezones=st.just(UTC)
)
periods = st.builds(
    lambda year, kind, number: str(year) + {"year": "", "quarter": f"-Q{number % 4 + 1}",
                                            "month": f"-{number % 12 + 1:02d}"}[kind],
    st.integers(2000, 2099), st.sampled_from(["year", "quarter", "month"]), st.integers(0, 11),
)


def money(currency: str = CURRENCY, *, low: int = 1, high: int = 10**12) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda minor: format_minor(minor, currency))


def buyer_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"buyer": idents, **fields})


def foreign_invoice_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(["USD", "JPY", "KWD"]).flatmap(lambda currency: st.fixed_dictionaries({
        "currency": st.just(currency),
        "amount": money(currency, low=1000),
        "fx_rate": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=4).map(str),
    }))


def invoice_fields() -> st.SearchStrategy[dict[str, Any]]:
    base = buyer_fields(invoice=idents, amount=money(), due=dates).flatmap(
        lambda fields: st.fixed_dictionaries(
            {k: st.just(v) for k, v in fields.items()},
            optional={"delivered": dates, "prepaid": st.booleans()},
        )
    )
    return st.one_of(base, st.tuples(base, foreign_invoice_fields()).map(lambda pair: {**pair[0], **pair[1]}))


def policy_tables() -> st.SearchStrategy[dict[str, Any]]:
    """Varied, valid [policy] tables."""

    def build(cover: str, currency: str, insured: str, pct: str, countries_: list[str] | None, premium: bool,
              cap: bool, days: int) -> dict[str, Any]:
        table: dict[str, Any] = {
            "id": "P-1", "insured": insured, "currency": currency, "start": datetime.date(2025, 1, 1),
            "end": datetime.date(2025, 12, 31), "cover": cover, "indemnity_pct": pct, "max_credit_days": days,
        }
        if cover == "excess_of_loss":
            table["per_loss_deductible"] = "50000"
        else:
            table["excess"] = "500"
        if countries_:
            table["countries"] = countries_
        if premium:
            table["premium"] = {"rates": {"default": "0.003", "US": "0.0045"}, "minimum": "24000", "tax_pct": "12"}
            table["fees"] = {"zones": {"GB": "A", "US": "B"}, "investigation": {"A": "150", "B": "250"}}
            if cap:
                table["max_liability_multiple"] = "30"
        elif cap:
            table["max_liability"] = "5000000"
        return table

    return st.builds(
        build, st.sampled_from(["proportional", "excess_of_loss"]), st.sampled_from(["GBP", "EUR", "JPY", "KWD"]),
        names.filter(str.strip), st.sampled_from(["70", "90", "92.5", "100"]),
        st.none() | st.lists(countries, min_size=1, max_size=3, unique=True), st.booleans(),
        st.booleans(), st.integers(1, 365),
    )


FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "policy_started": st.fixed_dictionaries({"terms": policy_tables()}),
    "policy_amended": st.fixed_dictionaries({"terms": policy_tables()}),
    "buyer_registered": buyer_fields(
        name=names, country=countries,
        kind=st.sampled_from(["company", "private_individual", "related_company", "public_body"]),
        excluded=st.booleans(),
    ),
    "limit_requested": buyer_fields(amount=money(low=0)),
    "limit_granted": st.one_of(
        buyer_fields(amount=money(low=0), basis=st.just("underwriter"), non_cancellable=st.booleans()),
        buyer_fields(amount=money(low=0), basis=st.just("discretionary"),
                     criterion=st.sampled_from(["credit_report", "trading_history", "bank_reference",
                                                "trade_reference"])),
    ),
    "limit_reduced": buyer_fields(amount=money(low=0)),
    "limit_cancelled": buyer_fields(),
    "invoice_issued": invoice_fields(),
    "credit_note_issued": buyer_fields(invoice=idents, amount=money()),
    "payment_received": st.one_of(buyer_fields(amount=money()), buyer_fields(amount=money(), invoice=idents)),
    "payment_reversed": buyer_fields(payment=idents),
    "due_date_extended": buyer_fields(invoice=idents, due=dates),
    "overdue_reported": buyer_fields(),
    "overdue_cleared": buyer_fields(),
    "insolvency": buyer_fields(proceeding=st.sampled_from(
        ["administration", "voluntary_arrangement", "liquidation", "bankruptcy", "chapter_11", "other"])),
    "political_event": st.fixed_dictionaries({"country": countries, "description": names}),
    "claim_filed": buyer_fields(),
    "indemnity_paid": buyer_fields(amount=money()),
    "recovery_received": buyer_fields(amount=money()),
    "turnover_declared": st.fixed_dictionaries({"period": periods, "country": countries, "amount": money(low=0)}),
    "top_up_purchased": buyer_fields(),
}


def test_every_event_type_has_a_strategy():
    assert set(FIELDS) == set(EVENT_TYPES)


@st.composite
def public_events(draw: st.DrawFn, types: list[str] | None = None) -> dict[str, Any]:
    """An event in its public form, as a file or the CLI gives it, with both stamps."""
    type_name = draw(st.sampled_from(types or sorted(FIELDS)))
    raw = {"type": type_name, "effective": draw(dates), **draw(FIELDS[type_name])}
    raw["id"] = str(draw(st.uuids()))
    raw["recorded"] = draw(stamps).isoformat()
    key = draw(st.none() | idents)
    if key is not None:
        raw["key"] = key
    return raw


@st.composite
def events(draw: st.DrawFn) -> Event:
    return parse_event(draw(public_events()), CURRENCY)


# ---------------------------------------------------------------- event forms

@FAST
@given(event=events())
def test_public_form_round_trips(event: Event):
    public = to_public(event, CURRENCY)
    assert public["type"] == event.type
    assert {"effective", "recorded", "id"} <= set(public)
    assert parse_event(public, CURRENCY) == event
    # Through JSON text too, as `log --json` writes it.
    assert parse_event(msgspec.json.decode(msgspec.json.encode(public)), CURRENCY) == event


@FAST
@given(event=events(), stream=st.uuids(), version=st.integers(1, 2**31))
def test_store_mapper_round_trips(event: Event, stream: uuid.UUID, version: int):
    mapper = LedgerMapper()
    envelope = Envelope(stream, version, event)
    stored = mapper.to_stored_event(envelope)
    assert stored.topic == topic_of(event.type) == f"creditledger:{event.type}:v1"
    assert (stored.originator_id, stored.originator_version) == (stream, version)
    assert mapper.to_domain_event(stored) == envelope
    # The stored state is the event's own JSON, readable without the mapper.
    assert msgspec.json.decode(stored.state)["type"] == event.type


def test_mapper_refuses_an_unknown_topic():
    mapper = LedgerMapper()
    with pytest.raises(LedgerError, match="unknown topic"):
        mapper.decode("creditledger:invoice_paid:v1", b"{}")
    with pytest.raises(LedgerError, match="unknown topic"):
        mapper.decode("ledger.events:InvoiceIssued", b"{}")


@FAST
@given(table=policy_tables())
def test_policy_terms_round_trip_through_their_table(table: dict[str, Any]):
    terms = parse_policy(table)
    assert parse_policy(terms_to_table(terms)) == terms


def test_a_policy_without_insured_round_trips():
    terms = parse_policy({"id": "P", "currency": "EUR", "start": "2025-01-01", "end": "2025-12-31",
                          "cover": "proportional"})
    event = PolicyStarted(effective=terms.start, terms=terms, id=uuid.uuid4(),
                          recorded=datetime.datetime(2025, 1, 1, tzinfo=UTC))
    assert parse_event(to_public(event, terms.currency), terms.currency) == event


# ---------------------------------------------------------------- the ledger

YEAR = st.dates(min_value=datetime.date(2025, 1, 2), max_value=datetime.date(2025, 12, 31))


@st.composite
def valid_books(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events that are valid in any recorded order: buyers registered on the policy's
    first day, then invoices with distinct numbers, payments without an invoice,
    limit requests and grants, reports, declarations. Every event has a key."""
    buyers = draw(st.lists(st.sampled_from(["B1", "B2", "B3"]), min_size=1, max_size=3, unique=True))
    rows: list[dict[str, Any]] = [
        {"type": "buyer_registered", "effective": "2025-01-01", "buyer": b, "name": f"Buyer {b}",
         "country": draw(st.sampled_from(["GB", "DE", "US"]))}
        for b in buyers
    ]
    count = draw(st.integers(0, 25))
    for number in range(count):
        buyer = draw(st.sampled_from(buyers))
        effective = draw(YEAR)
        kind = draw(st.sampled_from(["invoice", "payment", "request", "grant", "report", "declaration"]))
        row: dict[str, Any] = {"effective": effective.isoformat(), "buyer": buyer}
        if kind == "invoice":
            row.update(type="invoice_issued", invoice=f"INV-{number}", amount=draw(money(high=10**8)),
                       due=(effective + datetime.timedelta(days=draw(st.integers(0, 150)))).isoformat())
        elif kind == "payment":
            row.update(type="payment_received", amount=draw(money(high=10**8)))
        elif kind == "request":
            row.update(type="limit_requested", amount=draw(money(low=0, high=10**8)))
        elif kind == "grant":
            row.update(type="limit_granted", amount=draw(money(low=0, high=10**8)))
        elif kind == "report":
            row.update(type="overdue_reported")
        else:
            del row["buyer"]
            row.update(type="turnover_declared", period=f"2025-Q{draw(st.integers(1, 4))}",
                       country="GB", amount=draw(money(low=0, high=10**8)))
        rows.append(row)
    for index, row in enumerate(rows):
        row["key"] = f"K{index}"
    return rows


def fresh_ledger(clock: Clock | None = None) -> Ledger:
    ledger = Ledger("memory", clock=clock or Clock())
    ledger.load_policy(SPEC_TERMS)
    return ledger


def record(ledger: Ledger, rows: list[dict[str, Any]], *, keep_recorded: bool = False, source: str = "f.jsonl"):
    return ledger.record(ledger.parse(list(enumerate(rows, 1)), source), keep_recorded=keep_recorded)


@LEDGER_RUNS
@given(rows=valid_books(), split=st.integers(0, 30))
def test_reimporting_the_same_events_is_a_no_op(rows: list[dict[str, Any]], split: int):
    clock = Clock()
    with fresh_ledger(clock) as ledger:
        first = record(ledger, rows)
        assert len(first.recorded) == len(rows)
        before = list(ledger.events())
        clock.advance(hours=1)
        again = record(ledger, rows)
        assert again.recorded == []
        assert [s.earlier for s in again.skipped] == [str(e.id) for e in first.recorded]
        # A part of the file, re-imported on its own, is a no-op too.
        assert record(ledger, rows[split:]).recorded == []
        assert list(ledger.events()) == before


@LEDGER_RUNS
@given(rows=valid_books(), gaps=st.lists(st.integers(0, 3), min_size=40, max_size=40),
       batch_sizes=st.lists(st.integers(1, 6), min_size=40, max_size=40), probe=st.integers(0, 120))
def test_events_are_read_back_in_recorded_order(rows: list[dict[str, Any]], gaps: list[int],
                                                batch_sizes: list[int], probe: int):
    base = datetime.datetime(2025, 2, 1, tzinfo=UTC)
    moment = base
    for row, gap in zip(rows, gaps, strict=False):
        moment += datetime.timedelta(seconds=gap)  # 0: ties on one stamp
        row["recorded"] = moment.isoformat()
    clock = Clock(base)
    with fresh_ledger(clock) as ledger:
        clock.set(base + datetime.timedelta(days=365))  # the stamps are history by now
        position, batches = 0, iter(batch_sizes)
        while position < len(rows):
            size = next(batches)
            record(ledger, rows[position:position + size], keep_recorded=True)
            position += size
        stored = list(ledger.events())[1:]
        assert [e.key for e in stored] == [row["key"] for row in rows]
        assert [e.recorded for e in stored] == [datetime.datetime.fromisoformat(row["recorded"]) for row in rows]
        for buyer in ("B1", "B2", "B3"):
            assert [e.key for e in ledger.log(buyer=buyer)] == [r["key"] for r in rows if r.get("buyer") == buyer]
            assert ledger.buyer_events(buyer) == ledger.log(buyer=buyer)
        known_at = base + datetime.timedelta(seconds=probe)
        expected = [r["key"] for r in rows if datetime.datetime.fromisoformat(r["recorded"]) <= known_at]
        assert [e.key for e in ledger.events(known_at=known_at)][1:] == expected
        assert [e.key for e in ledger.log(known_at=known_at)][1:] == expected


BAD_ROWS = [
    {"type": "invoice_issued", "effective": "2025-03-01", "buyer": "B9", "invoice": "X", "amount": "1.00",
     "due": "2025-04-01"},
    {"type": "payment_received", "effective": "2025-03-01", "buyer": "B1", "invoice": "NOPE", "amount": "1.00"},
    {"type": "invoice_issued", "effective": "2025-03-01", "buyer": "B1", "invoice": "FIXED-1", "amount": "1.00",
     "due": "2025-04-01"},
    {"type": "payment_received", "effective": "2025-03-01", "buyer": "B1", "amount": "-1.00"},
    {"type": "payment_received", "effective": "2025-02-30", "buyer": "B1", "amount": "1.00"},
    {"type": "limit_reduced", "effective": "2025-12-31", "buyer": "B1", "amount": "999999999.00"},
    {"type": "buyer_registered", "effective": "2025-01-01", "buyer": "B1", "name": "again", "country": "GB"},
]


def renamed(row: dict[str, Any]) -> dict[str, Any]:
    """The same event under a new key (and a new invoice number), so it is not a repeat."""
    row = {**row, "key": "new-" + row["key"]}
    if "invoice" in row:
        row["invoice"] = "new-" + row["invoice"]
    return row


@LEDGER_RUNS
@given(rows=valid_books(), more=valid_books(), bad=st.sampled_from(BAD_ROWS), where=st.integers(0, 40))
def test_a_failed_import_leaves_the_ledger_unchanged(rows: list[dict[str, Any]], more: list[dict[str, Any]],
                                                     bad: dict[str, Any], where: int):
    registrations = [
        {"type": "buyer_registered", "effective": "2025-01-01", "buyer": b, "name": b, "country": "GB", "key": b}
        for b in ("B1", "B2", "B3")
    ]
    fixed = {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "FIXED-1",
             "amount": "5.00", "due": "2025-02-10", "key": "fixed"}
    rows = registrations + [r for r in rows if r["type"] != "buyer_registered"] + [fixed]
    with fresh_ledger() as ledger:
        record(ledger, rows)
        before = list(ledger.events())
        batch = [renamed(r) for r in more if r["type"] != "buyer_registered"]
        position = min(where, len(batch))
        batch.insert(position, dict(bad))
        with pytest.raises(LedgerError) as caught:
            record(ledger, batch, source="more.jsonl")
        assert (caught.value.source, caught.value.line) == ("more.jsonl", position + 1)
        assert ledger.count() == len(before)
        assert list(ledger.events()) == before


# ---------------------------------------------------------------- money

CURRENCIES = st.sampled_from(["GBP", "EUR", "JPY", "KWD", "CLP", "BHD"])


@FAST
@given(minor=st.integers(0, MAX_AMOUNT_MINOR - 1), currency=CURRENCIES)
def test_minor_units_round_trip_through_their_decimal_string(minor: int, currency: str):
    text = format_minor(minor, currency)
    assert to_minor(text, currency, field="amount") == minor
    decimals = minor_units(currency)
    assert (len(text.partition(".")[2]) if decimals else "." not in text) in (decimals, True)


@FAST
@given(value=st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False),
       currency=CURRENCIES)
def test_decimal_strings_are_exact_or_refused(value: Decimal, currency: str):
    decimals = minor_units(currency)
    if value == value.quantize(Decimal(1).scaleb(-decimals)):
        minor = to_minor(str(value), currency, field="amount")
        assert Decimal(format_minor(minor, currency)) == value
    else:
        with pytest.raises(LedgerError, match="more decimals"):
            to_minor(str(value), currency, field="amount")


@FAST
@given(whole=st.integers(0, 10**12), tenths=st.integers(0, 9))
def test_round_half_up(whole: int, tenths: int):
    assert round_half_up(Decimal(whole) + Decimal(tenths) / 10) == whole + (1 if tenths >= 5 else 0)


def test_zero_is_not_an_id():
    """Drafts get fresh ids: NIL_ID never reaches the store."""
    with fresh_ledger() as ledger:
        outcome = ledger.record([Draft(parse_event(
            {"type": "political_event", "effective": "2025-02-01", "country": "GB", "description": "x"}, CURRENCY))])
        assert outcome.recorded[0].id != NIL_ID
        assert isinstance(ledger.terms(), PolicyTerms)
