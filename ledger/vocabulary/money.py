"""Money at the edges (decimal strings) and inside (integer minor units).

Rounding is half-up to the minor unit, once per computed line (docs/rules.md, "Money"); an
input with more decimals than the currency allows is refused, never rounded.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import TypeAlias

from ledger.vocabulary.errors import LedgerError

Minor: TypeAlias = int
"""An amount in integer minor units of its currency (pence for GBP, yen for JPY): every money
field inside the ledger. An alias, not a NewType, so it costs nothing at run time and stored
events keep their plain integers."""

# ISO 4217 minor units for the currencies that differ from the usual 2.
_MINOR_UNITS = {
    "BHD": 3, "CLP": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
    "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "TND": 3, "UGX": 0, "VND": 0,
}
# A limit on everything: no single amount reaches a quadrillion minor units.
MAX_AMOUNT_MINOR = 10**15
MAX_EXPONENT = 30  # no amount or rate needs a power of ten beyond +-30
# Decimal strings as documented (docs/rules.md, "Money"): digits, then a point and digits. Decimal()
# alone also takes "+5", ".5", "5.", "1e2", "1_000" and Arabic-Indic digits. A minus is read, so that
# a negative amount is refused as negative.
_DECIMAL_TEXT = re.compile(r"-?\d+(\.\d+)?", re.ASCII)
# Enough digits for any accepted input (40 characters, exponent within +-30) to stay exact:
# the default context (28 digits) would round 1.000...0001 (30 places) before the decimals check.
_EXACT_DIGITS = 100


def minor_units(currency: str) -> int:
    """Number of decimals of `currency` (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency, 2)


def parse_decimal(value: object, *, field: str) -> Decimal:
    """A finite Decimal from a string or int; floats are refused (never exact)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise LedgerError(
            f"{value!r} is not a decimal string (money and rates are written like \"1500.00\")",
            field=field,
        )
    if isinstance(value, int) and not -(10**40) < value < 10**40:  # str() of a 5000-digit int raises
        raise LedgerError("is too long for a number", field=field)
    text = str(value).strip()
    if len(text) > 40:
        raise LedgerError(f"{text[:20]}... is too long for a number", field=field)
    if text.lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
        raise LedgerError(f"{text!r} is not a finite number", field=field)
    if not _DECIMAL_TEXT.fullmatch(text):
        raise LedgerError(f"{text!r} is not a decimal number (write it like \"1500.00\": digits, and a point "
                          "followed by digits)", field=field)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise LedgerError(f"{text!r} is not a decimal number", field=field) from None
    if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        # Refused before any arithmetic: 1e999999 would overflow or take minutes.
        raise LedgerError(f"{text!r} is out of range for an amount or a rate", field=field)
    return number


# The common well-formed amount ("1500.00"): read without Decimal, anything else (a sign, spaces,
# zero, more decimals than the currency has, 16 digits or more) takes the full reading below.
_PLAIN_AMOUNT = re.compile(r"(\d{1,15})(?:\.(\d{1,3}))?", re.ASCII)
_TENS = (1, 10, 100, 1000)  # 10 ** minor units (0 to 3, _MINOR_UNITS)


def to_minor(value: object, currency: str, *, field: str, allow_zero: bool = True) -> Minor:
    """Integer minor units of a non-negative amount, refusing excess decimals."""
    if type(value) is str and (plain := _PLAIN_AMOUNT.fullmatch(value)):
        units: str = plain[1]
        fraction: str | None = plain[2]
        decimals = minor_units(currency)
        if fraction is None or len(fraction) <= decimals:
            quick = int(units) * _TENS[decimals] + (int(fraction.ljust(decimals, "0")) if fraction else 0)
            if 0 < quick < MAX_AMOUNT_MINOR:
                return quick
    number = parse_decimal(value, field=field)
    decimals = minor_units(currency)
    if number < 0:
        raise LedgerError(f"{number} is negative; amounts are never below 0", field=field)
    if not allow_zero and number == 0:
        raise LedgerError("must be above 0", field=field)
    with localcontext() as exact:
        exact.prec = _EXACT_DIGITS
        scaled = number.scaleb(decimals)
        whole = scaled.to_integral_value()
    if scaled != whole:
        raise LedgerError(
            f"{number} has more decimals than {currency} allows ({decimals}); "
            "amounts are refused, never rounded",
            field=field,
        )
    minor = int(scaled)
    if minor >= MAX_AMOUNT_MINOR:
        raise LedgerError(f"{number} is above the largest amount the ledger accepts", field=field)
    return minor


def format_minor(amount: Minor, currency: str) -> str:
    """The decimal string of `amount` minor units, e.g. 150000 -> "1500.00"."""
    decimals = minor_units(currency)
    return str(Decimal(amount).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals)))


def round_half_up(value: Decimal) -> Minor:
    """Round an exact amount in minor units to a whole minor unit, half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
