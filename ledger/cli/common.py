"""What every command module shares: the root app each registers its commands on, the consoles,
the --db and --json options, opening a ledger, showing its location without a password, and
printing JSON and a write's outcome."""

from __future__ import annotations

import datetime
import sys
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.queries import answers
from ledger.queries.arguments import day_argument
from ledger.readmodels.exposure import ExposureModel
from ledger.service import Ledger, ledger_exists
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location
from ledger.write.pipeline import Outcome

DEFAULT_DB = "ledger.db"
SHOW_SKIPPED = 10  # a re-import can skip a million events; list a few, count the rest

# No Rich markup in help: it read [[events]] and [policy] as tags and dropped them, and its panels
# cut a long word (a PostgreSQL URL) short on an 80-column terminal. Help is printed as written.
app = typer.Typer(
    help="An event-sourced ledger for trade-credit-insurance receivables.",
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Piped output keeps whole figures: Rich would otherwise cut tables at 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="CREDITLEDGER_DB",
        help="The ledger: a SQLite file path, or postgresql://user@host:port/db?schema=name.",
        show_default=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_ledger(db: str, *, create: bool = False) -> Ledger:
    """Open the ledger at `db`; a missing one is an error unless creating."""
    if not create and not ledger_exists(db):
        raise LedgerError(f"there is no ledger at {shown_location(db)}; create one with `creditledger init`", field="db")
    return Ledger(db)


def shown_location(db: str) -> str:
    """The location as the CLI prints it: never with a password (see `Location.shown`)."""
    return Location.parse(db).shown


class progress_bar:
    """A progress bar on stderr for long work; silent when not on a terminal."""

    def __init__(self, total: int, label: str, minimum: int = 5000) -> None:
        self.bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=not err.is_terminal or total < minimum,
        )
        self.task = self.bar.add_task(label, total=total)

    def __enter__(self) -> Any:
        self.bar.start()
        return lambda n: self.bar.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def caught_up(ledger: Ledger, model: ExposureModel | None = None) -> None:
    """Bring a read model (default: the exposure one) up to date, on a progress bar when many
    buyers are refolded (a deleted cache of a large ledger takes minutes to rebuild)."""
    model = model or ledger.exposure_model
    bar: list[Any] = []

    def advance(done: int, total: int) -> None:
        if not bar:
            bar.append(progress_bar(total, "read model", minimum=100))
            bar.append(bar[0].__enter__())
        bar[1](1)

    try:
        model.catch_up(advance)
    finally:
        if bar:
            bar[0].__exit__()


def optional_day(value: str | None, name: str) -> datetime.date | None:
    return None if value is None else day_argument(value, name)


def print_json(data: Any) -> None:
    sys.stdout.write(msgspec.json.encode(data).decode() + "\n")




def head_line(head: tuple[int, str] | None) -> str:
    """`head N HASH`: the line every write prints, the anchor to keep for `verify --expect-head`."""
    notification_id, hash_ = head or (0, "0" * 64)
    return f"head {notification_id} {hash_}"


def report_outcome(outcome: Outcome, *, as_json: bool) -> None:
    if as_json:
        print_json(answers.outcome_answer(outcome))
        return
    for warning in outcome.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    for skipped in outcome.skipped[:SHOW_SKIPPED]:
        draft, earlier = skipped.draft, skipped.earlier
        where = f"{draft.source}:{draft.line}: " if draft.source and draft.line else ""
        err.print(f"{where}skipped: key {draft.event.key or draft.event.id} is already recorded (event {earlier})")
    if len(outcome.skipped) > SHOW_SKIPPED:
        err.print(f"... and {len(outcome.skipped) - SHOW_SKIPPED} more skipped (--json lists them all)")
    out.print(f"recorded {len(outcome.recorded)} events, skipped {len(outcome.skipped)} already recorded")
    if outcome.head is not None:
        out.print(head_line(outcome.head), markup=False)
