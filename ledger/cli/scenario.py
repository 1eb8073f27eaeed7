"""`creditledger scenario run`: scenario files folded on an in-memory ledger, their expectations checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import JsonOption, app, out, print_json
from ledger.vocabulary.errors import LedgerError

scenario_app = typer.Typer(rich_markup_mode=None, help="Run scenario files.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("run")
def scenario_run(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files, or folders of them.")],
    as_json: JsonOption = False,
) -> None:
    """Fold each scenario on an in-memory ledger and check its expectations.

    Prints one line per failed expectation and closes with `N passed, N failed`.
    """
    from ledger.adapters.scenario import run_scenario, scenario_files, unreadable

    files = scenario_files(paths)
    results = []
    for path in files:
        try:
            results.append(run_scenario(path))
        except LedgerError as problem:
            results.append(unreadable(path, problem))
    passed = sum(r.passed for r in results)
    failed = sum(len(r.failures) for r in results)
    if as_json:
        print_json(results)
    else:
        for result in results:
            for failure in result.failures:
                out.print(failure, markup=False)
        out.print(f"{passed} passed, {failed} failed", markup=False)
    if failed:
        raise typer.Exit(1)
