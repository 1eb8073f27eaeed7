"""The web view: server-rendered pages for the credit team (Jinja2 templates in
ledger/web/templates/, a stylesheet and a little script in ledger/web/static/).

Every figure on a page is a query's answer (`ledger.queries.registry.run_query`) shown as it
is, for the `as_of` and `known_at` of the URL, so a page is a link an auditor can send.
The app (ledger/web/app.py) mounts `ROUTES` with `TEMPLATES` and provides the open ledger as
the dependency `ledger`. The handlers run on the event loop's thread (`sync_to_thread=True`):
a ledger's read-model cache is a SQLite connection that must stay on the thread that opened it.
"""

from __future__ import annotations

import datetime
import itertools
import typing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import jinja2
import msgspec
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from ledger.adapters.charts import exposure_series, sample_days
from ledger.queries import answers
from ledger.queries.book import cover_of
from ledger.queries.registry import run_query
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import to_public
from ledger.vocabulary.money import format_minor
from ledger.web.svgchart import exposure_chart
from ledger.web.viewing import Footer, When, buyer_directory, footer, grouped, one_pass, run_verify, words

HERE = Path(__file__).parent
STATUSES = ("claim", "insolvent", "on_stop", "overdue", "closed", "active")  # most serious first
BOOK_COLUMNS = ("buyer", "name", "country", "status", "outstanding", "overdue", "insured", "limit", "headroom",
                "available")
MONEY_COLUMNS = {"outstanding", "overdue", "insured", "limit", "headroom", "available"}
LOSS_EVENTS = {"overdue_reported", "insolvency", "claim_filed", "indemnity_paid"}  # the buyer page links the claim
LIMIT_EVENTS = ["limit_requested", "limit_granted", "limit_reduced", "limit_cancelled", "top_up_purchased"]
EVENT_FIELDS_SHOWN_APART = {"type", "effective", "recorded", "id", "buyer", "key"}

TheLedger = NamedDependency[Ledger]  # the open ledger, which the app provides as `ledger`
Given = FromQuery[str | None]  # a field of the query string; absent or blank, the default


def _page(name: str, ledger: Ledger, when: When | None, **context: Any) -> Template:
    """A page with what every page shows: the policy, the time pickers and the verify footer."""
    terms = ledger.terms()
    return Template(template_name=name, context={
        "policy": terms.id, "insured": terms.insured, "currency": terms.currency,
        "when": when, "footer": footer(ledger), **context,
    })


# ---------------------------------------------------------------- the book

@get("/", name="book", sync_to_thread=True)
def book_page(
    ledger: TheLedger, as_of: Given = None, known_at: Given = None, status: Given = None,
    country: Given = None, q: Given = None, sort: FromQuery[str] = "buyer", order: FromQuery[str] = "asc",
) -> Template:
    """Every buyer's exposure, filtered by status, country and a search of name or id, sorted by a column."""
    when = When.read(ledger, as_of, known_at)
    book = run_query("exposure", ledger, when.arguments())
    assert isinstance(book, answers.BookExposure)
    rows = [BookRow.of(row) for row in book.buyers]
    countries = sorted({row.country for row in rows if row.country})
    search = (q or "").strip().casefold()
    shown = [row for row in rows
             if (not status or row.status == status) and (not country or row.country == country)
             and (not search or search in row.buyer.casefold() or search in row.name.casefold())]
    sort = sort if sort in BOOK_COLUMNS else "buyer"
    shown.sort(key=lambda row: _sort_key(row, sort), reverse=order == "desc")
    return _page("book.html", ledger, when, book=book, rows=shown, total=len(rows), statuses=STATUSES,
                 countries=countries, status=status or "", country=country or "", q=q or "", sort=sort,
                 order="desc" if order == "desc" else "asc",
                 columns=list(BOOK_COLUMNS))


@dataclass(frozen=True)
class BookRow:
    """A row of the book: the buyer's name, country and exposure figures as the exposure query answers them."""

    buyer: str
    name: str
    country: str
    status: str
    outstanding: str
    overdue: str
    insured: str
    limit: str
    headroom: str
    available: str
    not_available: str  # why a delivery today would not be insured at all ("" when it would)

    @classmethod
    def of(cls, row: answers.BuyerExposure) -> BookRow:
        return cls(row.buyer, row.name, row.country, row.status, row.outstanding, row.overdue, row.insured,
                   row.limit, row.headroom, row.available, row.not_available or "")


def _sort_key(row: BookRow, column: str) -> tuple[int, Decimal | int | str]:
    """Money by amount (an absent figure first), status by seriousness, text as text."""
    value = getattr(row, column)
    if column in MONEY_COLUMNS:
        return (0, Decimal("-Infinity")) if value is None else (1, Decimal(value))
    if column == "status":
        return (1, STATUSES.index(value) if value in STATUSES else len(STATUSES))
    return (1, str(value).casefold())


# ---------------------------------------------------------------- the diff of two known_at

@get("/diff", name="diff", sync_to_thread=True)
def diff_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None,
              from_: Annotated[str | None, QueryParameter(name="from")] = None, to: Given = None) -> Template:
    """The book on `as_of` as known at two recorded times (`from`, `to`): what changed, and the late events why."""
    when = When.read(ledger, as_of, known_at)
    diff = None
    if (from_ or "").strip() and (to or "").strip():
        diff = run_query("exposure_diff", ledger, {"as_of": when.as_of, "known_at": [from_, to]})
    directory = buyer_directory(ledger, None)
    return _page("diff.html", ledger, when, diff=diff, from_=from_ or "", to=to or "", directory=directory,
                 public=_event_fields)


# ---------------------------------------------------------------- one buyer

@get("/buyers/{buyer:str}", name="buyer", sync_to_thread=True)
def buyer_page(ledger: TheLedger, buyer: FromPath[str], as_of: Given = None, known_at: Given = None) -> Template:
    """One buyer: figures, exposure chart, limit history, invoices with their caps, and its events."""
    when = When.read(ledger, as_of, known_at)
    figures = run_query("exposure", ledger, when.arguments(buyer=buyer))
    directory = buyer_directory(ledger, when.known_at)
    registered = directory.get(buyer)
    currency = ledger.terms().currency
    first = registered.effective if registered and registered.effective < when.as_of else ledger.terms().start
    first = min(max(first, when.as_of - datetime.timedelta(days=731)), when.as_of)  # two years at most
    series = exposure_series(ledger, buyer, sample_days(first, when.as_of), when.known_at)
    cover = cover_of(ledger, buyer, when.as_of, when.known_at)
    invoices = [
        {"invoice": name, "event": invoice.balance.event_id, "issued": invoice.balance.issued,
         "due": invoice.balance.due, "amount": format_minor(invoice.balance.amount, currency),
         "balance": format_minor(invoice.balance.balance, currency), "cap": format_minor(invoice.cap, currency),
         "insured": format_minor(invoice.insured(when.as_of), currency), "not_insured": invoice.not_insured,
         "lost": f"{invoice.lost_reason}, uninsured from {invoice.lost_from}"
         if invoice.lost_from is not None and invoice.lost_from <= when.as_of else None,
         "capped": invoice.cap < invoice.balance.amount, "entry_top_up": invoice.entry.top_up > 0,
         "entry": {name: format_minor(getattr(invoice.entry, name), currency)
                   for name in ("limit", "top_up", "insured_outstanding")},
         "decision": invoice.decision}
        for name, invoice in cover.invoices.items()
    ]
    events = ledger.log(buyer=buyer, known_at=when.known_at)
    positions = ledger.positions(str(event.id) for event in events)
    shown = [{"position": positions.get(str(event.id)), "later": event.effective > when.as_of,
              **_event_fields(to_public(event, currency))} for event in events]
    limits = [row for row in shown if row["type"] in LIMIT_EVENTS]
    losses = [row for row in shown if row["type"] in LOSS_EVENTS and not row["later"]]
    return _page("buyer.html", ledger, when, buyer=buyer, registered=registered, figures=figures,
                 chart=exposure_chart(series, currency, buyer), invoices=invoices, events=shown, limits=limits,
                 losses=losses)


def _event_fields(public: dict[str, Any]) -> dict[str, Any]:
    """An event's public form split into what every event has and its own fields (`details`)."""
    details = {name: "yes" if value is True else value for name, value in public.items()
               if name not in EVENT_FIELDS_SHOWN_APART and value is not False}  # a flag shows only when set
    return {**{name: public.get(name) for name in EVENT_FIELDS_SHOWN_APART}, "details": details}


# ---------------------------------------------------------------- obligations, claims

@get("/obligations", name="obligations", sync_to_thread=True)
def obligations_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None) -> Template:
    """Every duty, the missed ones first, then the pending, then the met, each by due date."""
    when = When.read(ledger, as_of, known_at)
    answer = run_query("obligations", ledger, when.arguments())
    assert isinstance(answer, answers.Obligations)
    rank = {"missed": 0, "pending": 1, "met": 2}
    duties = sorted(answer.obligations, key=lambda duty: rank[duty.status])  # stable: due order kept
    groups = [(status, list(rows)) for status, rows in itertools.groupby(duties, key=lambda duty: duty.status)]
    return _page("obligations.html", ledger, when, groups=groups, directory=buyer_directory(ledger, when.known_at))


@get("/claims", name="claims", sync_to_thread=True)
def claims_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None) -> Template:
    """The claims register: the buyers with a loss, in loss-date order."""
    when = When.read(ledger, as_of, known_at)
    register = run_query("claims", ledger, when.arguments())
    return _page("claims.html", ledger, when, register=register, directory=buyer_directory(ledger, when.known_at))


@get("/claims/{buyer:str}", name="claim", sync_to_thread=True)
def claim_page(ledger: TheLedger, buyer: FromPath[str], as_of: Given = None, known_at: Given = None) -> Template:
    """One claim as an audit trail: each step from the insured loss to the indemnity with its rule
    and the events behind it; every invoice with its cap; the deadlines; the recoveries."""
    when = When.read(ledger, as_of, known_at)
    claim = run_query("claim", ledger, when.arguments(buyer=buyer, explain=True))
    currency = ledger.terms().currency
    labels = {str(event.id): _event_label(to_public(event, currency))
              for event in ledger.log(buyer=buyer, known_at=when.known_at)}
    return _page("claim.html", ledger, when, buyer=buyer, claim=claim, labels=labels,
                 registered=buyer_directory(ledger, when.known_at).get(buyer))


def _event_label(public: dict[str, Any]) -> str:
    """An event named in a few words, for the links of an audit trail: its type, invoice, amount and date."""
    parts = [words(str(public["type"]))]
    if "invoice" in public:
        parts.append(str(public["invoice"]))
    if "amount" in public:
        parts.append(grouped(public["amount"]))
    return f"{' '.join(parts)} of {public['effective']}"


# ---------------------------------------------------------------- premium and turnover

@get("/premium", name="premium", sync_to_thread=True)
def premium_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None) -> Template:
    """The premium account: the totals by kind, then every line grouped by kind and period."""
    when = When.read(ledger, as_of, known_at)
    account = run_query("premium", ledger, when.arguments(lines=True))
    assert isinstance(account, answers.Premium)
    lines = account.lines if isinstance(account.lines, tuple) else ()
    kinds = list(typing.get_args(answers.LineKind))

    def period_of(line: answers.PremiumLine) -> str:
        """The declaration period of a turnover premium line; the month of any other line."""
        return line.period if isinstance(line.period, str) else line.date[:7]

    ordered = sorted(lines, key=lambda line: (kinds.index(line.kind), period_of(line), line.date))
    groups = []
    for kind, of_kind in itertools.groupby(ordered, key=lambda line: line.kind):
        rows = list(of_kind)
        columns = [name for name in ("country", "buyer", "basis", "rate")
                   if any(isinstance(getattr(line, name), str) for line in rows)]
        periods = [(period, list(lines)) for period, lines in itertools.groupby(rows, key=period_of)]
        groups.append({"kind": kind, "total": KIND_TOTALS.get(kind), "count": len(rows), "columns": columns,
                       "periods": periods})
    return _page("premium.html", ledger, when, account=account, groups=groups)


# The premium answer's total of each kind of line, where it has one of its own.
KIND_TOTALS = {"premium": "premium", "adjustment": "adjustment", "investigation_fee": "investigation_fees",
               "monitoring_fee": "monitoring_fees"}


@get("/turnover", name="turnover", sync_to_thread=True)
def turnover_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None,
                  period: Given = None) -> Template:
    """Insurable and declared turnover of each quarter of the policy, and of one period by country."""
    when = When.read(ledger, as_of, known_at)
    terms = ledger.terms()
    quarters = _quarters(terms.start, terms.end)
    chosen = (period or "").strip() or _quarter_of(min(max(when.as_of, terms.start), terms.end))
    known = {} if when.known_at is None else {"known_at": when.known_at}
    reader = one_pass(ledger)  # eleven queries or so, each reading the whole log: read it once
    by_period = [run_query("turnover", reader, {"period": quarter, **known}) for quarter in quarters]
    total = run_query("turnover", reader, {"period": chosen, **known})
    declaration = run_query("declaration", reader, {"period": chosen, **known})
    assert isinstance(declaration, answers.Declaration)
    countries = sorted({row.country for row in declaration.countries}
                       | {b.country for b in buyer_directory(ledger, when.known_at).values()})
    by_country = [run_query("turnover", reader, {"period": chosen, "country": country, **known})
                  for country in countries]
    shown = [*by_period, total, *by_country]
    reasons = [reason for reason in typing.get_args(answers.ExclusionReason)  # the columns not all zero
               if any(Decimal(row.excluded.get(reason, "0")) for row in shown if isinstance(row, answers.Turnover))]
    return _page("turnover.html", ledger, when, period=chosen, quarters=quarters, by_period=by_period,
                 total=total, by_country=by_country, reasons=reasons)


def _quarter_of(day: datetime.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _quarters(start: datetime.date, end: datetime.date) -> list[str]:
    """The calendar quarters the policy period touches, in order."""
    quarters, day = [], start
    while day <= end:
        if _quarter_of(day) not in quarters:
            quarters.append(_quarter_of(day))
        day = (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
    return quarters


# ---------------------------------------------------------------- verify

@get("/verify", name="verify", sync_to_thread=True)
def verify_page(ledger: TheLedger, as_of: Given = None, known_at: Given = None) -> Template:
    """Run verify now: the hash chain and the read models, each finding, and the head to keep."""
    when = When.read(ledger, as_of, known_at)
    verified = run_verify(ledger)
    return _page("verify.html", ledger, when, verified=verified)


# ---------------------------------------------------------------- refusals

def refused(request: Request[Any, Any, Any], problem: LedgerError) -> Response[str]:
    """A bad argument or an unknown buyer: the CLI's one line, on a page (400, or 404 for a buyer)."""
    status = 404 if problem.field == "buyer" else 400
    engine = request.app.template_engine
    assert engine is not None
    page = engine.get_template("error.html").render(
        message=str(problem), status=status, when=None, footer=Footer(0, None), policy="", insured="", currency="")
    return Response(page, status_code=status, media_type="text/html")


def _environment() -> jinja2.Environment:
    """Autoescape everywhere (every text a user recorded is escaped); an unknown name fails."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["money"] = grouped
    environment.globals["words"] = words
    environment.globals["unset"] = msgspec.UNSET
    return environment


TEMPLATES = TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))

ROUTES = [
    Router(
        path="/",
        route_handlers=[book_page, diff_page, buyer_page, obligations_page, claims_page, claim_page, premium_page,
                        turnover_page, verify_page],
        exception_handlers={LedgerError: refused},
        include_in_schema=False,
    ),
    create_static_files_router(path="/static", directories=[HERE / "static"], name="web-static"),
]
