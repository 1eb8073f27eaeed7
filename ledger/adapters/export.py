"""The report export (issue 7): the read models as plain, documented tables.

`build_report` folds every buyer once at (`as_of`, `known_at`) and derives
each table from the same pure folds the queries use (`projections/`), so an
export and `creditledger exposure | obligations | premium | claims` agree
figure for figure. `write_sqlite` writes the tables with sqlite-utils (column
types, primary and foreign keys, indexes) into a temporary file that is
renamed into place only once complete; `write_csv` writes one CSV file per
table, same columns.

The schema is data (`TABLES`): it creates the tables, fills the
`about_tables` and `about_columns` tables of every export, and
docs/export.md is checked against it by the tests.

An export is one consistent snapshot: events recorded by `known_at` and
effective by `as_of`, and the figures at the end of day `as_of`; nothing
recorded later, effective later, or from another ledger.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from ledger.adapters.csvsafe import safe_row
from ledger.queries.book import NoPolicy, fold_book
from ledger.service import Ledger
from ledger.vocabulary.bulk import ProgressHook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    Event,
    InvoiceIssued,
    LimitCancelled,
    LimitGranted,
    LimitReduced,
    LimitRequested,
    format_recorded,
    parse_recorded,
    to_public,
)
from ledger.vocabulary.location import Location
from ledger.vocabulary.money import format_minor, minor_units
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms, terms_to_table
from projections.claims import Claim
from projections.cover import BuyerCover, why_not_insured
from projections.exposure import EXPOSURE_FIGURES, Exposure, book_obligations, policy_periods
from projections.lines import PremiumLine
from projections.premium import minimum_premium
from projections.terms import TermsTimeline
from projections.turnover import BuyerSales, declarations, turnover_by_country

Row = dict[str, Any]

# ---------------------------------------------------------------- the schema, as data

MINOR = "minor units of the policy currency"
DECIMAL = "decimal string, policy currency"
DATE = "ISO 8601 date"
TIMESTAMP = "UTC timestamp, YYYY-MM-DDTHH:MM:SS.ffffffZ (text order is time order)"
FLAG = "0 or 1"
JSON = "JSON text"


@dataclass(frozen=True)
class Column:
    """One column: its SQLite type, its unit, and what it means."""

    name: str
    type: str  # TEXT or INTEGER: every value is exact
    unit: str
    meaning: str


@dataclass(frozen=True)
class Table:
    """One table: columns, keys and the indexes people filter by."""

    name: str
    meaning: str
    columns: tuple[Column, ...]
    pk: tuple[str, ...]
    foreign_keys: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def text(name: str, meaning: str, unit: str = "") -> tuple[Column, ...]:
    return (Column(name, "TEXT", unit, meaning),)


def integer(name: str, meaning: str, unit: str = "") -> tuple[Column, ...]:
    return (Column(name, "INTEGER", unit, meaning),)


def date(name: str, meaning: str) -> tuple[Column, ...]:
    return (Column(name, "TEXT", DATE, meaning),)


def flag(name: str, meaning: str) -> tuple[Column, ...]:
    return (Column(name, "INTEGER", FLAG, meaning),)


def money(name: str, meaning: str) -> tuple[Column, ...]:
    """Two columns per amount: integer minor units to sum exactly, and the decimal string to read."""
    return (Column(f"{name}_minor", "INTEGER", MINOR, meaning),
            Column(name, "TEXT", DECIMAL, f"{meaning} (the same amount as {name}_minor)"))


def columns(*groups: tuple[Column, ...]) -> tuple[Column, ...]:
    return tuple(column for group in groups for column in group)


def fk(column: str | tuple[str, ...], table: str, other: str | tuple[str, ...]) -> tuple[
    tuple[str, ...], str, tuple[str, ...]
]:
    as_tuple = (column,) if isinstance(column, str) else column
    return (as_tuple, table, (other,) if isinstance(other, str) else other)


ACCOUNT = {  # premium line kind -> the heading of the premium account (`creditledger premium`) it adds to
    "premium": "premium", "adjustment": "adjustment", "investigation_fee": "investigation_fees",
    "monitoring_fee": "monitoring_fees", "top_up_premium": "top_up", "top_up_refund": "top_up",
    "top_up_admin_fee": "top_up",
}

# Tables are created in this order (a foreign key needs its table first; the one
# back-reference, buyers.event_id -> events, is added once events exists).
TABLES: tuple[Table, ...] = (
    Table(
        "buyers", "Every buyer registered by as_of (as known at known_at): one row per buyer.",
        columns(
            text("buyer", "The buyer's identifier in the ledger."),
            text("name", "The buyer's name."),
            text("country", "The buyer's country.", "ISO 3166 alpha-2"),
            text("kind", "company, private_individual, related_company or public_body."),
            flag("excluded", "1 if the buyer is a named exclusion of the policy."),
            date("registered", "Effective date of the buyer_registered event."),
            text("event_id", "The buyer_registered event (events.id)."),
        ),
        pk=("buyer",), foreign_keys=(fk("event_id", "events", "id"),), indexes=(("country",),),
    ),
    Table(
        "events", "The events themselves, both time axes: recorded by known_at and effective by as_of.",
        columns(
            text("id", "The event's id (a UUID)."),
            integer("position", "Place in recorded order among the events recorded by known_at (1 = first)."),
            text("type", "The event type (docs/rules.md, \"Events\"), e.g. invoice_issued."),
            date("effective", "When the fact happened."),
            text("recorded", "When the ledger learnt it.", TIMESTAMP),
            text("buyer", "The buyer whose stream holds the event; empty (NULL) for policy events."),
            text("key", "The idempotency key from the source system, if any."),
            money("amount", "The event's amount in the policy currency, if it has one (a foreign invoice: as "
                  "converted at issue; its own amount is in payload)"),
            text("payload", "The whole event as `creditledger log --json` prints it (money as decimal strings).",
                 JSON),
        ),
        pk=("id",), foreign_keys=(fk("buyer", "buyers", "buyer"),), unique=(("position",), ("key",)),
        indexes=(("type",), ("effective",), ("recorded",)),
    ),
    Table(
        "limits", "Limits history: every limit request and decision, in fold order (effective, then recorded).",
        columns(
            text("event_id", "The event (events.id)."),
            text("buyer", "The buyer."),
            date("effective", "Effective date of the request or decision."),
            text("recorded", "When the ledger learnt it.", TIMESTAMP),
            text("decision", "requested, granted, reduced or cancelled."),
            money("amount", "granted or reduced: the new limit; cancelled: 0; requested: the amount asked for"),
            text("basis", "granted: underwriter or discretionary."),
            text("criterion", "A discretionary grant's criterion (credit_report, trading_history, ...)."),
            flag("non_cancellable", "granted: 1 if the limit cannot be reduced or cancelled."),
            flag("in_force", "1 for the buyer's decision in force at as_of (exposure.limit)."),
        ),
        pk=("event_id",), foreign_keys=(fk("event_id", "events", "id"), fk("buyer", "buyers", "buyer")),
        indexes=(("buyer", "effective"), ("decision",)),
    ),
    Table(
        "invoices", "Every invoice issued by as_of, with its balance and its insured cap (docs/rules.md, \"Which invoices are insured\").",
        columns(
            text("buyer", "The buyer."),
            text("invoice", "The invoice number (unique per buyer)."),
            text("event_id", "The invoice_issued event (events.id)."),
            date("issued", "Issue (effective) date."),
            date("delivered", "Delivery date; eligibility and the limit are those of this day."),
            date("due", "Due date in force (after any due_date_extended)."),
            money("amount", "Invoice amount in the policy currency"),
            text("currency", "A foreign invoice's own currency; NULL when in the policy currency.", "ISO 4217"),
            text("foreign_amount", "A foreign invoice's amount in its own currency.", "decimal string"),
            text("fx_rate", "A foreign invoice's rate: policy currency per unit.", "decimal string"),
            flag("prepaid", "1 if the invoice is prepaid (never insured)."),
            money("credited", "Sum of its credit notes"),
            money("paid", "Sum of the payments and recoveries allocated to it"),
            money("balance", "What is still open: amount - credited - paid"),
            flag("overdue", "1 if the balance is open and the due date is before as_of."),
            money("cap", "Insured cap locked at delivery: min(amount, max(0, limit + top-up - insured "
                  "outstanding)); 0 when not insured"),
            money("insured", "Insured part at as_of: min(cap, balance), 0 once cover was lost"),
            text("not_insured", "Why the cap is 0, in words (limit fully used at delivery: the insured "
                 "outstanding took the whole limit); NULL when the cap is above 0."),
            date("cover_lost_from", "The day cover ended (a missed reporting deadline, a due date extended "
                 "too far); NULL if never."),
            text("cover_lost_reason", "Why cover ended."),
            text("limit_event_id", "The limit decision the invoice was insured under (events.id)."),
            money("entry_limit", "The limit counted when the cap was locked"),
            money("entry_top_up", "The top-up counted when the cap was locked"),
            money("entry_insured_outstanding", "The buyer's insured outstanding when the cap was locked"),
        ),
        pk=("buyer", "invoice"),
        foreign_keys=(fk("buyer", "buyers", "buyer"), fk("event_id", "events", "id"),
                      fk("limit_event_id", "events", "id")),
        unique=(("event_id",),), indexes=(("due",), ("issued",), ("overdue",)),
    ),
    Table(
        "exposure", "Exposure per buyer at as_of (docs/rules.md, \"Exposure\"); the book's figures are the sums.",
        columns(
            text("buyer", "The buyer."),
            money("outstanding", "Sum of open balances"),
            money("overdue", "Balances of invoices past their due date"),
            money("insured", "Sum of the insured parts, min(cap, balance)"),
            money("uninsured", "outstanding - insured"),
            money("limit", "The limit in force"),
            money("top_up", "The top-up cover in force"),
            money("headroom", "max(0, limit + top_up - insured)"),
            money("available", "What a delivery on as_of would be insured for at most: 0 for a reason in "
                  "not_available, else what the limit in force for deliveries allows"),
            text("status", "claim, insolvent, on_stop, overdue, closed or active (the first that applies)."),
            text("not_available", "Why available is 0 whatever the headroom (outside_policy_period, an exclusion, "
                 "country_not_covered, claim, insolvent, on_stop, limit_cancelled, no_limit); empty when not."),
        ),
        pk=("buyer",), foreign_keys=(fk("buyer", "buyers", "buyer"),), indexes=(("status",),),
    ),
    Table(
        "obligations", "Duties with deadlines at as_of (docs/rules.md, \"Obligations\"): missed first, then by due date, kind and buyer.",
        columns(
            integer("id", "Row number in that order (1 = first)."),
            text("kind", "report_overdue, file_claim or declare_turnover."),
            text("buyer", "The buyer; NULL for the policy's declare_turnover."),
            date("due", "The deadline."),
            text("status", "pending, met or missed."),
        ),
        pk=("id",), foreign_keys=(fk("buyer", "buyers", "buyer"),), indexes=(("status",), ("due",), ("kind",)),
    ),
    Table(
        "turnover", "Turnover by declaration period and buyer country (docs/rules.md, \"Insurable turnover\"): periods begun by as_of, "
        "sales issued in the policy period up to as_of; one row per period and country with sales or a "
        "declaration.",
        columns(
            text("period", "The declaration period: 2025, 2025-Q1 or 2025-03."),
            text("country", "The buyers' country.", "ISO 3166 alpha-2"),
            date("first_day", "First day counted (the period clipped to the policy period)."),
            date("last_day", "Last day counted (clipped to the policy period and to as_of)."),
            flag("complete", "1 if the whole period is counted (its last day is on or before as_of)."),
            money("insurable", "Insurable turnover: sales minus credit notes"),
            money("excluded", "Turnover excluded, all reasons (turnover_excluded has each reason)"),
            money("declared", "The declaration in force (effective by as_of); NULL if none"),
            money("difference", "declared - insurable, an audit finding when not 0; NULL if no declaration"),
        ),
        pk=("period", "country"), indexes=(("country",),),
    ),
    Table(
        "turnover_excluded", "Excluded turnover by period, country and reason (only reasons with an amount).",
        columns(
            text("period", "The declaration period."),
            text("country", "The buyers' country.", "ISO 3166 alpha-2"),
            text("reason", "private_individual, related_company, public_body, named_exclusion, "
                 "outside_selection, country_not_covered, prepaid or no_limit."),
            money("amount", "Sales minus credit notes excluded for that reason"),
        ),
        pk=("period", "country", "reason"), foreign_keys=(fk(("period", "country"), "turnover", ("period", "country")),),
        indexes=(("reason",),),
    ),
    Table(
        "premium_lines", "The premium account's lines dated up to as_of (docs/rules.md, \"Premium\" and \"Fees\"): premium, "
        "adjustment, fees, top-up; sum amount and tax for the account.",
        columns(
            integer("id", "Row number in the account's order (date, kind, buyer, period, country)."),
            date("date", "The invoice date of the line."),
            text("kind", "premium, adjustment, investigation_fee, monitoring_fee, top_up_premium, "
                 "top_up_refund or top_up_admin_fee."),
            text("account", "The heading of `creditledger premium` it adds to: premium, adjustment, "
                 "investigation_fees, monitoring_fees or top_up."),
            text("period", "The declaration period it bills, if any."),
            text("country", "The country it bills, if any.", "ISO 3166 alpha-2"),
            text("buyer", "The buyer it bills (fees, top-up), if any."),
            money("basis", "What the rate applies to (turnover, a top-up amount); NULL when none"),
            text("rate", "The rate applied; NULL when none.", "decimal string (0.0030 is 0.30 %)"),
            money("amount", "The line's amount, rounded half-up once (a refund is negative)"),
            money("tax", "Insurance premium tax on the line"),
            money("total", "amount + tax"),
        ),
        pk=("id",), foreign_keys=(fk("buyer", "buyers", "buyer"),), indexes=(("date",), ("kind",), ("account",)),
    ),
    Table(
        "claims", "The claims register at as_of (docs/rules.md, \"Claims\"): every buyer with a loss, and buyers on watch "
        "(a protracted-default clock running).",
        columns(
            text("buyer", "The buyer."),
            text("status", "watch, open, filed, paid or filing_missed."),
            date("loss_date", "The loss date; NULL on watch."),
            text("cause", "insolvency, protracted_default or political; empty on watch."),
            text("loss_event_id", "The event that caused the loss (events.id)."),
            date("filing_due", "The claim filing deadline, if the policy sets one."),
            date("filed", "Effective date of claim_filed, if any."),
            money("insured_loss", "Sum of min(cap, balance): caps frozen at the loss date"),
            money("indemnity", "The entitlement, paid or not"),
            money("retained", "insured_loss - indemnity"),
            money("indemnity_paid", "Sum of indemnity_paid events"),
            money("recovered", "Recoveries after the first indemnity, shared"),
            money("insurer_recovery", "The insurer's share of them"),
            money("insured_recovery", "The insured's share of them"),
            money("insurer_net_loss", "indemnity_paid - insurer_recovery"),
            money("insured_net_loss", "insured_loss - indemnity_paid - insured_recovery"),
        ),
        pk=("buyer",), foreign_keys=(fk("buyer", "buyers", "buyer"), fk("loss_event_id", "events", "id")),
        indexes=(("status",), ("loss_date",)),
    ),
    Table(
        "claim_invoices", "Explanation: each invoice behind a claim's insured loss (issued and delivered by "
        "the loss date).",
        columns(
            text("buyer", "The buyer (claims.buyer)."),
            text("invoice", "The invoice (invoices.invoice)."),
            money("cap", "The cap frozen at the loss date (0 if cover was lost by then)"),
            money("balance", "The balance at the first indemnity, or at as_of before one"),
            money("insured", "min(cap, balance): its part of the insured loss"),
            text("cap_rule", "How the cap was locked, with the figures."),
            text("not_insured", "Why its cap is 0 (as invoices.not_insured); NULL if the cap is above 0."),
            text("cover_lost", "Why and from when cover ended before the loss; NULL if not."),
        ),
        pk=("buyer", "invoice"),
        foreign_keys=(fk("buyer", "claims", "buyer"), fk(("buyer", "invoice"), "invoices", ("buyer", "invoice"))),
    ),
    Table(
        "claim_applied", "Explanation: credit notes, payments and recoveries applied to each claim invoice.",
        columns(
            integer("id", "Row number."),
            text("buyer", "The buyer (claims.buyer)."),
            text("invoice", "The invoice."),
            text("kind", "credit_note, payment or recovery (before the first indemnity: in the insured "
                 "loss), or after_first_indemnity (not in it)."),
            text("event_id", "The credit note, payment or recovery (events.id)."),
            money("amount", "The part of it applied to this invoice"),
        ),
        pk=("id",),
        foreign_keys=(fk("buyer", "claims", "buyer"), fk(("buyer", "invoice"), "claim_invoices", ("buyer", "invoice")),
                      fk("event_id", "events", "id")),
    ),
    Table(
        "claim_steps", "Explanation: each step from the insured loss to the indemnity, with the amount "
        "before and after.",
        columns(
            text("buyer", "The buyer (claims.buyer)."),
            integer("step", "The step's number, 1 = the insured loss."),
            text("name", "insured loss, non-qualifying loss, excess, per-loss deductible, annual aggregate "
                 "deductible, indemnity percentage, claim filing or maximum liability."),
            money("before", "The amount before the step"),
            money("after", "The amount after it"),
            text("rule", "The rule applied, with its figures."),
            text("events", "The events the step rests on (ids).", "JSON array"),
        ),
        pk=("buyer", "step"), foreign_keys=(fk("buyer", "claims", "buyer"),),
    ),
    Table(
        "claim_recovery_shares", "Explanation: each recovery after the first indemnity, shared between "
        "insurer and insured (docs/rules.md, \"Claims\").",
        columns(
            text("event_id", "The recovery_received event (events.id)."),
            text("buyer", "The buyer (claims.buyer)."),
            date("date", "Its effective date."),
            money("amount", "The recovery"),
            money("insurer", "The insurer's share: amount x indemnity paid / insured loss, rounded half-up"),
            money("insured", "The insured's share: the rest"),
        ),
        pk=("event_id",), foreign_keys=(fk("event_id", "events", "id"), fk("buyer", "claims", "buyer")),
    ),
    Table(
        "metadata", "One row: what this export is (the ledger, as_of, known_at, counts).",
        columns(
            text("policy", "The policy id."),
            text("insured", "The insured."),
            text("currency", "The policy currency.", "ISO 4217"),
            integer("minor_units", "Decimals of the currency: amount = amount_minor / 10^minor_units."),
            date("policy_start", "Start of the insurance period."),
            date("policy_end", "End of the insurance period."),
            date("as_of", "The effective date of every figure (the end of that day)."),
            text("known_at", "Only events recorded up to this moment are in the export.", TIMESTAMP),
            text("exported_at", "When the export was made (the ledger's clock).", TIMESTAMP),
            text("ledger", "The ledger exported: a file path, or a PostgreSQL URL without credentials."),
            text("creditledger_version", "The version that wrote the export."),
            integer("events_known", "Events recorded by known_at."),
            integer("events_exported", "Of those, events effective by as_of: the rows of events."),
            integer("head_id", "The notification id of the last event recorded by known_at (0: none)."),
            text("head_hash", "Its hash chain link: `creditledger verify --expect-head` on the ledger checks it."),
            money("minimum_premium", "The policy's minimum premium"),
            money("max_liability", "The maximum liability at as_of; NULL for no cap"),
            text("terms", "The policy terms in force at as_of, as `creditledger policy show --json`.", JSON),
        ),
        pk=("policy",),
    ),
    Table(
        "about_tables", "What each table of this export holds.",
        columns(
            text("name", "The table."),
            text("meaning", "What it holds."),
            integer("rows", "Its number of rows."),
        ),
        pk=("name",),
    ),
    Table(
        "about_columns", "What each column of this export means: type, unit, meaning.",
        columns(
            text("table_name", "The table (about_tables.name)."),
            text("column_name", "The column."),
            integer("position", "Its place in the table (1 = first)."),
            text("type", "TEXT or INTEGER."),
            text("unit", "Unit or format: minor units, decimal string, ISO date, UTC timestamp, 0 or 1, JSON."),
            text("meaning", "What it means."),
        ),
        pk=("table_name", "column_name"), foreign_keys=(fk("table_name", "about_tables", "name"),),
    ),
)
TABLE = {table.name: table for table in TABLES}


# ---------------------------------------------------------------- computing the tables

@dataclass
class Report:
    """Every table of one export, computed from one fold of the book.

    The events table is streamed from the ledger while it is written (a
    ledger may hold millions), so the report needs its ledger open until
    written; `metadata` and `about_tables` come last and count what was written.
    """

    ledger: Ledger
    as_of: datetime.date
    known_at: datetime.datetime
    exported_at: datetime.datetime
    terms: PolicyTerms
    tables: dict[str, list[Row]]
    max_liability: int | None
    events_known: int = 0
    events_exported: int = 0
    progress: ProgressHook | None = None

    def claims_on_watch(self) -> int:
        """Rows of the claims table for buyers on watch (a protracted-default clock running): not claims."""
        return sum(1 for row in self.tables["claims"] if row["status"] == "watch")

    def rows(self, name: str, written: Mapping[str, int]) -> Iterable[Row]:
        """The rows of table `name`; `written` counts the rows of the tables written before it."""
        if name == "events":
            return self._event_rows()
        if name == "metadata":
            return [self._metadata()]
        if name == "about_tables":
            counts = {**written, "about_tables": len(TABLES), "about_columns": sum(len(t.columns) for t in TABLES)}
            return [{"name": t.name, "meaning": t.meaning, "rows": counts.get(t.name, 0)} for t in TABLES]
        if name == "about_columns":
            return [
                {"table_name": t.name, "column_name": c.name, "position": position, "type": c.type, "unit": c.unit,
                 "meaning": c.meaning}
                for t in TABLES for position, c in enumerate(t.columns, 1)
            ]
        return self.tables[name]

    def _money(self, name: str, amount: int | None) -> Row:
        return {f"{name}_minor": amount, name: None if amount is None else format_minor(amount, self.terms.currency)}

    def _event_rows(self) -> Iterator[Row]:
        self.events_known = self.events_exported = 0
        currency = self.terms.currency
        for position, event in enumerate(self.ledger.events(self.known_at), 1):
            self.events_known += 1
            if self.progress and position % 1000 == 0:
                self.progress(1000)
            if event.effective > self.as_of:
                continue
            self.events_exported += 1
            amount = getattr(event, "amount", None)
            yield {
                "id": str(event.id), "position": position, "type": event.type,
                "effective": event.effective.isoformat(), "recorded": format_recorded(event.recorded),
                "buyer": event.buyer if isinstance(event, BuyerEvent) else None, "key": event.key,
                **self._money("amount", amount if isinstance(amount, int) else None),
                "payload": msgspec.json.encode(to_public(event, currency)).decode(),
            }
        if self.progress:
            self.progress(self.events_known % 1000)

    def _metadata(self) -> Row:
        terms = self.terms
        return {
            "policy": terms.id, "insured": terms.insured, "currency": terms.currency,
            "minor_units": minor_units(terms.currency), "policy_start": terms.start.isoformat(),
            "policy_end": terms.end.isoformat(), "as_of": self.as_of.isoformat(),
            "known_at": format_recorded(self.known_at), "exported_at": format_recorded(self.exported_at),
            "ledger": public_location(self.ledger.location), "creditledger_version": version(),
            "events_known": self.events_known, "events_exported": self.events_exported,
            **dict(zip(("head_id", "head_hash"), self.ledger.head(self.known_at), strict=True)),
            **self._money("minimum_premium", minimum_premium(terms)),
            **self._money("max_liability", self.max_liability),
            "terms": msgspec.json.encode(terms_to_table(terms)).decode(),
        }


def version() -> str:
    try:
        return importlib.metadata.version("creditledger")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def public_location(location: str) -> str:
    """The ledger's location as an export may show it: never with a password (see `Location.shown`)."""
    return Location.parse(location).shown


def default_known_at(ledger: Ledger, now: datetime.datetime) -> datetime.datetime:
    """`now`, or the latest recorded stamp if the clock is behind it (so that 'now' misses nothing)."""
    last = ledger.last_recorded()
    if last:
        return max(now, parse_recorded(last))
    return now


def work_estimate(ledger: Ledger) -> int:
    """Units of work for a progress bar: one per buyer folded, one per event written."""
    return len(ledger.buyers()) + ledger.count()


def build_report(
    ledger: Ledger,
    as_of: datetime.date | None = None,
    known_at: datetime.datetime | None = None,
    *,
    progress: ProgressHook | None = None,
) -> Report:
    """Fold the book once at `as_of` (default today, as every query) as known at `known_at`
    (default now) and compute every table but the streamed events."""
    exported_at = ledger.clock().astimezone(datetime.UTC)
    as_of = as_of or exported_at.date()
    known_at = known_at.astimezone(datetime.UTC) if known_at else default_known_at(ledger, exported_at)
    try:
        book = fold_book(ledger, as_of, known_at, progress=progress)
    except NoPolicy:
        raise LedgerError("the ledger has no policy (as known at that time); nothing to export", field="known_at") from None
    report = Report(ledger, as_of, known_at, exported_at, book.terms, {}, book.max_liability, progress=progress)
    tables = _Tables(report, book.covers, known_at, book.book.timeline)
    report.tables = {
        "buyers": tables.buyers(),
        "limits": tables.limits(book.book.buyers),
        "invoices": tables.invoices(book.book.buyers),
        "exposure": tables.exposure(),
        "obligations": tables.obligations(book.book.policy),
        **tables.turnover(book.book.sales, book.book.policy),
        "premium_lines": tables.premium_lines(book.lines),
        **tables.claims(book.claims),
    }
    return report


class _Tables:
    """The row builders, one per table, sharing the report's currency and dates."""

    def __init__(
        self, report: Report, covers: Mapping[str, BuyerCover], known_at: datetime.datetime, terms: TermsTimeline
    ) -> None:
        self.report = report
        self.terms = terms
        self.covers = covers
        self.known_at = known_at
        self.as_of = report.as_of
        self.money = report._money

    def buyers(self) -> list[Row]:
        rows: list[Row] = []
        for cover in self.covers.values():
            registered = cover.registered
            assert registered is not None
            rows.append({
                "buyer": cover.buyer, "name": registered.name, "country": registered.country,
                "kind": registered.kind, "excluded": int(registered.excluded),
                "registered": registered.effective.isoformat(), "event_id": str(registered.id),
            })
        return rows

    def _known(self, events: Sequence[Event]) -> list[Event]:
        return [e for e in in_fold_order(recorded_by(events, self.known_at)) if e.effective <= self.as_of]

    def limits(self, buyers: Mapping[str, Sequence[Event]]) -> list[Row]:
        rows: list[Row] = []
        for buyer in self.covers:
            history: list[Row] = []
            latest: Row | None = None  # the decision in force at as_of: the last one in fold order
            for event in self._known(buyers[buyer]):
                if isinstance(event, LimitRequested):
                    decision, amount = "requested", event.amount
                elif isinstance(event, (LimitGranted, LimitReduced)):
                    decision, amount = ("granted" if isinstance(event, LimitGranted) else "reduced"), event.amount
                elif isinstance(event, LimitCancelled):
                    decision, amount = "cancelled", 0
                else:
                    continue
                granted = event if isinstance(event, LimitGranted) else None
                row = {
                    "event_id": str(event.id), "buyer": buyer, "effective": event.effective.isoformat(),
                    "recorded": format_recorded(event.recorded), "decision": decision,
                    **self.money("amount", amount),
                    "basis": granted.basis if granted else None,
                    "criterion": granted.criterion if granted else None,
                    "non_cancellable": int(granted.non_cancellable) if granted else None,
                    "in_force": 0,
                }
                history.append(row)
                if decision != "requested":
                    latest = row
            if latest is not None:
                latest["in_force"] = 1
            rows += history
        return rows

    def invoices(self, buyers: Mapping[str, Sequence[Event]]) -> list[Row]:
        rows: list[Row] = []
        for buyer, cover in self.covers.items():
            issued = {str(e.id): e for e in buyers[buyer] if isinstance(e, InvoiceIssued)}
            for name, invoice in cover.invoices.items():
                balance = invoice.balance
                event = issued[balance.event_id]
                foreign = event.currency is not None and event.foreign_amount is not None
                insured_entry = invoice.not_insured is None
                lost = invoice.lost_from
                rows.append({
                    "buyer": buyer, "invoice": name, "event_id": balance.event_id,
                    "issued": balance.issued.isoformat(), "delivered": balance.delivered.isoformat(),
                    "due": balance.due.isoformat(), **self.money("amount", balance.amount),
                    "currency": event.currency if foreign else None,
                    "foreign_amount": format_minor(event.foreign_amount, event.currency)
                    if foreign and event.foreign_amount is not None and event.currency else None,
                    "fx_rate": str(event.fx_rate) if foreign else None,
                    "prepaid": int(event.prepaid),
                    **self.money("credited", balance.credited), **self.money("paid", balance.paid),
                    **self.money("balance", balance.balance),
                    "overdue": int(balance.balance > 0 and balance.due < self.as_of),
                    **self.money("cap", invoice.cap), **self.money("insured", invoice.insured(self.as_of)),
                    "not_insured": why_not_insured(invoice.not_insured, invoice.cap),
                    "cover_lost_from": lost.isoformat() if lost and lost <= self.as_of else None,
                    "cover_lost_reason": invoice.lost_reason if lost and lost <= self.as_of else None,
                    "limit_event_id": str(invoice.decision.event.id) if invoice.decision else None,
                    **self.money("entry_limit", invoice.entry.limit if insured_entry else None),
                    **self.money("entry_top_up", invoice.entry.top_up if insured_entry else None),
                    **self.money("entry_insured_outstanding", invoice.entry.insured_outstanding if insured_entry else None),
                })
        return rows

    def exposure(self) -> list[Row]:
        rows: list[Row] = []
        for buyer, cover in self.covers.items():
            figures = Exposure.of(cover, self.terms)
            row: Row = {"buyer": buyer}
            for name in EXPOSURE_FIGURES:
                row.update(self.money(name, getattr(figures, name)))
            row["status"] = figures.status
            row["not_available"] = figures.not_available
            rows.append(row)
        return rows

    def obligations(self, policy: Sequence[Event]) -> list[Row]:
        duties = book_obligations(self.covers.values(), policy, self.as_of, self.known_at)
        return [
            {"id": number, "kind": d.kind, "buyer": d.buyer, "due": d.due.isoformat(), "status": d.status}
            for number, d in enumerate(duties, 1)
        ]

    def turnover(self, sales: Sequence[BuyerSales], policy: Sequence[Event]) -> dict[str, list[Row]]:
        terms = self.report.terms
        found = declarations([e for e in policy if e.effective <= self.as_of], self.known_at)
        rows: list[Row] = []
        excluded: list[Row] = []
        for period, first, last in policy_periods(terms):
            if first > self.as_of:
                break
            counted_to = min(last, self.as_of)
            figures = turnover_by_country(sales, first, counted_to)
            declared = {country: events[-1].amount for (p, country), events in found.items() if p == period}
            for country in sorted(set(figures) | set(declared)):
                bucket = figures.get(country)
                insurable = bucket.insurable if bucket else 0
                reasons = {r: a for r, a in bucket.excluded.items() if a} if bucket else {}
                amount = declared.get(country)
                rows.append({
                    "period": period, "country": country, "first_day": first.isoformat(),
                    "last_day": counted_to.isoformat(), "complete": int(last <= self.as_of),
                    **self.money("insurable", insurable), **self.money("excluded", sum(reasons.values())),
                    **self.money("declared", amount),
                    **self.money("difference", None if amount is None else amount - insurable),
                })
                excluded += [
                    {"period": period, "country": country, "reason": reason, **self.money("amount", value)}
                    for reason, value in reasons.items()
                ]
        return {"turnover": rows, "turnover_excluded": excluded}

    def premium_lines(self, lines: Sequence[PremiumLine]) -> list[Row]:
        rows: list[Row] = []
        for line in lines:
            if line.day > self.as_of:
                continue
            rows.append({
                "id": len(rows) + 1, "date": line.day.isoformat(), "kind": line.kind, "account": ACCOUNT[line.kind],
                "period": line.period, "country": line.country, "buyer": line.buyer,
                **self.money("basis", line.basis or None), "rate": str(line.rate) if line.rate else None,
                **self.money("amount", line.amount), **self.money("tax", line.tax),
                **self.money("total", line.amount + line.tax),
            })
        return rows

    def claims(self, register: Sequence[Claim]) -> dict[str, list[Row]]:
        claims: list[Row] = []
        invoices: list[Row] = []
        applied: list[Row] = []
        steps: list[Row] = []
        shares: list[Row] = []
        for claim in register:
            if claim.status == "none":
                continue
            claims.append({
                "buyer": claim.buyer, "status": claim.status,
                "loss_date": claim.loss_date.isoformat() if claim.loss_date else None,
                "cause": claim.cause, "loss_event_id": claim.loss_event,
                "filing_due": claim.filing_due.isoformat() if claim.filing_due else None,
                "filed": claim.filed.isoformat() if claim.filed else None,
                **{k: v for name in ("insured_loss", "indemnity", "retained", "indemnity_paid", "recovered",
                                     "insurer_recovery", "insured_recovery", "insurer_net_loss", "insured_net_loss")
                   for k, v in self.money(name, getattr(claim, name)).items()},
            })
            for line in claim.invoices:
                money = self.report.terms.currency
                invoices.append({
                    "buyer": claim.buyer, "invoice": line.invoice, **self.money("cap", line.cap),
                    **self.money("balance", line.balance), **self.money("insured", line.insured),
                    "cap_rule": None if line.not_insured is not None else (
                        f"min(amount {format_minor(line.amount, money)}, limit {format_minor(line.entry.limit, money)}"
                        f" + top-up {format_minor(line.entry.top_up, money)} - insured outstanding "
                        f"{format_minor(line.entry.insured_outstanding, money)} at entry)"),
                    "not_insured": why_not_insured(line.not_insured, line.cap), "cover_lost": line.cover_lost,
                })
                parts = [("credit_note", line.credit_notes), ("payment", line.payments),
                         ("recovery", line.recoveries), ("after_first_indemnity", line.after_indemnity)]
                for kind, found in parts:
                    for event_id, amount in found:
                        applied.append({"id": len(applied) + 1, "buyer": claim.buyer, "invoice": line.invoice,
                                        "kind": kind, "event_id": event_id, **self.money("amount", amount)})
            for number, step in enumerate(claim.steps, 1):
                steps.append({
                    "buyer": claim.buyer, "step": number, "name": step.name, **self.money("before", step.before),
                    **self.money("after", step.after), "rule": step.rule,
                    "events": msgspec.json.encode(list(step.events)).decode(),
                })
            for event_id, day, amount, insurer, insured in claim.recovery_shares:
                shares.append({"event_id": event_id, "buyer": claim.buyer, "date": day.isoformat(),
                               **self.money("amount", amount), **self.money("insurer", insurer),
                               **self.money("insured", insured)})
        return {"claims": claims, "claim_invoices": invoices, "claim_applied": applied, "claim_steps": steps,
                "claim_recovery_shares": shares}


# ---------------------------------------------------------------- writing

def _refuse_existing(target: Path, force: bool, field: str) -> None:
    if target.exists() and not force:
        raise LedgerError(f"{target} already exists; an export never replaces a file without --force", field=field)


def _usual_mode(path: Path, mode: int) -> None:
    """The permissions of any new file or folder of the user (the umask), not the
    private ones of a temporary file: a report is made to be shared."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(mode & ~umask)


def _ledger_files(ledger: Ledger) -> set[Path]:
    """The files of a SQLite ledger (an export must never replace them)."""
    if Location.parse(ledger.location).kind != "sqlite":
        return set()
    path = Path(ledger.location).resolve()
    return {path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")}


def write_sqlite(report: Report, target: Path, *, force: bool = False) -> dict[str, int]:
    """Write the report to the SQLite file `target`; returns the rows per table.

    Built in a temporary file beside the target and renamed over it only when
    complete and its foreign keys check clean: a failed export leaves nothing.
    """
    target = Path(target)
    if target.resolve() in _ledger_files(report.ledger):
        raise LedgerError(f"{target} is the ledger itself; export to another file", field="sqlite")
    if target.is_dir():
        raise LedgerError(f"{target} is a folder; --sqlite takes a file name (--csv takes a folder)", field="sqlite")
    if not target.parent.is_dir():
        raise LedgerError(f"{target.parent} is not a folder", field="sqlite")
    _refuse_existing(target, force, "sqlite")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        _usual_mode(temporary, 0o666)
        written = _fill_sqlite(report, temporary)
        with open(temporary, "rb") as built:
            os.fsync(built.fileno())  # the rename must not publish a file the disk does not hold yet
        _refuse_existing(target, force, "sqlite")  # created by someone else meanwhile
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return written


def _fill_sqlite(report: Report, path: Path) -> dict[str, int]:
    db = sqlite_utils.Database(path)
    try:
        # A throw-away file until renamed: no journal, no syncs (the file is synced once, at the end).
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        deferred = []
        for table in TABLES:
            keys = []
            for columns_, other, other_columns in table.foreign_keys:
                if db[other].exists():
                    keys.append((columns_[0], other, other_columns[0]) if len(columns_) == 1
                                else (columns_, other, other_columns))
                else:
                    assert len(columns_) == 1, "a deferred foreign key must be a single column"
                    deferred.append((table.name, columns_[0], other, other_columns[0]))
            db[table.name].create(  # type: ignore[union-attr]
                {c.name: c.type for c in table.columns}, pk=table.pk[0] if len(table.pk) == 1 else table.pk,
                foreign_keys=keys, not_null=table.pk,
            )
            for unique in table.unique:  # composite foreign keys need them before the tables that point here
                db[table.name].create_index(unique, unique=True)  # type: ignore[union-attr]
        db.add_foreign_keys(deferred)
        written: dict[str, int] = {}
        for table in TABLES:
            rows = list(report.rows(table.name, written)) if table.name != "events" else report.rows("events", written)
            counted = _Counted(rows)
            db[table.name].insert_all(counted, batch_size=2000)  # type: ignore[union-attr]
            written[table.name] = counted.count
            for index in table.indexes:
                db[table.name].create_index(index)  # type: ignore[union-attr]
        db.index_foreign_keys()
        broken = db.execute("PRAGMA foreign_key_check").fetchall()
        if broken:  # a bug, not bad input: say where, and leave nothing behind
            raise LedgerError(f"internal: the export breaks a foreign key ({broken[0]}); nothing was written",
                              field="sqlite")
        db.conn.commit()
        return written
    finally:
        db.close()


class _Counted:
    """An iterable of rows that counts what went through it."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[Row]:
        for row in self.rows:
            self.count += 1
            yield row


def csv_name(table: str) -> str:
    return f"{table}.csv"


def write_csv(report: Report, directory: Path, *, force: bool = False) -> dict[str, int]:
    """Write one CSV file per table into `directory` (created if missing); returns the rows per table.

    The files are written into a temporary folder beside it and moved in only
    when all are complete; files of an earlier export are replaced only with
    `force`; other files in the folder are left alone.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise LedgerError(f"{directory} is a file; --csv takes a folder", field="csv")
    if not directory.parent.is_dir():
        raise LedgerError(f"{directory.parent} is not a folder", field="csv")
    names = [csv_name(table.name) for table in TABLES]
    if directory.is_dir() and not force:
        present = [name for name in names if (directory / name).exists()]
        if present:
            raise LedgerError(f"{directory / present[0]} already exists; an export never replaces a file without "
                              "--force", field="csv")
    temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent))
    try:
        _usual_mode(temporary, 0o777)
        written: dict[str, int] = {}
        for table in TABLES:
            with open(temporary / csv_name(table.name), "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=table.column_names, lineterminator="\n")
                writer.writeheader()
                count = 0
                for row in report.rows(table.name, written):
                    writer.writerow(safe_row(row))
                    count += 1
                handle.flush()
                os.fsync(handle.fileno())
            written[table.name] = count
        if not directory.exists():
            os.replace(temporary, directory)
        else:
            for name in names:
                os.replace(temporary / name, directory / name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return written
