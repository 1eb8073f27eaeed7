"""The query commands: `summary`, `exposure`, `obligations`, `turnover`, `premium`, `declare`, `claim` and `claims`."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    app,
    caught_up,
    out,
    print_json,
)
from ledger.cli.common import open_ledger as _open
from ledger.queries import known_at_argument
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import format_recorded, to_public
from ledger.vocabulary.money import format_minor


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
        print_json(data)
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
        print_json(answer)
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
        print_json(data)
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
        print_json(duties)
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
        print_json(answer)
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
        print_json(answer)
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

    from ledger.adapters.csvsafe import safe_cell
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
        print_json(answer)
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
        print_json(rows)
        return
    table = Table("buyer", "loss date", "cause", "insured loss", "indemnity", "retained", "paid", "status",
                  title=f"Claims register as of {day}")
    for column in table.columns[3:7]:
        column.justify = "right"
    for row in rows:
        table.add_row(row["buyer"], row["loss_date"], row["cause"], row["insured_loss"], row["indemnity"],
                      row["retained"], row["indemnity_paid"], row["status"])
    out.print(table)
