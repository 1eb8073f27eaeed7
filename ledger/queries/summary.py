"""`summary`: counts and totals of the whole ledger, folded from every event."""

from __future__ import annotations

import datetime
from collections import Counter

from ledger.queries import answers
from ledger.queries.arguments import Query, SummaryArgs
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.events import BuyerRegistered, format_recorded
from ledger.vocabulary.money import format_minor


def _summary(ledger: LedgerReader, arguments: SummaryArgs) -> answers.Summary:
    """The policy, events by type, registered buyers by country, the sum of `amount` by event
    type, and the first and last recorded stamps (takes no arguments)."""
    terms = ledger.terms()
    counts: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    first: datetime.datetime | None = None
    last: datetime.datetime | None = None
    for event in ledger.events():
        counts[event.type] += 1
        amount = getattr(event, "amount", None)
        if isinstance(amount, int):
            totals[event.type] += amount
        if isinstance(event, BuyerRegistered):
            countries[event.country] += 1
        first = event.recorded if first is None else first
        last = event.recorded
    return answers.Summary(
        policy=terms.id, insured=terms.insured, currency=terms.currency,
        period=(terms.start.isoformat(), terms.end.isoformat()),
        events=sum(counts.values()), by_type=dict(sorted(counts.items())),
        buyers_by_country=dict(sorted(countries.items())),
        amounts={name: format_minor(value, terms.currency) for name, value in sorted(totals.items())},
        recorded_from=format_recorded(first) if first else None,
        recorded_to=format_recorded(last) if last else None,
        head=answers.Head(*ledger.head()),
    )


summary_query = Query(SummaryArgs, _summary)
