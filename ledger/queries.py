"""The queries of SPEC 9, by name, for the CLI and the scenario runner.

Each query takes the ledger and its arguments (`buyer`, `as_of`, `known_at`,
`period`, `country`) and returns its values as strings, money as decimal
strings. The cover, premium and claims work registers its queries here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.service import Ledger

Query = Callable[["Ledger", Mapping[str, Any]], Mapping[str, Any]]

# The queries SPEC 9 names; the ones not yet in QUERIES are reported as such.
SPEC_QUERIES = ("exposure", "turnover", "premium", "claim", "obligations")
QUERIES: dict[str, Query] = {}


def run_query(name: str, ledger: Ledger, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """Answer query `name`, or refuse saying it does not exist (yet)."""
    query = QUERIES.get(name)
    if query is None:
        if name in SPEC_QUERIES:
            raise LedgerError(f"query {name!r} is not implemented yet", field="query")
        raise LedgerError(f"{name!r} is not a query (one of {', '.join(SPEC_QUERIES)})", field="query")
    return query(ledger, arguments)
