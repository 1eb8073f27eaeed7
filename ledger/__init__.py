"""creditledger: an event-sourced ledger for trade-credit-insurance receivables.

One sub-package per role; each may import only from the roles below it (the
import-linter contract in pyproject.toml, run by `make test`):

    cli/          the `creditledger` command line: one module per command group
    adapters/     files in and out: event files, ERP exports, scenario and policy
                  files, the SQLite/CSV export, charts
    operations/   whole-ledger work: copy between stores, verify
    tools/        the seeded sample-book generator (for the demo, tests, benchmark)
    service.py    `Ledger`: the write pipeline and the reads, over one store
    queries/      each query's arguments and typed answer, one registry
    write/        admission: the rules an event must pass against its stream, and the
                  pure steps of the record pipeline
    readmodels/   figures kept from the log so that a query never refolds
    store/        eventsourcing's recorders, the index, the hash chain, one module per backend;
                  used only through its __init__
    ../projections/  pure folds of events into figures
    vocabulary/   events, money, policy terms, errors, dates, fold order, the location of a
                  ledger, the collector pause of bulk work: imports nothing else of ours

Only the service and the operations open the store; queries and read models read
a ledger through the protocols they declare (queries.reading, readmodels.exposure).
"""
