"""`creditledger init`, `policy`, `append`, `import` and `log`: making a ledger, recording events and reading them back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperCommand

from ledger.adapters.eventfiles import stream_event_file
from ledger.adapters.policyfile import load_policy_file
from ledger.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    app,
    optional_day,
    out,
    print_json,
    report_outcome,
    shown_location,
)
from ledger.cli.common import open_ledger as _open
from ledger.cli.common import progress_bar as _progress
from ledger.queries.arguments import known_at_argument
from ledger.service import Ledger, ledger_exists
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES, field_words, read_recorded, to_public
from ledger.vocabulary.terms import PolicyTerms, parse_policy, terms_to_table

policy_app = typer.Typer(rich_markup_mode=None, help="Load and show the ledger's policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@app.command()
def init(db: DbOption = DEFAULT_DB) -> None:
    """Create an empty ledger (a SQLite file by default)."""
    if ledger_exists(db):
        raise LedgerError(f"there is already a ledger at {shown_location(db)}; a ledger is never overwritten", field="db")
    with _open(db, create=True) as ledger:
        out.print(f"created an empty ledger at {shown_location(ledger.location)}; next: creditledger policy load FILE")


@policy_app.command("load")
def policy_load(
    file: Annotated[Path, typer.Argument(help="A policy document: TOML with a [policy] table (its terms: docs/rules.md).")],
    effective: Annotated[
        str | None, typer.Option(help="For an amendment: the date it takes effect, YYYY-MM-DD, within the policy "
                                 "period (default today).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Start the ledger's policy from FILE, or amend it if one is loaded."""
    terms = load_policy_file(file)
    with _open(db) as ledger:
        outcome = ledger.load_policy(terms, effective=optional_day(effective, "effective"))
        if not outcome.recorded and not as_json:
            out.print(f"policy {terms.id} unchanged: {outcome.warnings[0]}", markup=False)
            return
        report_outcome(outcome, as_json=as_json)
        if not as_json:
            event = outcome.recorded[0]
            out.print(f"{event.type} {terms.id} effective {event.effective}")


@policy_app.command("show")
def policy_show(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Print the policy terms in force, with defaults filled in."""
    with _open(db) as ledger:
        table = terms_to_table(ledger.terms())
    if as_json:
        print_json(table)
        return
    grid = Table(show_header=False, box=None)
    for name, value in table.items():
        grid.add_row(name, json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
    out.print(grid)


class _AppendCommand(TyperCommand):
    """`append`, whose --help after a TYPE lists that type's fields with their formats
    (from the event's Struct, ledger/vocabulary/events.py), and without one the types."""

    # Any: Typer vendors its own click, whose Context and HelpFormatter are not public names.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # --help is handled while parsing, before TYPE is bound: note the type from the words given.
        ctx.meta["append_type"] = next((a for a in args if a in EVENT_TYPES), None)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)  # Rich prints it; what goes to `formatter` is printed after
        event_type = ctx.meta.get("append_type")
        formatter.write("\n")
        if event_type is None:
            with formatter.section("Event types (append TYPE --help lists the fields of one)"):
                formatter.write_text(", ".join(EVENT_TYPES))
            return
        with formatter.section(f"Fields of {event_type} (--field value)"):
            formatter.write_dl([(f"--{name.replace('_', '-')}", words) for name, words in field_words(event_type)])


@app.command(
    cls=_AppendCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def append(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Argument(
        metavar="TYPE", help="An event type, e.g. invoice_issued (append TYPE --help lists its fields).")],
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
    with _open(db) as ledger:
        raw.setdefault("effective", ledger.clock().date().isoformat())  # today by the ledger's clock (UTC)
        report_outcome(ledger.append(raw), as_json=as_json)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Events as TOML ([[events]] as in a scenario), JSON Lines or CSV.")],
    keep_recorded: Annotated[
        bool, typer.Option("--keep-recorded", help="Keep the file's recorded stamps (a historical ledger, an audit copy).")
    ] = False,
    restamp: Annotated[
        bool, typer.Option("--restamp", help="Replace the file's recorded stamps with now (its events are new to this ledger).")
    ] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="toml, jsonl or csv (default: from the name).")] = None,
    source_head: Annotated[
        str | None, typer.Option("--source-head", help="With --keep-recorded, into an empty ledger: the head hash (64 "
                                 "hex digits) that verify printed for the ledger FILE holds every event of (log "
                                 "--json). The events are recorded as it held them, not checked again, and refused "
                                 "unless this ledger's chain then ends at that hash.")
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Record every event of FILE in one transaction: all of them or none.

    Events whose key is already recorded are skipped and listed, so running
    the same import twice records nothing the second time.
    """
    head = _source_head(source_head, keep_recorded) if source_head is not None else None
    with _open(db) as ledger:
        source, count, raw = stream_event_file(file, fmt)
        events = _check_stamps(raw, keep_recorded, restamp, source.source)
        if head is not None:
            if source.policy is not None:
                raise LedgerError("--source-head takes a file of every event of the verified ledger, its "
                                  "policy_started among them (log --json), not a [policy] table", source=source.source)
            with _progress(count, "recording") as advance:
                drafts = ledger.parse(events, source.source, checked=False)
                report_outcome(ledger.record_verified(drafts, head, progress=advance), as_json=as_json)
            return
        terms = _file_policy(ledger, source.policy, source.source) if source.policy is not None else None
        if not count and terms is None:
            raise LedgerError("has no events", source=source.source)
        with _progress(count, "checking") as advance:
            drafts = ledger.parse(events, source.source, currency=terms.currency if terms else None)
            if terms is not None and not ledger.has_policy():
                drafts.insert(0, ledger.starting_draft(terms, drafts, source.source))
            outcome = ledger.record(drafts, keep_recorded=keep_recorded, progress=advance)
        report_outcome(outcome, as_json=as_json)


def _source_head(text: str, keep_recorded: bool) -> str:
    """The head hash given to --source-head: all 64 hex digits (a prefix proves less), with --keep-recorded."""
    if not keep_recorded:
        raise LedgerError("goes with --keep-recorded: a verified ledger's events keep their recorded stamps",
                          field="source-head")
    head = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", head):
        raise LedgerError(f"{text!r} is not a head hash: give all 64 hex digits verify printed", field="source-head")
    return head


def _check_stamps(
    rows: Iterable[tuple[int | None, Any]], keep: bool, restamp: bool, source: str
) -> Iterable[tuple[int | None, Any]]:
    """A file whose events carry recorded stamps (`log --json`, an audit copy) says what to do with them:
    restamped silently, a copy would lose its recorded axis; kept by mistake, new events would claim the past.
    The rows pass through as they are read (a large file is never held whole)."""
    if keep and restamp:
        raise LedgerError("give --keep-recorded or --restamp, not both", field="restamp")
    if keep or restamp:
        return rows
    return _unstamped(rows, source)


def _unstamped(rows: Iterable[tuple[int | None, Any]], source: str) -> Iterator[tuple[int | None, Any]]:
    for line, raw in rows:
        if isinstance(raw, dict) and raw.get("recorded") not in (None, ""):
            try:
                read_recorded(raw["recorded"])  # a stamp that is not one is refused as such first
            except LedgerError as problem:
                raise problem.located(source=source, line=line) from None
            raise LedgerError(
                "events carry recorded stamps: give --keep-recorded to keep them (a historical ledger, an audit "
                "copy) or --restamp to record them now", field="recorded", source=source, line=line,
            )
        yield line, raw


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
    effective_from: Annotated[str | None, typer.Option("--from", help="Effective on or after this date, YYYY-MM-DD.")] = None,
    effective_to: Annotated[str | None, typer.Option("--to", help="Effective on or before this date, YYYY-MM-DD.")] = None,
    known_at: Annotated[
        str | None, typer.Option(help="Only what was recorded by then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end).")
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
            effective_from=optional_day(effective_from, "from"), effective_to=optional_day(effective_to, "to"),
            known_at=known_at_argument({"known_at": known_at}), limit=limit,
        )
    public = [to_public(e, currency) for e in events]
    if as_json:
        print_json(public)
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
