"""`obligations`: each duty with its due date and status, by due date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ledger.queries import answers
from ledger.queries.arguments import as_of_argument, known_at_argument
from ledger.queries.book import book_covers, cover_of
from ledger.queries.reading import LedgerReader
from projections.cover import Obligation
from projections.exposure import declaration_duties


def obligation_answer(obligation: Obligation) -> answers.Obligation:
    kind = cast(answers.DutyKind, obligation.kind)
    status = cast(answers.DutyStatus, obligation.status)
    due = obligation.due.isoformat()
    if obligation.buyer is None:
        return answers.Obligation(kind=kind, due=due, status=status)
    return answers.Obligation(kind=kind, due=due, status=status, buyer=obligation.buyer)


def obligations_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> answers.Obligations:
    """`obligations` of one buyer, or of the book and the policy: by due date, then kind, then buyer."""
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    buyer = arguments.get("buyer")
    if buyer is not None:
        duties = list(cover_of(ledger, str(buyer), as_of, known_at).obligations)
    else:
        duties = [duty for cover in book_covers(ledger, as_of, known_at) for duty in cover.obligations]
        duties += declaration_duties(ledger.policy_events(), as_of, known_at)
    duties.sort(key=lambda d: (d.due, d.kind, d.buyer or ""))
    return answers.Obligations(obligations=[obligation_answer(duty) for duty in duties])
