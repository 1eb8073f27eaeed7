"""The queries of SPEC 9, by name, for the CLI and the scenario runner.

Each query takes the ledger and its arguments (`buyer`, `as_of`, `known_at`,
`period`, `country`) and returns its values as strings, money as decimal
strings. Loading events is done here; the figures come from the pure folds
in `projections`.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from ledger.queries.reading import LedgerReader
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import (
    BuyerEvent,
    BuyerRegistered,
    Event,
    Insolvency,
    OverdueReported,
    PoliticalEvent,
    TopUpPurchased,
)
from ledger.vocabulary.money import format_minor
from ledger.vocabulary.order import known_at as recorded_by
from ledger.vocabulary.terms import PolicyTerms
from projections.claims import Claim, claim_for, claims_register
from projections.cover import BuyerCover, Obligation, buyer_cover
from projections.exposure import EXPOSURE_FIGURES, Exposure, book_totals, declaration_duties
from projections.lines import PremiumLine
from projections.premium import fee_lines, maximum_liability, minimum_premium, premium_lines, summarise
from projections.terms import TermsTimeline
from projections.turnover import (
    BuyerSales,
    buyer_sales,
    clipped_period,
    declarations,
    declared_amount,
    period_turnover,
    turnover_by_country,
)

Query = Callable[[LedgerReader, Mapping[str, Any]], Mapping[str, Any]]

# The queries SPEC 9 names; the ones not yet in QUERIES are reported as such.
SPEC_QUERIES = ("exposure", "turnover", "premium", "claim", "obligations")


def run_query(name: str, ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """Answer query `name`, or refuse saying it does not exist (yet)."""
    query = QUERIES.get(name)
    if query is None:
        if name in SPEC_QUERIES:
            raise LedgerError(f"query {name!r} is not implemented yet", field="query")
        raise LedgerError(f"{name!r} is not a query (one of {', '.join(SPEC_QUERIES)})", field="query")
    return query(ledger, arguments)


# ---------------------------------------------------------------- arguments

def day_argument(value: Any, field: str) -> datetime.date:
    """A date given as a date, a timestamp (its day) or ISO text."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise LedgerError(f"{value!r} is not a date (write 2025-03-31)", field=field) from None


def as_of_argument(arguments: Mapping[str, Any], today: datetime.date) -> datetime.date:
    """`as_of` as a date (default: today)."""
    value = arguments.get("as_of")
    return today if value is None else day_argument(value, "as_of")


def moment_argument(value: Any, field: str) -> datetime.datetime:
    """A UTC timestamp; a bare date means the end of that day, a naive time is UTC."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value, datetime.time(23, 59, 59, 999999, tzinfo=datetime.UTC))
    moment: datetime.datetime
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value)
        if len(text) == 10:
            return moment_argument(day_argument(text, field), field)
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LedgerError(f"{text!r} is not a timestamp (write 2025-03-10T09:00:00Z)", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise LedgerError(f"{moment} is out of range", field=field) from None


def period_argument(value: Any) -> str:
    """A declaration period name: 2025, 2025-Q1 or 2025-03."""
    period = str(value or "")
    if not re.fullmatch(r"(19|2\d)\d\d(-Q[1-4]|-(0[1-9]|1[0-2]))?", period):  # years as in events.Period
        raise LedgerError(f"{period!r} is not a period such as 2025, 2025-Q1 or 2025-03", field="period")
    return period


def known_at_argument(arguments: Mapping[str, Any]) -> datetime.datetime | None:
    """`known_at` (default: now, i.e. everything recorded)."""
    value = arguments.get("known_at")
    return None if value is None else moment_argument(value, "known_at")


# ---------------------------------------------------------------- cover

def cover_of(
    ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None
) -> BuyerCover:
    """One buyer's cover state, folded from its stream and the policy's."""
    cover = buyer_cover(buyer, ledger.buyer_events(buyer), ledger.policy_events(), as_of, known_at)
    if cover.registered is None:
        raise _not_registered(buyer, as_of, known_at)
    return cover


def _not_registered(buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> LedgerError:
    when = f" as known at {known_at.isoformat()}" if known_at else ""
    return LedgerError(f"{buyer} is not a registered buyer on {as_of}{when}", field="buyer")


def book_covers(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> list[BuyerCover]:
    """Every buyer's cover state, in buyer order."""
    policy = ledger.policy_events()
    covers = []
    for buyer in ledger.buyers():
        cover = buyer_cover(buyer, ledger.buyer_events(buyer), policy, as_of, known_at)
        if cover.registered is not None:  # a buyer registered later is not in the book yet
            covers.append(cover)
    return covers


def buyer_exposure(ledger: LedgerReader, buyer: str, as_of: datetime.date, known_at: datetime.datetime | None) -> Exposure:
    """One buyer's exposure: from the read model when nothing recorded after `known_at` reaches
    back to `as_of`, else folded from the events known then."""
    model = ledger.exposure_model
    if known_at is None or model.unchanged_since(known_at, as_of)(buyer):
        exposure = model.buyer_on(buyer, as_of)
        if exposure is None:
            raise _not_registered(buyer, as_of, known_at)
        return exposure
    return Exposure.of(cover_of(ledger, buyer, as_of, known_at))


def book_exposures(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None,
    streams: Callable[[str], list[Event]] | None = None,
) -> list[tuple[str, Exposure]]:
    """Every registered buyer's exposure, in buyer order: the read model's, refolding only
    the buyers with something recorded after `known_at` that reaches back to `as_of`.

    `streams` reads a buyer's events for those refolds (default `ledger.buyer_events`): a
    caller asking about many dates passes a cached reader, to read each stream once."""
    model = ledger.exposure_model
    known_now = model.book_on(as_of)
    if known_at is None:
        return known_now
    unchanged = model.unchanged_since(known_at, as_of)
    stored = dict(known_now)
    policy = ledger.policy_events()
    rows = []
    for buyer in ledger.buyers():
        if unchanged(buyer):
            if buyer in stored:
                rows.append((buyer, stored[buyer]))
            continue
        cover = buyer_cover(buyer, (streams or ledger.buyer_events)(buyer), policy, as_of, known_at)
        if cover.registered is not None:
            rows.append((buyer, Exposure.of(cover)))
    return rows


def exposure_values(exposure: Exposure, currency: str) -> dict[str, str]:
    """SPEC 6.5 figures as decimal strings, and the status."""
    values = {name: format_minor(getattr(exposure, name), currency) for name in EXPOSURE_FIGURES}
    values["status"] = exposure.status
    return values


def exposure_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """`exposure` for one buyer, or for the book: totals plus one row per buyer."""
    currency = ledger.terms().currency
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    buyer = arguments.get("buyer")
    if buyer is not None:
        return {"buyer": buyer, **exposure_values(buyer_exposure(ledger, str(buyer), as_of, known_at), currency)}
    rows = book_exposures(ledger, as_of, known_at)
    totals = book_totals(row for _, row in rows)
    return {
        **{name: format_minor(value, currency) for name, value in totals.items()},
        "buyers": [{"buyer": name, **exposure_values(row, currency)} for name, row in rows],
    }


def obligation_values(obligation: Obligation) -> dict[str, str]:
    values = {"kind": obligation.kind, "due": obligation.due.isoformat(), "status": obligation.status}
    if obligation.buyer is not None:
        values["buyer"] = obligation.buyer
    return values


def obligations_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obligations`: each duty with its due date and status, by due date (SPEC 6.3)."""
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    buyer = arguments.get("buyer")
    if buyer is not None:
        duties = list(cover_of(ledger, str(buyer), as_of, known_at).obligations)
    else:
        duties = [duty for cover in book_covers(ledger, as_of, known_at) for duty in cover.obligations]
        duties += declaration_duties(ledger.policy_events(), as_of, known_at)
    duties.sort(key=lambda d: (d.due, d.kind, d.buyer or ""))
    return {"obligations": [obligation_values(duty) for duty in duties]}


# ---------------------------------------------------------------- turnover and premium

def book_events(ledger: LedgerReader) -> tuple[list[Event], dict[str, list[Event]]]:
    """The policy stream and every buyer's stream (in buyer order), from one pass over the log:
    a stream's events lie scattered through the file, the log is read in order."""
    policy: list[Event] = []
    buyers: dict[str, list[Event]] = {}
    for event in ledger.events():
        if isinstance(event, BuyerEvent):
            buyers.setdefault(event.buyer, []).append(event)
        else:
            policy.append(event)
    return policy, dict(sorted(buyers.items()))


def book_sales(
    buyers: Mapping[str, list[Event]], terms: TermsTimeline, known_at: datetime.datetime | None
) -> list[BuyerSales]:
    """Each buyer's sales as known at `known_at` (buyers with none left out)."""
    found = (buyer_sales(events, terms, known_at) for events in buyers.values())
    return [sales for sales in found if sales is not None]


def turnover_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """`turnover`: insurable, declared and excluded (by reason) for a period and country (SPEC 7.1)."""
    period = period_argument(arguments.get("period"))
    country = arguments.get("country")
    known_at = known_at_argument(arguments)
    currency = ledger.terms().currency
    policy, buyers = book_events(ledger)
    terms = TermsTimeline(recorded_by(policy, known_at))
    figures = period_turnover(book_sales(buyers, terms, known_at), period, terms.latest(), country)
    declared = declared_amount(declarations(policy, known_at), period, country)
    values: dict[str, Any] = {
        "period": period,
        "insurable": format_minor(figures.insurable, currency),
        "declared": "" if declared is None else format_minor(declared, currency),
        "excluded": {reason: format_minor(amount, currency) for reason, amount in figures.excluded.items()},
    }
    if country is not None:
        values["country"] = country
    if declared is not None and declared != figures.insurable:
        values["finding"] = (
            f"declared {format_minor(declared, currency)} differs from the computed "
            f"{format_minor(figures.insurable, currency)} by {format_minor(declared - figures.insurable, currency)}"
        )
    return values


def declaration_rows(ledger: LedgerReader, period: str, known_at: datetime.datetime | None) -> dict[str, int]:
    """Insurable turnover of `period` by buyer country, every stream read once (for `declare`)."""
    policy, buyers = book_events(ledger)
    terms = TermsTimeline(recorded_by(policy, known_at))
    first, last = clipped_period(period, terms.latest())
    figures = turnover_by_country(book_sales(buyers, terms, known_at), first, last)
    return {country: figures[country].insurable for country in sorted(figures)}


def premium_account(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> tuple[PolicyTerms, list[PremiumLine]]:
    """Every premium, fee and top-up line of the policy, as known at `known_at`."""
    policy, buyers = book_events(ledger)
    timeline = TermsTimeline(recorded_by(policy, known_at))
    if not timeline:
        raise LedgerError("the ledger has no policy yet")
    terms = timeline.at(as_of)
    sales = book_sales(buyers, timeline, known_at)
    return terms, account_lines(
        terms, sales, policy, buyers, known_at, lambda buyer, events: buyer_cover(buyer, events, policy, as_of, known_at)
    )


def account_lines(
    terms: PolicyTerms,
    sales: list[BuyerSales],
    policy: list[Event],
    buyers: Mapping[str, list[Event]],
    known_at: datetime.datetime | None,
    cover: Callable[[str, list[Event]], BuyerCover | None],
) -> list[PremiumLine]:
    """The premium account's lines in date order: premium and adjustments from the sales and
    declarations, fees, and the top-up lines of the buyers that bought one (`cover` gives a
    buyer's cover, or None when it is not in the book)."""
    lines = premium_lines(terms, sales, declarations(policy, known_at))
    lines += fee_lines(terms, buyers.values(), known_at)
    for buyer, events in buyers.items():
        if any(isinstance(e, TopUpPurchased) for e in events):
            found = cover(buyer, events)
            if found is not None:
                lines += found.premium_lines
    lines.sort(key=lambda line: (line.day, line.kind, line.buyer or "", line.period or "", line.country or ""))
    return lines


def line_values(line: PremiumLine, currency: str) -> dict[str, str]:
    values = {"date": line.day.isoformat(), "kind": line.kind, "amount": format_minor(line.amount, currency),
              "tax": format_minor(line.tax, currency)}
    for name in ("period", "country", "buyer"):
        if getattr(line, name):
            values[name] = getattr(line, name)
    if line.basis:
        values["basis"] = format_minor(line.basis, currency)
    if line.rate:
        values["rate"] = str(line.rate)
    return values


def premium_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """`premium`: what was invoiced up to as_of, by kind, with tax and total (SPEC 7.2 to 7.4, 9)."""
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    terms, lines = premium_account(ledger, as_of, known_at)
    currency = terms.currency
    values: dict[str, Any] = {name: format_minor(amount, currency) for name, amount in summarise(lines, as_of).items()}
    values["minimum"] = format_minor(minimum_premium(terms), currency)
    cap = maximum_liability(terms, lines, as_of)
    values["max_liability"] = "" if cap is None else format_minor(cap, currency)
    values["lines"] = [line_values(line, currency) for line in lines if line.day <= as_of]
    return values


# ---------------------------------------------------------------- claims

def claims_of(ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None) -> list[Claim]:
    """The claims register of the book at `as_of` (every stream read once)."""
    policy, buyers = book_events(ledger)
    timeline = TermsTimeline(recorded_by(policy, known_at))
    if not timeline:
        raise LedgerError("the ledger has no policy yet")
    terms = timeline.at(as_of)
    political = {e.country for e in policy if isinstance(e, PoliticalEvent)}
    covers = [
        buyer_cover(buyer, events, policy, as_of, known_at) if _may_lose(events, political)
        else _registered(buyer, events, as_of, known_at)
        for buyer, events in buyers.items()
    ]
    covers = [cover for cover in covers if cover.registered is not None]
    premium = premium_lines(terms, book_sales(buyers, timeline, known_at), declarations(policy, known_at))
    causes = [str(c.loss_event.id) for c in covers if c.loss_event is not None]
    positions = ledger.positions(causes) if causes else {}
    return claims_register(covers, timeline, maximum_liability(terms, premium, as_of), as_of, positions)


def _may_lose(events: list[Event], political_countries: set[str]) -> bool:
    """Whether a buyer's stream can hold a loss (SPEC 8.1): an insolvency, an overdue report
    (protracted default), or a political event in its country. The others answer `none`
    without a fold of their cover."""
    for event in events:
        if isinstance(event, (Insolvency, OverdueReported)):
            return True
        if isinstance(event, BuyerRegistered) and event.country in political_countries:
            return True
    return False


def _registered(buyer: str, events: list[Event], as_of: datetime.date, known_at: datetime.datetime | None) -> BuyerCover:
    """The cover of a buyer with no loss possible: only whether it is in the book."""
    known = [e for e in recorded_by(events, known_at) if isinstance(e, BuyerRegistered) and e.effective <= as_of]
    return BuyerCover(buyer=buyer, as_of=as_of, registered=known[0] if known else None)


def claim_values(claim: Claim, currency: str) -> dict[str, Any]:
    """SPEC 9 `claim` values: money as decimal strings, empty loss_date and cause before a loss."""
    money = functools.partial(format_minor, currency=currency)
    return {
        "buyer": claim.buyer,
        "loss_date": claim.loss_date.isoformat() if claim.loss_date else "",
        "cause": claim.cause,
        "insured_loss": money(claim.insured_loss), "indemnity": money(claim.indemnity),
        "retained": money(claim.retained), "recovered": money(claim.recovered),
        "insurer_recovery": money(claim.insurer_recovery), "insured_recovery": money(claim.insured_recovery),
        "indemnity_paid": money(claim.indemnity_paid),
        "insurer_net_loss": money(claim.insurer_net_loss), "insured_net_loss": money(claim.insured_net_loss),
        "status": claim.status,
    }


def explanation(claim: Claim, currency: str) -> dict[str, Any]:
    """The whole computation as data: invoices, deadlines, steps, recoveries, each naming its events."""
    money = functools.partial(format_minor, currency=currency)
    return {
        **claim_values(claim, currency),
        "loss_event": claim.loss_event,
        "filing_due": claim.filing_due.isoformat() if claim.filing_due else "",
        "filed": claim.filed.isoformat() if claim.filed else "",
        "invoices": [
            {
                "invoice": line.invoice, "event": line.event, "issued": line.issued.isoformat(),
                "delivered": line.delivered.isoformat(), "due": line.due.isoformat(), "amount": money(line.amount),
                "limit_decision": {"event": line.limit_event, "date": line.limit_date.isoformat(),
                                   "limit": money(line.limit)} if line.limit_event and line.limit_date else None,
                "cap": money(line.cap), "not_insured": line.not_insured, "cover_lost": line.cover_lost,
                "cap_rule": (f"min(amount {money(line.amount)}, limit {money(line.entry.limit)} + top-up "
                             f"{money(line.entry.top_up)} - insured outstanding {money(line.entry.insured_outstanding)} at entry)")
                if line.not_insured is None else "",
                "credit_notes": [{"event": e, "amount": money(a)} for e, a in line.credit_notes],
                "payments": [{"event": e, "amount": money(a)} for e, a in line.payments],
                "recoveries": [{"event": e, "amount": money(a)} for e, a in line.recoveries],
                "after_first_indemnity": [{"event": e, "amount": money(a)} for e, a in line.after_indemnity],
                "balance": money(line.balance), "insured": money(line.insured),
            }
            for line in claim.invoices
        ],
        "deadlines": [{"kind": kind, "due": due.isoformat(), "status": status} for kind, due, status in claim.deadlines],
        "steps": [
            {"step": step.name, "before": money(step.before), "after": money(step.after), "rule": step.rule,
             "events": list(step.events)}
            for step in claim.steps
        ],
        "recovery_shares": [
            {"event": event, "date": day.isoformat(), "amount": money(amount), "insurer": money(insurer),
             "insured": money(insured)}
            for event, day, amount, insurer, insured in claim.recovery_shares
        ],
    }


def claim_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """`claim` for one buyer (SPEC 8, 9); with `explain`, the whole computation."""
    buyer = arguments.get("buyer")
    if buyer is None:
        raise LedgerError("the claim query needs a buyer", field="buyer")
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    currency = ledger.terms().currency
    register = claims_of(ledger, as_of, known_at)
    claim = claim_for(register, str(buyer))
    if claim.loss_date is None and not any(c.buyer == buyer for c in register):
        raise LedgerError(f"{buyer} is not a registered buyer on {as_of}", field="buyer")
    if arguments.get("explain"):
        return explanation(claim, currency)
    return claim_values(claim, currency)


QUERIES: dict[str, Query] = {
    "claim": claim_query,
    "exposure": exposure_query,
    "obligations": obligations_query,
    "turnover": turnover_query,
    "premium": premium_query,
}
