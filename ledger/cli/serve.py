"""`creditledger serve`: the ledger over HTTP (ledger/web), run by uvicorn.

The HTTP stack is imported inside the command, so that no other command pays for it.
"""

from __future__ import annotations

import ipaddress
import os
import signal
from typing import Annotated

import typer

from ledger.cli.common import DEFAULT_DB, DbOption, app, err, shown_location
from ledger.cli.common import open_ledger as _open
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location

# How the command hands its settings to each uvicorn worker process (a worker builds its own app).
DB_VARIABLE, READ_ONLY_VARIABLE = "CREDITLEDGER_SERVE_DB", "CREDITLEDGER_SERVE_READ_ONLY"
CONCURRENT = 16  # connections and requests one worker takes at once
SHUTDOWN_GRACE = 5  # seconds open requests (an event stream) get to finish on SIGTERM


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="The address to listen on; other than loopback only once write tokens exist.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The TCP port.", min=0, max=65535)] = 8321,
    read_only: Annotated[bool, typer.Option("--read-only", help="Refuse every write (405).")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
) -> None:
    """Serve the ledger over HTTP: the JSON API under /api (OpenAPI at /api/openapi.json,
    docs at /api/docs) and the web view. Writes need a token (creditledger token create).
    Stops cleanly on Ctrl-C or SIGTERM."""
    if Location.parse(db).kind == "memory":
        raise LedgerError("an in-memory ledger cannot be served: give a file or a PostgreSQL URL", field="db")
    with _open(db) as ledger:
        tokens = ledger.tokens.active()
    if not is_loopback(host) and tokens == 0:
        raise LedgerError(
            f"{host} is reachable from other machines; serve on 127.0.0.1, or create a write token first "
            "(creditledger token create --name NAME)", field="host")
    import uvicorn

    from ledger.web.tcp import NoDelayH11Protocol

    os.environ[DB_VARIABLE] = db
    os.environ[READ_ONLY_VARIABLE] = "1" if read_only else ""
    # Each request's Ledger holds its own PostgreSQL pool: 2 connections each (unless set), and at
    # most CONCURRENT requests per worker (uvicorn answers 503 beyond), so that a burst cannot use
    # up the server's connections (about 2 x CONCURRENT + 2 per worker at most).
    os.environ.setdefault("CREDITLEDGER_PG_POOL_SIZE", "2")
    os.environ.setdefault("CREDITLEDGER_PG_POOL_OVERFLOW", "0")
    err.print(f"serving {shown_location(db)} on http://{host}:{port}/ "
              f"({'read-only' if read_only else f'{tokens} write tokens'}); Ctrl-C stops", markup=False)
    # uvicorn stops on SIGTERM/SIGINT, then raises the signal again for the handler it found: a
    # quiet one here, so that a clean stop exits 0 instead of dying by the signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    uvicorn.run(
        "ledger.cli.serve:application", factory=True, host=host, port=port, workers=workers,
        timeout_graceful_shutdown=SHUTDOWN_GRACE, log_level="info", server_header=False, http=NoDelayH11Protocol,
        limit_concurrency=CONCURRENT,
    )


def application() -> object:
    """The app of one worker, from the settings the command left in the environment."""
    from ledger.web.app import create_app

    return create_app(os.environ[DB_VARIABLE], read_only=bool(os.environ.get(READ_ONLY_VARIABLE)))
