"""What every command module shares: the consoles, the --db and --json options, opening a ledger,
and showing its location without a password. (ledger/cli.py imports the command modules, so
they cannot import it at load time.)"""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.errors import LedgerError
from ledger.service import Ledger
from ledger.store import ledger_exists

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
    """The location without a password: neither the URL's (which may itself hold
    an "@") nor one passed in the query string; only `schema` is shown as given."""
    if not db.startswith(("postgresql://", "postgres://")):
        return db
    parts = urlsplit(db)
    userinfo, at, host = parts.netloc.rpartition("@")  # as urllib splits it: the last "@"
    user, colon, _ = userinfo.partition(":")
    netloc = f"{user}{':***' if colon else ''}{at}{host}"
    query = "&".join(
        f"{name}={value if name == 'schema' else '***'}" for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


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


def caught_up(ledger: Ledger) -> None:
    """Bring the exposure read model up to date, on a progress bar when many buyers are
    refolded (a deleted cache of a large ledger takes minutes to rebuild)."""
    bar: list[Any] = []

    def advance(done: int, total: int) -> None:
        if not bar:
            bar.append(progress_bar(total, "read model", minimum=100))
            bar.append(bar[0].__enter__())
        bar[1](1)

    try:
        ledger.exposure_model.catch_up(advance)
    finally:
        if bar:
            bar[0].__exit__()
