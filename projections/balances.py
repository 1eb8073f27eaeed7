"""A buyer's book: limit decisions, invoices, and where each payment went.

The ledger checks every command against this state (docs/rules.md, "Events"), and the cover
fold builds on it. `BuyerBook.apply` assumes the event was already accepted;
it never refuses. Allocation (docs/rules.md, "Allocation of payments"): a payment naming an invoice goes
to it; others go to open invoices by due date, then issue date, then recorded
order; what is left is unallocated credit, used by later invoices as issued.

A book is mutable while it folds, for speed; `BuyerBook.sealed()` ends that: the book,
its invoices and its payments refuse every write from then on, and their tables are
read-only views. The cover fold seals its book when it hands out the `BuyerCover`.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import FrozenInstanceError, dataclass, field, fields
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from ledger.vocabulary.events import (
    BuyerRegistered,
    CreditNoteIssued,
    DueDateExtended,
    Event,
    InvoiceIssued,
    LimitCancelled,
    LimitGranted,
    LimitReduced,
    PaymentReceived,
    PaymentReversed,
    RecoveryReceived,
    TopUpPurchased,
)
from ledger.vocabulary.money import Minor


class EventPart(NamedTuple):
    """An event's amount on one invoice (a credit note, a payment's part), for explanations."""

    event: str
    amount: Minor


class _Sealed:
    """Mixed into the sealed twin of a mutable class: every write raises, as on a frozen dataclass.
    (No __slots__ here or in the twins: the twin must keep its class's layout to be swapped in.)"""

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: the fold that made it has ended")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: the fold that made it has ended")

    def __eq__(self, other: object) -> bool:
        """Equal to its unsealed self: sealing changes what may be done with it, not what it is.
        (`dataclasses.replace` and copies are not supported: they write through __setattr__.)"""
        base = type(self).__mro__[2]  # the mutable class, after _Sealed
        if not isinstance(other, base):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(base) if f.compare)

    __hash__ = None  # type: ignore[assignment]  # as the mutable class's: equal values, not one identity


_Value = TypeVar("_Value")


def _seal(value: _Value, sealed_class: type[_Value], **views: object) -> _Value:
    """`value`, its tables replaced by `views`, made read-only in place by turning it into its
    sealed twin (no copy: a fold hands out thousands of these, and this costs nothing while it runs)."""
    for name, view in views.items():
        object.__setattr__(value, name, view)
    value.__class__ = sealed_class
    return value


@dataclass
class InvoiceBalance:
    """One invoice: what was billed, credited and paid, in minor units."""

    invoice: str
    amount: Minor
    due: datetime.date
    delivered: datetime.date
    issued: datetime.date
    order: int  # position in fold order, the last allocation tie-breaker
    credited: Minor = 0
    paid: Minor = 0
    event_id: str = ""
    credit_notes: tuple[EventPart, ...] = ()  # a tuple: rare, and then handed out as it is

    @property
    def balance(self) -> Minor:
        """What is still open on the invoice."""
        return self.amount - self.credited - self.paid


class _SealedInvoiceBalance(_Sealed, InvoiceBalance):
    """A sealed InvoiceBalance: see `BuyerBook.sealed`."""


@dataclass
class PaymentRecord:
    """A payment (or a recovery): the part of it on each invoice, and what is left as credit."""

    event: PaymentReceived | RecoveryReceived
    parts: dict[str, Minor] = field(default_factory=dict)
    unallocated: Minor = 0
    reversed: bool = False

    @property
    def named(self) -> bool:
        return isinstance(self.event, PaymentReceived) and self.event.invoice is not None

    @property
    def is_recovery(self) -> bool:
        return isinstance(self.event, RecoveryReceived)


class _SealedPaymentRecord(_Sealed, PaymentRecord):
    """A sealed PaymentRecord: see `BuyerBook.sealed`."""


@dataclass
class BuyerBook:
    """The state of one buyer after the events folded so far."""

    registered: BuyerRegistered | None = None
    limit: Minor = 0
    limit_non_cancellable: bool = False
    discretionary_withdrawn: bool = False
    invoices: dict[str, InvoiceBalance] = field(default_factory=dict)
    payments: dict[uuid.UUID, PaymentRecord] = field(default_factory=dict)
    payment_keys: dict[str, uuid.UUID] = field(default_factory=dict)
    last_effective: datetime.date | None = None
    folded: int = 0
    # Invoices with a balance, kept as balances change, so that the calendar
    # of the cover fold looks at the few open invoices, not all of them.
    open_ids: dict[str, None] = field(default_factory=dict)
    # Payments naming no invoice with credit still unspent, in fold order: a new
    # invoice takes from these, not from a scan of every payment.
    credit_ids: dict[uuid.UUID, None] = field(default_factory=dict)
    # The top-up layer (docs/rules.md, "Top-up") measures against the limit before the first
    # reduction; a grant starts afresh unless a top-up was bought on it.
    reduction_base: Minor | None = None
    first_reduction: datetime.date | None = None
    top_up_bought: bool = False

    def sealed(self) -> BuyerBook:
        """This book, read-only from now on: nothing folds into it after (see the module's docstring)."""
        for invoice in self.invoices.values():  # inline, not _seal: thousands of them per fold
            invoice.__class__ = _SealedInvoiceBalance
        for record in self.payments.values():
            object.__setattr__(record, "parts", MappingProxyType(record.parts))
            record.__class__ = _SealedPaymentRecord
        return _seal(self, _SealedBuyerBook, invoices=MappingProxyType(self.invoices),
                     payments=MappingProxyType(self.payments), payment_keys=MappingProxyType(self.payment_keys),
                     open_ids=MappingProxyType(self.open_ids), credit_ids=MappingProxyType(self.credit_ids))

    @property
    def unallocated(self) -> Minor:
        """Credit paid beyond everything open, waiting for later invoices."""
        return sum(record.unallocated for record in self.payments.values() if not record.reversed)

    @property
    def outstanding(self) -> Minor:
        """Sum of open balances."""
        return sum(invoice.balance for invoice in self.invoices.values())

    def find_payment(self, reference: str) -> PaymentRecord | None:
        """The payment named by event id or key, if this buyer has it."""
        payment_id = self.payment_keys.get(reference)
        if payment_id is None:
            try:
                payment_id = uuid.UUID(reference)
            except ValueError:
                return None
        record = self.payments.get(payment_id)
        return None if record is None or record.is_recovery else record

    def top_up_for(self, limit: Minor, cap: Minor) -> Minor:
        """The top-up (docs/rules.md, "Top-up"): min(limit before the first reduction - limit, limit, cap), not below 0."""
        if self.reduction_base is None:
            return 0
        return max(0, min(self.reduction_base - limit, limit, cap))

    def _touch(self, invoice: InvoiceBalance) -> None:
        if invoice.balance > 0:
            self.open_ids[invoice.invoice] = None
        else:
            self.open_ids.pop(invoice.invoice, None)

    def open_invoices(self) -> list[InvoiceBalance]:
        """Invoices with a balance, in allocation order (docs/rules.md)."""
        open_ = [self.invoices[name] for name in self.open_ids]
        open_.sort(key=lambda i: (i.due, i.issued, i.order))
        return open_

    def apply(self, event: Event) -> None:
        """Fold one accepted event into the book."""
        self.folded += 1
        if self.last_effective is None or event.effective > self.last_effective:
            self.last_effective = event.effective
        match event:  # the commonest first: a match tries its cases in order
            case PaymentReceived() | RecoveryReceived():
                self._receive(event)
            case InvoiceIssued():
                invoice = InvoiceBalance(
                    invoice=event.invoice, amount=event.amount, due=event.due,
                    delivered=event.delivered, issued=event.effective, order=self.folded, event_id=str(event.id),
                )
                self.invoices[event.invoice] = invoice
                self._touch(invoice)
                self._use_credit()
            case BuyerRegistered():
                self.registered = event
            case LimitGranted():
                self.limit = event.amount
                self.limit_non_cancellable = event.non_cancellable
                if event.basis == "underwriter":
                    self.discretionary_withdrawn = False
                if not self.top_up_bought:
                    self.reduction_base = self.first_reduction = None
            case LimitReduced():
                if self.reduction_base is None:
                    self.reduction_base, self.first_reduction = self.limit, event.effective
                self.limit = event.amount
            case LimitCancelled():
                self.limit = 0
                self.limit_non_cancellable = False
                self.discretionary_withdrawn = True
                self.reduction_base = self.first_reduction = None
                self.top_up_bought = False
            case TopUpPurchased():
                self.top_up_bought = True
            case CreditNoteIssued():
                self.invoices[event.invoice].credited += event.amount
                self.invoices[event.invoice].credit_notes += (EventPart(str(event.id), event.amount),)
                self._touch(self.invoices[event.invoice])
            case PaymentReversed():
                self._reverse(event)
            case DueDateExtended():
                self.invoices[event.invoice].due = event.due
            case _:
                pass

    def _receive(self, event: PaymentReceived | RecoveryReceived) -> None:
        """A payment, or a recovery (docs/rules.md, "Claims": it reduces balances like a payment naming no invoice)."""
        record = PaymentRecord(event)
        self.payments[event.id] = record
        if event.key and isinstance(event, PaymentReceived):
            self.payment_keys[event.key] = event.id
        if isinstance(event, PaymentReceived) and event.invoice is not None:
            self.invoices[event.invoice].paid += event.amount
            self._touch(self.invoices[event.invoice])
            record.parts[event.invoice] = event.amount
            return
        record.unallocated = event.amount
        self._allocate(record)
        if record.unallocated:
            self.credit_ids[event.id] = None

    def _allocate(self, record: PaymentRecord) -> None:
        """Spread what is left of a payment over open invoices in allocation order."""
        for invoice in self.open_invoices():
            if record.unallocated == 0:
                return
            part = min(record.unallocated, invoice.balance)
            invoice.paid += part
            self._touch(invoice)
            record.parts[invoice.invoice] = record.parts.get(invoice.invoice, 0) + part
            record.unallocated -= part

    def _credit(self) -> list[PaymentRecord]:
        """Payments naming no invoice that still count, oldest first (fold order)."""
        return [r for r in self.payments.values() if not r.named and not r.reversed]

    def _use_credit(self) -> None:
        """A new invoice takes unallocated credit, oldest credit first."""
        for payment_id in list(self.credit_ids):
            record = self.payments[payment_id]
            self._allocate(record)
            if not record.unallocated:
                del self.credit_ids[payment_id]

    def _reverse(self, event: PaymentReversed) -> None:
        """The reversal takes effect on its date, then allocation is re-run:
        every payment naming no invoice is spread again, oldest first, over the
        invoices as they now stand (current due dates)."""
        record = self.find_payment(event.payment)
        assert record is not None and not record.reversed and not record.is_recovery
        record.reversed = True
        for record_ in [record, *self._credit()]:
            for invoice, part in record_.parts.items():
                self.invoices[invoice].paid -= part
                self._touch(self.invoices[invoice])
            record_.parts = {}
            record_.unallocated = 0 if record_ is record else record_.event.amount
        for record_ in self._credit():
            self._allocate(record_)
        self.credit_ids = {r.event.id: None for r in self._credit() if r.unallocated}


class _SealedBuyerBook(_Sealed, BuyerBook):
    """A sealed BuyerBook: see `BuyerBook.sealed`."""
