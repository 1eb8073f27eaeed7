"""`premium`: the premium account up to `as_of`, by kind, with tax, total and every line."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import cast

import msgspec

from ledger.queries import answers
from ledger.queries.arguments import PremiumArgs, Query
from ledger.queries.book import account_lines, book_now, bought_top_up, in_account_order, read_book
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.bulk import collector_paused
from ledger.vocabulary.dates import period_bounds
from ledger.vocabulary.money import Minor, format_minor
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import buyer_cover
from projections.exposure import policy_periods
from projections.lines import PremiumLine
from projections.premium import fees_of, maximum_liability, minimum_premium, premium_lines, summarise
from projections.turnover import declarations


def premium_account(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> tuple[PolicyTerms, list[PremiumLine]]:
    """Every premium, fee and top-up line of the policy, as known at `known_at`: from the book
    read model (the book's sales, each buyer's fee basis), folding only the covers of the buyers
    with a top-up (their top-up lines); as known at an earlier time, the book read once."""
    now = book_now(ledger, known_at)
    if now is None:
        return premium_folded(ledger, as_of, known_at)
    terms = now.timeline.at(as_of)
    lines = premium_lines(terms, now.sales, declarations(now.policy, None))
    lines += fees_of(terms, (facts.fees for facts in now.facts.values()))
    top_ups = [buyer_cover(buyer, ledger.buyer_events(buyer), now.policy, as_of, None)
               for buyer, facts in now.facts.items() if facts.top_up]
    return terms, in_account_order(lines, top_ups)


def premium_folded(
    ledger: LedgerReader, as_of: datetime.date, known_at: datetime.datetime | None
) -> tuple[PolicyTerms, list[PremiumLine]]:
    """`premium_account` read from the whole log as known at `known_at` (no read model)."""
    book = read_book(ledger, known_at)
    terms = book.timeline.at(as_of)
    covers = {
        buyer: buyer_cover(buyer, events, book.policy, as_of, known_at)
        for buyer, events in book.buyers.items() if bought_top_up(events)
    }
    return terms, account_lines(book, terms, covers)


def line_answer(line: PremiumLine, money: Callable[[Minor], str]) -> answers.PremiumLine:
    """One line (`money` formats its amounts); the period, country, buyer, basis and rate only
    where the line has them."""
    unset = msgspec.UNSET
    return answers.PremiumLine(
        date=line.day.isoformat(),
        kind=cast(answers.LineKind, line.kind),
        amount=money(line.amount),
        tax=money(line.tax),
        period=line.period or unset,
        country=line.country or unset,
        buyer=line.buyer or unset,
        basis=money(line.basis) if line.basis else unset,
        rate=str(line.rate) if line.rate else unset,
    )


def _premium(ledger: LedgerReader, arguments: PremiumArgs) -> answers.Premium:
    """`premium`: what was invoiced up to as_of, by kind, with tax and total; the minimum premium,
    the maximum liability, and (with `lines`) the lines dated up to as_of."""
    as_of = arguments.as_of or ledger.clock().date()
    with collector_paused():
        terms, lines = premium_account(ledger, as_of, arguments.known_at)
    money = functools.partial(format_minor, currency=terms.currency)
    amounts = functools.cache(money)  # the lines' amounts: the fees of a zone, repeated thousands of times
    totals = summarise(lines, as_of)
    cap = maximum_liability(terms, lines, as_of)
    chosen = chosen_lines(lines, as_of, arguments, terms)
    return answers.Premium(
        premium=money(totals["premium"]), adjustment=money(totals["adjustment"]),
        investigation_fees=money(totals["investigation_fees"]), monitoring_fees=money(totals["monitoring_fees"]),
        top_up=money(totals["top_up"]), tax=money(totals["tax"]), total=money(totals["total"]),
        minimum=money(minimum_premium(terms)),
        max_liability="" if cap is None else money(cap),
        lines=tuple(line_answer(line, amounts) for line in chosen) if arguments.lines else msgspec.UNSET,
        groups=line_groups(chosen, arguments.by, terms) if arguments.by else msgspec.UNSET,
    )


def chosen_lines(
    lines: list[PremiumLine], as_of: datetime.date, arguments: PremiumArgs, terms: PolicyTerms
) -> list[PremiumLine]:
    """The lines dated up to as_of of the kinds asked for (all by default) that bill a period
    inside `arguments.period` (a line billing no period: by its date)."""
    first, last = period_bounds(arguments.period) if arguments.period else (datetime.date.min, datetime.date.max)
    bounds = functools.cache(period_bounds)
    chosen = []
    for line in lines:
        if line.day > as_of or (arguments.kind is not None and line.kind not in arguments.kind):
            continue
        billed = bounds(line.period) if line.period else (line.day, line.day)
        if first <= billed[0] and billed[1] <= last:
            chosen.append(line)
    return chosen


def line_groups(lines: list[PremiumLine], by: str, terms: PolicyTerms) -> tuple[answers.LineGroup, ...]:
    """The lines summed by kind, by period (a line billing none: the declaration period of its
    date) or by buyer ("" for the policy's own lines), in key order."""
    periods = policy_periods(terms)

    def key(line: PremiumLine) -> str:
        if by == "kind":
            return line.kind
        if by == "buyer":
            return line.buyer or ""
        return line.period or next((p.name for p in periods if p.first <= line.day <= p.last), line.day.isoformat())

    sums: dict[str, list[int]] = {}
    for line in lines:
        found = sums.setdefault(key(line), [0, 0, 0])
        found[0] += 1
        found[1] += line.amount
        found[2] += line.tax
    money = functools.partial(format_minor, currency=terms.currency)
    return tuple(answers.LineGroup(key=name, lines=count, amount=money(amount), tax=money(tax))
                 for name, (count, amount, tax) in sorted(sums.items()))


premium_query = Query(PremiumArgs, _premium)
