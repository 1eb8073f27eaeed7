"""Country codes (docs/rules.md, "Countries"): ISO 3166-1 alpha-2, as pycountry lists them.

A code of the right shape that names no country (`UK`) would leave every buyer written with it
silently outside the policy's countries, zones and rates; it is refused, with the code meant
where the mistake is a common one.
"""

from __future__ import annotations

import functools
from typing import Any

import pycountry

from ledger.vocabulary.errors import LedgerError

# Codes people write for a country whose ISO code is another: the EU's and the UN's own
# abbreviations, language codes, and English initials that ISO left unassigned.
COMMON_MISTAKES = {
    "UK": "GB",  # the United Kingdom (ISO reserves UK; GB is the code)
    "EL": "GR",  # Greece, as the EU's VAT and statistics codes write it
    "EI": "IE",  # Ireland (a transitional reservation)
    "SP": "ES",  # Spain
    "JA": "JP",  # Japan (the language code)
    "KO": "KR",  # South Korea (the language code)
    "SW": "SE",  # Sweden
    "PO": "PL",  # Poland
    "DA": "DK",  # Denmark (the language code)
}
WHAT = "an ISO 3166-1 alpha-2 country code"


@functools.cache
def _names() -> dict[str, str]:
    return {country.alpha_2: country.name for country in pycountry.countries}


def country_name(code: str) -> str | None:
    """The English short name of `code`, or None if it names no country."""
    return _names().get(code)


def is_country(code: str) -> bool:
    return code in _names()


def check_country(value: Any, field: str, *, besides: str = "") -> str:
    """`value` if it is an ISO 3166-1 alpha-2 code, else a refusal naming `field` and,
    where one is known, the code meant ("did you mean GB (United Kingdom)?"). `besides`
    names what else the field takes (`default`, say), for the refusal's words."""
    if isinstance(value, str) and is_country(value):
        return value
    meant = None
    if isinstance(value, str):
        upper = value.strip().upper()
        meant = COMMON_MISTAKES.get(upper) or (upper if is_country(upper) else None)
    hint = f"; did you mean {meant} ({country_name(meant)})?" if meant else " such as GB"
    allowed = f"{besides} or {WHAT}" if besides else WHAT
    raise LedgerError(f"{value!r} is not {allowed}{hint}", field=field)
