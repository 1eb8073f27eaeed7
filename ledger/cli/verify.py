"""`creditledger verify`: check the hash chain, the index and the folds (ledger/operations/verify.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.common import DEFAULT_DB, DbOption, JsonOption, app, err, out
from ledger.cli.common import open_ledger as _open
from ledger.cli.common import print_json as _print_json

if TYPE_CHECKING:
    from ledger.operations.verify import Finding


@app.command("verify")
def verify(
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="A head hash printed by an earlier verify: it must still be in the chain."),
    ] = None,
) -> None:
    """Check that the ledger is as the ledger wrote it.

    Walks the hash chain and names the first event changed, deleted, inserted
    or reordered in the database, checks the index against the stored events,
    and compares the exposure read model with a fresh fold of every buyer. Exit 0 when clean, 1 with
    one line naming the event otherwise. Keep the printed head to pass as
    --expect-head later: it reveals events cut from the end.
    """
    from ledger.operations.verify import verify as run

    with _open(db) as ledger:
        report = run(ledger, expect_head=expect_head)
    if as_json:
        _print_json({
            "clean": report.clean, "events": report.events, "checks": report.checks,
            "head": {"notification_id": report.head_id, "hash": report.head_hash},
            "findings": [_finding(f) for f in report.findings],
        })
    elif report.clean:
        out.print(f"clean: {report.events} events, checks {', '.join(report.checks)}; "
                  f"head {report.head_id} {report.head_hash}", markup=False)
    else:
        more = len(report.findings) - 1
        also = f" (and {more} more; --json lists them)" if more else ""
        err.print(f"error: {report.findings[0].line()}{also}", markup=False)
    if not report.clean:
        raise typer.Exit(1)


def _finding(finding: Finding) -> dict[str, Any]:
    """A finding for --json: where it is (notification, event, key) only as far as known, absent
    otherwise, never null (docs/json.md's convention for optional fields)."""
    where = {"notification_id": finding.notification_id, "event_id": finding.event_id, "key": finding.key}
    return {"check": finding.check, "problem": finding.problem,
            **{name: value for name, value in where.items() if value is not None}, "message": finding.message}
