"""The `creditledger` command line (Typer for parsing and help, Rich for output).

One module per command group, each registering its commands on the root app of
`ledger/cli/common.py`; this module imports them in the order `--help` lists
them. Every command exits non-zero with one line naming the file, line, field
and rule on bad input; none prints a traceback. Commands that print data take
`--json`.
"""

from __future__ import annotations

import os
import sys

from ledger.cli.common import app, err
from ledger.vocabulary.errors import LedgerError

# Each import registers its commands; `--help` lists them in this order.
# isort: off
from ledger.cli import records, queries, scenario, sample, export, chart, copy, verify, chain, erp, serve, token
# isort: on

COMMAND_GROUPS = (records, queries, scenario, sample, export, chart, copy, verify, chain, erp, serve, token)


def main() -> None:
    """Entry point: run the app; a refusal is one line on stderr and exit 1."""
    try:
        app()
    except LedgerError as problem:
        err.print(f"error: {problem}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted; nothing more was recorded", markup=False)
        sys.exit(130)
    except OSError as problem:  # output to a full disk or a closed pipe, a file that cannot be written
        err.print(f"error: {problem.strerror or problem}", markup=False)
        sys.exit(1)
    except Exception as problem:  # the last guard: one line, never a traceback
        if os.environ.get("CREDITLEDGER_DEBUG"):
            raise
        err.print(f"error: internal: {type(problem).__name__}: {problem}", markup=False)
        sys.exit(3)


if __name__ == "__main__":
    main()
