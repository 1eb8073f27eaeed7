"""Claims (docs/rules.md, "Claims"): the insured loss, the indemnity, recoveries, and why.

`claims_register` takes every buyer's cover state and returns one `Claim` per
buyer with a loss, in loss-date order: the aggregate deductible (excess of
loss) and the maximum liability are consumed across the policy period in
that order. Every figure comes with the steps that produced it and the
events each step rests on, so that an auditor can check it by hand.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import msgspec

from ledger.vocabulary.money import Minor, format_minor, round_half_up
from ledger.vocabulary.terms import PolicyTerms
from projections.balances import EventPart
from projections.cover import BuyerCover, CapEntry, InvoiceCover
from projections.terms import TermsTimeline


class Deadline(msgspec.Struct, frozen=True):
    """A duty of the claim's buyer: its kind, due date and status."""

    kind: str
    due: datetime.date
    status: str


class RecoveryShare(NamedTuple):
    """A recovery after the first indemnity, shared as the loss was borne (docs/rules.md, "Claims")."""

    event: str
    day: datetime.date
    amount: Minor
    insurer: Minor
    insured: Minor


@dataclass(frozen=True)
class InsuredInvoice:
    """One invoice behind an insured loss, and where each amount on it came from."""

    invoice: str
    event: str
    issued: datetime.date
    delivered: datetime.date
    due: datetime.date
    amount: Minor
    limit_event: str | None
    limit_date: datetime.date | None
    limit: Minor
    cap: Minor
    entry: CapEntry  # what the cap was locked from
    not_insured: str | None
    cover_lost: str | None  # why and from when cover ended before the loss, or None
    credit_notes: tuple[EventPart, ...]
    payments: tuple[EventPart, ...]  # each payment's part on this invoice, before the first indemnity
    recoveries: tuple[EventPart, ...]
    after_indemnity: tuple[EventPart, ...]  # payments and recoveries after it: not in the insured loss
    balance: Minor
    insured: Minor


@dataclass(frozen=True)
class Step:
    """One step from the insured loss to the indemnity: the amount before and after."""

    name: str
    before: Minor
    after: Minor
    rule: str
    events: tuple[str, ...] = ()


@dataclass
class Claim:
    """The `claim` query's figures for one buyer, with its explanation."""

    buyer: str
    loss_date: datetime.date | None = None
    cause: str = ""
    loss_event: str | None = None
    insured_loss: Minor = 0
    indemnity: Minor = 0
    indemnity_paid: Minor = 0
    retained: Minor = 0
    recovered: Minor = 0
    insurer_recovery: Minor = 0
    insured_recovery: Minor = 0
    status: str = "none"
    filing_due: datetime.date | None = None
    filed: datetime.date | None = None
    invoices: list[InsuredInvoice] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    recovery_shares: list[RecoveryShare] = field(default_factory=list)

    @property
    def insurer_net_loss(self) -> Minor:
        return self.indemnity_paid - self.insurer_recovery

    @property
    def insured_net_loss(self) -> Minor:
        return self.insured_loss - self.indemnity_paid - self.insured_recovery


PaymentPart = tuple[str, Minor, bool]  # a payment's (or recovery's) event id, its part on an invoice, whether a recovery


def _payment_parts(cover: BuyerCover) -> dict[str, list[PaymentPart]]:
    """Each invoice's parts of the payments and recoveries not reversed, in payment order:
    read once per claim, not once per invoice (a buyer's year holds hundreds of each)."""
    parts: dict[str, list[PaymentPart]] = {}
    for record in cover.book.payments.values():
        if not record.reversed:
            event = str(record.event.id)
            for name, part in record.parts.items():
                parts.setdefault(name, []).append((event, part, record.is_recovery))
    return parts


def _invoice_line(
    cover: BuyerCover, name: str, invoice: InvoiceCover, loss_date: datetime.date, parts: Sequence[PaymentPart]
) -> InsuredInvoice:
    """An invoice as the loss sees it: cap frozen at the loss date, balance at the first indemnity;
    `parts`: the invoice's parts of the payments and recoveries (`_payment_parts`)."""
    balance = invoice.balance
    if cover.balances_at_indemnity is not None:
        open_balance = cover.balances_at_indemnity.get(name, 0)
    else:
        open_balance = balance.balance
    lost = invoice.lost_from is not None and invoice.lost_from <= loss_date
    cap = 0 if lost else invoice.cap
    snapshot = cover.balances_at_indemnity is not None
    before = [p for p in parts if not snapshot or p[0] in cover.payments_before_indemnity]
    after = [p for p in parts if snapshot and p[0] not in cover.payments_before_indemnity]
    decision = invoice.decision
    return InsuredInvoice(
        invoice=name, event=balance.event_id, issued=balance.issued, delivered=balance.delivered, due=balance.due,
        amount=balance.amount,
        limit_event=str(decision.event.id) if decision else None,
        limit_date=decision.effective if decision else None,
        limit=decision.amount if decision else 0,
        cap=cap, entry=invoice.entry, not_insured=invoice.not_insured,
        cover_lost=f"{invoice.lost_reason}, uninsured from {invoice.lost_from}" if lost else None,
        credit_notes=tuple(balance.credit_notes),
        payments=tuple(EventPart(event, part) for event, part, recovery in before if not recovery),
        recoveries=tuple(EventPart(event, part) for event, part, recovery in before if recovery),
        after_indemnity=tuple(EventPart(event, part) for event, part, _ in after),
        balance=open_balance, insured=min(cap, open_balance),
    )


def _loss_order(cover: BuyerCover, positions: Mapping[str, int]) -> tuple[datetime.date, datetime.datetime, int, str]:
    """Losses by date; on one date by the recorded order of the event that caused them (docs/rules.md):
    its stamp, then its place in the log (`positions`, by event id; many events share a stamp)."""
    assert cover.loss_date is not None
    latest = datetime.datetime.max.replace(tzinfo=datetime.UTC)
    event = cover.loss_event
    recorded = event.recorded if event is not None else latest
    position = positions.get(str(event.id), 0) if event is not None else 0
    return (cover.loss_date, recorded, position, cover.buyer)


@dataclass
class _Period:
    """What the claims of one policy period share: the aggregate deductible and the
    maximum liability left, and the losses that used them."""

    aggregate_left: Minor
    liability_left: Minor | None
    aggregate_used_by: list[str] = field(default_factory=list)
    liability_used_by: list[str] = field(default_factory=list)


def claims_register(
    covers: Iterable[BuyerCover],
    terms: TermsTimeline,
    max_liability: Minor | None,
    as_of: datetime.date,
    positions: Mapping[str, int] | None = None,
) -> list[Claim]:
    """Every buyer's claim, in loss-date order; buyers without a loss answer `none` / `watch`.

    Each claim uses the terms in force on its loss date; the period's aggregate
    deductible and maximum liability are shared in loss-date order.
    """
    covers = list(covers)
    order = positions or {}
    with_loss = sorted(
        (c for c in covers if c.loss_date is not None and c.loss_date <= as_of), key=lambda c: _loss_order(c, order)
    )
    period = _Period(terms.at(as_of).annual_aggregate_deductible, max_liability)
    claims = [_claim(cover, terms.at(cover.loss_date or as_of), period, as_of) for cover in with_loss]
    for cover in covers:
        if cover.loss_date is None or cover.loss_date > as_of:
            claims.append(Claim(buyer=cover.buyer, status="watch" if _watching(cover, terms, as_of) else "none"))
    return claims


def _watching(cover: BuyerCover, terms: TermsTimeline, as_of: datetime.date) -> bool:
    """A protracted-default clock runs: a report in force whose waiting period has not ended."""
    if cover.latest_report is None:
        return False
    return as_of < terms.at(cover.latest_report).protracted_default_on(cover.latest_report)


def _claim(cover: BuyerCover, terms: PolicyTerms, period: _Period, as_of: datetime.date) -> Claim:
    """One buyer's claim: the insured loss, then each step to the indemnity, each with its rule."""
    assert cover.loss_date is not None
    loss_date = cover.loss_date
    claim = Claim(buyer=cover.buyer, loss_date=loss_date, cause=cover.loss_cause or "",
                  loss_event=str(cover.loss_event.id) if cover.loss_event else None)
    parts = _payment_parts(cover)
    claim.invoices = [
        _invoice_line(cover, name, invoice, loss_date, parts.get(name, ()))
        for name, invoice in cover.invoices.items()
        if invoice.balance.issued <= loss_date and invoice.balance.delivered <= loss_date
    ]
    insured_loss = claim.insured_loss = sum(line.insured for line in claim.invoices)
    steps = [_insured_loss_step(claim, cover, as_of)]
    if terms.cover == "proportional":
        _proportional_steps(steps, terms)
    else:
        _deductible_steps(steps, terms, period, claim.loss_event)
    amount = steps[-1].after
    paid_share = round_half_up(Decimal(amount) * terms.indemnity_pct / 100)
    steps.append(Step("indemnity percentage", amount, paid_share, f"x {terms.indemnity_pct} %, rounded half-up"))
    claim.filed = cover.claim_filed
    _filing_step(steps, claim, cover, terms, as_of)
    _liability_step(steps, terms, period, claim.loss_event)
    claim.indemnity = steps[-1].after
    claim.retained = insured_loss - claim.indemnity
    claim.steps = steps
    claim.indemnity_paid = cover.indemnity_paid
    claim.deadlines = [Deadline(o.kind, o.due, o.status) for o in cover.obligations]
    _share_recoveries(claim, cover, insured_loss)
    if claim.status != "filing_missed":
        claim.status = _status(claim, cover)
    return claim


def _insured_loss_step(claim: Claim, cover: BuyerCover, as_of: datetime.date) -> Step:
    behind = [line.event for line in claim.invoices if line.insured]
    if cover.first_indemnity_event is not None:
        behind.append(str(cover.first_indemnity_event.id))
    when = f"at the first indemnity ({cover.first_indemnity})" if cover.first_indemnity else f"at {as_of}"
    return Step("insured loss", 0, claim.insured_loss,
                f"sum of min(cap, balance): caps frozen at the loss date, balances {when}", tuple(behind))


def _proportional_steps(steps: list[Step], terms: PolicyTerms) -> None:
    """A proportional policy: nothing below the non-qualifying loss, then the excess."""
    insured_loss = amount = steps[-1].after
    if insured_loss < terms.non_qualifying_loss:
        steps.append(Step("non-qualifying loss", amount, 0, f"insured loss below non_qualifying_loss "
                          f"{format_minor(terms.non_qualifying_loss, terms.currency)}: not payable"))
        amount = 0
    steps.append(Step("excess", amount, max(0, amount - terms.excess),
                      f"minus excess {format_minor(terms.excess, terms.currency)}"))


def _deductible_steps(steps: list[Step], terms: PolicyTerms, period: _Period, loss_event: str | None) -> None:
    """An excess-of-loss policy: the per-loss deductible, then what is left of the period's aggregate."""
    def money(value: Minor) -> str:
        return format_minor(value, terms.currency)

    amount = steps[-1].after
    after = max(0, amount - terms.per_loss_deductible)
    steps.append(Step("per-loss deductible", amount, after, f"minus per_loss_deductible {money(terms.per_loss_deductible)}"))
    amount = after
    taken = min(period.aggregate_left, amount)
    steps.append(Step("annual aggregate deductible", amount, amount - taken,
                      f"{money(taken)} taken from the {money(period.aggregate_left)} of the aggregate deductible "
                      "left after the earlier losses of the period", tuple(period.aggregate_used_by)))
    period.aggregate_left -= taken
    if taken and loss_event:
        period.aggregate_used_by.append(loss_event)


def _filing_step(steps: list[Step], claim: Claim, cover: BuyerCover, terms: PolicyTerms, as_of: datetime.date) -> None:
    """No claim filed within claim_filing_days of the loss, once that has passed: nothing payable."""
    assert claim.loss_date is not None
    filing_due = claim.filing_due = terms.claim_filing_due(claim.loss_date)
    if filing_due is None:
        return
    amount = steps[-1].after
    filed_in_time = cover.claim_filed is not None and cover.claim_filed <= filing_due
    if not filed_in_time and filing_due < as_of:
        filed = (str(cover.claim_filed_event.id),) if cover.claim_filed_event else ()
        steps.append(Step("claim filing", amount, 0,
                          f"no claim_filed by {filing_due} (loss date + claim_filing_days "
                          f"{terms.claim_filing_days}): not payable", filed))
        claim.status = "filing_missed"


def _liability_step(steps: list[Step], terms: PolicyTerms, period: _Period, loss_event: str | None) -> None:
    """What is left of the period's maximum liability caps the indemnity."""
    if period.liability_left is None:
        return
    amount = steps[-1].after
    capped = min(amount, period.liability_left)
    steps.append(Step("maximum liability", amount, capped,
                      f"{format_minor(period.liability_left, terms.currency)} of the maximum liability left after "
                      "the earlier claims of the period", tuple(period.liability_used_by)))
    period.liability_left -= capped
    if capped and loss_event:
        period.liability_used_by.append(loss_event)


def _share_recoveries(claim: Claim, cover: BuyerCover, insured_loss: Minor) -> None:
    """A recovery after an indemnity is shared as the loss was borne; the
    insurer's share (on the indemnities paid) is rounded half-up, the insured gets the rest."""
    for shared in cover.recoveries:
        recovery = shared.event
        if not shared.after_indemnity or insured_loss == 0:
            continue
        insurer = min(recovery.amount, round_half_up(Decimal(recovery.amount) * cover.indemnity_paid / insured_loss))
        insured = recovery.amount - insurer
        claim.recovered += recovery.amount
        claim.insurer_recovery += insurer
        claim.insured_recovery += insured
        claim.recovery_shares.append(RecoveryShare(str(recovery.id), recovery.effective, recovery.amount, insurer, insured))


def _status(claim: Claim, cover: BuyerCover) -> str:
    """open (a loss, no claim yet) / filed / paid (the indemnity is paid in full)."""
    if cover.indemnity_paid and cover.indemnity_paid >= claim.indemnity:
        return "paid"
    if cover.claim_filed is not None:
        return "filed"
    return "open"


def claim_for(register: Sequence[Claim], buyer: str) -> Claim:
    """The buyer's claim from the register."""
    for claim in register:
        if claim.buyer == buyer:
            return claim
    return Claim(buyer=buyer)
