"""`premium`: the premium account up to `as_of`, by kind, with tax, total and every line."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, cast

import msgspec

from ledger.queries import answers
from ledger.queries.arguments import as_of_argument, known_at_argument
from ledger.queries.book import account_lines, book_events, book_sales, terms_timeline
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.money import format_minor
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import buyer_cover
from projections.lines import PremiumLine
from projections.premium import maximum_liability, minimum_premium, summarise


def premium_account(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> tuple[PolicyTerms, list[PremiumLine]]:
    """Every premium, fee and top-up line of the policy, as known at `known_at`: the book read
    in one pass, as `fold_book` reads it, folding only the covers of the buyers with a top-up."""
    policy, buyers = book_events(ledger)
    timeline = terms_timeline(policy, known_at)
    terms = timeline.at(as_of)
    sales = book_sales(buyers, timeline, known_at)
    return terms, account_lines(
        terms, sales, policy, buyers, known_at, lambda buyer, events: buyer_cover(buyer, events, policy, as_of, known_at)
    )


def line_answer(line: PremiumLine, currency: str) -> answers.PremiumLine:
    """One line; the period, country, buyer, basis and rate only where the line has them."""
    unset = msgspec.UNSET
    return answers.PremiumLine(
        date=line.day.isoformat(),
        kind=cast(answers.LineKind, line.kind),
        amount=format_minor(line.amount, currency),
        tax=format_minor(line.tax, currency),
        period=line.period or unset,
        country=line.country or unset,
        buyer=line.buyer or unset,
        basis=format_minor(line.basis, currency) if line.basis else unset,
        rate=str(line.rate) if line.rate else unset,
    )


def premium_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> answers.Premium:
    """`premium`: what was invoiced up to as_of, by kind, with tax and total; the minimum premium,
    the maximum liability, and the lines dated up to as_of."""
    as_of = as_of_argument(arguments, ledger.clock().date())
    known_at = known_at_argument(arguments)
    terms, lines = premium_account(ledger, as_of, known_at)
    currency = terms.currency
    totals = {name: format_minor(amount, currency) for name, amount in summarise(lines, as_of).items()}
    cap = maximum_liability(terms, lines, as_of)
    return answers.Premium(
        **totals,
        minimum=format_minor(minimum_premium(terms), currency),
        max_liability="" if cap is None else format_minor(cap, currency),
        lines=[line_answer(line, currency) for line in lines if line.day <= as_of],
    )
