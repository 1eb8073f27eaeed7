"""The event vocabulary (docs/rules.md, "Events"): frozen msgspec Structs in one tagged union.

Inside, money is integer minor units of the policy currency and dates are
`datetime.date`. At the edges (files, CLI, JSON output) an event is a plain
mapping with decimal strings: `parse_event` reads one in, `to_public` writes
one out, and the two are inverse, so `log --json` output imports again.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Annotated, Any, ClassVar, Literal, get_args, get_type_hints

import msgspec

from ledger.vocabulary.countries import check_country
from ledger.vocabulary.dates import ISO_TIMESTAMP, parse_iso_date
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.money import (
    MAX_AMOUNT_MINOR,
    Minor,
    format_minor,
    minor_units,
    parse_decimal,
    round_half_up,
    to_minor,
)
from ledger.vocabulary.terms import CURRENCY_CODE, PLAIN_TEXT, PolicyTerms, check_day, parse_policy, terms_to_table

# Identifiers that users type: no control characters, bounded length.
_PERIOD = r"^(19|2\d)\d\d(-Q[1-4]|-(0[1-9]|1[0-2]))?\Z"  # years 1900 to 2999, as every date
# The types bound the length; their patterns are checked by parse_event, the one way in, and
# not on every decode: events read back were checked when recorded, and a regex per field was
# most of the replay's decode time (3.2 us an invoice with them, 0.9 us without).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Country = Annotated[str, msgspec.Meta(min_length=2, max_length=2)]
Period = Annotated[str, msgspec.Meta(min_length=4, max_length=7)]
_TEXT_PATTERNS = ((Name, PLAIN_TEXT), (Ident, PLAIN_TEXT), (Period, _PERIOD))
# What each pattern means, for refusals a person can read.
_PATTERN_WORDS = {
    PLAIN_TEXT: "text without control characters or line breaks",
    _PERIOD: "a declaration period such as 2025, 2025-Q1 or 2025-03 (years 1900 to 2999)",
}

NIL_ID = uuid.UUID(int=0)
MAX_FX_RATE = Decimal(1_000_000)  # policy currency per unit; no real pair comes near
UNRECORDED = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

BuyerKind = Literal["company", "private_individual", "related_company", "public_body"]
LimitBasis = Literal["underwriter", "discretionary"]
Criterion = Literal["credit_report", "trading_history", "bank_reference", "trade_reference"]
Proceeding = Literal["administration", "voluntary_arrangement", "liquidation", "bankruptcy", "chapter_11", "other"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """Fields every event has. `id` and `recorded` are stamped by the ledger."""

    effective: datetime.date
    id: uuid.UUID = NIL_ID
    recorded: datetime.datetime = UNRECORDED
    key: Ident | None = None
    type: ClassVar[str]  # the public type name, e.g. `invoice_issued` (set below from the tag)


class BuyerEvent(Event, frozen=True, kw_only=True):
    """An event about one buyer; it lives in that buyer's stream."""

    buyer: Ident


class PolicyStarted(Event, frozen=True, kw_only=True, tag="policy_started"):
    terms: PolicyTerms


class PolicyAmended(Event, frozen=True, kw_only=True, tag="policy_amended"):
    terms: PolicyTerms


class BuyerRegistered(BuyerEvent, frozen=True, kw_only=True, tag="buyer_registered"):
    name: Name
    country: Country
    kind: BuyerKind = "company"
    excluded: bool = False


class LimitRequested(BuyerEvent, frozen=True, kw_only=True, tag="limit_requested"):
    amount: Minor


class LimitGranted(BuyerEvent, frozen=True, kw_only=True, tag="limit_granted"):
    amount: Minor
    basis: LimitBasis = "underwriter"
    criterion: Criterion | None = None
    non_cancellable: bool = False


class LimitReduced(BuyerEvent, frozen=True, kw_only=True, tag="limit_reduced"):
    amount: Minor


class LimitCancelled(BuyerEvent, frozen=True, kw_only=True, tag="limit_cancelled"):
    pass


class InvoiceIssued(BuyerEvent, frozen=True, kw_only=True, tag="invoice_issued"):
    """`amount` is in the policy currency; a foreign invoice keeps its own
    amount in `foreign_amount` (minor units of `currency`), converted once."""

    invoice: Ident
    amount: Minor
    due: datetime.date
    delivered: datetime.date
    prepaid: bool = False
    currency: str | None = None
    fx_rate: Decimal | None = None
    foreign_amount: Minor | None = None  # minor units of `currency`


class CreditNoteIssued(BuyerEvent, frozen=True, kw_only=True, tag="credit_note_issued"):
    invoice: Ident
    amount: Minor


class PaymentReceived(BuyerEvent, frozen=True, kw_only=True, tag="payment_received"):
    amount: Minor
    invoice: Ident | None = None


class PaymentReversed(BuyerEvent, frozen=True, kw_only=True, tag="payment_reversed"):
    payment: Ident  # the event id or the key of the payment


class DueDateExtended(BuyerEvent, frozen=True, kw_only=True, tag="due_date_extended"):
    invoice: Ident
    due: datetime.date


class OverdueReported(BuyerEvent, frozen=True, kw_only=True, tag="overdue_reported"):
    pass


class OverdueCleared(BuyerEvent, frozen=True, kw_only=True, tag="overdue_cleared"):
    pass


class Insolvency(BuyerEvent, frozen=True, kw_only=True, tag="insolvency"):
    proceeding: Proceeding


class PoliticalEvent(Event, frozen=True, kw_only=True, tag="political_event"):
    country: Country
    description: Name


class ClaimFiled(BuyerEvent, frozen=True, kw_only=True, tag="claim_filed"):
    pass


class IndemnityPaid(BuyerEvent, frozen=True, kw_only=True, tag="indemnity_paid"):
    amount: Minor


class RecoveryReceived(BuyerEvent, frozen=True, kw_only=True, tag="recovery_received"):
    amount: Minor


class TurnoverDeclared(Event, frozen=True, kw_only=True, tag="turnover_declared"):
    period: Period
    country: Country
    amount: Minor


class TopUpPurchased(BuyerEvent, frozen=True, kw_only=True, tag="top_up_purchased"):
    pass


AnyEvent = (
    PolicyStarted | PolicyAmended | BuyerRegistered | LimitRequested | LimitGranted
    | LimitReduced | LimitCancelled | InvoiceIssued | CreditNoteIssued | PaymentReceived
    | PaymentReversed | DueDateExtended | OverdueReported | OverdueCleared | Insolvency
    | PoliticalEvent | ClaimFiled | IndemnityPaid | RecoveryReceived | TurnoverDeclared
    | TopUpPurchased
)
EVENT_TYPES: dict[str, type[Event]] = {
    str(cls.__struct_config__.tag): cls for cls in get_args(AnyEvent)
}
for _name, _cls in EVENT_TYPES.items():
    _cls.type = _name


def _text_checks(cls: type[Event]) -> list[tuple[str, re.Pattern[str]]]:
    """(field, pattern) of each text field of an event type, from its annotation."""
    checks = []
    for name, hint in get_type_hints(cls, include_extras=True).items():
        for alias, pattern in _TEXT_PATTERNS:
            if hint == alias or alias in get_args(hint):
                checks.append((name, re.compile(pattern)))
                break
    return checks


_CHECKED_TEXT = {cls: _text_checks(cls) for cls in EVENT_TYPES.values()}
# Country fields are checked against the ISO list (ledger/vocabulary/countries.py), not a pattern.
_COUNTRY_FIELDS = {
    cls: tuple(name for name, hint in get_type_hints(cls, include_extras=True).items() if hint == Country)
    for cls in EVENT_TYPES.values()
}

# Amounts that must be above 0; the others (limits, declarations) may be 0.
_POSITIVE_AMOUNTS = {
    "invoice_issued", "credit_note_issued", "payment_received",
    "indemnity_paid", "recovery_received",
}
_DATE_FIELDS = ("effective", "due", "delivered")
_VALIDATION_AT = re.compile(r" - at `\$\.?([\w.\[\]]*)`$")


def _validation_error(error: msgspec.ValidationError, type_name: str) -> LedgerError:
    text = str(error)
    match = _VALIDATION_AT.search(text)
    field = match.group(1) if match else None
    message = _VALIDATION_AT.sub("", text)
    if message.startswith("Object contains unknown field"):
        unknown = message.split("`")[1] or '""'  # an empty name would leave the refusal naming nothing
        return LedgerError(f"is not a field of {type_name}", field=unknown)
    if message.startswith("Object missing required field"):
        missing = message.split("`")[1]
        return LedgerError(f"is required for {type_name}", field=missing)
    if message.startswith("Expected `str` matching regex"):
        pattern = message.split("regex ", 1)[1].strip("'").replace("\\\\", "\\")
        message = "expected " + _PATTERN_WORDS.get(pattern, "text of the right form")
    if "Invalid enum value" in message:
        allowed = _allowed_values(field)
        message = message.replace("Invalid enum value", "is not one of " + allowed + ":")
    return LedgerError(message, field=field)


_CHOICES: dict[str, Any] = {
    "kind": BuyerKind, "basis": LimitBasis, "criterion": Criterion, "proceeding": Proceeding,
}


def _allowed_values(field: str | None) -> str:
    choice = _CHOICES.get(field or "")
    return ", ".join(get_args(choice)) if choice else "the allowed values"


def parse_event(raw: Mapping[str, Any], currency: str, *, checked: bool = True) -> Event:
    """Read one event from its public form, refusing bad fields by name.

    `currency` is the policy currency: money arrives as decimal strings and
    leaves as minor units of it. Absent stamps (`id`, `recorded`) stay unset
    for the ledger to assign. Not `checked`: the text patterns and country codes
    are left unchecked (the trusted path of a verified ledger's events, whose hash
    chain vouches for them: `Ledger.record_verified`).
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict asked first: the ABC check is slow
        raise LedgerError(f"an event must be a table of fields, not {type(raw).__name__}")
    data = {str(k): v for k, v in raw.items() if v is not None and v != ""}
    type_name = data.pop("type", None)
    if type_name is None:
        raise LedgerError("is required", field="type")
    cls = EVENT_TYPES.get(str(type_name))
    if cls is None:
        raise LedgerError(f"{type_name!r} is not an event type", field="type")
    if "effective" not in data:
        raise LedgerError(f"is required for {type_name}", field="effective")
    if cls in (PolicyStarted, PolicyAmended):
        data["terms"] = parse_policy(data.get("terms", {}))
        currency = data["terms"].currency
    for name in _DATE_FIELDS:
        if name in data:
            data[name] = _date(data[name], name)
    if "amount" in data:
        amount_currency = currency
        if cls is InvoiceIssued and data.get("currency") not in (None, currency):
            amount_currency = _currency_code(data["currency"])
        data["amount"] = to_minor(
            data["amount"], amount_currency, field="amount", allow_zero=type_name not in _POSITIVE_AMOUNTS
        )
    if cls is InvoiceIssued:
        if "foreign_amount" in data:
            raise LedgerError("is set by the ledger when it converts an invoice; give amount, currency, fx_rate",
                              field="foreign_amount")
        _convert_invoice(data, currency)
    if "recorded" in data:
        data["recorded"] = read_recorded(data["recorded"])
    if type(buyer := data.get("buyer")) is str:  # one string per buyer, not one per event of a large file
        if len(_BUYERS) >= _DAYS_KEPT:
            _BUYERS.clear()
        data["buyer"] = _BUYERS.setdefault(buyer, buyer)
    for name, value in data.items():  # a lone surrogate, from a file decoded with errors allowed
        if not name.isascii() and not _valid_unicode(name):
            raise LedgerError("a field name is not valid Unicode text",
                              field=name.encode("utf-8", "backslashreplace").decode("ascii"))
        if isinstance(value, str) and not value.isascii() and not _valid_unicode(value):
            raise LedgerError("is not valid Unicode text", field=name)
    try:
        event = msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as e:
        raise _validation_error(e, str(type_name)) from None
    if not checked:
        return event
    for name, pattern in _CHECKED_TEXT[cls]:
        value = getattr(event, name)
        if value is not None and not pattern.match(value):
            raise LedgerError("expected " + _PATTERN_WORDS[pattern.pattern], field=name)
    for name in _COUNTRY_FIELDS[cls]:
        check_country(getattr(event, name), name)
    return event


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_recorded(value: Any) -> datetime.datetime:
    """A `recorded` stamp as a file gives it (ISO text with a time zone), in UTC; refused naming `recorded`."""
    if isinstance(value, str):
        if not ISO_TIMESTAMP.match(value):  # fromisoformat alone takes 20251230T0900Z too
            raise LedgerError(f"{value!r} is not a timestamp (write 2025-03-10T09:00:00Z)", field="recorded")
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise LedgerError(f"{value!r} is not a timestamp", field="recorded") from None
    if not isinstance(value, datetime.datetime):
        raise LedgerError(f"{value!r} is not a timestamp", field="recorded")
    if value.tzinfo is None:
        raise LedgerError("needs a time zone (write 2025-03-10T09:00:00Z)", field="recorded")
    try:
        moment = value.astimezone(datetime.UTC)
    except OverflowError:
        raise LedgerError(f"{value} is out of range", field="recorded") from None
    if moment <= UNRECORDED:
        raise LedgerError(f"{format_recorded(moment)} is not after 1970-01-01", field="recorded")
    return moment


def _currency_code(value: Any) -> str:
    if not isinstance(value, str) or not CURRENCY_CODE.match(value):
        raise LedgerError(f"{value!r} is not an ISO 4217 currency code", field="currency")
    return value


_DAYS: dict[str, datetime.date] = {}  # dates read and found in range: a file's few hundred days, read once each
_DAYS_KEPT = 100_000  # entries of each of these caches, at most
_BUYERS: dict[str, str] = {}


def _date(value: Any, field: str) -> datetime.date:
    if type(value) is str and (day := _DAYS.get(value)) is not None:
        return day
    if isinstance(value, str):
        day = check_day(parse_iso_date(value, field), field)
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        _DAYS[value] = day
        return day
    if isinstance(value, datetime.datetime):
        raise LedgerError("is a date, not a timestamp (write 2025-01-01)", field=field)
    if isinstance(value, datetime.date):
        return check_day(value, field)
    raise LedgerError(f"{value!r} is not a valid date (write 2025-01-31)", field=field)


def _convert_invoice(data: dict[str, Any], currency: str) -> None:
    """Foreign invoices are converted once, at issue, half-up (docs/rules.md, "Money")."""
    data.setdefault("delivered", data["effective"])
    foreign = data.get("currency")
    if foreign is None or foreign == currency:
        if "fx_rate" in data:
            raise LedgerError("is only for an invoice in another currency", field="fx_rate")
        data.pop("currency", None)
        return
    if "fx_rate" not in data:
        raise LedgerError(f"an invoice in {foreign} needs fx_rate ({currency} per {foreign})", field="fx_rate")
    rate = parse_decimal(data["fx_rate"], field="fx_rate")
    if not 0 < rate <= MAX_FX_RATE:
        raise LedgerError(f"{rate} is out of range (above 0, at most {MAX_FX_RATE})", field="fx_rate")
    foreign_minor = data["amount"]
    with localcontext() as context:
        # Exact before the one rounding: at the default 28 digits a 30-digit rate could round
        # 100.49999... up to 100.5 first, and then half-up to 101.
        context.prec = 100
        exact = Decimal(foreign_minor).scaleb(-minor_units(foreign)) * rate
        data["amount"] = round_half_up(exact.scaleb(minor_units(currency)))
    data["foreign_amount"] = foreign_minor
    data["fx_rate"] = rate
    if data["amount"] <= 0:
        raise LedgerError("converts to 0 in the policy currency", field="amount")
    if data["amount"] >= MAX_AMOUNT_MINOR:
        raise LedgerError("converts to more than the largest amount the ledger accepts", field="amount")


def to_public(event: Event, currency: str) -> dict[str, Any]:
    """The event as files and JSON show it: decimal strings, ISO dates, both time axes."""
    out: dict[str, Any] = {"type": event.type}
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if value is None or name == "foreign_amount":
            continue
        if name == "amount" and isinstance(event, InvoiceIssued) and event.foreign_amount is not None:
            assert event.currency is not None
            value = format_minor(event.foreign_amount, event.currency)
        elif name == "amount":
            value = format_minor(value, currency)
        elif name == "terms":
            value = terms_to_table(value)
        elif name == "recorded":
            value = format_recorded(value)
        elif name in ("id", "fx_rate"):
            value = str(value)
        out[name] = value
    return out


def format_recorded(moment: datetime.datetime) -> str:
    """Fixed-width UTC text, so that text order is time order (the stored axis)."""
    m = moment.astimezone(datetime.UTC)
    # By hand: strftime does not pad years below 1000, which would break the text order.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def parse_recorded(text: str) -> datetime.datetime:
    """The moment of a stamp written by `format_recorded` (as the store holds it)."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)


# ---------------------------------------------------------------- the fields, in words (append TYPE --help)

_SET_BY_THE_LEDGER = ("id", "recorded", "foreign_amount")
_FIELD_WORDS = {  # by field name, where the name says more than the type
    "effective": "date YYYY-MM-DD, the day it happened",
    "key": "text, 1 to 100 characters: the idempotency key (an event whose key is recorded is skipped)",
    "amount": "decimal amount in the policy currency, e.g. 1500.00 (never a float; no more decimals than "
              "the currency has)",
    "currency": "ISO 4217 currency code, e.g. USD (an invoice in another currency than the policy's)",
    "fx_rate": "decimal, policy currency per unit of currency, e.g. 0.7931",
    "payment": "the event id or the key of the payment",
    "terms": "a [policy] table (load a policy file with creditledger policy load FILE)",
    "delivered": "date YYYY-MM-DD (default: effective)",
}


def field_words(type_name: str) -> list[tuple[str, str]]:
    """Each field a user gives for an event of `type_name`, with its format and whether it is
    required (or its default), read from the event's Struct: `append TYPE --help` lists them."""
    cls = EVENT_TYPES[type_name]
    hints = get_type_hints(cls, include_extras=True)
    rows = []
    for info in msgspec.structs.fields(cls):
        if info.name in _SET_BY_THE_LEDGER:
            continue
        words = _FIELD_WORDS.get(info.name) or _type_words(hints[info.name])
        if info.name == "amount" and type_name == "invoice_issued":
            words = words.replace("in the policy currency", "in the policy currency (or in currency)")
        if info.required and info.name not in ("effective", "delivered"):
            need = "required"
        elif info.name == "effective":
            need = "required (append: default today)"
        elif info.default in (None, msgspec.NODEFAULT) or info.name == "delivered":
            need = "optional"
        else:
            need = f"default {str(info.default).lower() if isinstance(info.default, bool) else info.default}"
        rows.append((info.name, f"{words}; {need}"))
    return rows


def _type_words(hint: Any) -> str:
    """A field's format from its annotation (the aliases above: Ident, Name, Country, Period)."""
    if type(None) in get_args(hint):  # an optional field: the format of what it holds when given
        hint = next(h for h in get_args(hint) if h is not type(None))
    if hint == Country:
        return "ISO 3166-1 alpha-2 country code, e.g. GB"
    if hint == Period:
        return "a declaration period: 2025, 2025-Q1 or 2025-03"
    if hint == Name:
        return "text, 1 to 200 characters"
    if hint == Ident:
        return "text, 1 to 100 characters"
    if _is_literal(hint):
        return "one of " + ", ".join(get_args(hint))
    if hint is bool:
        return "true or false (a bare --flag is true)"
    if hint is datetime.date:
        return "date YYYY-MM-DD"
    return "text"


def _is_literal(hint: Any) -> bool:
    return getattr(hint, "__origin__", None) is Literal


def buyer_of(event: Event) -> str | None:
    """The buyer whose stream holds `event`, or None for policy-wide events."""
    return event.buyer if isinstance(event, BuyerEvent) else None
