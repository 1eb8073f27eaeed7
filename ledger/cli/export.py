"""`creditledger export`: the read models as a SQLite file, CSV files or a spreadsheet
(ledger/adapters/export.py, ledger/adapters/xlsx.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import app, open_ledger, out, progress_bar
from ledger.queries.arguments import as_of_argument, known_at_argument
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import format_recorded


@app.command("export")
def export(
    sqlite: Annotated[
        Path | None, typer.Option("--sqlite", help="Write the tables into this SQLite file (Datasette opens it).")
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write one CSV file per table into this folder.")] = None,
    xlsx: Annotated[Path | None, typer.Option(
        "--xlsx", help="Write one sheet per table into this spreadsheet (.xlsx): money as numbers in the policy "
        "currency's format, dates as dates.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The effective date of every figure, YYYY-MM-DD (default today, as every query).")
    ] = None,
    known_at: Annotated[
        str | None, typer.Option(help="As the ledger knew it then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end; default now).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing export file (or the folder's CSV files).")] = False,
    db: Annotated[
        str,
        typer.Option("--db", envvar="CREDITLEDGER_DB",
                     help="The ledger: a SQLite file path, or postgresql://user@host:port/db?schema=name."),
    ] = "ledger.db",
) -> None:
    """Export buyers, limits, invoices, exposure, obligations, turnover, premium lines, claims with their
    explanation, and the events, as documented tables (docs/export.md) at --as-of, as known at --known-at.

    Example: creditledger export --sqlite reports.db --as-of 2025-12-31
    """
    from ledger.adapters.export import (  # sqlite-utils only when used
        build_report,
        work_estimate,
        write_csv,
        write_sqlite,
    )

    if sum(target is not None for target in (sqlite, csv, xlsx)) != 1:
        raise LedgerError("give one of --sqlite FILE, --csv FOLDER or --xlsx FILE", field="export")
    with open_ledger(db) as ledger:
        day = as_of_argument({"as_of": as_of}, ledger.clock().date())
        moment = known_at_argument({"known_at": known_at})
        with progress_bar(work_estimate(ledger), "exporting") as advance:
            report = build_report(ledger, day, moment, progress=advance)
            if sqlite is not None:
                written = write_sqlite(report, sqlite, force=force)
            elif xlsx is not None:
                from ledger.adapters.xlsx import export_sheets, write_xlsx  # openpyxl only when used

                written = {}
                write_xlsx(export_sheets(report, written), xlsx, report.terms.currency, force=force, field="xlsx")
            else:
                assert csv is not None
                written = write_csv(report, csv, force=force)
    where = sqlite or csv or xlsx
    watched = report.claims_on_watch()  # rows of the claims table, but not claims
    out.print(
        f"exported {len(written)} tables to {where}: {written['events']} events, {written['buyers']} buyers, "
        f"{written['invoices']} invoices, {written['claims'] - watched} claims, {watched} buyers on watch; "
        f"as of {report.as_of}, "
        f"known at {format_recorded(report.known_at)}",
        markup=False,
    )
