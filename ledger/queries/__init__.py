"""The queries: each reads the ledger through `reading.LedgerReader` and returns a typed answer
(`answers`), its figures from the pure folds in `projections`.

One module per family (`exposure`, `obligations`, `turnover`, `premium`, `claims`, `summary`),
the arguments they share (`arguments`), the book read and folded once (`book`), and the one
registry of queries by name (`registry.run_query`).
"""
