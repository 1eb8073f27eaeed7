"""Claims (SPEC 8, 11): the insured loss, the indemnity, recoveries, and why.

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

from ledger.vocabulary.money import format_minor, round_half_up
from ledger.vocabulary.terms import PolicyTerms
from projections.cover import BuyerCover, CapEntry, InvoiceCover
from projections.terms import TermsTimeline


@dataclass(frozen=True)
class InsuredInvoice:
    """One invoice behind an insured loss, and where each amount on it came from."""

    invoice: str
    event: str
    issued: datetime.date
    delivered: datetime.date
    due: datetime.date
    amount: int
    limit_event: str | None
    limit_date: datetime.date | None
    limit: int
    cap: int
    entry: CapEntry  # what the cap was locked from
    not_insured: str | None
    cover_lost: str | None  # why and from when cover ended before the loss, or None
    credit_notes: tuple[tuple[str, int], ...]
    payments: tuple[tuple[str, int], ...]  # (event id, part on this invoice), before the first indemnity
    recoveries: tuple[tuple[str, int], ...]
    after_indemnity: tuple[tuple[str, int], ...]  # payments and recoveries after it: not in the insured loss
    balance: int
    insured: int


@dataclass(frozen=True)
class Step:
    """One step from the insured loss to the indemnity: the amount before and after."""

    name: str
    before: int
    after: int
    rule: str
    events: tuple[str, ...] = ()


@dataclass
class Claim:
    """SPEC 9 `claim` for one buyer, with its explanation."""

    buyer: str
    loss_date: datetime.date | None = None
    cause: str = ""
    loss_event: str | None = None
    insured_loss: int = 0
    indemnity: int = 0
    indemnity_paid: int = 0
    retained: int = 0
    recovered: int = 0
    insurer_recovery: int = 0
    insured_recovery: int = 0
    status: str = "none"
    filing_due: datetime.date | None = None
    filed: datetime.date | None = None
    invoices: list[InsuredInvoice] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    deadlines: list[tuple[str, datetime.date, str]] = field(default_factory=list)
    recovery_shares: list[tuple[str, datetime.date, int, int, int]] = field(default_factory=list)

    @property
    def insurer_net_loss(self) -> int:
        return self.indemnity_paid - self.insurer_recovery

    @property
    def insured_net_loss(self) -> int:
        return self.insured_loss - self.indemnity_paid - self.insured_recovery


def _invoice_line(cover: BuyerCover, name: str, invoice: InvoiceCover, loss_date: datetime.date) -> InsuredInvoice:
    """An invoice as the loss sees it: cap frozen at the loss date, balance at the first indemnity."""
    balance = invoice.balance
    if cover.balances_at_indemnity is not None:
        open_balance = cover.balances_at_indemnity.get(name, 0)
    else:
        open_balance = balance.balance
    lost = invoice.lost_from is not None and invoice.lost_from <= loss_date
    cap = 0 if lost else invoice.cap
    parts = [
        (str(record.event.id), record.parts[name], record.is_recovery)
        for record in cover.book.payments.values()
        if name in record.parts and not record.reversed
    ]
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
        payments=tuple((event, part) for event, part, recovery in before if not recovery),
        recoveries=tuple((event, part) for event, part, recovery in before if recovery),
        after_indemnity=tuple((event, part) for event, part, _ in after),
        balance=open_balance, insured=min(cap, open_balance),
    )


def _loss_order(cover: BuyerCover, positions: Mapping[str, int]) -> tuple[datetime.date, datetime.datetime, int, str]:
    """Losses by date; on one date by the recorded order of the event that caused them (SPEC 11):
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

    aggregate_left: int
    liability_left: int | None
    aggregate_used_by: list[str] = field(default_factory=list)
    liability_used_by: list[str] = field(default_factory=list)


def claims_register(
    covers: Iterable[BuyerCover],
    terms: TermsTimeline,
    max_liability: int | None,
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
    waiting = terms.at(cover.latest_report).protracted_default_days
    return as_of < cover.latest_report + datetime.timedelta(days=waiting)


def _claim(cover: BuyerCover, terms: PolicyTerms, period: _Period, as_of: datetime.date) -> Claim:
    assert cover.loss_date is not None
    loss_date = cover.loss_date
    claim = Claim(buyer=cover.buyer, loss_date=loss_date, cause=cover.loss_cause or "",
                  loss_event=str(cover.loss_event.id) if cover.loss_event else None)
    claim.invoices = [
        _invoice_line(cover, name, invoice, loss_date)
        for name, invoice in cover.invoices.items()
        if invoice.balance.issued <= loss_date and invoice.balance.delivered <= loss_date
    ]
    insured_loss = sum(line.insured for line in claim.invoices)
    claim.insured_loss = insured_loss

    def money(value: int) -> str:
        return format_minor(value, terms.currency)

    behind = [line.event for line in claim.invoices if line.insured]
    if cover.first_indemnity_event is not None:
        behind.append(str(cover.first_indemnity_event.id))
    when = f"at the first indemnity ({cover.first_indemnity})" if cover.first_indemnity else f"at {as_of}"
    steps = [Step("insured loss", 0, insured_loss,
                  f"sum of min(cap, balance): caps frozen at the loss date, balances {when}", tuple(behind))]
    amount = insured_loss
    if terms.cover == "proportional":
        if insured_loss < terms.non_qualifying_loss:
            steps.append(Step("non-qualifying loss", amount, 0,
                              f"insured loss below non_qualifying_loss {money(terms.non_qualifying_loss)}: not payable"))
            amount = 0
        after = max(0, amount - terms.excess)
        steps.append(Step("excess", amount, after, f"minus excess {money(terms.excess)}"))
        amount = after
    else:
        after = max(0, amount - terms.per_loss_deductible)
        steps.append(Step("per-loss deductible", amount, after, f"minus per_loss_deductible {money(terms.per_loss_deductible)}"))
        amount = after
        taken = min(period.aggregate_left, amount)
        steps.append(Step("annual aggregate deductible", amount, amount - taken,
                          f"{money(taken)} taken from the {money(period.aggregate_left)} of the aggregate deductible "
                          "left after the earlier losses of the period", tuple(period.aggregate_used_by)))
        amount -= taken
        period.aggregate_left -= taken
        if taken and claim.loss_event:
            period.aggregate_used_by.append(claim.loss_event)
    paid_share = round_half_up(Decimal(amount) * terms.indemnity_pct / 100)
    steps.append(Step("indemnity percentage", amount, paid_share, f"x {terms.indemnity_pct} %, rounded half-up"))
    amount = paid_share
    claim.filed = cover.claim_filed
    if terms.claim_filing_days is not None:
        claim.filing_due = loss_date + datetime.timedelta(days=terms.claim_filing_days)
        filed_in_time = cover.claim_filed is not None and cover.claim_filed <= claim.filing_due
        if not filed_in_time and claim.filing_due < as_of:
            filed = (str(cover.claim_filed_event.id),) if cover.claim_filed_event else ()
            steps.append(Step("claim filing", amount, 0,
                              f"no claim_filed by {claim.filing_due} (loss date + claim_filing_days "
                              f"{terms.claim_filing_days}): not payable", filed))
            amount = 0
            claim.status = "filing_missed"
    if period.liability_left is not None:
        capped = min(amount, period.liability_left)
        steps.append(Step("maximum liability", amount, capped,
                          f"{money(period.liability_left)} of the maximum liability left after the earlier claims "
                          "of the period", tuple(period.liability_used_by)))
        period.liability_left -= capped
        amount = capped
        if capped and claim.loss_event:
            period.liability_used_by.append(claim.loss_event)
    claim.indemnity = amount
    claim.retained = insured_loss - amount
    claim.steps = steps
    claim.indemnity_paid = cover.indemnity_paid
    claim.deadlines = [(o.kind, o.due, o.status) for o in cover.obligations]
    _share_recoveries(claim, cover, insured_loss)
    if claim.status != "filing_missed":
        claim.status = _status(claim, cover)
    return claim


def _share_recoveries(claim: Claim, cover: BuyerCover, insured_loss: int) -> None:
    """SPEC 8.4, 11: a recovery after an indemnity is shared as the loss was borne; the
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
        claim.recovery_shares.append((str(recovery.id), recovery.effective, recovery.amount, insurer, insured))


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
