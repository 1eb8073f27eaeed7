"""`creditledger copy`: move a ledger to another store (SQLite to PostgreSQL, or back) and prove
the copy answers every query as the source does."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import app, err, head_line, out
from ledger.cli.common import print_json as _print_json
from ledger.cli.common import progress_bar as _progress
from ledger.cli.common import shown_location as _shown
from ledger.operations import copy as copying
from ledger.queries import answers
from ledger.queries.arguments import day_argument
from ledger.service import Ledger, ledger_exists
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location

SourceOption = Annotated[
    str, typer.Option("--from", help="The ledger to copy: a SQLite file path or postgresql://...?schema=name.")
]
DestinationOption = Annotated[
    str, typer.Option("--to", help="An empty or new ledger: a SQLite file path or postgresql://...?schema=name.")
]


@app.command("copy")
def copy(
    source: SourceOption,
    destination: DestinationOption,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Compare every event and every query on both afterwards.")
    ] = True,
    as_of: Annotated[
        list[str] | None,
        typer.Option("--as-of", help="A date, YYYY-MM-DD, to compare the queries at (repeat it; default: the middle and end "
                                      "of the policy period and the last declaration's due date)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Copy every event of one ledger into an empty one (either backend, either direction).

    Event ids, keys, recorded stamps, streams and order are kept. All or
    nothing: if the copy fails the destination is left empty. Then, unless
    --no-verify, the event count, every event and every query (exposure of
    the book and each buyer, obligations, turnover of each period, premium,
    claims) are compared on both; any difference is listed and exits 1.
    """
    dates: list[datetime.date] = sorted({day_argument(value, "as_of") for value in as_of or []})
    if not ledger_exists(source):
        raise LedgerError(f"there is no ledger at {_shown(source)}", field="from")
    if Location.parse(destination).kind == "memory":
        raise LedgerError("a copy into memory would be lost at exit; name a file or a postgresql:// URL", field="to")
    if _same(source, destination):
        raise LedgerError("the source and the destination are the same ledger", field="to")
    with Ledger(source) as src, Ledger(destination) as dst:
        total = src.count()
        with _progress(total, "copying") as advance:
            copied = copying.copy_events(src, dst, advance)
        head = dst.head()
        differences: list[str] = []
        if verify:
            with _progress(copying.verification_steps(src, dates), "verifying") as advance:
                differences = copying.verify(src, dst, dates, advance)
    if as_json:
        _print_json(answers.Copy(copied=copied, verified=verify, differences=tuple(differences), head=answers.head_answer(head)))
    else:
        for line in differences[:copying.SHOW_DIFFERENCES]:
            err.print(f"difference: {line}", markup=False)
        if len(differences) > copying.SHOW_DIFFERENCES:
            err.print(f"... and {len(differences) - copying.SHOW_DIFFERENCES} more differences (--json lists them all)")
        outcome = "; verified: every event and query equal" if verify and not differences else ""
        out.print(f"copied {copied} events from {_shown(source)} to {_shown(destination)}{outcome}", markup=False)
        out.print(head_line(head), markup=False)
    if differences:
        err.print(f"error: the copy differs from the source in {len(differences)} places; do not use it",
                  markup=False)
        raise typer.Exit(1)


def _same(source: str, destination: str) -> bool:
    """Whether two locations name one ledger (one file, or one server, database and schema)."""
    a, b = Location.parse(source), Location.parse(destination)
    if a.server is not None or b.server is not None:
        return a.server is not None and b.server is not None and a.server.ledger == b.server.ledger
    return Path(source).resolve() == Path(destination).resolve()
