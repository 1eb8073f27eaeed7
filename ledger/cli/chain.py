"""`creditledger chain init`: chain a ledger that holds events but no hash chain, on purpose and logged."""

from __future__ import annotations

import typer

from ledger.cli.common import DEFAULT_DB, DbOption, app, err, out
from ledger.cli.common import open_ledger as _open

chain_app = typer.Typer(help="The hash chain that makes edits behind the ledger's back visible.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")


@chain_app.command("init")
def chain_init(db: DbOption = DEFAULT_DB) -> None:
    """Chain the events of a ledger that has no hash chain: one written before the chain existed,
    or one whose chain was dropped.

    Opening a ledger never does this: until it is run, `verify` reports the missing chain. The
    chain vouches for the events only as they stand now, so compare the head printed here with
    one kept from before; the run is logged in the ledger and `verify` notes it.
    Refused on a ledger that already has a chain.
    """
    with _open(db) as ledger:
        done, head_id, head_hash = ledger.chain_init()
    err.print(f"chained {done} events as they stand now; `verify` will note this run", markup=False)
    out.print(f"head {head_id} {head_hash}", markup=False)
