"""`creditledger import-erp`: an ERP's CSV export through a column mapping (docs/erp.md).

Three passes over the rows: read and convert them (ledger/adapters/erp.py), check them
all against the ledger as it stands (`Ledger.trial`, which lists every refusal
instead of stopping at the first), then record. Without --skip-bad one bad row
records nothing; with it the good rows are recorded and the bad ones written
to a reject file. A row that depends on a rejected row (a payment or credit
note on a rejected invoice) is rejected too, with the line it depends on: it
would otherwise be refused for naming an invoice the ledger does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from ledger.adapters.erp import ErpFile, ErpRow, load_mapping, read_export, reject_writer
from ledger.cli.common import DEFAULT_DB, DbOption, JsonOption, app, err, out
from ledger.cli.common import open_ledger as _open
from ledger.cli.common import print_json as _print_json
from ledger.cli.common import progress_bar as _progress
from ledger.cli.common import report_outcome as _report
from ledger.queries import answers
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import to_public
from ledger.write.pipeline import Draft, Outcome

SHOW_REJECTED = 1000  # every rejected row is named, up to this many on the terminal; the reject file has all


@app.command("import-erp")
def import_erp(
    file: Annotated[Path, typer.Argument(help="An ERP export: CSV of invoices, credit notes or payments.")],
    mapping: Annotated[Path, typer.Option("--mapping", help="The column mapping (TOML, see docs/erp.md).")],
    export: Annotated[
        str | None, typer.Option("--export", help="Which export of the mapping (its exports.NAME table; default: the one the header fits).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row against the ledger and print what would be recorded; record nothing.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Record the good rows; write the bad ones to the reject file.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="With --skip-bad: the reject file (default FILE.rejects.csv).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Import an ERP's CSV export through a column mapping: every row, or none.

    Every rejected row is named by file and line. Rows whose key is already
    recorded are skipped, so importing the same export again records nothing.
    """
    if rejects is not None and not skip_bad:
        raise LedgerError("--rejects goes with --skip-bad", field="rejects")
    erp_mapping = load_mapping(mapping)
    source = read_export(file, erp_mapping, export)
    if not source.rows:
        raise LedgerError("has no rows", source=source.source)
    reject_path = rejects or file.with_name(file.stem + ".rejects.csv")
    with _open(db) as ledger:
        currency = ledger.terms().currency
        with _progress(len(source.rows), "checking") as advance:
            drafts, bad = _drafts(ledger, source, currency)
            trial = ledger.trial(drafts, progress=advance)
        rows = {row.line: row for row in source.rows}
        bad.extend((rows[r.draft.line or 0], r.problem) for r in trial.refused)
        bad = _explain_dependencies(sorted(bad, key=lambda b: b[0].line), source)
        if dry_run:
            _print_trial(trial.admitted, trial.outcome, bad, currency, as_json=as_json)
            if bad and not skip_bad:
                raise LedgerError(f"{len(bad)} of {len(source.rows)} rows would be rejected; an import without "
                                  "--skip-bad would record nothing", source=source.source)
            return
        if bad and not skip_bad:
            _refuse_all(bad, source)
        refused = {row.line for row, _ in bad}
        good = [d for d in drafts if d.line not in refused]
        with _progress(len(good), "recording") as advance:
            outcome = ledger.record(good, progress=advance)
    if bad:
        _write_rejects(reject_path, source, bad)
    _print_import(outcome, bad, reject_path, as_json=as_json)


def _refuse_all(bad: list[tuple[ErpRow, LedgerError]], source: ErpFile) -> None:
    """Without --skip-bad one bad row records nothing: say which rows, and stop."""
    if len(bad) == 1:
        # One bad row: one line, naming its file, line and field, as every other refusal.
        row, problem = bad[0]
        raise LedgerError(f"{problem.message} (1 of {len(source.rows)} rows rejected; nothing recorded)",
                          field=problem.field, source=problem.source or source.source, line=row.line)
    _print_rejected(bad)
    raise LedgerError(
        f"{len(bad)} of {len(source.rows)} rows rejected; nothing recorded "
        "(fix them, or --skip-bad to record the good rows)", source=source.source,
    )


def _print_import(outcome: Outcome, bad: list[tuple[ErpRow, LedgerError]], reject_path: Path, *, as_json: bool) -> None:
    """What the import recorded, skipped and rejected (and where the rejected rows went)."""
    if as_json:
        written = answers.outcome_answer(outcome)
        _print_json(answers.ErpOutcome(
            recorded=written.recorded, skipped=written.skipped, warnings=written.warnings,
            rejected=tuple(_rejection(row, problem) for row, problem in bad),
            # Absent, not null, when nothing was rejected: docs/json.md's convention for optional fields.
            rejects_file=str(reject_path) if bad else msgspec.UNSET,
            head=written.head,
        ))
        return
    _report(outcome, as_json=False)
    if bad:
        _print_rejected(bad)
        out.print(f"rejected {len(bad)} rows, written with their reason to {reject_path}", markup=False)


def _drafts(ledger: Ledger, source: ErpFile, currency: str) -> tuple[list[Draft], list[tuple[ErpRow, LedgerError]]]:
    """Each convertible row as a draft; the others (bad cells, bad fields) with their refusal."""
    drafts: list[Draft] = []
    bad: list[tuple[ErpRow, LedgerError]] = []
    for row in source.rows:
        if row.error is not None:
            bad.append((row, row.error))
            continue
        assert row.raw is not None
        try:
            drafts.extend(ledger.parse([(row.line, row.raw)], source.source, currency=currency))
        except LedgerError as problem:
            bad.append((row, problem))
    return drafts, bad


def _explain_dependencies(
    bad: list[tuple[ErpRow, LedgerError]], source: ErpFile
) -> list[tuple[ErpRow, LedgerError]]:
    """A row refused for naming an invoice whose own row was rejected earlier says so.

    The ledger refuses it anyway (the invoice is not there); the note tells
    the user that fixing the earlier row is the cure, and that both rows are
    in the reject file, in file order, to import again together.
    """
    index = {name: i for i, name in enumerate(source.header)}
    invoices: dict[tuple[str, str], int] = {}
    explained = []
    for row, problem in bad:
        kind, buyer, invoice = _identity(row, source, index)
        if kind == "invoice_issued" and buyer and invoice:
            invoices.setdefault((buyer, invoice), row.line)
        elif problem.field == "invoice" and buyer and invoice and (buyer, invoice) in invoices:
            problem = LedgerError(
                f"{problem.message} (its invoice was rejected on line {invoices[buyer, invoice]})",
                field=problem.field, source=problem.source, line=problem.line,
            )
        explained.append((row, problem))
    return explained


def _identity(row: ErpRow, source: ErpFile, index: dict[str, int]) -> tuple[str | None, str | None, str | None]:
    """A row's event type, buyer and invoice, from its event if it became one, else from its cells."""
    if row.raw is not None:
        return row.raw.get("type"), row.raw.get("buyer"), row.raw.get("invoice")
    export = source.export

    def cell(header: str | None) -> str | None:
        if header is None or index[header] >= len(row.cells):
            return None
        return row.cells[index[header]].strip() or None

    kind = export.event or export.events.get(cell(export.event_column) or "")
    return kind, cell(export.header_of("buyer")), cell(export.header_of("invoice"))


def _rejection(row: ErpRow, problem: LedgerError) -> answers.Rejection:
    """One rejected row for --json; `field` is absent (never null) when the refusal names none (a short row)."""
    field = msgspec.UNSET if problem.field is None else problem.field
    return answers.Rejection(line=row.line, field=field, reason=problem.message, message=str(problem))


def _print_rejected(bad: list[tuple[ErpRow, LedgerError]]) -> None:
    for _, problem in bad[:SHOW_REJECTED]:
        err.print(f"rejected: {problem}", markup=False)
    if len(bad) > SHOW_REJECTED:
        err.print(f"... and {len(bad) - SHOW_REJECTED} more rejected rows (--json lists them all)", markup=False)


def _print_trial(
    admitted: list[Draft], outcome: Outcome, bad: list[tuple[ErpRow, LedgerError]], currency: str, *, as_json: bool
) -> None:
    """What an import would record, skip and reject."""
    if as_json:
        # Not an answers.ErpTrial built whole: its events are LogEvents, open Structs that would
        # keep only the fields every event has; `to_public` gives each event's own fields too.
        _print_json({
            "would_record": [{"line": d.line, "event": to_public(d.event, currency)} for d in admitted],
            "skipped": [{"line": s.draft.line, "key": s.draft.event.key, "earlier": s.earlier} for s in outcome.skipped],
            "warnings": outcome.warnings,
            "rejected": [_rejection(row, problem) for row, problem in bad],
        })
        return
    table = Table("line", "type", "effective", "buyer", "invoice", "amount", "due", "key",
                  title="Would record (dry run: nothing recorded)")
    for draft in admitted:
        event = to_public(draft.event, currency)
        table.add_row(str(draft.line), event["type"], str(event["effective"]), event.get("buyer", ""),
                      event.get("invoice", ""), event.get("amount", ""), str(event.get("due", "")),
                      event.get("key", ""))
    out.print(table)
    for warning in outcome.warnings:
        err.print(f"warning: {warning}", markup=False)
    for skipped in outcome.skipped:
        draft, earlier = skipped.draft, skipped.earlier
        err.print(f"{draft.source}:{draft.line}: would skip: key {draft.event.key} is already recorded "
                  f"(event {earlier})", markup=False)
    _print_rejected(bad)
    out.print(f"dry run: would record {len(admitted)} events, skip {len(outcome.skipped)} already recorded, "
              f"reject {len(bad)} rows; nothing recorded", markup=False)


def _write_rejects(path: Path, source: ErpFile, bad: list[tuple[ErpRow, LedgerError]]) -> None:
    """The rejected rows as read, plus a reason column: fix them and import the file again."""
    try:
        handle, writer = reject_writer(path, source)
    except OSError as e:
        raise LedgerError(f"cannot write the reject file: {e.strerror}; the good rows were recorded",
                          source=str(path)) from None
    with handle:
        for row, problem in bad:
            cells = row.cells + [""] * (len(source.header) - len(row.cells))
            reason = f"line {row.line}: " + (f"{problem.field}: " if problem.field else "") + problem.message
            writer.writerow([*cells, reason])
