"""`claim` (one buyer's, with `explain` the whole computation) and `claims` (the register)."""

from __future__ import annotations

import functools
from typing import cast

import msgspec

from ledger.queries import answers
from ledger.queries.arguments import ClaimArgs, ClaimsArgs, Query
from ledger.queries.book import claim_of, losses_of
from ledger.queries.book import claims_of as claims_of  # the register, where copy's check and the tests look
from ledger.queries.reading import LedgerReader
from ledger.vocabulary.bulk import collector_paused
from ledger.vocabulary.money import format_minor
from projections.balances import EventPart
from projections.claims import Claim, InsuredInvoice
from projections.cover import why_not_insured


def claim_answer(claim: Claim, currency: str) -> answers.Claim:
    """A claim's figures: money as decimal strings, empty loss_date and cause before a loss."""
    money = functools.partial(format_minor, currency=currency)
    return answers.Claim(
        buyer=claim.buyer,
        loss_date=claim.loss_date.isoformat() if claim.loss_date else "",
        cause=cast(answers.LossCause, claim.cause),
        insured_loss=money(claim.insured_loss), indemnity=money(claim.indemnity),
        retained=money(claim.retained), recovered=money(claim.recovered),
        insurer_recovery=money(claim.insurer_recovery), insured_recovery=money(claim.insured_recovery),
        indemnity_paid=money(claim.indemnity_paid),
        insurer_net_loss=money(claim.insurer_net_loss), insured_net_loss=money(claim.insured_net_loss),
        status=cast(answers.ClaimStatus, claim.status),
    )


def explanation(claim: Claim, currency: str) -> answers.ClaimExplained:
    """The whole computation as data: invoices, deadlines, steps, recoveries, each naming its events."""
    money = functools.partial(format_minor, currency=currency)
    return answers.ClaimExplained(
        **msgspec.structs.asdict(claim_answer(claim, currency)),  # the figures, as `claim` gives them
        loss_event=claim.loss_event,
        filing_due=claim.filing_due.isoformat() if claim.filing_due else "",
        filed=claim.filed.isoformat() if claim.filed else "",
        invoices=tuple(_invoice(line, currency) for line in claim.invoices),
        deadlines=tuple(
            answers.Deadline(kind=cast(answers.DutyKind, deadline.kind), due=deadline.due.isoformat(),
                             status=cast(answers.DutyStatus, deadline.status))
            for deadline in claim.deadlines
        ),
        steps=tuple(
            answers.Step(step=step.name, before=money(step.before), after=money(step.after), rule=step.rule,
                         events=tuple(step.events))
            for step in claim.steps
        ),
        recovery_shares=tuple(
            answers.RecoveryShare(event=share.event, date=share.day.isoformat(), amount=money(share.amount),
                                  insurer=money(share.insurer), insured=money(share.insured))
            for share in claim.recovery_shares
        ),
    )


def _invoice(line: InsuredInvoice, currency: str) -> answers.ClaimInvoice:
    """One invoice behind the loss: its cap and how it was locked, and every amount on it."""
    money = functools.partial(format_minor, currency=currency)

    def parts(pairs: tuple[EventPart, ...]) -> tuple[answers.EventAmount, ...]:
        return tuple(answers.EventAmount(event=part.event, amount=money(part.amount)) for part in pairs)

    entry = line.entry
    return answers.ClaimInvoice(
        invoice=line.invoice, event=line.event, issued=line.issued.isoformat(),
        delivered=line.delivered.isoformat(), due=line.due.isoformat(), amount=money(line.amount),
        limit_decision=answers.LimitDecision(event=line.limit_event, date=line.limit_date.isoformat(),
                                             limit=money(line.limit))
        if line.limit_event and line.limit_date else None,
        cap=money(line.cap), not_insured=why_not_insured(line.not_insured, line.cap), cover_lost=line.cover_lost,
        cap_rule=(f"min(amount {money(line.amount)}, limit {money(entry.limit)} + top-up "
                  f"{money(entry.top_up)} - insured outstanding {money(entry.insured_outstanding)} at entry)")
        if line.not_insured is None else "",
        credit_notes=parts(line.credit_notes), payments=parts(line.payments), recoveries=parts(line.recoveries),
        after_first_indemnity=parts(line.after_indemnity),
        balance=money(line.balance), insured=money(line.insured),
    )


def _claim(ledger: LedgerReader, arguments: ClaimArgs) -> answers.Claim:
    """`claim` for one buyer; with `explain`, the whole computation (an `answers.ClaimExplained`)."""
    buyer = arguments.buyer
    as_of = arguments.as_of or ledger.clock().date()
    currency = ledger.terms().currency
    with collector_paused():
        claim = claim_of(ledger, buyer, as_of, arguments.known_at)
    if arguments.explain:
        return explanation(claim, currency)
    return claim_answer(claim, currency)


claim_query = Query(ClaimArgs, _claim)


def _claims(ledger: LedgerReader, arguments: ClaimsArgs) -> answers.ClaimsRegister:
    """`claims`: the register of the buyers with a loss, in loss-date order."""
    as_of = arguments.as_of or ledger.clock().date()
    with collector_paused():
        register = losses_of(ledger, as_of, arguments.known_at)
    currency = ledger.terms().currency
    return answers.ClaimsRegister(claims=tuple(claim_answer(c, currency) for c in register))


claims_query = Query(ClaimsArgs, _claims)
