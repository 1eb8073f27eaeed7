"""`obligations`: each duty with its due date and status, by due date."""

from __future__ import annotations

import datetime
from typing import cast

from ledger.queries import answers
from ledger.queries.arguments import ObligationsArgs, Query
from ledger.queries.book import book_covers, cover_of
from ledger.queries.reading import LedgerReader
from projections.cover import Obligation
from projections.exposure import book_obligations


def obligation_answer(obligation: Obligation) -> answers.Obligation:
    kind = cast(answers.DutyKind, obligation.kind)
    status = cast(answers.DutyStatus, obligation.status)
    due = obligation.due.isoformat()
    if obligation.buyer is None:
        return answers.Obligation(kind=kind, due=due, status=status)
    return answers.Obligation(kind=kind, due=due, status=status, buyer=obligation.buyer)


def _obligations(ledger: LedgerReader, arguments: ObligationsArgs) -> answers.Obligations:
    """`obligations` of one buyer, or of the book and the policy: missed first, then by due date,
    kind and buyer; with `open`, only the missed and pending ones (not the met); with
    `due_within`, only those due by as_of + that many days."""
    as_of = arguments.as_of or ledger.clock().date()
    known_at = arguments.known_at
    if arguments.buyer is not None:
        duties = book_obligations([cover_of(ledger, arguments.buyer, as_of, known_at)], (), as_of, known_at)
    else:
        covers = book_covers(ledger, as_of, known_at)  # not `read_book`: see there why
        duties = book_obligations(covers, ledger.policy_events(), as_of, known_at)
    if arguments.open:
        duties = [duty for duty in duties if duty.status != "met"]
    if arguments.due_within is not None:
        last = as_of + datetime.timedelta(days=arguments.due_within)
        duties = [duty for duty in duties if duty.due <= last]
    return answers.Obligations(obligations=tuple(obligation_answer(duty) for duty in duties))


obligations_query = Query(ObligationsArgs, _obligations)
