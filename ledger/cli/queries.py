"""The query commands: `summary`, `exposure`, `obligations`, `turnover`, `premium`, `declare`, `claim` and `claims`.

Each asks its query (`ledger.queries`) and renders the typed answer: a table from its
attributes, or with `--json` the answer itself, encoded.
"""

from __future__ import annotations

import datetime
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.markup import escape
from rich.table import Table

from ledger.cli.common import DEFAULT_DB, DbOption, JsonOption, app, caught_up, err, optional_day, out, print_json
from ledger.cli.common import open_ledger as _open
from ledger.queries import answers
from ledger.queries.arguments import EXPOSURE_SORTS, EXPOSURE_STATUSES, LINE_GROUPS, LINE_KINDS, as_of_argument
from ledger.queries.claims import claim_query, claims_query
from ledger.queries.exposure import exposure_diff_query, exposure_query, rows_of
from ledger.queries.obligations import obligations_query
from ledger.queries.premium import premium_query
from ledger.queries.summary import summary_query
from ledger.queries.turnover import declaration_events, declaration_query, turnover_query
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import TurnoverDeclared
from ledger.vocabulary.money import format_minor
from ledger.write.pipeline import Outcome
from projections.exposure import EXPOSURE_FIGURES
from projections.premium import SUMMARY


def _shown(value: str | msgspec.UnsetType) -> str:
    """An optional field as a table shows it: blank when absent."""
    return "" if value is msgspec.UNSET else value


@app.command()
def summary(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Counts and totals of the whole ledger: events by type, buyers, money in and out."""
    with _open(db) as ledger:
        answer = summary_query(ledger, {})
    if as_json:
        print_json(answer)
        return
    start, end = answer.period
    out.print(f"[bold]{answer.policy}[/] {answer.insured} ({answer.currency}), {start} to {end}")
    out.print(f"{answer.events} events; buyers by country: "
              + ", ".join(f"{c} {n}" for c, n in answer.buyers_by_country.items()))
    table = Table("event type", "count", f"amount ({answer.currency})")
    for name, count in answer.by_type.items():
        table.add_row(name, str(count), answer.amounts.get(name, ""))
    out.print(table)
    out.print(f"head {answer.head.notification_id} {answer.head.hash}", markup=False)


AsOfOption = Annotated[str | None, typer.Option("--as-of", help="The effective date, YYYY-MM-DD (default today).")]


@app.command()
def exposure(
    buyer: Annotated[str | None, typer.Option(help="One buyer (default: the whole book).")] = None,
    as_of: AsOfOption = None,
    known_at: Annotated[
        list[str] | None,
        typer.Option(help="As the ledger knew it then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end). Twice with --diff."),
    ] = None,
    diff: Annotated[bool, typer.Option("--diff", help="What changed between two --known-at, and why.")] = False,
    status: Annotated[
        list[str] | None,
        typer.Option(help=f"Only buyers of this status; again for more ({', '.join(EXPOSURE_STATUSES)}).")
    ] = None,
    country: Annotated[
        list[str] | None, typer.Option(help="Only buyers in this country (ISO 3166 alpha-2, e.g. GB); again for more.")
    ] = None,
    sort: Annotated[str | None, typer.Option(
        help=f"Order of the rows: a figure, largest first, or name or buyer ({', '.join(EXPOSURE_SORTS)}; "
             "default buyer, or outstanding with --top).")] = None,
    top: Annotated[int | None, typer.Option(
        help="Only the first N rows (the totals stay those of every buyer chosen).")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Exposure per buyer and for the book: outstanding, insured, limit, headroom, status, and what a
    delivery today would be insured for (available; 0 with the reason why: on stop, insolvent, ...)."""
    moments = known_at or []
    with _open(db) as ledger:
        caught_up(ledger)
        if diff:  # the query refuses other than two --known-at
            changes = exposure_diff_query(ledger, {"buyer": buyer, "as_of": as_of, "known_at": moments})
        else:
            if len(moments) > 1:
                raise LedgerError("give one --known-at (two only with --diff)", field="known_at")
            answer = exposure_query(ledger, {
                "buyer": buyer, "as_of": as_of, "known_at": moments[0] if moments else None, "statuses": status,
                "countries": country, "sort": sort, "top": top,
            })
    if diff:
        _print_diff(changes, as_json)
        return
    if as_json:
        print_json(answer)
        return
    table = Table("buyer", "name", title=f"Exposure as of {as_of or 'today'}")
    for name in EXPOSURE_FIGURES:
        table.add_column(name, justify="right")
    table.add_column("status")
    table.add_column("not available")
    for row in rows_of(answer):
        table.add_row(row.buyer, escape(row.name), *(getattr(row, name) for name in EXPOSURE_FIGURES), row.status,
                      row.not_available.replace("_", " "))
    if isinstance(answer, answers.BookExposure):
        table.add_section()
        whole = "[bold]total[/]" if status or country else "[bold]book[/]"  # the book, or the buyers chosen
        table.add_row(whole, f"{answer.matched} buyers",
                      *(getattr(answer, name) for name in EXPOSURE_FIGURES), "", "")
    out.print(table)


def _print_diff(answer: answers.ExposureDiff, as_json: bool) -> None:
    """The same as_of seen at two recorded times: changed figures, and the late events behind them."""
    if as_json:
        print_json(answer)
        return
    early, late = (datetime.datetime.fromisoformat(moment).isoformat() for moment in answer.known_at)
    out.print(f"Exposure as of {answer.as_of}: known at {early} vs {late}")
    out.print(f"{answer.late_events} events effective by {answer.as_of} were recorded in between; "
              f"{len(answer.changes)} buyers changed")
    for change in answer.changes:
        out.print(f"[bold]{change.buyer}[/]")
        for field, values in change.changed.items():
            out.print(f"  {field}: {values.before} -> {values.after}")
        for event in change.because:
            out.print(f"  because: {event['type']} effective {event['effective']} recorded {event['recorded']}"
                      + (f" key {event['key']}" if event.get("key") else ""))


@app.command()
def obligations(
    buyer: Annotated[str | None, typer.Option(help="One buyer's duties (default: all, and the policy's).")] = None,
    as_of: AsOfOption = None,
    known_at: Annotated[str | None, typer.Option(help="As the ledger knew it then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only the duties to act on: missed (first) and pending.")] = False,
    due_within: Annotated[int | None, typer.Option(
        "--due-within", metavar="DAYS", help="Only duties due by --as-of + DAYS (missed ones are past due: they stay).")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Duties with deadlines: report_overdue, file_claim, declare_turnover; missed (listed first: they cost
    cover), pending or met."""
    with _open(db) as ledger:
        arguments = {"buyer": buyer, "as_of": as_of, "known_at": known_at, "open": open_only, "due_within": due_within}
        duties = obligations_query(ledger, arguments).obligations
    if as_json:
        print_json(duties)  # the answer's list alone (docs/json.md)
        return
    table = Table("due", "kind", "buyer", "status", title=f"Obligations as of {as_of or 'today'}")
    for duty in duties:
        colour = {"missed": "red", "pending": "yellow"}.get(duty.status, "green")
        table.add_row(duty.due, duty.kind, _shown(duty.buyer), f"[{colour}]{duty.status}[/]")
    out.print(table)


PeriodOption = Annotated[str, typer.Option(help="A declaration period: 2025, 2025-Q1 or 2025-03.")]
KnownAtOption = Annotated[str | None, typer.Option(help="As the ledger knew it then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end).")]


@app.command()
def turnover(
    period: PeriodOption,
    country: Annotated[str | None, typer.Option(help="One country (default: all).")] = None,
    known_at: KnownAtOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Insurable turnover of a period, the declared figure, and every exclusion by reason."""
    with _open(db) as ledger:
        if known_at is None:  # an earlier known_at is folded from the log
            caught_up(ledger, ledger.book_model)
        answer = turnover_query(ledger, {"period": period, "country": country, "known_at": known_at})
    if as_json:
        print_json(answer)
        return
    where = f" {country}" if country else ", all countries"
    table = Table("", "amount", title=f"Turnover {period}{where}")
    table.columns[1].justify = "right"
    table.add_row("[bold]insurable[/]", answer.insurable)
    table.add_row("declared", answer.declared or "(none)")
    table.add_section()
    for reason, amount in answer.excluded.items():
        table.add_row(f"excluded: {reason.replace('_', ' ')}", amount)
    out.print(table)
    if answer.finding is not msgspec.UNSET:
        out.print(f"[yellow]audit finding:[/] {answer.finding}")


@app.command()
def premium(
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    lines: Annotated[bool, typer.Option("--lines", help="Every invoice line: date, kind, period, basis, rate, amount, tax.")] = False,
    kind: Annotated[list[str] | None, typer.Option(
        help=f"Only lines of this kind; again for more ({', '.join(LINE_KINDS)}).")] = None,
    period: Annotated[str | None, typer.Option(
        help="Only lines billing a period inside this one: 2025, 2025-Q1 or 2025-03 (a fee: by its date).")] = None,
    by: Annotated[str | None, typer.Option(
        help=f"Sum the lines chosen by {', '.join(LINE_GROUPS)}: one row each.")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The premium account: premium, adjustment, fees, top-up and tax invoiced up to --as-of; its lines
    with --lines, summed by kind, period or buyer with --by (--kind and --period choose the lines)."""
    with _open(db) as ledger:
        if known_at is None:  # an earlier known_at is folded from the log
            caught_up(ledger, ledger.book_model)
        answer = premium_query(ledger, {"as_of": as_of, "known_at": known_at, "lines": lines, "kind": kind,
                                        "period": period, "by": by})
    if as_json:
        print_json(answer)
        return
    if answer.lines is not msgspec.UNSET:
        table = Table("date", "kind", "period", "country", "buyer", "basis", "rate", "amount", "tax")
        for column in table.columns[5:]:
            column.justify = "right"
        for line in answer.lines:
            table.add_row(line.date, line.kind, _shown(line.period), _shown(line.country), _shown(line.buyer),
                          _shown(line.basis), _shown(line.rate), line.amount, line.tax)
        out.print(table)
    if answer.groups is not msgspec.UNSET:
        groups = Table(by or "", "lines", "amount", "tax", title=f"Lines by {by}")
        for column in groups.columns[1:]:
            column.justify = "right"
        for group in answer.groups:
            groups.add_row(escape(group.key) or "(policy)", str(group.lines), group.amount, group.tax)
        out.print(groups)
    summary_table = Table("", "amount", title=f"Premium account as of {as_of or 'today'}")
    summary_table.columns[1].justify = "right"
    for name in SUMMARY[:-1]:  # the total after a line
        summary_table.add_row(name.replace("_", " "), getattr(answer, name))
    summary_table.add_section()
    summary_table.add_row("[bold]total[/]", answer.total)
    summary_table.add_row("minimum premium", answer.minimum)
    summary_table.add_row("maximum liability", answer.max_liability or "(none)")
    out.print(summary_table)


@app.command()
def declare(
    period: PeriodOption,
    known_at: KnownAtOption = None,
    record: Annotated[bool, typer.Option(
        "--record", help="Also record the declaration (one turnover_declared per country, keyed by period and "
        "country: running it again records nothing).")] = False,
    effective: Annotated[str | None, typer.Option(
        help="With --record: the day the declaration is made, YYYY-MM-DD (default today).")] = None,
    xlsx: Annotated[Path | None, typer.Option(
        "--xlsx", help="Write it to this spreadsheet (.xlsx) instead, the turnover as numbers in the policy "
        "currency's format.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --xlsx: replace the file if it exists.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Print the turnover declaration of a period, by country, as CSV ready to send to the insurer.

    With --record the ledger records it too, and says on stderr what it recorded.
    """
    import csv

    from ledger.adapters.csvsafe import safe_cell

    if effective is not None and not record:
        raise LedgerError("is only for --record", field="effective")
    if force and xlsx is None:
        raise LedgerError("is only for --xlsx", field="force")
    with _open(db) as ledger:
        if known_at is None:  # an earlier known_at is folded from the log
            caught_up(ledger, ledger.book_model)
        answer = declaration_query(ledger, {"period": period, "known_at": known_at})
        if xlsx is not None:  # before recording: a file that cannot be written leaves the ledger as it was
            from ledger.adapters.xlsx import declaration_sheet, write_xlsx  # openpyxl only when used

            write_xlsx([declaration_sheet(answer)], xlsx, answer.currency, force=force, field="xlsx")
        if record:
            day = optional_day(effective, "effective") or ledger.clock().date()
            outcome = ledger.record(ledger.parse([(None, raw) for raw in declaration_events(answer, day)]))
            _report_declaration(answer, outcome)
    if xlsx is not None:
        out.print(f"wrote the {answer.period} declaration ({len(answer.countries)} countries) to {xlsx}", markup=False)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["policy", "period", "country", "currency", "insurable_turnover"])
    for row in answer.countries:
        cells = [answer.policy, answer.period, row.country, answer.currency, row.insurable_turnover]
        writer.writerow([safe_cell(cell) for cell in cells])  # a policy id `=...` stays text in a spreadsheet


def _report_declaration(answer: answers.Declaration, outcome: Outcome) -> None:
    """What `declare --record` recorded and what it found recorded already, on stderr
    (stdout keeps the CSV whole)."""
    for event in outcome.recorded:
        assert isinstance(event, TurnoverDeclared)
        err.print(f"recorded turnover_declared {event.period} {event.country} "
                  f"{format_minor(event.amount, answer.currency)} {answer.currency} effective {event.effective} "
                  f"(key {event.key})", markup=False)
    for skipped in outcome.skipped:
        err.print(f"already recorded: key {skipped.draft.event.key} (event {skipped.earlier}); a corrected figure is "
                  "a new turnover_declared with its own key (creditledger append)", markup=False)
    for warning in outcome.warnings:
        err.print(f"warning: {warning}", markup=False)
    if not answer.countries:
        err.print(f"nothing recorded: no sales in {answer.period}", markup=False)


@app.command()
def claim(
    buyer: Annotated[str, typer.Argument(help="The buyer whose claim to compute.")],
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    explain: Annotated[bool, typer.Option("--explain", help="The whole computation, as an auditor reads it.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """A buyer's claim: loss, insured loss, indemnity, recoveries; --explain shows every step."""
    with _open(db) as ledger:
        if known_at is None:  # an earlier known_at is folded from the log
            caught_up(ledger, ledger.book_model)
        answer = claim_query(ledger, {"buyer": buyer, "as_of": as_of, "known_at": known_at, "explain": explain})
    if as_json:
        print_json(answer)
        return
    if isinstance(answer, answers.ClaimExplained):
        _print_explanation(answer)
        return
    table = Table("", "", title=f"Claim of {buyer} as of {as_of or 'today'}", show_header=False)
    for name in answer.__struct_fields__:
        table.add_row(name.replace("_", " "), str(getattr(answer, name)))
    out.print(table)


def _print_explanation(claim: answers.ClaimExplained) -> None:
    """The explanation as text: invoices, deadlines, then each step with its amounts and events."""
    out.print(f"[bold]Claim of {claim.buyer}[/]: status {claim.status}")
    if not claim.loss_date:
        out.print("no loss: nothing is claimable")
        return
    out.print(f"loss: {claim.cause} on {claim.loss_date} (event {claim.loss_event})")
    if claim.filing_due:
        filed = claim.filed or "not filed"
        out.print(f"claim filing: due {claim.filing_due}, filed: {filed}")
    open_lines = [line for line in claim.invoices if Decimal(line.balance) > 0]
    settled = [line for line in claim.invoices if Decimal(line.balance) <= 0]
    out.print(f"[bold]invoices in the insured loss[/]: {len(claim.invoices)} issued and delivered by the loss date, "
              f"{len(open_lines)} with a balance")
    for line in open_lines:
        _print_invoice(line)
    if settled:
        out.print(f"[bold]settled[/] (balance 0: nothing in the insured loss): {len(settled)}")
        for line in settled:
            _print_invoice(line)
    if claim.deadlines:
        out.print("[bold]deadlines[/]")
        for deadline in claim.deadlines:
            out.print(f"  {deadline.kind} due {deadline.due}: {deadline.status}")
    out.print("[bold]from insured loss to indemnity[/]")
    for step in claim.steps:
        events = f" (events: {', '.join(step.events)})" if step.events else ""
        out.print(f"  {step.step}: {step.before} -> {step.after}: {step.rule}{events}", markup=False)
    out.print(f"[bold]indemnity {claim.indemnity}[/], retained by the insured {claim.retained}, "
              f"paid so far {claim.indemnity_paid}")
    for share in claim.recovery_shares:
        out.print(f"  recovery {share.amount} on {share.date} (event {share.event}): "
                  f"insurer {share.insurer}, insured {share.insured}")
    if claim.recovery_shares:
        out.print(f"net loss: insurer {claim.insurer_net_loss}, insured {claim.insured_net_loss}")


def _print_invoice(line: answers.ClaimInvoice) -> None:
    """One invoice open at the loss: its cap and why, and every amount on it."""
    decision = line.limit_decision
    under = (f"limit {decision.limit} decided {decision.date} (event {decision.event})"
             if decision else "no limit decision")
    out.print(f"  {line.invoice} (event {line.event}): amount {line.amount}, issued {line.issued}, "
              f"delivered {line.delivered}, due {line.due}")
    out.print(f"    insured under {under}; cap {line.cap}"
              + (f" = {line.cap_rule}" if line.cap_rule else "")
              + (f"; not insured: {line.not_insured}" if line.not_insured else "")
              + (f"; cover lost: {line.cover_lost}" if line.cover_lost else ""))
    for parts, label in ((line.credit_notes, "credit note"), (line.payments, "payment"), (line.recoveries, "recovery")):
        for part in parts:
            out.print(f"    {label}: {part.amount} (event {part.event})")
    for part in line.after_first_indemnity:
        out.print(f"    after the first indemnity, not in the insured loss: {part.amount} (event {part.event})")
    out.print(f"    balance {line.balance}, insured part min(cap, balance) = {line.insured}")


@app.command()
def claims(
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The claims register of the book: every loss in loss-date order, with its indemnity."""
    with _open(db) as ledger:
        if known_at is None:  # an earlier known_at is folded from the log
            caught_up(ledger, ledger.book_model)
        day = as_of_argument({"as_of": as_of}, ledger.clock().date())
        register = claims_query(ledger, {"as_of": day, "known_at": known_at}).claims
    if as_json:
        print_json(register)  # the answer's list alone (docs/json.md)
        return
    table = Table("buyer", "loss date", "cause", "insured loss", "indemnity", "retained", "paid", "status",
                  title=f"Claims register as of {day}")
    for column in table.columns[3:7]:
        column.justify = "right"
    for row in register:
        table.add_row(row.buyer, row.loss_date, row.cause, row.insured_loss, row.indemnity,
                      row.retained, row.indemnity_paid, row.status)
    out.print(table)
