"""`creditledger verify`: check the hash chain, the index and the folds (ledger/operations/verify.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import msgspec
import typer

from ledger.cli.common import DEFAULT_DB, DbOption, JsonOption, app, err, out
from ledger.cli.common import open_ledger as _open
from ledger.cli.common import print_json as _print_json
from ledger.queries import answers

SHOW_FINDINGS = 20  # one line each; a ledger rewritten wholesale has a finding per row

if TYPE_CHECKING:
    from ledger.operations.verify import Finding


@app.command("verify")
def verify(
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="A head hash printed by an earlier verify or write (or its first 12 or "
                     "more hex digits): it must still be in the chain."),
    ] = None,
) -> None:
    """Check that the ledger is as the ledger wrote it.

    Walks the hash chain and names every event changed, deleted, inserted
    or reordered in the database, checks the index against the stored events,
    and compares the exposure read model with a fresh fold of every buyer. Exit 0 when clean, 1 with
    one line per finding naming the event otherwise. Keep the printed head to pass as
    --expect-head later: it reveals events cut from the end.
    """
    from ledger.operations.verify import check_expected_head, expected_head
    from ledger.operations.verify import verify as run

    if expect_head is not None:
        expected_head(expect_head)  # a malformed head is refused before the ledger is opened
    with _open(db) as ledger:
        if expect_head is not None:
            check_expected_head(ledger, expect_head)
        report = run(ledger, expect_head=expect_head)
    if as_json:
        _print_json(answers.Verify(
            clean=report.clean, events=report.events, checks=tuple(report.checks),
            head=answers.Head(notification_id=report.head_id, hash=report.head_hash),
            findings=tuple(_finding(f) for f in report.findings),
        ))
    elif report.clean:
        out.print(f"clean: {report.events} events, checks {', '.join(report.checks)}; "
                  f"head {report.head_id} {report.head_hash}", markup=False)
        for at, events, head_id, head_hash in report.chain_inits:
            out.print(f"note: `chain init` chained {events} events at {at} (head {head_id} {head_hash}); the chain "
                      "vouches for them only from then on", markup=False)
    else:
        for finding in report.findings[:SHOW_FINDINGS]:
            err.print(f"error: {finding.line()}", markup=False)
        if len(report.findings) > SHOW_FINDINGS:
            err.print(f"... and {len(report.findings) - SHOW_FINDINGS} more (--json lists them all)", markup=False)
    if not report.clean:
        raise typer.Exit(1)


def _finding(finding: Finding) -> answers.Finding:
    """A finding for --json: where it is (notification, event, key) only as far as known, absent
    otherwise, never null (docs/json.md's convention for optional fields)."""
    def known(value: Any) -> Any:
        return msgspec.UNSET if value is None else value

    return answers.Finding(
        check=finding.check, problem=cast(answers.VerifyProblem, finding.problem),
        notification_id=known(finding.notification_id), event_id=known(finding.event_id), key=known(finding.key),
        message=finding.message,
    )
