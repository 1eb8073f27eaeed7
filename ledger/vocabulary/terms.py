"""Policy terms (docs/rules.md, "The policy"): typed, frozen, with defaults, refused when out of range.

A policy document is TOML with a `[policy]` table. `parse_policy` reads the
table into `PolicyTerms`; every refusal is a `LedgerError` naming the term
(`policy.premium.rate`, say) and the rule. Money is held in minor units of the
policy currency, rates and percentages as exact `Decimal`s.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext
from typing import Any, Literal

import msgspec

from ledger.vocabulary.countries import check_country
from ledger.vocabulary.dates import ONE_DAY, add_months, parse_iso_date
from ledger.vocabulary.errors import UNSAFE_TEXT, LedgerError
from ledger.vocabulary.money import Minor, format_minor, parse_decimal, to_minor

Structure = Literal["whole_turnover", "selected_risk"]
Cover = Literal["proportional", "excess_of_loss"]
Declarations = Literal["monthly", "quarterly", "annual"]
Invoicing = Literal["declared", "advance"]
PERIOD_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3, "annual": 12}

CURRENCY_CODE = re.compile(r"^[A-Z]{3}\Z")
# Names and ids: no control characters, line breaks, bidi overrides or lone surrogates.
PLAIN_TEXT = "^[^" + UNSAFE_TEXT.pattern[1:-1] + "]+\\Z"
_PLAIN_ID = re.compile(PLAIN_TEXT[:-3] + "{1,100}\\Z")
# Every date in a file lies in this range *(our choice)*: the calendar arithmetic of the folds
# (due + notify days, period ends, a month after a policy end) then never leaves datetime's years 1 to 9999.
EARLIEST_DAY = datetime.date(1900, 1, 1)
LATEST_DAY = datetime.date(2999, 12, 31)


def check_day(day: datetime.date, field: str) -> datetime.date:
    """`day` if it lies between EARLIEST_DAY and LATEST_DAY, else a refusal naming `field`."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise LedgerError(f"{day} is out of range ({EARLIEST_DAY} to {LATEST_DAY})", field=field)
    return day


class PremiumTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Premium terms (docs/rules.md, "Premium"). `rates` always holds a `default`; a single `rate` becomes it."""

    rates: dict[str, Decimal]
    minimum: Minor | None = None
    minimum_pct: Decimal | None = None
    estimated_turnover: Minor | None = None
    declarations: Declarations = "quarterly"
    declaration_days: int = 30
    invoicing: Invoicing = "declared"
    tax_pct: Decimal = Decimal("0")

    @property
    def period_months(self) -> int:
        """The length of a declaration period in months."""
        return PERIOD_MONTHS[self.declarations]

    def declaration_due(self, last: datetime.date) -> datetime.date:
        """The day the declaration of a period ending on `last` falls due (docs/rules.md, "The calendar"); the
        adjustment after the policy period is invoiced on the day due for its end (docs/rules.md, "Premium")."""
        return last + datetime.timedelta(days=self.declaration_days)


class FeeTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fee terms (docs/rules.md, "Fees"): countries to risk zones, and each zone's fee in minor units."""

    zones: dict[str, str]
    investigation: dict[str, Minor] = {}
    monitoring: dict[str, Minor] = {}
    taxable: bool = False


class TopUpTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The optional top-up layer (docs/rules.md, "Top-up")."""

    cap: Minor
    min_cover: Minor = 0
    rate: Decimal
    months: int
    admin_fee: Minor = 0


class PolicyTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every policy term (docs/rules.md, "The policy"), defaults applied."""

    id: str
    insured: str = ""
    currency: str
    start: datetime.date
    end: datetime.date
    structure: Structure = "whole_turnover"
    selected_buyers: tuple[str, ...] = ()
    selected_countries: tuple[str, ...] = ()
    cover: Cover
    indemnity_pct: Decimal
    excess: Minor = 0
    non_qualifying_loss: Minor = 0
    per_loss_deductible: Minor = 0
    annual_aggregate_deductible: Minor = 0
    max_liability: Minor | None = None
    max_liability_multiple: Decimal | None = None
    discretionary_limit_max: Minor = 0
    max_credit_days: int = 120
    on_stop_days: int = 60
    notify_days: int = 60
    protracted_default_days: int = 180
    claim_filing_days: int | None = None
    outstanding_order_days: int = 0
    countries: tuple[str, ...] | None = None  # None: all countries
    political_risk: bool = False
    premium: PremiumTerms | None = None
    fees: FeeTerms | None = None
    top_up: TopUpTerms | None = None

    def covers_country(self, country: str) -> bool:
        """True when buyers in `country` can be insured under these terms."""
        return self.countries is None or country in self.countries

    def beyond_max_credit(self, delivered: datetime.date, due: datetime.date, *, extended: bool = False) -> str | None:
        """The max_credit_days rule, the one place it is checked (an invoice's term at issue,
        and a due date `extended`): why a due date this long after delivery is not insured,
        in words, or None when it is within the term."""
        days = (due - delivered).days
        if days <= self.max_credit_days:
            return None
        due_on = "due date extended to" if extended else "due"
        return f"{due_on} {days} days after delivery, beyond max_credit_days {self.max_credit_days}"

    # The deadlines of the rules (docs/rules.md: the calendar, top-up, claims), each computed here only. Which terms
    # apply is the caller's: those in force on the day the clock starts (the due date, the loss
    # date, the report, the political event, the top-up purchase).

    def stop_day(self, due: datetime.date) -> datetime.date:
        """The day a buyer goes on stop if an invoice due on `due` is still unpaid."""
        return due + datetime.timedelta(days=self.on_stop_days)

    def reporting_deadline(self, due: datetime.date) -> datetime.date:
        """The last day to report an invoice due on `due` as overdue and keep its cover."""
        return due + datetime.timedelta(days=self.notify_days)

    def protracted_default_on(self, since: datetime.date) -> datetime.date:
        """The loss date of a protracted default (or a political loss) whose waiting period runs from `since`."""
        return since + datetime.timedelta(days=self.protracted_default_days)

    def claim_filing_due(self, loss_date: datetime.date) -> datetime.date | None:
        """The last day to file the claim for a loss on `loss_date` (None: no filing term)."""
        if self.claim_filing_days is None:
            return None
        return loss_date + datetime.timedelta(days=self.claim_filing_days)

    def top_up_window_end(self, first_reduction: datetime.date) -> datetime.date:
        """The first day without top-up cover (and on which none can be bought): `top_up.months`
        after the first reduction of the limit, or the day after the policy ends if sooner."""
        assert self.top_up is not None
        return min(add_months(first_reduction, self.top_up.months), self.end + ONE_DAY)


# ---------------------------------------------------------------- parsing

class _Reader:
    """Takes terms out of one TOML table, so that leftovers can be refused."""

    def __init__(self, table: Mapping[str, Any], prefix: str, currency: str) -> None:
        if not isinstance(table, Mapping):
            raise LedgerError("must be a table", field=prefix)
        self.rest = dict(table)
        self.prefix = prefix
        self.currency = currency

    def name(self, term: str) -> str:
        return f"{self.prefix}.{term}"

    def take(self, term: str) -> Any:
        return self.rest.pop(term, None)

    def has(self, term: str) -> bool:
        return self.rest.get(term) is not None  # a null term is an absent one, as `take` reads it

    def text(self, term: str, default: str | None = None) -> str | None:
        value = self.take(term)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise LedgerError(f"{value!r} is not a non-empty text of at most 200 characters", field=self.name(term))
        if UNSAFE_TEXT.search(value):
            raise LedgerError("contains control characters or line breaks", field=self.name(term))
        return value

    def choice(self, term: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.take(term)
        if value is None:
            return default
        if value not in allowed:
            raise LedgerError(f"{value!r} is not one of {', '.join(allowed)}", field=self.name(term))
        return str(value)

    def date(self, term: str) -> datetime.date | None:
        value = self.take(term)
        if value is None:
            return None
        if isinstance(value, datetime.datetime) or not isinstance(value, (datetime.date, str)):
            raise LedgerError(f"{value!r} is not a date (write 2025-01-01)", field=self.name(term))
        if isinstance(value, str):
            value = parse_iso_date(value, self.name(term))
        return check_day(value, self.name(term))

    def money(self, term: str) -> Minor | None:
        value = self.take(term)
        return None if value is None else to_minor(value, self.currency, field=self.name(term))

    def decimal(self, term: str, low: Decimal, high: Decimal, *, low_open: bool = False) -> Decimal | None:
        value = self.take(term)
        if value is None:
            return None
        number = _rate_places(parse_decimal(value, field=self.name(term)), self.name(term))
        if number < low or number > high or (low_open and number == low):
            bound = "above" if low_open else "from"
            raise LedgerError(f"{number} is out of range ({bound} {low} to {high})", field=self.name(term))
        return number

    def days(self, term: str, default: int, *, low: int = 0, high: int = 3660) -> int:
        value = self.take(term)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise LedgerError(f"{value!r} is not a whole number of days", field=self.name(term))
        if value < low or value > high:
            raise LedgerError(f"{value} is out of range ({low} to {high} days)", field=self.name(term))
        return value

    def flag(self, term: str, default: bool) -> bool:
        value = self.take(term)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise LedgerError(f"{value!r} is not true or false", field=self.name(term))
        return value

    def codes(self, term: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...] | None:
        value = self.texts(term)
        for code in value or ():
            if not pattern.match(code):
                raise LedgerError(f"{code!r} is not {what}", field=self.name(term))
        return value

    def countries(self, term: str) -> tuple[str, ...] | None:
        value = self.texts(term)
        for code in value or ():
            check_country(code, self.name(term))
        return value

    def texts(self, term: str) -> tuple[str, ...] | None:
        value = self.take(term)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LedgerError("must be a list of texts", field=self.name(term))
        return tuple(value)

    def table(self, term: str) -> Mapping[str, Any] | None:
        value = self.take(term)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise LedgerError("must be a table", field=self.name(term))
        return value

    def mapping(self, term: str, convert: Callable[[Any, str], Any]) -> dict[str, Any]:
        table = self.table(term) or {}
        return {str(k): convert(v, f"{self.name(term)}.{k}") for k, v in table.items()}

    def finish(self) -> None:
        if self.rest:
            unknown = sorted(self.rest)[0]
            raise LedgerError("is not a policy term (check the spelling)", field=self.name(unknown))


def _premium(table: Mapping[str, Any], currency: str) -> PremiumTerms:
    r = _Reader(table, "policy.premium", currency)
    rate = r.decimal("rate", Decimal(0), Decimal(1))
    rates_table = r.table("rates")
    if (rate is None) == (rates_table is None):
        raise LedgerError("give exactly one of rate or rates", field="policy.premium.rate")
    if rates_table is not None:
        rates = {}
        for country, value in rates_table.items():
            if country != "default":
                check_country(country, "policy.premium.rates", besides="default")
            rates[str(country)] = _rate(value, f"policy.premium.rates.{country}")
        if "default" not in rates:
            raise LedgerError("a rates table needs a default rate", field="policy.premium.rates.default")
    else:
        assert rate is not None
        rates = {"default": rate}
    minimum = r.money("minimum")
    minimum_pct = r.decimal("minimum_pct", Decimal(0), Decimal(100))
    if minimum is not None and minimum_pct is not None:
        raise LedgerError("give minimum or minimum_pct, not both", field="policy.premium.minimum_pct")
    estimated = r.money("estimated_turnover")
    if minimum_pct is not None and estimated is None:
        raise LedgerError("minimum_pct needs estimated_turnover", field="policy.premium.estimated_turnover")
    declarations = r.choice("declarations", ("monthly", "quarterly", "annual"), "quarterly")
    declaration_days = r.days("declaration_days", 30)
    invoicing = r.choice("invoicing", ("declared", "advance"), "declared")
    if invoicing == "advance" and minimum is None and minimum_pct is None:
        raise LedgerError("advance invoicing needs a minimum premium", field="policy.premium.invoicing")
    tax_pct = r.decimal("tax_pct", Decimal(0), Decimal(100)) or Decimal(0)
    r.finish()
    return PremiumTerms(
        rates=rates, minimum=minimum, minimum_pct=minimum_pct, estimated_turnover=estimated,
        declarations=declarations,  # type: ignore[arg-type]
        declaration_days=declaration_days,
        invoicing=invoicing,  # type: ignore[arg-type]
        tax_pct=tax_pct,
    )


RATE_PLACES = 10  # *(our choice)*: a rate times a turnover then stays within Decimal's 28 exact digits


def _rate_places(number: Decimal, field: str) -> Decimal:
    """`number` if it has at most RATE_PLACES decimals (trailing zeros aside); the
    folds multiply rates by amounts, and more places would be rounded twice."""
    with localcontext() as exact:
        exact.prec = 100
        exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATE_PLACES:  # parse_decimal leaves no NaN or Infinity
        raise LedgerError(f"{number} has more than {RATE_PLACES} decimal places", field=field)
    return number


def _rate(value: Any, field: str) -> Decimal:
    number = _rate_places(parse_decimal(value, field=field), field)
    if not Decimal(0) <= number <= Decimal(1):
        raise LedgerError(f"{number} is out of range (from 0 to 1; \"0.0035\" is 0.35 %)", field=field)
    return number


def _fees(table: Mapping[str, Any], currency: str) -> FeeTerms:
    r = _Reader(table, "policy.fees", currency)
    zones_table = r.table("zones")
    if not zones_table:
        raise LedgerError("fees need a zones table mapping countries to zones", field="policy.fees.zones")
    zones: dict[str, str] = {}
    for country, zone in zones_table.items():
        check_country(country, "policy.fees.zones")
        if not isinstance(zone, str) or not _PLAIN_ID.match(zone):
            raise LedgerError(f"{zone!r} is not a zone name", field=f"policy.fees.zones.{country}")
        zones[str(country)] = zone

    def fee(value: Any, field: str) -> Minor:
        return to_minor(value, currency, field=field)

    investigation = r.mapping("investigation", fee)
    monitoring = r.mapping("monitoring", fee)
    for term, amounts in (("investigation", investigation), ("monitoring", monitoring)):
        for zone in sorted(set(zones.values())):
            if amounts and zone not in amounts:
                raise LedgerError(f"zone {zone} has no fee", field=f"policy.fees.{term}.{zone}")
    taxable = r.flag("taxable", False)
    r.finish()
    return FeeTerms(zones=zones, investigation=investigation, monitoring=monitoring, taxable=taxable)


def _top_up(table: Mapping[str, Any], currency: str) -> TopUpTerms:
    r = _Reader(table, "policy.top_up", currency)
    cap = r.money("cap")
    rate = r.decimal("rate", Decimal(0), Decimal(1))
    if cap is None or cap == 0:
        raise LedgerError("a top-up needs a cap above 0", field="policy.top_up.cap")
    if rate is None:
        raise LedgerError("a top-up needs a rate", field="policy.top_up.rate")
    if not r.has("months"):
        raise LedgerError("a top-up needs its number of months", field="policy.top_up.months")
    months = r.days("months", 0, low=1, high=120)
    min_cover = r.money("min_cover") or 0
    admin_fee = r.money("admin_fee") or 0
    r.finish()
    return TopUpTerms(cap=cap, min_cover=min_cover, rate=rate, months=months, admin_fee=admin_fee)


def parse_policy(table: Mapping[str, Any]) -> PolicyTerms:
    """Read a `[policy]` table into terms, refusing any out of range or inconsistent."""
    if not isinstance(table, Mapping):
        raise LedgerError("must be a table", field="policy")
    for required in ("id", "currency", "start", "end", "cover"):
        if table.get(required) is None:  # a JSON null is as absent as a term left out
            raise LedgerError("is required", field=f"policy.{required}")
    currency = table["currency"]
    if not isinstance(currency, str) or not CURRENCY_CODE.match(currency):
        raise LedgerError(f"{currency!r} is not an ISO 4217 currency code", field="policy.currency")
    r = _Reader(table, "policy", currency)
    r.take("currency")
    policy_id = r.text("id")
    insured = r.text("insured", "") or ""
    start, end = r.date("start"), r.date("end")
    assert policy_id is not None and start is not None and end is not None
    if end < start:
        raise LedgerError(f"{end} is before start {start}", field="policy.end")
    if (end - start).days > 3660:
        raise LedgerError("the policy period is longer than ten years", field="policy.end")
    structure = r.choice("structure", ("whole_turnover", "selected_risk"), "whole_turnover")
    selected_buyers = r.codes("selected_buyers", _PLAIN_ID, "a buyer id (1 to 100 characters, no control characters)") or ()
    selected_countries = r.countries("selected_countries") or ()
    _check_selection(structure, selected_buyers or selected_countries)
    cover = r.choice("cover", ("proportional", "excess_of_loss"), "proportional")
    proportional = cover == "proportional"
    indemnity_pct = r.decimal("indemnity_pct", Decimal(0), Decimal(100), low_open=True)
    if indemnity_pct is None:
        indemnity_pct = Decimal(90) if proportional else Decimal(100)
    excess = r.money("excess") or 0
    non_qualifying_loss = r.money("non_qualifying_loss") or 0
    per_loss = r.money("per_loss_deductible") or 0
    aggregate = r.money("annual_aggregate_deductible") or 0
    _check_loss_sharing(proportional, excess=excess, non_qualifying_loss=non_qualifying_loss,
                        per_loss_deductible=per_loss, annual_aggregate_deductible=aggregate)
    max_liability = r.money("max_liability")
    multiple = r.decimal("max_liability_multiple", Decimal(0), Decimal(1000), low_open=True)
    if max_liability is not None and multiple is not None:
        raise LedgerError("give max_liability or max_liability_multiple, not both", field="policy.max_liability_multiple")
    discretionary = r.money("discretionary_limit_max") or 0
    max_credit_days = r.days("max_credit_days", 120, low=1)
    on_stop_days = r.days("on_stop_days", 60)
    notify_days = r.days("notify_days", 60)
    protracted = r.days("protracted_default_days", 180)
    claim_filing = r.days("claim_filing_days", -1)
    outstanding_order = r.days("outstanding_order_days", 0)
    countries = r.countries("countries")
    political_risk = r.flag("political_risk", False)
    premium_table, fees_table, top_up_table = r.table("premium"), r.table("fees"), r.table("top_up")
    r.finish()
    premium = _premium(premium_table, currency) if premium_table is not None else None
    if multiple is not None and premium is None:
        raise LedgerError("a multiple of the premium needs a premium table", field="policy.max_liability_multiple")
    fees = _fees(fees_table, currency) if fees_table is not None else None
    top_up = _top_up(top_up_table, currency) if top_up_table is not None else None
    return PolicyTerms(
        id=policy_id, insured=insured, currency=currency, start=start, end=end,
        structure=structure,  # type: ignore[arg-type]
        selected_buyers=selected_buyers, selected_countries=selected_countries,
        cover=cover,  # type: ignore[arg-type]
        indemnity_pct=indemnity_pct, excess=excess, non_qualifying_loss=non_qualifying_loss,
        per_loss_deductible=per_loss, annual_aggregate_deductible=aggregate,
        max_liability=max_liability, max_liability_multiple=multiple,
        discretionary_limit_max=discretionary, max_credit_days=max_credit_days,
        on_stop_days=on_stop_days, notify_days=notify_days, protracted_default_days=protracted,
        claim_filing_days=None if claim_filing < 0 else claim_filing,
        outstanding_order_days=outstanding_order, countries=countries, political_risk=political_risk,
        premium=premium, fees=fees, top_up=top_up,
    )


def _check_selection(structure: str, selected: tuple[str, ...]) -> None:
    """Selections go with a selected_risk policy, and it needs some."""
    if structure == "selected_risk" and not selected:
        raise LedgerError("selected_risk needs selected_buyers or selected_countries", field="policy.structure")
    if structure == "whole_turnover" and selected:
        raise LedgerError("selections are for a selected_risk policy", field="policy.structure")


def _check_loss_sharing(
    proportional: bool, *, excess: Minor, non_qualifying_loss: Minor, per_loss_deductible: Minor,
    annual_aggregate_deductible: Minor,
) -> None:
    """A proportional policy shares losses by excess and non-qualifying loss, an excess_of_loss
    one by deductibles; the other kind's terms are refused (the first one given is named)."""
    if proportional and (per_loss_deductible or annual_aggregate_deductible):
        field = "per_loss_deductible" if per_loss_deductible else "annual_aggregate_deductible"
        raise LedgerError("deductibles are for an excess_of_loss policy, not a proportional one", field=f"policy.{field}")
    if not proportional and (excess or non_qualifying_loss):
        field = "excess" if excess else "non_qualifying_loss"
        raise LedgerError("is refused on an excess_of_loss policy (use the deductibles)", field=f"policy.{field}")


def amend_policy(terms: PolicyTerms, changes: Mapping[str, Any]) -> PolicyTerms:
    """New terms with `changes` applied, validated as a whole."""
    table = terms_to_table(terms)
    table.update(changes)
    return parse_policy(table)


def terms_to_table(terms: PolicyTerms) -> dict[str, Any]:
    """The terms as a `[policy]` table with decimal strings, as a user writes it."""
    currency = terms.currency

    def money(value: Minor) -> str:
        return format_minor(value, currency)

    table: dict[str, Any] = {
        "id": terms.id, "currency": currency,
        "start": terms.start, "end": terms.end, "structure": terms.structure,
        "cover": terms.cover, "indemnity_pct": str(terms.indemnity_pct),
        "discretionary_limit_max": money(terms.discretionary_limit_max),
        "max_credit_days": terms.max_credit_days, "on_stop_days": terms.on_stop_days,
        "notify_days": terms.notify_days, "protracted_default_days": terms.protracted_default_days,
        "outstanding_order_days": terms.outstanding_order_days, "political_risk": terms.political_risk,
    }
    if terms.insured:
        table["insured"] = terms.insured
    if terms.cover == "proportional":
        table["excess"] = money(terms.excess)
        table["non_qualifying_loss"] = money(terms.non_qualifying_loss)
    else:
        table["per_loss_deductible"] = money(terms.per_loss_deductible)
        table["annual_aggregate_deductible"] = money(terms.annual_aggregate_deductible)
    if terms.selected_buyers:
        table["selected_buyers"] = list(terms.selected_buyers)
    if terms.selected_countries:
        table["selected_countries"] = list(terms.selected_countries)
    if terms.max_liability is not None:
        table["max_liability"] = money(terms.max_liability)
    if terms.max_liability_multiple is not None:
        table["max_liability_multiple"] = str(terms.max_liability_multiple)
    if terms.claim_filing_days is not None:
        table["claim_filing_days"] = terms.claim_filing_days
    if terms.countries is not None:
        table["countries"] = list(terms.countries)
    if terms.premium:
        p = terms.premium
        premium: dict[str, Any] = {
            "rates": {k: str(v) for k, v in p.rates.items()},
            "declarations": p.declarations, "declaration_days": p.declaration_days,
            "invoicing": p.invoicing, "tax_pct": str(p.tax_pct),
        }
        if p.minimum is not None:
            premium["minimum"] = money(p.minimum)
        if p.minimum_pct is not None:
            premium["minimum_pct"] = str(p.minimum_pct)
        if p.estimated_turnover is not None:
            premium["estimated_turnover"] = money(p.estimated_turnover)
        table["premium"] = premium
    if terms.fees:
        f = terms.fees
        table["fees"] = {
            "zones": dict(f.zones),
            "investigation": {k: money(v) for k, v in f.investigation.items()},
            "monitoring": {k: money(v) for k, v in f.monitoring.items()},
            "taxable": f.taxable,
        }
    if terms.top_up:
        t = terms.top_up
        table["top_up"] = {
            "cap": money(t.cap), "min_cover": money(t.min_cover), "rate": str(t.rate),
            "months": t.months, "admin_fee": money(t.admin_fee),
        }
    return table
