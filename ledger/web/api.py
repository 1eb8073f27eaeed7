"""The JSON API under /api: every query of `ledger.queries.registry`, the event log (a page, a
stream of server-sent events) and the write endpoint.

Each query's parameters are the command line's options in snake case, and its answer is the
JSON `--json` prints (docs/json.md), the same Struct encoded the same way. Every error answers
one shape, `Problem`: a refusal (`LedgerError`) 422 with the command line's one-line reason,
a write that lost the race to other writers 409, no or a revoked token 401, a read-only
service 405, and anything unforeseen 500 without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.params import QueryParameter as Query
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_405_METHOD_NOT_ALLOWED
from msgspec import UNSET, UnsetType

from ledger.operations.verify import Report
from ledger.operations.verify import verify as run_verify
from ledger.queries import answers
from ledger.queries.registry import run_query
from ledger.service import Ledger, WritersRaced
from ledger.vocabulary.errors import LedgerError, one_line
from ledger.vocabulary.events import EVENT_TYPES, to_public

log = logging.getLogger("creditledger.serve")
PAGE_LIMIT = 10_000  # at most this many events per page of /api/events
MAX_POSITION = 2**63 - 1  # a log position fits a 64-bit integer (SQLite's, PostgreSQL's bigint)
STREAM_POLL = 0.25  # seconds between two looks for new events on an event stream
STREAM_KEEPALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing a stream


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Every error the API answers, whatever its status."""

    status: int  # the HTTP status again, for clients that keep only the body
    error: str  # one line: the reason, as the command line prints it after "error: "
    field: str | UnsetType = UNSET  # the parameter or event field at fault, when one is


def _problem(status: int, error: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(
        Problem(status=status, error=one_line(error), field=UNSET if field is None else field),
        status_code=status, headers=headers, media_type="application/json",
    )


def ledger_problem(_: Request[Any, Any, Any], problem: LedgerError) -> Response[Problem]:
    status = 409 if isinstance(problem, WritersRaced) else 422
    return _problem(status, str(problem), problem.field)


def validation_problem(_: Request[Any, Any, Any], problem: ValidationException) -> Response[Problem]:
    """A parameter or body Litestar could not read as its declared type: bad input, so 422 like a refusal."""
    extra = problem.extra if isinstance(problem.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    field = first.get("key") or None
    message = first.get("message") or problem.detail
    return _problem(422, f"{field}: {message}" if field else str(message), field)


def http_problem(_: Request[Any, Any, Any], problem: HTTPException) -> Response[Problem]:
    if problem.status_code == 400:  # a body that is not JSON: bad input, answered as every other
        return _problem(422, f"body: {problem.detail}", "body")
    return _problem(problem.status_code, str(problem.detail), headers=problem.headers)


def internal_problem(request: Request[Any, Any, Any], problem: Exception) -> Response[Problem]:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=problem)
    return _problem(500, f"internal: {type(problem).__name__}")


ERRORS = {
    422: ResponseSpec(Problem, description="Bad input: the reason in one line, naming the parameter and the rule."),
    500: ResponseSpec(Problem, description="An internal error (never expected)."),
}
WRITE_ERRORS = {
    **ERRORS,
    401: ResponseSpec(Problem, description="No token, or one not known or revoked."),
    405: ResponseSpec(Problem, description="The service is read-only."),
    409: ResponseSpec(Problem, description="Other writers kept changing the ledger; nothing was recorded."),
}

# The parameters, as the command line's options (snake case), each documented once.
AsOf = Annotated[str | None, Query(description="The effective date (default today), e.g. 2025-03-31.", format="date")]
KnownAt = Annotated[str | None, Query(
    description="As the ledger knew it then: a timestamp, or a date (its end), e.g. 2025-03-10T09:00:00Z.")]
Buyer = Annotated[str | None, Query(description="One buyer's id.")]
Period = Annotated[str, Query(description="A declaration period: 2025, 2025-Q1 or 2025-03.")]


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _one(value: str | None) -> list[str] | None:
    """One value of an argument the command line may repeat (an empty one is refused by the query)."""
    return None if value is None else [value]


# ---------------------------------------------------------------- queries

@get("/api/summary", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def summary(ledger: NamedDependency[Ledger]) -> answers.Summary:
    """Counts and totals of the whole ledger (`creditledger summary --json`)."""
    return cast(answers.Summary, _query(ledger, "summary", {}))


@get("/api/exposure", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def exposure(
    ledger: NamedDependency[Ledger], as_of: AsOf = None, known_at: KnownAt = None, buyer: Buyer = None,
    status: Annotated[str | None, Query(description="Only buyers of this status.")] = None,
    country: Annotated[str | None, Query(description="Only buyers in this country (ISO 3166 alpha-2).")] = None,
    sort: Annotated[str | None, Query(description="Row order: a figure (largest first), name or buyer.")] = None,
    top: Annotated[int | None, Query(description="Only the first N rows.", ge=1)] = None,
) -> answers.BookExposure | answers.BuyerExposure:
    """The book's exposure per buyer, or one buyer's with `buyer` (`creditledger exposure --json`)."""
    ledger.exposure_model.catch_up()
    return cast(answers.BookExposure | answers.BuyerExposure, _query(ledger, "exposure", _given(
        as_of=as_of, known_at=known_at, buyer=buyer, statuses=_one(status), countries=_one(country), sort=sort, top=top)))


@get("/api/exposure/diff", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def exposure_diff(
    ledger: NamedDependency[Ledger],
    early: Annotated[str, Query(name="from", description="The first known_at moment.")],
    late: Annotated[str, Query(name="to", description="The second known_at moment.")],
    as_of: AsOf = None,
    buyer: Buyer = None,
) -> answers.ExposureDiff:
    """What changed in the exposure as of a date between two known_at, and the late events behind it
    (`creditledger exposure --diff --known-at FROM --known-at TO --json`)."""
    ledger.exposure_model.catch_up()
    return cast(answers.ExposureDiff,
                _query(ledger, "exposure_diff", _given(as_of=as_of, buyer=buyer, known_at=[early, late])))


@get("/api/obligations", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def obligations(
    ledger: NamedDependency[Ledger], as_of: AsOf = None, known_at: KnownAt = None, buyer: Buyer = None,
    open: Annotated[bool, Query(description="Only the duties to act on: missed, then pending.")] = False,  # noqa: A002 (the CLI's --open)
    due_within: Annotated[int | None, Query(description="Only duties due by as_of + this many days.")] = None,
) -> list[answers.Obligation]:
    """Duties with deadlines, missed first, then pending and met (`creditledger obligations --json`)."""
    answer = _query(ledger, "obligations", _given(as_of=as_of, known_at=known_at, buyer=buyer, open=open,
                                                  due_within=due_within))
    return list(answer.obligations)


@get("/api/turnover", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def turnover(
    ledger: NamedDependency[Ledger], period: Period, known_at: KnownAt = None,
    country: Annotated[str | None, Query(description="One country (default: all).")] = None,
) -> answers.Turnover:
    """Insurable turnover of a period, the declared figure, the exclusions (`creditledger turnover --json`)."""
    return cast(answers.Turnover, _query(ledger, "turnover", _given(period=period, country=country, known_at=known_at)))


@get("/api/declaration", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def declaration(ledger: NamedDependency[Ledger], period: Period, known_at: KnownAt = None) -> answers.Declaration:
    """The turnover declaration of a period by country (what `creditledger declare` prints as CSV)."""
    return cast(answers.Declaration, _query(ledger, "declaration", _given(period=period, known_at=known_at)))


@get("/api/premium", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def premium(
    ledger: NamedDependency[Ledger], as_of: AsOf = None, known_at: KnownAt = None,
    lines: Annotated[bool, Query(description="Every invoice line too.")] = False,
    kind: Annotated[str | None, Query(description="Only the lines of this kind.")] = None,
    period: Annotated[str | None, Query(description="Only the lines billing a period inside this one.")] = None,
    by: Annotated[str | None, Query(description="The chosen lines summed by kind, period or buyer.")] = None,
) -> answers.Premium:
    """The premium account up to as_of (`creditledger premium --json`, `--lines`, `--kind`, `--period`, `--by`)."""
    return cast(answers.Premium, _query(ledger, "premium", _given(
        as_of=as_of, known_at=known_at, lines=lines, kind=_one(kind), period=period, by=by)))


@get("/api/claims", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def claims(ledger: NamedDependency[Ledger], as_of: AsOf = None, known_at: KnownAt = None) -> list[answers.Claim]:
    """The claims register, in loss-date order (`creditledger claims --json`)."""
    return list(_query(ledger, "claims", _given(as_of=as_of, known_at=known_at)).claims)


@get("/api/claims/{buyer:str}", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def claim(
    ledger: NamedDependency[Ledger], buyer: FromPath[str], as_of: AsOf = None, known_at: KnownAt = None,
    explain: Annotated[bool, Query(description="The whole computation, as an auditor reads it.")] = False,
) -> answers.ClaimExplained | answers.Claim:
    """A buyer's claim (`creditledger claim BUYER --json`, `--explain`)."""
    return cast(answers.ClaimExplained | answers.Claim,
                _query(ledger, "claim", _given(buyer=buyer, as_of=as_of, known_at=known_at, explain=explain)))


@get("/api/verify", sync_to_thread=True, responses=ERRORS, tags=["queries"])
def verify(
    ledger: NamedDependency[Ledger],
    expect_head: Annotated[str | None, Query(
        description="A head hash printed by an earlier verify: it must still be in the chain.")] = None,
) -> answers.Verify:
    """Check the hash chain, the index and the read models (`creditledger verify --json`)."""
    return verify_answer(run_verify(ledger, expect_head=expect_head))


def _query(ledger: NamedDependency[Ledger], name: str, given: dict[str, Any]) -> Any:
    return run_query(name, ledger, given)


def verify_answer(report: Report) -> answers.Verify:
    """The report as `creditledger verify --json` prints it: optional fields absent, never null."""
    def known(value: Any) -> Any:
        return UNSET if value is None else value

    return answers.Verify(
        clean=report.clean, events=report.events, checks=tuple(report.checks),
        head=answers.Head(notification_id=report.head_id, hash=report.head_hash),
        findings=tuple(
            answers.Finding(check=f.check, problem=f.problem, notification_id=known(f.notification_id),  # type: ignore[arg-type]
                            event_id=known(f.event_id), key=known(f.key), message=f.message)
            for f in report.findings
        ),
    )


# ---------------------------------------------------------------- the event log

PositionedEvent = dict[str, Any]
"""An event as `creditledger log --json` prints it (its type's fields, both time axes), with its
`position` in the log: the number to pass as `after` (or Last-Event-ID) to read on from it."""


def _page(ledger: Ledger, after: int, limit: int, buyer: str | None, types: Sequence[str]) -> list[PositionedEvent]:
    for name in types:
        if name not in EVENT_TYPES:
            raise LedgerError(f"{name!r} is not an event type", field="type")
    currency = ledger.terms().currency if ledger.has_policy() else "XXX"
    return [{"position": position, **to_public(event, currency)}
            for position, event in ledger.page(after, limit, buyer=buyer, types=types)]


Types = Annotated[list[str] | None, Query(name="type", description="Only events of this type (repeatable).")]


@get("/api/events", sync_to_thread=True, responses=ERRORS, tags=["events"])
def events(
    ledger: NamedDependency[Ledger],
    after: Annotated[int, Query(ge=0, le=MAX_POSITION,
                                description="Only events after this log position (0: from the start).")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT, description="At most this many events.")] = 1000,
    buyer: Buyer = None,
    types: Types = None,
) -> list[PositionedEvent]:
    """The log in recorded order, a page at a time: pass the last event's `position` as `after` for the next."""
    return _page(ledger, after, limit, buyer, types or ())


@get("/api/events/stream", responses=ERRORS, tags=["events"])
async def event_stream(
    request: Request[Any, Any, Any],
    after: Annotated[int | None, Query(
        ge=0, le=MAX_POSITION,
        description="Send the events after this position (default: only those recorded from now on).")] = None,
    last_event_id: Annotated[int | None, HeaderParameter(name="Last-Event-ID",
        ge=0, le=MAX_POSITION, description="Resume after this position (a reconnecting browser sends it).")] = None,
    buyer: Buyer = None,
    types: Types = None,
) -> ServerSentEvent:
    """New events as server-sent events, each `id:` its log position and `data:` the event as /api/events
    gives it. A client that reconnects with Last-Event-ID misses nothing and sees nothing twice."""
    pool = request.app.state.ledgers
    stopping = request.app.state.stopping
    wanted = tuple(types or ())

    def read(position: int | None) -> tuple[int, list[PositionedEvent]]:
        lease = pool.lease()
        ledger = next(lease)
        try:
            if position is None:
                position = ledger.log_position()[0]
            return position, _page(ledger, position, 1000, buyer, wanted)
        finally:
            lease.close()

    start = last_event_id if last_event_id is not None else after
    position, first = await asyncio.to_thread(read, start)  # refuses a bad type before the stream starts

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        nonlocal position
        page, quiet = first, 0.0
        while not stopping.is_set():
            for event in page:
                position = max(position, event["position"])
                yield ServerSentEventMessage(data=msgspec.json.encode(event).decode(), id=str(event["position"]),
                                             event="event")
            if page:
                quiet = 0.0
            else:
                await asyncio.sleep(STREAM_POLL)
                quiet += STREAM_POLL
                if quiet >= STREAM_KEEPALIVE:
                    quiet = 0.0
                    yield ServerSentEventMessage(comment="keep-alive")
            _, page = await asyncio.to_thread(read, position)

    return ServerSentEvent(messages())


# ---------------------------------------------------------------- writing


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@post("/api/events", sync_to_thread=True, status_code=201, responses=WRITE_ERRORS, tags=["events"],
      security=[{"bearer": []}])
def record(
    request: Request[Any, Any, Any], ledger: NamedDependency[Ledger], data: JSONBody[dict[str, Any] | list[dict[str, Any]]]
) -> answers.Outcome:
    """Record one event, or a list of them all or nothing, each in the form `creditledger log --json`
    prints (what `creditledger import` reads from JSON Lines). An event whose key is already
    recorded is skipped and listed in `skipped`; a bad one refuses them all, naming it."""
    if request.app.state.read_only:
        raise HTTPException(status_code=HTTP_405_METHOD_NOT_ALLOWED, detail="this service is read-only",
                            headers={"Allow": "GET"})
    secret = bearer_token(request)
    holder = ledger.tokens.holder(secret) if secret else None
    if holder is None:
        raise NotAuthorizedException(
            detail="a write needs a live token: Authorization: Bearer TOKEN (creditledger token create)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    rows = [(None, data)] if isinstance(data, dict) else [(line, raw) for line, raw in enumerate(data, 1)]
    if not rows:
        raise LedgerError("has no events", field="events")
    outcome = ledger.record(ledger.parse(rows))
    try:
        ledger.note_writer(holder, outcome)
    except Exception:  # the events are recorded: answering 500 would invite a retry that records them twice
        log.exception("recorded %d events but could not note that token %r wrote them", len(outcome.recorded), holder)
    return answers.outcome_answer(outcome)


API = [summary, exposure, exposure_diff, obligations, turnover, declaration, premium, claims, claim, verify,
       events, event_stream, record]
