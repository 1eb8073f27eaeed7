"""The record pipeline, its pure steps: skip what is known, stamp, admit.

A write reads as `Ledger._record_once` (ledger/service.py) runs it:
  skip known keys and ids -> stamp (id, recorded) -> admit each event against
  its stream (refusing with file, line, field and rule) -> save.
The steps here read nothing and write nothing: the service looks up the keys,
ids and last recorded stamp, reads the streams, and saves what `admit` returns.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import msgspec

from ledger.vocabulary.bulk import ProgressHook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import NIL_ID, UNRECORDED, BuyerEvent, Event, PolicyAmended, format_recorded
from ledger.write.streams import NO_WARNINGS, BuyerStream, EventRefused, PolicyStream, admit_all

PROGRESS_EVERY = 1000  # events between two progress reports


@dataclass(frozen=True, slots=True)  # slots: a million of them are alive during an import
class Draft:
    """An event read from input, not yet recorded, with where it came from."""

    event: Event
    source: str | None = None
    line: int | None = None

    def error(self, problem: LedgerError) -> LedgerError:
        return problem.located(source=self.source, line=self.line)

    def where(self) -> str:
        """`file:line: ` in front of a warning about this draft (empty for a draft of no file)."""
        if self.source:
            return f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        return ""


@dataclass(frozen=True)
class Skipped:
    """A draft left out because its key or id is already recorded, and the earlier event's id."""

    draft: Draft
    earlier: str


@dataclass(frozen=True)
class Refused:
    """A draft a trial refused, and why (named with its file and line)."""

    draft: Draft
    problem: LedgerError


@dataclass
class Outcome:
    """What a write did: events recorded, events skipped as already known, warnings."""

    recorded: list[Event] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    head: tuple[int, str] | None = None  # the chain's head after the write: (notification id, hash)


@dataclass
class Trial:
    """A dry run: what would be recorded (`outcome`, and the drafts behind it) and what refused."""

    outcome: Outcome
    admitted: list[Draft] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Admitted:
    """An event that passed its stream's rules, and the stream version it takes."""

    event: Event
    version: int


def skip_known(drafts: Sequence[Draft], known_keys: dict[str, str], known_ids: set[str], outcome: Outcome) -> list[Draft]:
    """Drop drafts whose key (or given id) is recorded, or came earlier in this input:
    re-imports are no-ops. `known_keys` maps each recorded key to its event id."""
    # What a key or id names is kept as the object at hand (the id, the draft) and put in
    # words only for a skip: a million keys once held a million sentences.
    known: dict[str, str | uuid.UUID | Draft] = dict(known_keys)
    ids = {uuid.UUID(given) for given in known_ids}
    fresh = []
    for draft in drafts:
        event = draft.event
        event_id = event.id if event.id != NIL_ID else None
        earlier = known.get(event.key) if event.key else None
        if earlier is None and event_id in ids:
            earlier = event_id
        if earlier is not None:
            outcome.skipped.append(Skipped(draft, _named(earlier)))
            continue
        if event.key:
            known[event.key] = event_id or draft
        if event_id:
            ids.add(event_id)
        fresh.append(draft)
    return fresh


def _named(earlier: str | uuid.UUID | Draft) -> str:
    """The earlier event a skipped draft repeats, in words."""
    if isinstance(earlier, Draft):
        return f"earlier in this input (line {earlier.line})"
    return str(earlier)


CLOCK_TOLERANCE_VARIABLE = "CREDITLEDGER_CLOCK_TOLERANCE"  # read by the service


def clock_bound(last: datetime.datetime | None, now: datetime.datetime, tolerance: datetime.timedelta) -> None:
    """Refuse a write that finds the ledger's last stamp further ahead of its clock than `tolerance`:
    one clock is wrong, and stamping `max(now, last)` would carry a bad clock's future into every
    later event (`log --known-at now` would then hide them)."""
    if last is not None and last - now > tolerance:
        raise LedgerError(
            f"the ledger's last recorded stamp {format_recorded(last)} is ahead of this writer's clock "
            f"{format_recorded(now)} by {last - now}, more than the {tolerance} allowed "
            f"({CLOCK_TOLERANCE_VARIABLE}, seconds); one of the clocks is wrong, nothing was recorded",
            field="recorded",
        )


@dataclass(slots=True)
class Stamps:
    """What stamping changed in the drafts' events, in place (a copy of a million events was a
    third of an import's memory), so that a write that does not happen can put it back: its
    retry stamps again, and a caller's drafts are left as they were given."""

    drafts: Sequence[Draft]
    gave_id: bytearray  # 1 where stamping gave the event its id
    restamped: bool = False  # whether the recorded stamps were replaced (else kept)
    carried: dict[int, datetime.datetime] = field(default_factory=dict)  # place -> stamp a file carried

    def undo(self) -> None:
        for place, draft in enumerate(self.drafts):
            if self.gave_id[place]:
                msgspec.structs.force_setattr(draft.event, "id", NIL_ID)
            if self.restamped:
                msgspec.structs.force_setattr(draft.event, "recorded", self.carried.get(place, UNRECORDED))


def keep_stamps(drafts: Sequence[Draft], last: datetime.datetime | None, now: datetime.datetime) -> Stamps:
    """A historical ledger's own recorded stamps, kept: each present, not in the future,
    never going backwards (from the ledger's last stamp on)."""
    previous = last
    for draft in drafts:
        moment = draft.event.recorded
        if moment == UNRECORDED:
            raise draft.error(LedgerError("--keep-recorded needs a recorded stamp on every event", field="recorded"))
        if moment > now:
            raise draft.error(LedgerError(
                f"{format_recorded(moment)} is in the future; a recorded stamp says when the ledger "
                "learnt a fact", field="recorded",
            ))
        if previous is not None and moment < previous:
            raise draft.error(LedgerError(
                f"{format_recorded(moment)} is before {format_recorded(previous)}, already in the ledger "
                "or earlier in the file; recorded time never goes backwards (a historical ledger imports "
                "into a new ledger, with its [policy] in the file)",
                field="recorded",
            ))
        previous = moment
    return Stamps(drafts, _give_ids(drafts))


def stamp(drafts: Sequence[Draft], last: datetime.datetime | None, now: datetime.datetime, outcome: Outcome) -> Stamps:
    """Give each draft an id and the recorded stamp `max(now, last)`: recorded time never
    goes backwards. Stamps a file carried are replaced, with one warning."""
    if last is not None and now < last:
        now = last
    carried = {place: d.event.recorded for place, d in enumerate(drafts) if d.event.recorded != UNRECORDED}
    if carried:
        outcome.warnings.append(
            f"{len(carried)} events carried recorded stamps; the ledger stamped them {format_recorded(now)} "
            "(use --keep-recorded to keep the original stamps)"
        )
    stamps = Stamps(drafts, _give_ids(drafts), restamped=True, carried=carried)
    set_field = msgspec.structs.force_setattr
    for draft in drafts:
        set_field(draft.event, "recorded", now)
    return stamps


def _give_ids(drafts: Sequence[Draft]) -> bytearray:
    """Give each draft's event without one a new id, in place; 1 for each given."""
    gave = bytearray(len(drafts))
    set_field = msgspec.structs.force_setattr
    for place, draft in enumerate(drafts):
        if draft.event.id == NIL_ID:
            set_field(draft.event, "id", uuid.uuid4())
            gave[place] = 1
    return gave


def admit(
    fresh: Sequence[Draft],
    policy: PolicyStream,
    buyer_stream: Callable[[str], BuyerStream],
    recheck_buyers: Callable[[], None],
    outcome: Outcome,
    progress: ProgressHook | None = None,
    trial: Trial | None = None,
    listed: bool = True,
) -> list[Admitted]:
    """Check each draft against its stream; refuse at the first bad one, or (a trial) note
    it and go on as if it had never been given. `buyer_stream` gives a buyer's stream, read
    once per write; `recheck_buyers` re-checks every buyer after an amendment.

    Drafts stamped with one recorded moment (a whole ordinary write) are checked together,
    as the state they make known at that moment (`admit_moment`); a draft alone, one by one.
    Not `listed`: the admitted events are only in `outcome.recorded`, in input order, and each
    takes the next version of its stream (a large write counts them as it saves)."""
    admitted: list[Admitted] | None = [] if listed else None
    done = 0
    for _, moment in itertools.groupby(fresh, key=lambda draft: draft.event.recorded):
        group = list(moment)
        if len(group) == 1:
            _admit_one(group[0], policy, buyer_stream, recheck_buyers, admitted, outcome, trial)
        else:
            admit_moment(group, policy, buyer_stream, recheck_buyers, admitted, outcome, trial)
        done += len(group)
        if progress and done >= PROGRESS_EVERY:
            progress(done)
            done = 0
    if progress and done:
        progress(done)
    return admitted or []


def _admit_one(
    draft: Draft,
    policy: PolicyStream,
    buyer_stream: Callable[[str], BuyerStream],
    recheck_buyers: Callable[[], None],
    admitted: list[Admitted] | None,
    outcome: Outcome,
    trial: Trial | None,
) -> None:
    event = draft.event
    try:
        if isinstance(event, BuyerEvent):
            stream = buyer_stream(event.buyer)
            warnings = stream.admit(event, policy.terms_at)
            version = len(stream.events)
        else:
            warnings = policy.admit(event)
            version = len(policy.events)
            if isinstance(event, PolicyAmended):
                recheck_buyers()
    except LedgerError as problem:
        if trial is None:
            raise draft.error(problem) from None
        trial.refused.append(Refused(draft, draft.error(problem)))
        return
    _admitted(draft, version, warnings, admitted, outcome, trial)


def admit_moment(
    group: list[Draft],
    policy: PolicyStream,
    buyer_stream: Callable[[str], BuyerStream],
    recheck_buyers: Callable[[], None],
    admitted: list[Admitted] | None,
    outcome: Outcome,
    trial: Trial | None,
) -> None:
    """Drafts recorded at one moment: the policy's first, in order (the buyers' events are
    checked under the terms they leave), then each buyer's all at once (`admit_all`: one
    fold, in fold order, whatever their order in the input). Admitted in input order."""
    # Per place in group: the stream version taken (0: not admitted), and the warnings where there
    # are any (a dict of a million (version, warnings) pairs was a fifth of a large import's memory).
    versions = [0] * len(group)
    notes: dict[int, list[str]] = {}
    refused: list[tuple[int, LedgerError]] = []
    amendment = None
    buyers: dict[str, list[int]] = {}
    for place, draft in enumerate(group):
        event = draft.event
        if isinstance(event, BuyerEvent):
            buyers.setdefault(event.buyer, []).append(place)
            continue
        try:
            warnings = policy.admit(event)
        except LedgerError as problem:
            refused.append((place, problem))
            if trial is None:
                break
            continue
        _note(versions, notes, place, len(policy.events), warnings)
        if isinstance(event, PolicyAmended):
            amendment = place
    for buyer, places in buyers.items():
        if refused and trial is None:
            break
        stream = buyer_stream(buyer)
        while places:
            start = len(stream.events)
            try:
                found = admit_all(stream, [cast(BuyerEvent, group[p].event) for p in places], policy.terms_at)
            except EventRefused as refusal:
                for k in range(refusal.added):
                    _note(versions, notes, places[k], start + k + 1, refusal.warnings[k])
                blamed = places[refusal.index]
                refused.append((blamed, refusal.problem))
                if trial is None:
                    break
                places = [p for p in places[refusal.added:] if p != blamed]
                continue
            for k, place in enumerate(places):
                _note(versions, notes, place, start + k + 1, found[k])
            places = []
    if amendment is not None and not (refused and trial is None):
        try:
            recheck_buyers()
        except LedgerError as problem:
            versions[amendment] = 0
            refused.append((amendment, problem))
    refused.sort(key=lambda pair: pair[0])
    if refused and trial is None:
        first, why = refused[0]
        raise group[first].error(why) from None
    for place, why in refused:
        assert trial is not None
        trial.refused.append(Refused(group[place], group[place].error(why)))
    for place, draft in enumerate(group):
        if versions[place]:
            _admitted(draft, versions[place], notes.get(place, NO_WARNINGS), admitted, outcome, trial)


def _note(versions: list[int], notes: dict[int, list[str]], place: int, version: int, warnings: list[str]) -> None:
    versions[place] = version
    if warnings:
        notes[place] = warnings


def _admitted(
    draft: Draft, version: int, warnings: list[str], admitted: list[Admitted] | None, outcome: Outcome,
    trial: Trial | None,
) -> None:
    outcome.warnings.extend(draft.where() + w for w in warnings)
    if admitted is not None:
        admitted.append(Admitted(draft.event, version))
    outcome.recorded.append(draft.event)
    if trial is not None:
        trial.admitted.append(draft)
