"""The `creditledger` command line (Typer for parsing and help, Rich for output).

Every command exits non-zero with one line naming the file, line, field and
rule on bad input; none prints a traceback. Commands that print data take
`--json`.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from ledger.cli_chart import chart_app
from ledger.cli_common import DbOption, JsonOption, caught_up, err, out, shown_location
from ledger.cli_common import open_ledger as _open
from ledger.cli_common import progress_bar as _progress
from ledger.cli_copy import copy as copy_command
from ledger.cli_export import register as register_export
from ledger.errors import LedgerError
from ledger.events import EVENT_TYPES, format_recorded, to_public
from ledger.importers import read_event_file
from ledger.money import format_minor
from ledger.policy import PolicyTerms, load_policy_file, parse_policy, terms_to_table
from ledger.queries import day_argument, known_at_argument
from ledger.service import Ledger, Outcome
from ledger.store import ledger_exists

DEFAULT_DB = "ledger.db"
SHOW_SKIPPED = 10  # a re-import can skip a million events; list a few, count the rest

app = typer.Typer(
    help="An event-sourced ledger for trade-credit-insurance receivables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(help="Load and show the ledger's policy.", no_args_is_help=True)
scenario_app = typer.Typer(help="Run scenario files (SPEC 10).", no_args_is_help=True)
sample_app = typer.Typer(help="Generate a seeded sample book.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(scenario_app, name="scenario")
app.add_typer(sample_app, name="sample")
register_export(app)
app.add_typer(chart_app, name="chart")
app.command("copy")(copy_command)

# Piped output keeps whole figures: Rich would otherwise cut tables at 80 columns.




def _date(value: str | None, name: str) -> datetime.date | None:
    return None if value is None else day_argument(value, name)


def _print_json(data: Any) -> None:
    sys.stdout.write(msgspec.json.encode(data).decode() + "\n")


def _report(outcome: Outcome, *, as_json: bool) -> None:
    if as_json:
        _print_json({
            "recorded": [str(e.id) for e in outcome.recorded],
            "skipped": [{"key": d.event.key, "earlier": earlier} for d, earlier in outcome.skipped],
            "warnings": outcome.warnings,
        })
        return
    for warning in outcome.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    for draft, earlier in outcome.skipped[:SHOW_SKIPPED]:
        where = f"{draft.source}:{draft.line}: " if draft.source and draft.line else ""
        err.print(f"{where}skipped: key {draft.event.key or draft.event.id} is already recorded (event {earlier})")
    if len(outcome.skipped) > SHOW_SKIPPED:
        err.print(f"... and {len(outcome.skipped) - SHOW_SKIPPED} more skipped (--json lists them all)")
    out.print(f"recorded {len(outcome.recorded)} events, skipped {len(outcome.skipped)} already recorded")


# ---------------------------------------------------------------- commands

@app.command()
def init(db: DbOption = DEFAULT_DB) -> None:
    """Create an empty ledger (a SQLite file by default)."""
    if ledger_exists(db):
        raise LedgerError(f"there is already a ledger at {shown_location(db)}; a ledger is never overwritten", field="db")
    with _open(db, create=True) as ledger:
        out.print(f"created an empty ledger at {shown_location(ledger.location)}; next: creditledger policy load FILE")


@policy_app.command("load")
def policy_load(
    file: Annotated[Path, typer.Argument(help="A policy document: TOML with a [policy] table (SPEC 4).")],
    effective: Annotated[
        str | None, typer.Option(help="For an amendment: the date it takes effect (default today).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Start the ledger's policy from FILE, or amend it if one is loaded."""
    terms = load_policy_file(file)
    with _open(db) as ledger:
        outcome = ledger.load_policy(terms, effective=_date(effective, "effective"))
        _report(outcome, as_json=as_json)
        if not as_json:
            event = outcome.recorded[0]
            out.print(f"{event.type} {terms.id} effective {event.effective}")


@policy_app.command("show")
def policy_show(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Print the policy terms in force, with defaults filled in."""
    with _open(db) as ledger:
        table = terms_to_table(ledger.terms())
    if as_json:
        _print_json(table)
        return
    grid = Table(show_header=False, box=None)
    for name, value in table.items():
        grid.add_row(name, json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
    out.print(grid)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def append(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="An event type of SPEC 5, e.g. invoice_issued.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Record one event: creditledger append TYPE --field value ...

    Example: creditledger append payment_received --effective 2025-03-01
    --buyer B1 --amount 1500.00 --invoice INV-7 --key PAY-991
    """
    raw: dict[str, Any] = {"type": event_type}
    args = list(ctx.args)
    while args:
        name = args.pop(0)
        if not name.startswith("--") or len(name) < 3:
            raise LedgerError(f"expected --field value, got {name!r}", field="append")
        name = name[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif args and not args[0].startswith("--"):
            value = args.pop(0)
        else:
            value = "true"  # a bare flag, e.g. --prepaid
        raw[name.replace("-", "_")] = value
    if event_type not in EVENT_TYPES:
        raise LedgerError(f"{event_type!r} is not an event type ({', '.join(EVENT_TYPES)})", field="type")
    raw.setdefault("effective", datetime.date.today().isoformat())
    with _open(db) as ledger:
        _report(ledger.append(raw), as_json=as_json)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Events as TOML ([[events]] as in a scenario), JSON Lines or CSV.")],
    keep_recorded: Annotated[
        bool, typer.Option("--keep-recorded", help="Keep the file's recorded stamps (a historical ledger).")
    ] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="toml, jsonl or csv (default: from the name).")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Record every event of FILE in one transaction: all of them or none.

    Events whose key is already recorded are skipped and listed, so running
    the same import twice records nothing the second time.
    """
    with _open(db) as ledger:
        source = read_event_file(file, fmt)
        rows = list(source.events)
        terms = _file_policy(ledger, source.policy, source.source) if source.policy is not None else None
        if not source.events and terms is None:
            raise LedgerError("has no events", source=source.source)
        with _progress(len(rows), "checking") as advance:
            drafts = ledger.parse(rows, source.source, currency=terms.currency if terms else None)
            if terms is not None and not ledger.has_policy():
                drafts.insert(0, ledger.starting_draft(terms, drafts, source.source))
            outcome = ledger.record(drafts, keep_recorded=keep_recorded, progress=advance)
        _report(outcome, as_json=as_json)


def _file_policy(ledger: Ledger, table: dict[str, Any], source: str) -> PolicyTerms:
    """A file's [policy]: it starts the ledger's policy, or must match it."""
    try:
        terms = parse_policy(table)
    except LedgerError as problem:
        raise problem.located(source=source) from None
    if ledger.has_policy() and ledger.terms() != terms:
        raise LedgerError(
            "the file's [policy] differs from the ledger's; amend it with `creditledger policy load`", source=source
        )
    return terms


@app.command()
def log(
    buyer: Annotated[str | None, typer.Option(help="Only this buyer's events.")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Only events of this type (repeatable).")] = None,
    effective_from: Annotated[str | None, typer.Option("--from", help="Effective on or after this date.")] = None,
    effective_to: Annotated[str | None, typer.Option("--to", help="Effective on or before this date.")] = None,
    known_at: Annotated[
        str | None, typer.Option(help="Only what was recorded by then (timestamp, or a date: its end).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many events.", min=1, max=10**9)] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """List events in recorded order, both time axes shown."""
    for name in event_type or []:
        if name not in EVENT_TYPES:
            raise LedgerError(f"{name!r} is not an event type", field="type")
    with _open(db) as ledger:
        currency = ledger.terms().currency if ledger.has_policy() else "XXX"
        events = ledger.log(
            buyer=buyer, types=event_type or (),
            effective_from=_date(effective_from, "from"), effective_to=_date(effective_to, "to"),
            known_at=known_at_argument({"known_at": known_at}), limit=limit,
        )
    public = [to_public(e, currency) for e in events]
    if as_json:
        _print_json(public)
        return
    table = Table("recorded", "effective", "type", "buyer", "details", "key")
    for event in public:
        details = ", ".join(
            f"{k}={v}" for k, v in event.items()
            if k not in ("type", "id", "recorded", "effective", "buyer", "key", "terms")
        )
        if "terms" in event:
            details = f"policy {event['terms']['id']}"
        table.add_row(event["recorded"], str(event["effective"]), event["type"], event.get("buyer", ""),
                      details, event.get("key", ""))
    out.print(table)
    out.print(f"{len(public)} events")


@app.command()
def summary(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Counts and totals of the whole ledger: events by type, buyers, money in and out."""
    with _open(db) as ledger:
        terms = ledger.terms()
        counts: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        countries: Counter[str] = Counter()
        first = last = None
        for event in ledger.events():
            counts[event.type] += 1
            amount = getattr(event, "amount", None)
            if isinstance(amount, int):
                totals[event.type] += amount
            if event.type == "buyer_registered":
                countries[event.country] += 1  # type: ignore[attr-defined]
            first = event.recorded if first is None else first
            last = event.recorded
    money = {name: format_minor(value, terms.currency) for name, value in sorted(totals.items())}
    data: dict[str, Any] = {
        "policy": terms.id, "insured": terms.insured, "currency": terms.currency,
        "period": [terms.start.isoformat(), terms.end.isoformat()],
        "events": sum(counts.values()), "by_type": dict(sorted(counts.items())),
        "buyers_by_country": dict(sorted(countries.items())), "amounts": money,
        "recorded_from": format_recorded(first) if first else None,
        "recorded_to": format_recorded(last) if last else None,
    }
    if as_json:
        _print_json(data)
        return
    out.print(f"[bold]{terms.id}[/] {terms.insured} ({terms.currency}), {terms.start} to {terms.end}")
    out.print(f"{data['events']} events; buyers by country: "
              + ", ".join(f"{c} {n}" for c, n in data["buyers_by_country"].items()))
    table = Table("event type", "count", f"amount ({terms.currency})")
    for name, count in data["by_type"].items():
        table.add_row(name, str(count), money.get(name, ""))
    out.print(table)


AsOfOption = Annotated[str | None, typer.Option("--as-of", help="The effective date (default today).")]


@app.command()
def exposure(
    buyer: Annotated[str | None, typer.Option(help="One buyer (default: the whole book).")] = None,
    as_of: AsOfOption = None,
    known_at: Annotated[
        list[str] | None,
        typer.Option(help="As the ledger knew it then (timestamp, or a date: its end). Twice with --diff."),
    ] = None,
    diff: Annotated[bool, typer.Option("--diff", help="What changed between two --known-at, and why.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Exposure per buyer and for the book (SPEC 6.5): outstanding, insured, limit, headroom, status."""
    from ledger.queries import exposure_query

    moments = known_at or []
    with _open(db) as ledger:
        caught_up(ledger)
        if diff:
            if len(moments) != 2:
                raise LedgerError("--diff needs two --known-at", field="known_at")
            _exposure_diff(ledger, buyer, as_of, moments, as_json)
            return
        if len(moments) > 1:
            raise LedgerError("give one --known-at (two only with --diff)", field="known_at")
        arguments = {"buyer": buyer, "as_of": as_of, "known_at": moments[0] if moments else None}
        answer = exposure_query(ledger, arguments)
    if as_json:
        _print_json(answer)
        return
    rows = [answer] if buyer else answer["buyers"]
    table = Table("buyer", title=f"Exposure as of {as_of or 'today'}")
    for name in EXPOSURE_COLUMNS:
        table.add_column(name, justify="right")
    table.add_column("status")
    for row in rows:
        table.add_row(row["buyer"], *(row[name] for name in EXPOSURE_COLUMNS), row["status"])
    if not buyer:
        table.add_section()
        table.add_row("[bold]book[/]", *(answer[name] for name in EXPOSURE_COLUMNS), "")
    out.print(table)


EXPOSURE_COLUMNS = ("outstanding", "overdue", "insured", "uninsured", "limit", "top_up", "headroom")


def _exposure_diff(ledger: Ledger, buyer: str | None, as_of: str | None, moments: list[str], as_json: bool) -> None:
    """The same as_of seen at two recorded times: changed figures, and the late events behind them."""
    from ledger.queries import as_of_argument, exposure_query, known_at_argument

    day = as_of_argument({"as_of": as_of}, ledger.clock().date())
    early, late = sorted(known_at_argument({"known_at": m}) for m in moments)  # type: ignore[type-var]
    assert early is not None and late is not None
    before = exposure_query(ledger, {"buyer": buyer, "as_of": day, "known_at": early})
    after = exposure_query(ledger, {"buyer": buyer, "as_of": day, "known_at": late})
    rows_before = {r["buyer"]: r for r in ([before] if buyer else before["buyers"])}
    rows_after = {r["buyer"]: r for r in ([after] if buyer else after["buyers"])}
    currency = ledger.terms().currency
    late_events = [
        e for e in ledger.log(buyer=buyer, effective_to=day, known_at=late)
        if e.recorded > early
    ]
    changes = []
    for name in sorted(set(rows_before) | set(rows_after)):
        old, new = rows_before.get(name, {}), rows_after.get(name, {})
        changed = {
            field: {"before": old.get(field), "after": new.get(field)}
            for field in (*EXPOSURE_COLUMNS, "status") if old.get(field) != new.get(field)
        }
        if changed:
            because = [to_public(e, currency) for e in late_events if getattr(e, "buyer", None) == name]
            changes.append({"buyer": name, "changed": changed, "because": because})
    data = {"as_of": day.isoformat(), "known_at": [format_recorded(early), format_recorded(late)], "changes": changes,
            "late_events": len(late_events)}
    if as_json:
        _print_json(data)
        return
    out.print(f"Exposure as of {day}: known at {early.isoformat()} vs {late.isoformat()}")
    out.print(f"{len(late_events)} events effective by {day} were recorded in between; {len(changes)} buyers changed")
    for change in changes:
        out.print(f"[bold]{change['buyer']}[/]")
        for field, values in change["changed"].items():
            out.print(f"  {field}: {values['before']} -> {values['after']}")
        for event in change["because"]:
            out.print(f"  because: {event['type']} effective {event['effective']} recorded {event['recorded']}"
                      + (f" key {event['key']}" if event.get("key") else ""))


@app.command()
def obligations(
    buyer: Annotated[str | None, typer.Option(help="One buyer's duties (default: all, and the policy's).")] = None,
    as_of: AsOfOption = None,
    known_at: Annotated[str | None, typer.Option(help="As the ledger knew it then.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only pending duties.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Duties with deadlines (SPEC 6.3): report_overdue, file_claim, declare_turnover; pending, met or missed."""
    from ledger.queries import obligations_query

    with _open(db) as ledger:
        duties = obligations_query(ledger, {"buyer": buyer, "as_of": as_of, "known_at": known_at})["obligations"]
    if open_only:
        duties = [d for d in duties if d["status"] == "pending"]
    if as_json:
        _print_json(duties)
        return
    table = Table("due", "kind", "buyer", "status", title=f"Obligations as of {as_of or 'today'}")
    for duty in duties:
        colour = {"missed": "red", "pending": "yellow"}.get(duty["status"], "green")
        table.add_row(duty["due"], duty["kind"], duty.get("buyer", ""), f"[{colour}]{duty['status']}[/]")
    out.print(table)


PeriodOption = Annotated[str, typer.Option(help="A declaration period: 2025, 2025-Q1 or 2025-03.")]
KnownAtOption = Annotated[str | None, typer.Option(help="As the ledger knew it then (timestamp, or a date: its end).")]


@app.command()
def turnover(
    period: PeriodOption,
    country: Annotated[str | None, typer.Option(help="One country (default: all).")] = None,
    known_at: KnownAtOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Insurable turnover of a period (SPEC 7.1), the declared figure, and every exclusion by reason."""
    from ledger.queries import turnover_query

    with _open(db) as ledger:
        answer = turnover_query(ledger, {"period": period, "country": country, "known_at": known_at})
    if as_json:
        _print_json(answer)
        return
    where = f" {country}" if country else ", all countries"
    table = Table("", "amount", title=f"Turnover {period}{where}")
    table.columns[1].justify = "right"
    table.add_row("[bold]insurable[/]", answer["insurable"])
    table.add_row("declared", answer["declared"] or "(none)")
    table.add_section()
    for reason, amount in answer["excluded"].items():
        table.add_row(f"excluded: {reason.replace('_', ' ')}", amount)
    out.print(table)
    if "finding" in answer:
        out.print(f"[yellow]audit finding:[/] {answer['finding']}")


@app.command()
def premium(
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    lines: Annotated[bool, typer.Option("--lines", help="Every invoice line: date, kind, period, basis, rate, amount, tax.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The premium account (SPEC 7.2 to 7.4): premium, adjustment, fees, top-up and tax invoiced up to --as-of."""
    from ledger.queries import premium_query

    with _open(db) as ledger:
        answer = dict(premium_query(ledger, {"as_of": as_of, "known_at": known_at}))
    if not lines:
        answer.pop("lines")
    if as_json:
        _print_json(answer)
        return
    if lines:
        table = Table("date", "kind", "period", "country", "buyer", "basis", "rate", "amount", "tax")
        for column in table.columns[5:]:
            column.justify = "right"
        for line in answer["lines"]:
            table.add_row(line["date"], line["kind"], line.get("period", ""), line.get("country", ""),
                          line.get("buyer", ""), line.get("basis", ""), line.get("rate", ""), line["amount"], line["tax"])
        out.print(table)
    summary_table = Table("", "amount", title=f"Premium account as of {as_of or 'today'}")
    summary_table.columns[1].justify = "right"
    for name in ("premium", "adjustment", "investigation_fees", "monitoring_fees", "top_up", "tax"):
        summary_table.add_row(name.replace("_", " "), answer[name])
    summary_table.add_section()
    summary_table.add_row("[bold]total[/]", answer["total"])
    summary_table.add_row("minimum premium", answer["minimum"])
    summary_table.add_row("maximum liability", answer["max_liability"] or "(none)")
    out.print(summary_table)


@app.command()
def declare(
    period: PeriodOption,
    known_at: KnownAtOption = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Print the turnover declaration of a period, by country, as CSV ready to send to the insurer."""
    import csv

    from ledger.csvsafe import safe_cell
    from ledger.queries import declaration_rows, period_argument

    with _open(db) as ledger:
        rows = declaration_rows(ledger, period_argument(period), known_at_argument({"known_at": known_at}))
        terms = ledger.terms()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["policy", "period", "country", "currency", "insurable_turnover"])
    for country, amount in rows.items():
        cells = [terms.id, period, country, terms.currency, format_minor(amount, terms.currency)]
        writer.writerow([safe_cell(cell) for cell in cells])  # a policy id `=...` stays text in a spreadsheet


@app.command()
def claim(
    buyer: Annotated[str, typer.Argument(help="The buyer whose claim to compute.")],
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    explain: Annotated[bool, typer.Option("--explain", help="The whole computation, as an auditor reads it.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """A buyer's claim (SPEC 8): loss, insured loss, indemnity, recoveries; --explain shows every step."""
    from ledger.queries import claim_query

    with _open(db) as ledger:
        answer = claim_query(ledger, {"buyer": buyer, "as_of": as_of, "known_at": known_at, "explain": explain})
    if as_json:
        _print_json(answer)
        return
    if explain:
        _print_explanation(dict(answer))
        return
    table = Table("", "", title=f"Claim of {buyer} as of {as_of or 'today'}", show_header=False)
    for name, value in answer.items():
        table.add_row(name.replace("_", " "), str(value))
    out.print(table)


def _print_explanation(claim: dict[str, Any]) -> None:
    """The explanation as text: invoices, deadlines, then each step with its amounts and events."""
    out.print(f"[bold]Claim of {claim['buyer']}[/]: status {claim['status']}")
    if not claim["loss_date"]:
        out.print("no loss: nothing is claimable")
        return
    out.print(f"loss: {claim['cause']} on {claim['loss_date']} (event {claim['loss_event']})")
    if claim["filing_due"]:
        filed = claim["filed"] or "not filed"
        out.print(f"claim filing: due {claim['filing_due']}, filed: {filed}")
    shown = [line for line in claim["invoices"] if line["balance"] != "0.00" and not line["balance"].startswith("-")]
    settled = len(claim["invoices"]) - len(shown)
    out.print(f"[bold]invoices open at the loss[/] ({settled} issued before it were settled: see --json)")
    for line in shown:
        decision = line["limit_decision"]
        under = (f"limit {decision['limit']} decided {decision['date']} (event {decision['event']})"
                 if decision else "no limit decision")
        out.print(f"  {line['invoice']} (event {line['event']}): amount {line['amount']}, issued {line['issued']}, "
                  f"delivered {line['delivered']}, due {line['due']}")
        out.print(f"    insured under {under}; cap {line['cap']}"
                  + (f" = {line['cap_rule']}" if line["cap_rule"] else "")
                  + (f"; not insured: {line['not_insured']}" if line["not_insured"] else "")
                  + (f"; cover lost: {line['cover_lost']}" if line["cover_lost"] else ""))
        for kind, label in (("credit_notes", "credit note"), ("payments", "payment"), ("recoveries", "recovery")):
            for part in line[kind]:
                out.print(f"    {label}: {part['amount']} (event {part['event']})")
        for part in line["after_first_indemnity"]:
            out.print(f"    after the first indemnity, not in the insured loss: {part['amount']} (event {part['event']})")
        out.print(f"    balance {line['balance']}, insured part min(cap, balance) = {line['insured']}")
    if claim["deadlines"]:
        out.print("[bold]deadlines[/]")
        for deadline in claim["deadlines"]:
            out.print(f"  {deadline['kind']} due {deadline['due']}: {deadline['status']}")
    out.print("[bold]from insured loss to indemnity[/]")
    for step in claim["steps"]:
        events = f" (events: {', '.join(step['events'])})" if step["events"] else ""
        out.print(f"  {step['step']}: {step['before']} -> {step['after']}: {step['rule']}{events}", markup=False)
    out.print(f"[bold]indemnity {claim['indemnity']}[/], retained by the insured {claim['retained']}, "
              f"paid so far {claim['indemnity_paid']}")
    for share in claim["recovery_shares"]:
        out.print(f"  recovery {share['amount']} on {share['date']} (event {share['event']}): "
                  f"insurer {share['insurer']}, insured {share['insured']}")
    if claim["recovery_shares"]:
        out.print(f"net loss: insurer {claim['insurer_net_loss']}, insured {claim['insured_net_loss']}")


@app.command()
def claims(
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The claims register of the book: every loss in loss-date order, with its indemnity."""
    from ledger.queries import as_of_argument, claim_values, claims_of

    with _open(db) as ledger:
        day = as_of_argument({"as_of": as_of}, ledger.clock().date())
        register = claims_of(ledger, day, known_at_argument({"known_at": known_at}))
        currency = ledger.terms().currency
    rows = [claim_values(c, currency) for c in register if c.loss_date is not None]
    if as_json:
        _print_json(rows)
        return
    table = Table("buyer", "loss date", "cause", "insured loss", "indemnity", "retained", "paid", "status",
                  title=f"Claims register as of {day}")
    for column in table.columns[3:7]:
        column.justify = "right"
    for row in rows:
        table.add_row(row["buyer"], row["loss_date"], row["cause"], row["insured_loss"], row["indemnity"],
                      row["retained"], row["indemnity_paid"], row["status"])
    out.print(table)


@scenario_app.command("run")
def scenario_run(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files, or folders of them.")],
    as_json: JsonOption = False,
) -> None:
    """Fold each scenario on an in-memory ledger and check its expectations.

    Prints one line per failed expectation and closes with `N passed, N failed`.
    """
    from ledger.scenario import run_scenario, scenario_files

    files = scenario_files(paths)
    results = []
    for path in files:
        try:
            results.append(run_scenario(path))
        except LedgerError as problem:
            from ledger.scenario import ScenarioResult

            result = ScenarioResult(str(path), path.stem)
            if problem.source == str(path):  # name the file and line once, in front, like every failure
                result.fail(problem.line, str(LedgerError(problem.message, field=problem.field)))
            else:
                result.fail(None, str(problem))
            results.append(result)
    passed = sum(r.passed for r in results)
    failed = sum(len(r.failures) for r in results)
    if as_json:
        _print_json([{"path": r.path, "title": r.title, "passed": r.passed, "failures": r.failures} for r in results])
    else:
        for result in results:
            for failure in result.failures:
                out.print(failure, markup=False)
        out.print(f"{passed} passed, {failed} failed", markup=False)
    if failed:
        raise typer.Exit(1)


@sample_app.command("generate")
def sample_generate(
    file: Annotated[Path, typer.Argument(help="Where to write the book: .toml (with the policy) or .jsonl.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same book.")] = 7,
    buyers: Annotated[int, typer.Option(help="How many buyers.", min=1)] = 200,
    events: Annotated[int | None, typer.Option(help="About how many events (scales invoices).", min=100)] = None,
) -> None:
    """Write a realistic sample book: one policy, buyers in several countries, a year of trade."""
    from ledger import samplebook

    policy, book = samplebook.generate(seed=seed, buyers=buyers, events=events)
    if not file.parent.is_dir():
        raise LedgerError(f"{file.parent} is not a folder", source=str(file))
    if file.suffix == ".jsonl":
        samplebook.write_jsonl(file, book)
        policy_file = file.with_suffix(".policy.toml")
        samplebook.write_toml(policy_file, policy, [])
        out.print(f"wrote {len(book)} events to {file} and the policy to {policy_file}")
    else:
        samplebook.write_toml(file, policy, book)
        out.print(f"wrote the policy and {len(book)} events to {file}")


from ledger.cli_verify import verify as verify_command  # noqa: E402 (it uses the app's options above)

app.command("verify")(verify_command)


def main() -> None:
    """Entry point: run the app; a refusal is one line on stderr and exit 1."""
    try:
        app()
    except LedgerError as problem:
        err.print(f"error: {problem}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted; nothing more was recorded", markup=False)
        sys.exit(130)
    except OSError as problem:  # output to a full disk or a closed pipe, a file that cannot be written
        err.print(f"error: {problem.strerror or problem}", markup=False)
        sys.exit(1)
    except Exception as problem:  # the last guard: one line, never a traceback
        if os.environ.get("CREDITLEDGER_DEBUG"):
            raise
        err.print(f"error: internal: {type(problem).__name__}: {problem}", markup=False)
        sys.exit(3)


import ledger.cli_erp  # noqa: E402,F401  (registers import-erp on `app`)

if __name__ == "__main__":
    main()
