"""A seeded, deterministic sample book: one policy and a year of a buyer ledger.

`generate` returns the `[policy]` table and the events in the public form
(docs/rules.md, "Events"), in the order the ledger must record them (non-decreasing `effective`),
each valid at its effective date: payments and credit notes never exceed what
is open on the invoice they name, limits are only reduced below the limit in
force and never when non-cancellable, discretionary limits stay within
`discretionary_limit_max`. `make demo` records it; benchmarks pass `events=`
to scale it to 10k..1M events.

Every effective date lies in 2024-12-15..2025-12-31; the due dates of
invoices issued late in the year run into 2026, as in any real book, and
their payments, falling after the year, are left out (the invoices stay open).

Everything comes from one `random.Random(seed)`: no global random state and
no clock, so one seed always gives the same book.

How a buyer's year is built (`_Buyer`): plan its invoices (issue date,
amount, terms), then settle each one (credit note, payments in one or two
parts, or never), cut everything after an insolvency, derive the overdue
reports and clearances from what is then unpaid, and only then emit events.
Invoice numbers are given last, in issue order across the book, as an
insured's sales ledger would number them.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["generate", "write_jsonl", "write_toml"]

START = datetime.date(2025, 1, 1)
END = datetime.date(2025, 12, 31)
_START, _END = START.toordinal(), END.toordinal()

COUNTRIES = ("GB", "DE", "FR", "US", "NL")
_COUNTRY_WEIGHTS = (45, 20, 15, 12, 8)
_ZONES = {"GB": "A", "DE": "A", "FR": "A", "NL": "A", "US": "B"}
DISCRETIONARY_MAX = 5_000  # the policy's discretionary_limit_max, in pounds

# Tie order on one effective date: the order a credit controller would enter
# them (a buyer exists before its limit, an invoice before its payment, the
# payment before the stop is lifted, an insolvency last).
_RANK = {
    "buyer_registered": 0, "limit_requested": 1, "limit_granted": 2, "limit_reduced": 3,
    "limit_cancelled": 4, "invoice_issued": 5, "credit_note_issued": 6, "payment_received": 7,
    "overdue_reported": 8, "overdue_cleared": 9, "insolvency": 10, "claim_filed": 11,
}

# Events per invoice, measured on generated books (the invoice, its payments,
# the odd credit note and overdue report); used to size a book to `events`.
# (Payments of late-year invoices fall in the next year, hence under 2.)
_EVENTS_PER_INVOICE = 1.92
_EVENTS_PER_BUYER = 3.0  # registration, and for most buyers a limit request and decision


def generate(seed: int = 7, buyers: int = 200, events: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return (policy_table, events) for a sample book.

    `policy_table` is the `[policy]` table as tomllib would parse it (dates as
    `datetime.date`, money as decimal strings). `events` are dicts in the
    public form (docs/rules.md, "Events": `type`, `effective`, a unique `key`, the fields),
    in recording order, ready for `Ledger.parse`. With `events` given, the
    book is sized to about that many events, with at least `events // 200`
    buyers.
    """
    if buyers < 1:
        raise ValueError("a sample book needs at least one buyer")
    rng = random.Random(seed)
    if events is not None:
        buyers = max(buyers, events // 200)
    book = [_Buyer(i + 1, buyers) for i in range(buyers)]
    _assign_roles(rng, book)
    for buyer in book:
        buyer.draw_terms(rng)
    _size_invoice_counts(rng, book, events)
    out: list[dict[str, Any]] = []
    keys: list[int] = []
    for buyer in book:
        buyer.plan(rng)
        buyer.emit(out, keys)
    # Stable sort: ties on one date and rank keep generation order (buyer by buyer).
    order = sorted(range(len(out)), key=keys.__getitem__)
    ordered = [out[i] for i in order]
    _number_invoices(ordered)
    return _policy_table(book), ordered


# ---------------------------------------------------------------- buyers

@dataclass(slots=True)
class _Invoice:
    """One planned invoice; days are date ordinals, money is minor units."""

    seq: int
    issued: int
    due: int
    amount: int
    credit_day: int | None = None
    credit: int = 0
    payments: list[tuple[int, int]] = field(default_factory=list)  # (day, amount)
    settled: int | None = None  # the day its balance reached 0, if it did by END

    def unpaid_at(self, day: int) -> bool:
        return self.settled is None or self.settled > day


@dataclass
class _Buyer:
    """One buyer: its role in the book, its trading terms, and its planned year."""

    number: int
    book_size: int
    kind: str = "company"
    excluded: bool = False
    insolvent: bool = False
    limit_basis: str | None = None  # None: no limit asked (uninsurable buyers)
    non_cancellable: bool = False
    reduce: bool = False
    cancel: bool = False
    country: str = "GB"
    name: str = ""
    registered: int = 0
    requested: int = 0
    granted: int = 0
    requested_amount: int = 0
    limit: int = 0
    criterion: str | None = None
    change_day: int = 0  # the day of a reduction or cancellation
    reduced_to: int = 0
    terms: int = 30
    profile: str = "prompt"
    weight: float = 1.0  # invoices a year, before scaling the book to `events`
    invoice_count: int = 0
    mean_amount: float = 0.0  # minor units usually outstanding (before invoice frequency)
    insolvent_on: int | None = None
    invoices: list[_Invoice] = field(default_factory=list)
    reports: list[tuple[int, int | None]] = field(default_factory=list)  # (reported, cleared)

    @property
    def id(self) -> str:
        return f"B{self.number:0{max(4, len(str(self.book_size)))}d}"

    @property
    def insurable(self) -> bool:
        return self.limit_basis is not None

    def draw_terms(self, rng: random.Random) -> None:
        """Country, name, dates and limit decisions, payment terms and habits."""
        self.country = rng.choices(COUNTRIES, _COUNTRY_WEIGHTS)[0]
        self.name = _name(rng, self.kind, self.country, self.excluded)
        self.registered = _ordinal(2024, 12, 15) + rng.randint(0, 26)  # 2024-12-15..2025-01-10
        if self.insurable:
            self.requested = self.registered + rng.randint(0, 3)
            self.granted = self.requested + rng.randint(1, 7)
            if self.limit_basis == "discretionary":
                self.limit = rng.randrange(1_000, DISCRETIONARY_MAX + 1, 500) * 100  # 1000.00..5000.00
                self.requested_amount = self.limit
                self.criterion = rng.choice(("credit_report", "trading_history", "bank_reference", "trade_reference"))
            else:
                low = 20_000 if self.insolvent else 10_000  # the insolvent buyer must leave a visible claim
                asked = _round_to(_log_uniform(rng, low, 500_000), 5_000)
                self.requested_amount = asked * 100
                # A quarter of requests are only partly approved, as underwriters do.
                share = 1.0 if rng.random() < 0.75 else rng.choice((0.5, 0.6, 0.75, 0.8))
                self.limit = max(5_000, _round_to(asked * share, 1_000)) * 100
            if self.reduce:
                self.change_day = _ordinal(2025, 2, 1) + rng.randint(0, 300)
                self.reduced_to = max(1_000, _round_to(self.limit / 100 * rng.uniform(0.3, 0.8), 1_000)) * 100
                if self.reduced_to >= self.limit:  # a small limit: take a clear step down
                    self.reduced_to = self.limit // 2
            elif self.cancel:
                self.change_day = _ordinal(2025, 3, 1) + rng.randint(0, 270)
        # Terms are agreed per customer: mostly 30 days, some 60, a few 90.
        self.terms = rng.choices((30, 60, 90), (50, 35, 15))[0]
        # The insolvent buyer pays on time until its distress, so the report is about that.
        self.profile = "prompt" if self.insolvent else rng.choices(("prompt", "slow", "late"), (60, 28, 12))[0]
        # Weekly to quarterly trade; the excluded blue chips and the insolvent buyer trade often.
        self.weight = rng.choice((4, 6, 12, 12, 24, 26, 52))
        if self.excluded or self.insolvent:
            self.weight = 52
        if self.insurable:
            # Size invoices so that what is usually outstanding is 40-120 % of the limit.
            self.mean_amount = self.limit * rng.uniform(0.4, 1.2)
        else:
            self.mean_amount = _log_uniform(rng, 2_000, 60_000) * 100 * (5 if self.excluded else 1)
        if self.insolvent:
            self.insolvent_on = _ordinal(2025, 9, 1) + rng.randint(0, 29)

    # ------------------------------------------------------------ planning

    def plan(self, rng: random.Random) -> None:
        """Plan the year's invoices, their settlement and the overdue reports."""
        first = max(self.granted + 1 if self.insurable else self.registered + 1, _START + 1)
        last = _END if self.insolvent_on is None else self.insolvent_on - 1
        if first > last:
            return
        days = sorted(rng.randint(first, last) for _ in range(self.invoice_count))
        # The mean invoice shrinks as invoices get more frequent, so a book scaled
        # to 1M events keeps realistic balances against its limits.
        typical_days_open = self.terms + {"prompt": 0, "slow": 12, "late": 30}[self.profile]
        per_invoice = self.mean_amount * 365 / max(1, self.invoice_count) / typical_days_open
        for seq, day in enumerate(days, 1):
            amount = max(1_000, int(per_invoice * rng.lognormvariate(-0.18, 0.6)))
            self.invoices.append(_Invoice(seq, day, day + self.terms, amount))
        for invoice in self.invoices:
            self._settle(rng, invoice)
        if self.insolvent_on is not None:
            self._fail(rng)
        self._overdue_reports(rng)
        if self.insolvent_on is not None and self.reports and self.reports[-1][1] is None:
            # Reported and on stop: the insured holds deliveries until the insolvency.
            stopped = self.reports[-1][0]
            self.invoices = [inv for inv in self.invoices if inv.issued <= stopped]

    def _settle(self, rng: random.Random, invoice: _Invoice) -> None:
        """Credit note (rare), then payment in full, in two parts, in part only, or never."""
        net = invoice.amount
        after = invoice.issued  # no payment before the invoice, nor before its credit note
        if rng.random() < 0.006:
            day = invoice.issued + rng.randint(2, 25)
            if day <= _END:
                full = rng.random() < 0.15  # goods returned: the whole invoice is credited
                invoice.credit = net if full else max(1, int(net * rng.uniform(0.1, 0.4)))
                invoice.credit_day = day
                net -= invoice.credit
                after = day
                if net == 0:
                    invoice.settled = day
                    return
        roll = rng.random()
        # A few invoices are never paid (and a few only in part): each one keeps its
        # buyer on stop and heading for a protracted-default claim, so keep them rare.
        never = {"prompt": 0.001, "slow": 0.002, "late": 0.008}[self.profile]
        if roll < never:
            return
        pay_day = max(after, invoice.due + self._delay(rng))
        if roll < never + 0.08 and net >= 2:  # two instalments, the second 10-45 days later
            first = max(1, min(net - 1, int(net * rng.uniform(0.3, 0.7))))
            parts = [(pay_day, first), (pay_day + rng.randint(10, 45), net - first)]
        elif roll < never + 0.083 and net >= 2:  # part paid, the rest never
            parts = [(pay_day, max(1, int(net * rng.uniform(0.2, 0.6))))]
        else:
            parts = [(pay_day, net)]
        invoice.payments = [(day, amount) for day, amount in parts if day <= _END]
        if sum(amount for _, amount in invoice.payments) == net:
            invoice.settled = invoice.payments[-1][0]

    def _delay(self, rng: random.Random) -> int:
        """Days after the due date a payment arrives (negative: early)."""
        if self.profile == "prompt":
            return rng.randint(10, 30) if rng.random() < 0.05 else rng.randint(-10, 7)
        if self.profile == "slow":
            return rng.randint(10, 60) if rng.random() < 0.15 else rng.randint(0, 25)
        return rng.randint(10, 100) if rng.random() < 0.4 else rng.randint(0, 20)

    def _fail(self, rng: random.Random) -> None:
        """The insolvent buyer stops paying some months before its liquidation."""
        assert self.insolvent_on is not None
        distress = self.insolvent_on - rng.randint(100, 130)
        for invoice in self.invoices:
            if invoice.due >= distress:
                invoice.payments = []
            else:
                invoice.payments = [(d, a) for d, a in invoice.payments if d < self.insolvent_on]
            if invoice.credit_day is not None and invoice.credit_day >= self.insolvent_on:
                invoice.credit_day, invoice.credit = None, 0
            paid = sum(amount for _, amount in invoice.payments)
            if paid + invoice.credit == invoice.amount:
                invoice.settled = max([d for d, _ in invoice.payments] + [invoice.credit_day or 0])
            else:
                invoice.settled = None

    def _overdue_reports(self, rng: random.Random) -> None:
        """Report the buyer when an invoice stays unpaid well past due; clear when all overdue is paid.

        Usually within `notify_days` (60) of the due date; now and then late,
        so the book also shows missed reporting deadlines (not for the
        insolvent buyer, whose claim should be clean).
        """
        by_due = sorted(self.invoices, key=lambda inv: inv.due)
        horizon = _END if self.insolvent_on is None else self.insolvent_on - 1
        settle_days = sorted({inv.settled for inv in self.invoices if inv.settled is not None})
        cleared = -1
        while True:
            late = rng.random() < 0.1 and self.insolvent_on is None
            wait = rng.randint(61, 90) if late else rng.randint(30, 55)
            reported = next(
                (inv.due + wait for inv in by_due if inv.due + wait > cleared and inv.unpaid_at(inv.due + wait)),
                None,
            )
            if reported is None or reported > horizon:
                return
            clear = self._first_clear_day(by_due, settle_days, reported)
            self.reports.append((reported, clear))
            if clear is None:
                return
            cleared = clear

    @staticmethod
    def _first_clear_day(by_due: list[_Invoice], settle_days: list[int], after: int) -> int | None:
        """The first day after `after` that ends with nothing overdue (only a payment can bring it)."""
        never = _END + 1
        latest_settled = -1  # over invoices due before the candidate day
        i = 0
        for day in settle_days:
            if day <= after:
                continue
            while i < len(by_due) and by_due[i].due < day:
                settled = by_due[i].settled
                latest_settled = max(latest_settled, never if settled is None else settled)
                i += 1
            if latest_settled <= day:
                return day
        return None

    # ------------------------------------------------------------ events

    def emit(self, out: list[dict[str, Any]], keys: list[int]) -> None:
        """Append this buyer's events, with their sort keys (day, then tie rank)."""
        b = self.id

        def add(type_: str, day: int, key: str, **fields: Any) -> None:
            out.append({"type": type_, "effective": _date(day), "key": key, "buyer": b, **fields})
            keys.append(day * 16 + _RANK[type_])

        extra: dict[str, Any] = {"excluded": True} if self.excluded else {}
        add("buyer_registered", self.registered, f"REG-{b}", name=self.name, country=self.country, kind=self.kind, **extra)
        if self.insurable:
            add("limit_requested", self.requested, f"LRQ-{b}", amount=_money(self.requested_amount))
            grant: dict[str, Any] = {"amount": _money(self.limit), "basis": self.limit_basis}
            if self.criterion:
                grant["criterion"] = self.criterion
            if self.non_cancellable:
                grant["non_cancellable"] = True
            add("limit_granted", self.granted, f"LGR-{b}", **grant)
            if self.reduce:
                add("limit_reduced", self.change_day, f"LRD-{b}", amount=_money(self.reduced_to))
            elif self.cancel:
                add("limit_cancelled", self.change_day, f"LCN-{b}")
        for inv in self.invoices:
            ref = f"INV-{b}-{inv.seq:04d}"  # numbered for real in _number_invoices
            add("invoice_issued", inv.issued, ref, invoice=ref, amount=_money(inv.amount),
                due=_date(inv.due))
            if inv.credit_day is not None:
                add("credit_note_issued", inv.credit_day, f"CN-{b}-{inv.seq:04d}", invoice=ref, amount=_money(inv.credit))
            for part, (day, amount) in enumerate(inv.payments, 1):
                add("payment_received", day, f"PAY-{b}-{inv.seq:04d}-{part}", amount=_money(amount), invoice=ref)
        for n, (reported, cleared) in enumerate(self.reports, 1):
            add("overdue_reported", reported, f"OVD-{b}-{n:02d}")
            if cleared is not None:
                add("overdue_cleared", cleared, f"OVC-{b}-{n:02d}")
        if self.insolvent_on is not None:
            add("insolvency", self.insolvent_on, f"INS-{b}", proceeding="liquidation")
            # The insured files its claim within the policy's 30 days, as a careful one would.
            add("claim_filed", min(self.insolvent_on + 12, _END), f"CLM-{b}")


def _assign_roles(rng: random.Random, book: list[_Buyer]) -> None:
    """Pick, without overlap, the insolvent buyer, the uninsurable ones and the limit variants."""
    n = len(book)
    pool = list(book)
    rng.shuffle(pool)
    pool[0].insolvent = True
    pool[0].limit_basis = "underwriter"
    rest = pool[1:]
    few = round(n * 0.015)  # 3 of each in a 200-buyer book
    counts = {"private_individual": few, "related_company": few, "public_body": few}
    at = 0
    for kind, count in counts.items():
        for buyer in rest[at:at + count]:
            buyer.kind = kind
        at += count
    for buyer in rest[at:at + (1 if n < 100 else 2)]:
        buyer.excluded = True  # named blue chips
        at += 1
    insured = rest[at:]
    for buyer in insured:
        buyer.limit_basis = "underwriter"
    # Disjoint slices: discretionary, non-cancellable, reduced, cancelled.
    shares = (("discretionary", 0.10), ("non_cancellable", 0.05), ("reduce", 0.06), ("cancel", 0.015))
    at = 0
    for role, share in shares:
        count = max(1, round(len(insured) * share)) if len(insured) >= 4 * len(shares) else 0
        for buyer in insured[at:at + count]:
            if role == "discretionary":
                buyer.limit_basis = "discretionary"
            else:
                setattr(buyer, role, True)
        at += count


def _size_invoice_counts(rng: random.Random, book: list[_Buyer], events: int | None) -> None:
    """Invoices per buyer: its weight, scaled so the book has about `events` events."""
    scale = 1.0
    if events is not None:
        wanted = max(len(book), (events - _EVENTS_PER_BUYER * len(book)) / _EVENTS_PER_INVOICE)
        scale = wanted / sum(buyer.weight for buyer in book)
    for buyer in book:
        exact = buyer.weight * scale
        # Random rounding keeps the total on target however small each share is.
        buyer.invoice_count = max(1, int(exact) + (rng.random() < exact - int(exact)))


def _number_invoices(events: list[dict[str, Any]]) -> None:
    """Number invoices in issue order across the book, like a sales ledger."""
    numbers: dict[str, str] = {}
    for event in events:
        if event["type"] == "invoice_issued":
            numbers[event["invoice"]] = f"NW25-{len(numbers) + 1:06d}"
    for event in events:
        if "invoice" in event:
            event["invoice"] = numbers[event["invoice"]]


# ---------------------------------------------------------------- the policy

def _policy_table(book: list[_Buyer]) -> dict[str, Any]:
    """The [policy] table; the turnover estimate is the book's insurable sales, to 2 figures."""
    insurable = sum(inv.amount for buyer in book if buyer.insurable for inv in buyer.invoices) // 100
    estimate = max(100_000, _round_significant(insurable, 2))
    return {
        "id": "POL-2025-001",
        "insured": "Northwind Components Ltd",
        "currency": "GBP",
        "start": START,
        "end": END,
        "structure": "whole_turnover",
        "cover": "proportional",
        "indemnity_pct": "90",
        "excess": "500",
        "non_qualifying_loss": "0",
        "max_liability_multiple": "30",
        "discretionary_limit_max": str(DISCRETIONARY_MAX),
        "max_credit_days": 120,
        "on_stop_days": 60,
        "notify_days": 60,
        "protracted_default_days": 180,
        "claim_filing_days": 30,
        "outstanding_order_days": 0,
        "countries": list(COUNTRIES),
        "political_risk": False,
        "premium": {
            "rate": "0.0030",
            "minimum_pct": "80",
            "estimated_turnover": str(estimate),
            "declarations": "quarterly",
            "declaration_days": 30,
            "invoicing": "declared",
            "tax_pct": "12",
        },
        "fees": {
            "zones": dict(_ZONES),
            "investigation": {"A": "150", "B": "250"},
            "monitoring": {"A": "10", "B": "25"},
            "taxable": False,
        },
    }


# ---------------------------------------------------------------- names

_COMPANY_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "GB": (
        ("Albion", "Harbour", "Pennine", "Thames", "Redbrick", "Kestrel", "Oakfield", "Marlow", "O'Neill", "Castleford"),
        ("Engineering", "Supplies", "Foods", "Logistics", "Packaging", "Electrical", "Builders Merchants", "Plastics"),
        ("Ltd", "Ltd", "Ltd", "plc", "& Sons Ltd"),
    ),
    "DE": (
        ("Müller", "Schäfer", "Becker", "Rheinland", "Nordstern", "Weber", "Hoffmann", "Bayerische"),
        ("Maschinenbau", "Handel", "Logistik", "Elektrotechnik", "Verpackung", "Metallbau", "Lebensmittel"),
        ("GmbH", "GmbH", "GmbH & Co. KG", "AG"),
    ),
    "FR": (
        ("Dubois", "Lefèvre", "Atlantique", "Provence", "Rhône", "Moreau", "Garnier", "L'Étoile", '"Les Halles"'),
        ("Distribution", "Industries", "Transports", "Emballages", "Équipements", "Négoce"),
        ("SARL", "SAS", "SA"),
    ),
    "US": (
        ("Lakeshore", "Keystone", "Pioneer", "Summit", "Bayou", "Redwood", "Liberty", "Great Plains"),
        ("Industrial Supply", "Manufacturing", "Distributors", "Foods", "Logistics", "Components"),
        ("Inc.", "LLC", "Corp."),
    ),
    "NL": (
        ("Van Dijk", "De Vries", "Hollandia", "Zeeland", "Van den Berg", "Oranje"),
        ("Handel", "Techniek", "Logistiek", "Verpakkingen", "Groothandel"),
        ("B.V.", "B.V.", "N.V."),
    ),
}
_PEOPLE = {
    "GB": (("Margaret", "Tom", "Aisha", "Gareth"), ("Hughes", "Patel", "Evans", "Murphy")),
    "DE": (("Jürgen", "Anna", "Lukas", "Petra"), ("Schmidt", "Fischer", "Wagner", "Koch")),
    "FR": (("Amélie", "Jean-Luc", "Sophie", "Karim"), ("Martin", "Bernard", "Petit", "Roux")),
    "US": (("Dolores", "Jim", "Kayla", "Marcus"), ("Johnson", "Rivera", "Nguyen", "Walker")),
    "NL": (("Sanne", "Pieter", "Femke", "Joost"), ("Jansen", "Bakker", "Visser", "Smit")),
}
_TOWNS = {
    "GB": "Reading", "DE": "Bielefeld", "FR": "Angers", "US": "Franklin County", "NL": "Utrecht",
}
_PUBLIC = {
    "GB": "Borough Council of {}", "DE": "Stadtwerke {}", "FR": "Mairie d'{}",
    "US": "{} School District", "NL": "Gemeente {}",
}
_BLUE_CHIPS = {
    "GB": "Britannia Retail Group plc", "DE": "Kontinental Automobil AG", "FR": "Hexagone Distribution SA",
    "US": "American Consolidated Stores Inc.", "NL": "Koninklijke Delta N.V.",
}


def _name(rng: random.Random, kind: str, country: str, excluded: bool) -> str:
    if excluded:
        return _BLUE_CHIPS[country]
    if kind == "private_individual":
        first, last = _PEOPLE[country]
        return f"{rng.choice(first)} {rng.choice(last)}"
    if kind == "public_body":
        return _PUBLIC[country].format(_TOWNS[country])
    stems, trades, suffixes = _COMPANY_PARTS[country]
    if kind == "related_company":  # a sister company of the insured
        return f"Northwind Components {suffixes[0]}"
    if country == "FR":
        return f"{rng.choice(trades)} {rng.choice(stems)} {rng.choice(suffixes)}"
    return f"{rng.choice(stems)} {rng.choice(trades)} {rng.choice(suffixes)}"


# ---------------------------------------------------------------- small helpers

# One shared date object per day: a 1M-event book holds only a few hundred.
_date = functools.cache(datetime.date.fromordinal)


def _ordinal(year: int, month: int, day: int) -> int:
    return datetime.date(year, month, day).toordinal()


def _money(minor: int) -> str:
    """Minor units as a decimal string with cents: 123456 -> "1234.56"."""
    return f"{minor // 100}.{minor % 100:02d}"


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    """Spread over orders of magnitude: as many 10k limits as 100k ones."""
    return float(low * (high / low) ** rng.random())


def _round_to(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


def _round_significant(value: int, figures: int) -> int:
    digits = len(str(value))
    step = int(10 ** max(0, digits - figures))
    return round(value / step) * step


# ---------------------------------------------------------------- writers

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    """One TOML value: dates unquoted, strings quoted, tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_table(header: str, table: dict[str, Any]) -> list[str]:
    """A table's scalar keys under `header`, then its sub-tables as [header.name]."""
    lines = [f"[{header}]"]
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) and header == "policy":
            subtables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in subtables:
        lines.append("")
        lines.extend(_toml_table(f"{header}.{_toml_key(key)}", value))
    return lines


def write_toml(path: str | os.PathLike[str], policy_table: dict[str, Any], events: Iterable[dict[str, Any]]) -> None:
    """Write a scenario-style file: `[policy]` (with its sub-tables), then one `[[events]]` per event."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('title = "Sample book (ledger.tools.samplebook)"\n\n')
        f.write("\n".join(_toml_table("policy", policy_table)) + "\n")
        for event in events:
            body = "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in event.items())
            f.write(f"\n[[events]]\n{body}\n")


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def write_jsonl(path: str | os.PathLike[str], events: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per event per line, dates as ISO strings (no policy)."""
    with open(path, "w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False, default=_json_default) + "\n")
