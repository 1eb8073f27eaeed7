"""`turnover` of a declaration period, and the declaration by country that `declare` prints."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, cast

import msgspec

from ledger.queries import answers
from ledger.queries.arguments import known_at_argument, period_argument
from ledger.queries.book import book_events, book_sales
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.money import format_minor
from ledger.vocabulary.order import known_at as recorded_by
from projections.terms import TermsTimeline
from projections.turnover import (
    clipped_period,
    declarations,
    declared_amount,
    period_turnover,
    turnover_by_country,
)


def turnover_query(ledger: LedgerReader, arguments: Mapping[str, Any]) -> answers.Turnover:
    """`turnover`: insurable, declared and excluded (by reason) for a period and a country (default: all)."""
    period = period_argument(arguments.get("period"))
    country = arguments.get("country")
    known_at = known_at_argument(arguments)
    currency = ledger.terms().currency
    policy, buyers = book_events(ledger)
    terms = TermsTimeline(recorded_by(policy, known_at))
    figures = period_turnover(book_sales(buyers, terms, known_at), period, terms.latest(), country)
    declared = declared_amount(declarations(policy, known_at), period, country)
    finding: str | msgspec.UnsetType = msgspec.UNSET
    if declared is not None and declared != figures.insurable:
        finding = (
            f"declared {format_minor(declared, currency)} differs from the computed "
            f"{format_minor(figures.insurable, currency)} by {format_minor(declared - figures.insurable, currency)}"
        )
    return answers.Turnover(
        period=period,
        insurable=format_minor(figures.insurable, currency),
        declared="" if declared is None else format_minor(declared, currency),
        excluded={
            cast(answers.ExclusionReason, reason): format_minor(amount, currency)
            for reason, amount in figures.excluded.items()
        },
        country=msgspec.UNSET if country is None else str(country),
        finding=finding,
    )


def declaration_rows(ledger: LedgerReader, period: str, known_at: datetime.datetime | None) -> dict[str, int]:
    """Insurable turnover of `period` by buyer country, every stream read once (for `declare`)."""
    policy, buyers = book_events(ledger)
    terms = TermsTimeline(recorded_by(policy, known_at))
    first, last = clipped_period(period, terms.latest())
    figures = turnover_by_country(book_sales(buyers, terms, known_at), first, last)
    return {country: figures[country].insurable for country in sorted(figures)}
