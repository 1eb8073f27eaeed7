"""The answers: what every query returns, and the JSON each command prints with `--json`, as
frozen msgspec Structs (documented in docs/json.md).

A query builds its answer here and the CLI prints `msgspec.json.encode(answer)`,
so the printed JSON is the answer itself. The code owns the schema so that
downstream systems can decode with it
(`msgspec.json.decode(text, type=SCHEMAS["exposure"])`) or export it as JSON
Schema (`msgspec.json.schema(SCHEMAS["exposure"])`). Every Struct forbids
unknown fields and has no defaults for the fields always printed, so a field
added, renamed or dropped fails `tests/test_json_schemas.py`. A field printed
only sometimes is `UNSET` when absent (never null).

Conventions: money is a decimal string in the policy currency (`"1500.00"`,
negative only where a difference is meant); dates are `YYYY-MM-DD`; recorded
stamps are UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (text order is time order);
event ids are UUIDs. An empty string stands for "none yet" where a money or
date field is always printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

if TYPE_CHECKING:
    from ledger.write.pipeline import Outcome as WriteOutcome

Money = Annotated[str, Meta(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="a decimal string, e.g. 1500.00")]
MoneyOrBlank = Annotated[str, Meta(pattern=r"^(-?[0-9]+(\.[0-9]+)?)?$", description="a decimal string, or empty")]
Day = Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="a date, YYYY-MM-DD")]
DayOrBlank = Annotated[str, Meta(pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$", description="a date, or empty")]
Stamp = Annotated[
    str,
    Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$", description="a UTC timestamp"),
]
EventId = Annotated[str, Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]

ExposureStatus = Literal["claim", "insolvent", "on_stop", "overdue", "closed", "active"]
NotAvailable = Literal[  # why `available` is 0 whatever the headroom; "" when it is not (projections.exposure)
    "", "outside_policy_period", "private_individual", "related_company", "public_body", "named_exclusion",
    "outside_selection", "country_not_covered", "claim", "insolvent", "on_stop", "limit_cancelled", "no_limit",
]
DutyKind = Literal["report_overdue", "file_claim", "declare_turnover"]
DutyStatus = Literal["pending", "met", "missed"]
ExclusionReason = Literal[
    "private_individual", "related_company", "public_body", "named_exclusion",
    "outside_selection", "country_not_covered", "prepaid", "no_limit",
]
LineKind = Literal[
    "premium", "adjustment", "investigation_fee", "monitoring_fee", "top_up_premium", "top_up_refund",
    "top_up_admin_fee",
]
ClaimStatus = Literal["none", "watch", "open", "filed", "paid", "filing_missed"]
LossCause = Literal["", "insolvency", "protracted_default", "political"]


class Schema(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A printed JSON object: unknown fields are an error."""


# ---------------------------------------------------------------- writes: policy load, append, import

class Skipped(Schema, frozen=True):
    key: str | None  # null when the event was skipped by its id (a log imported again)
    earlier: EventId


class Outcome(Schema, frozen=True):
    recorded: tuple[EventId, ...]
    skipped: tuple[Skipped, ...]
    warnings: tuple[str, ...]
    head: Head  # the chain's head after the write: keep it, pass it to `verify --expect-head`


# ---------------------------------------------------------------- log, summary, policy show

class LogEvent(msgspec.Struct, frozen=True):
    """The fields every event has; the rest are its type's (ledger/vocabulary/events.py), money as decimal strings.

    Open on purpose: each event type adds its own fields. The test checks them
    by reading every printed event back with `parse_event`.
    """

    type: str
    effective: Day
    id: EventId
    recorded: Stamp


Log = list[LogEvent]
PolicyTable = dict[str, Any]  # the [policy] table of a policy file, defaults filled in; `policy load` reads it back
PublicEvent = dict[str, str | bool]
"""An event as `log` prints it, for answers that quote events whole: its type's own fields as well
as those of LogEvent, money as decimal strings, dates as text, flags as booleans.

A mapping, not a Struct: each of the event types has its own fields, and a Struct holding them
all would print the fields of the other types too (or need one Struct per type, repeating
ledger/vocabulary/events.py); `to_public` already gives each event's fields and no others."""


class Summary(Schema, frozen=True):
    policy: str
    insured: str  # the insured's name, not money
    currency: str
    period: tuple[Day, Day]
    events: int
    by_type: dict[str, int]
    buyers_by_country: dict[str, int]
    amounts: dict[str, Money]
    recorded_from: Stamp | None
    recorded_to: Stamp | None
    head: Head  # the chain's head: the anchor to keep for `verify --expect-head`


# ---------------------------------------------------------------- exposure

class BuyerExposure(Schema, frozen=True):
    buyer: str
    name: str
    country: str
    outstanding: Money
    overdue: Money
    insured: Money
    uninsured: Money
    limit: Money
    top_up: Money
    headroom: Money
    available: Money  # what a delivery today would be insured for at most
    status: ExposureStatus
    not_available: NotAvailable


class BookExposure(Schema, frozen=True):
    outstanding: Money
    overdue: Money
    insured: Money
    uninsured: Money
    limit: Money
    top_up: Money
    headroom: Money
    available: Money
    matched: int  # the buyers of the chosen statuses and country, whose figures these are (before `top`)
    buyers: tuple[BuyerExposure, ...]


class FieldChange(Schema, frozen=True):
    before: str | None  # null: the buyer was not in the book at that time
    after: str | None


class BuyerChange(Schema, frozen=True):
    buyer: str
    changed: dict[str, FieldChange]  # by exposure figure, `status` or `not_available`
    because: tuple[PublicEvent, ...]


class ExposureDiff(Schema, frozen=True):
    as_of: Day
    known_at: tuple[Stamp, Stamp]
    changes: tuple[BuyerChange, ...]
    late_events: int


# ---------------------------------------------------------------- obligations, turnover, premium

class Obligation(Schema, frozen=True):
    kind: DutyKind
    due: Day
    status: DutyStatus
    buyer: str | UnsetType = UNSET  # absent for declare_turnover


class Obligations(Schema, frozen=True):
    """The `obligations` answer: the duties, missed first, then by due date, kind and buyer."""

    # `creditledger obligations --json` prints this list alone (see docs/json.md).
    obligations: tuple[Obligation, ...]


class Turnover(Schema, frozen=True):
    period: str
    insurable: Money
    declared: MoneyOrBlank
    excluded: dict[ExclusionReason, Money]
    country: str | UnsetType = UNSET
    finding: str | UnsetType = UNSET  # only when declared differs from insurable


class PremiumLine(Schema, frozen=True):
    date: Day
    kind: LineKind
    amount: Money
    tax: Money
    period: str | UnsetType = UNSET
    country: str | UnsetType = UNSET
    buyer: str | UnsetType = UNSET
    basis: Money | UnsetType = UNSET
    rate: str | UnsetType = UNSET


class LineGroup(Schema, frozen=True):
    """The chosen lines of one kind, period or buyer (`premium --by`), summed."""

    key: str  # the kind, the period, or the buyer ("" for the policy's own lines)
    lines: int
    amount: Money
    tax: Money


class Premium(Schema, frozen=True):
    premium: Money
    adjustment: Money
    investigation_fees: Money
    monitoring_fees: Money
    top_up: Money
    tax: Money
    total: Money
    minimum: Money
    max_liability: MoneyOrBlank
    lines: tuple[PremiumLine, ...] | UnsetType = UNSET  # only with --lines
    groups: tuple[LineGroup, ...] | UnsetType = UNSET  # only with --by


class CountryTurnover(Schema, frozen=True):
    country: str
    insurable_turnover: Money


class Declaration(Schema, frozen=True):
    """The `declaration` answer: a period's insurable turnover by buyer country, as sent to the
    insurer (`declare` prints it as CSV, one row per country)."""

    policy: str
    period: str
    currency: str
    countries: tuple[CountryTurnover, ...]


# ---------------------------------------------------------------- claims

class Claim(Schema, frozen=True):
    buyer: str
    loss_date: DayOrBlank
    cause: LossCause
    insured_loss: Money
    indemnity: Money
    retained: Money
    recovered: Money
    insurer_recovery: Money
    insured_recovery: Money
    indemnity_paid: Money
    insurer_net_loss: Money
    insured_net_loss: Money
    status: ClaimStatus


class EventAmount(Schema, frozen=True):
    event: EventId
    amount: Money


class LimitDecision(Schema, frozen=True):
    event: EventId
    date: Day
    limit: Money


class ClaimInvoice(Schema, frozen=True):
    invoice: str
    event: EventId
    issued: Day
    delivered: Day
    due: Day
    amount: Money
    limit_decision: LimitDecision | None
    cap: Money
    not_insured: str | None
    cover_lost: str | None
    cap_rule: str
    credit_notes: tuple[EventAmount, ...]
    payments: tuple[EventAmount, ...]
    recoveries: tuple[EventAmount, ...]
    after_first_indemnity: tuple[EventAmount, ...]
    balance: Money
    insured: Money


class Deadline(Schema, frozen=True):
    kind: DutyKind
    due: Day
    status: DutyStatus


class Step(Schema, frozen=True):
    step: str
    before: Money
    after: Money
    rule: str
    events: tuple[EventId, ...]


class RecoveryShare(Schema, frozen=True):
    event: EventId
    date: Day
    amount: Money
    insurer: Money
    insured: Money


class ClaimExplained(Claim, frozen=True):
    loss_event: EventId | None
    filing_due: DayOrBlank
    filed: DayOrBlank
    invoices: tuple[ClaimInvoice, ...]
    deadlines: tuple[Deadline, ...]
    steps: tuple[Step, ...]
    recovery_shares: tuple[RecoveryShare, ...]


class ClaimsRegister(Schema, frozen=True):
    """The `claims` answer: the buyers with a loss, in loss-date order."""

    # `creditledger claims --json` prints this list alone (see docs/json.md).
    claims: tuple[Claim, ...]


# ---------------------------------------------------------------- scenario run

class ScenarioResult(Schema, frozen=True):
    path: str
    title: str
    passed: int
    failures: tuple[str, ...]


# ---------------------------------------------------------------- import-erp

class Rejection(Schema, frozen=True, kw_only=True):  # kw_only: the fields in printed order
    line: int
    field: str | UnsetType = UNSET  # absent when the refusal names no field (e.g. a row with too few cells)
    reason: str
    message: str


class ErpOutcome(Schema, frozen=True):
    recorded: tuple[EventId, ...]
    skipped: tuple[Skipped, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    rejects_file: str | UnsetType = UNSET  # only when rows were rejected (and so written there)
    head: Head | UnsetType = UNSET  # the chain's head after the write


class WouldRecord(Schema, frozen=True):
    line: int
    event: LogEvent  # id and recorded are provisional: the import assigns its own


class SkippedLine(Skipped, frozen=True):
    line: int


class ErpTrial(Schema, frozen=True):
    would_record: tuple[WouldRecord, ...]
    skipped: tuple[SkippedLine, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]


# ---------------------------------------------------------------- verify

VerifyProblem = Literal[
    "changed", "deleted", "inserted", "reordered", "index", "unchained", "checkpoint", "read_model", "head"
]
Hash = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="a SHA-256 hash, 64 hex digits")]


class Head(Schema, frozen=True):
    notification_id: int
    hash: Hash


class Finding(Schema, frozen=True, kw_only=True):  # kw_only: the fields in printed order
    check: str
    problem: VerifyProblem
    notification_id: int | UnsetType = UNSET  # each absent when the finding is not about one event
    event_id: str | UnsetType = UNSET  # as stored: a tampered row may hold anything
    key: str | UnsetType = UNSET
    message: str


class Verify(Schema, frozen=True):
    clean: bool
    events: int
    checks: tuple[str, ...]
    head: Head
    findings: tuple[Finding, ...]


class Copy(Schema, frozen=True):
    copied: int
    verified: bool
    differences: tuple[str, ...]
    head: Head | UnsetType = UNSET  # the copy's chain head (the source's, when the copy is whole)


class Token(Schema, frozen=True):
    """A write token of `creditledger serve` as `token list` shows it: never its secret."""

    name: str
    created: Stamp
    revoked: Stamp | None  # null while it is live


# One schema per command (and per form where a flag changes the shape).
SCHEMAS: dict[str, Any] = {
    "policy load": Outcome,
    "append": Outcome,
    "import": Outcome,
    "policy show": PolicyTable,
    "log": Log,
    "summary": Summary,
    "exposure": BookExposure,
    "exposure --buyer": BuyerExposure,
    "exposure --diff": ExposureDiff,
    "obligations": list[Obligation],
    "turnover": Turnover,
    "premium": Premium,
    "claim": Claim,
    "claim --explain": ClaimExplained,
    "claims": list[Claim],
    "scenario run": list[ScenarioResult],
    "import-erp": ErpOutcome,
    "import-erp --dry-run": ErpTrial,
    "verify": Verify,
    "copy": Copy,
    "token list": list[Token],
}


# ---------------------------------------------------------------- a write's outcome, for --json and the API

def outcome_answer(outcome: WriteOutcome) -> Outcome:
    """What a write recorded and skipped, and its warnings, as `--json` prints it."""
    return Outcome(
        recorded=tuple(str(e.id) for e in outcome.recorded),
        skipped=tuple(Skipped(key=s.draft.event.key, earlier=s.earlier) for s in outcome.skipped),
        warnings=tuple(outcome.warnings),
        head=head_answer(outcome.head),
    )


def head_answer(head: tuple[int, str] | None) -> Head:
    """A chain head for --json (zeros when unknown: a trial records nothing)."""
    notification_id, hash_ = head or (0, "0" * 64)
    return Head(notification_id=notification_id, hash=hash_)
