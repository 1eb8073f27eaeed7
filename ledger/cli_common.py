"""What every command module shares: the consoles, the --db and --json options, opening a ledger,
and showing its location without a password. (ledger/cli.py imports the command modules, so
they cannot import it at load time.)"""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import typer
from rich.console import Console

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
