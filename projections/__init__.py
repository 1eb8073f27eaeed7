"""Pure folds of events into figures: no I/O, no clock, no database.

Time enters only as arguments (`as_of`, `known_at`). Every fold sees events in
fold order (`ledger.vocabulary.order.in_fold_order`), so the same events give
the same figures. Folds hand out frozen values; their working state is their own.
"""
