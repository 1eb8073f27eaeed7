"""`creditledger token create | list | revoke`: the bearer tokens that may write through `creditledger serve`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledger.cli.common import DEFAULT_DB, DbOption, JsonOption, app, err, out, print_json
from ledger.cli.common import open_ledger as _open
from ledger.queries import answers

token_app = typer.Typer(
    help="Bearer tokens for writes through `creditledger serve` (only their hashes are stored).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who uses it, e.g. erp (letters, digits, - _ .).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Make a token and print it once: the ledger keeps only its hash, so copy it now."""
    with _open(db) as ledger:
        secret = ledger.tokens.create(name, ledger.clock())
    out.print(secret, markup=False)
    err.print(f"token {name!r} created; it is shown only now. Send it as: Authorization: Bearer TOKEN",
              markup=False)


@token_app.command("list")
def list_tokens(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Every token's name, when it was made and when revoked (never the token itself)."""
    with _open(db) as ledger:
        tokens = ledger.tokens.list()
    if as_json:
        print_json([answers.Token(name=t.name, created=t.created, revoked=t.revoked) for t in tokens])
        return
    table = Table("name", "created", "revoked")
    for token in tokens:
        table.add_row(token.name, token.created, token.revoked or "")
    out.print(table)


@token_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name (see token list).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke a token: writes with it are refused from now on (401); its name is not reused."""
    with _open(db) as ledger:
        ledger.tokens.revoke(name, ledger.clock())
    out.print(f"token {name!r} revoked", markup=False)
