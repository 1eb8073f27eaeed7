"""`turnover` of a declaration period, and the `declaration` by country that `declare` prints."""

from __future__ import annotations

import datetime
from typing import Any, cast

import msgspec

from ledger.queries import answers
from ledger.queries.arguments import DeclarationArgs, Query, TurnoverArgs
from ledger.queries.book import book_sales
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.money import format_minor
from projections.turnover import (
    clipped_period,
    declarations,
    declared_amount,
    period_turnover,
    turnover_by_country,
)


def _turnover(ledger: LedgerReader, arguments: TurnoverArgs) -> answers.Turnover:
    """`turnover`: insurable, declared and excluded (by reason) for a period and a country (default: all)."""
    period, country, known_at = arguments.period, arguments.country, arguments.known_at
    currency = ledger.terms().currency
    book = book_sales(ledger, known_at)
    figures = period_turnover(book.sales, period, book.timeline.latest(), country)
    declared = declared_amount(declarations(book.policy, known_at), period, country)
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
        country=msgspec.UNSET if country is None else country,
        finding=finding,
    )


turnover_query = Query(TurnoverArgs, _turnover)


def _declaration(ledger: LedgerReader, arguments: DeclarationArgs) -> answers.Declaration:
    """`declaration`: the insurable turnover of a period by buyer country, as sent to the insurer
    (`declare` prints it as CSV), from the book read model (or every stream read once)."""
    terms = ledger.terms()
    book = book_sales(ledger, arguments.known_at)
    first, last = clipped_period(arguments.period, book.timeline.latest())
    figures = turnover_by_country(book.sales, first, last)
    return answers.Declaration(
        policy=terms.id, period=arguments.period, currency=terms.currency,
        countries=tuple(
            answers.CountryTurnover(country=country, insurable_turnover=format_minor(figures[country].insurable,
                                                                                     terms.currency))
            for country in sorted(figures)
        ),
    )


declaration_query = Query(DeclarationArgs, _declaration)


def declaration_events(declaration: answers.Declaration, effective: datetime.date) -> list[dict[str, Any]]:
    """The `turnover_declared` events that record `declaration` as made on `effective`, one per
    country, in their public form. Each is keyed by period and country, so recording the same
    declaration again records nothing (a correction is an event of its own, with its own key)."""
    return [
        {"type": "turnover_declared", "effective": effective.isoformat(), "period": declaration.period,
         "country": row.country, "amount": row.insurable_turnover, "key": declaration_key(declaration.period, row.country)}
        for row in declaration.countries
    ]


def declaration_key(period: str, country: str) -> str:
    """The key of the declaration `declare --record` makes for a period and country."""
    return f"declared:{period}:{country}"
