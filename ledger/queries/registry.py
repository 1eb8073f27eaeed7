"""The one registry of queries, by name: what the scenario runner and (later) the HTTP API call.

Each query reads its typed arguments (`query.arguments`, a Struct of `ledger.queries.arguments`)
from a mapping of what users give and returns its answer, a frozen Struct of
`ledger.queries.answers`. Where an argument changes the answer's shape (`exposure` with a
`buyer`, `claim` with `explain`), `answers.SCHEMAS` names the Struct of each form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ledger.queries.arguments import Query
from ledger.queries.claims import claim_query, claims_query
from ledger.queries.exposure import exposure_diff_query, exposure_query
from ledger.queries.obligations import obligations_query
from ledger.queries.premium import premium_query
from ledger.queries.reading import LedgerReader
from ledger.queries.summary import summary_query
from ledger.queries.turnover import declaration_query, turnover_query
from ledger.vocabulary.errors import LedgerError

QUERIES: dict[str, Query[Any, Any]] = {
    "summary": summary_query,
    "exposure": exposure_query,
    "exposure_diff": exposure_diff_query,
    "obligations": obligations_query,
    "turnover": turnover_query,
    "declaration": declaration_query,
    "premium": premium_query,
    "claim": claim_query,
    "claims": claims_query,
}


def run_query(name: str, ledger: LedgerReader, arguments: Mapping[str, Any]) -> msgspec.Struct:
    """Answer query `name`, or refuse saying it is not one."""
    query = QUERIES.get(name)
    if query is None:
        raise LedgerError(f"{name!r} is not a query (one of {', '.join(QUERIES)})", field="query")
    answer: msgspec.Struct = query(ledger, arguments)
    return answer
