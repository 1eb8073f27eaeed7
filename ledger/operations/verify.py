"""`verify`: is the ledger as the ledger wrote it?

A pipeline of named checks over one opened ledger, each returning findings
(records, not exceptions, so that one run reports every check):

- `chain`: walks `stored_events`, `ledger_index` and `ledger_chain` side by
  side in notification order, recomputing each hash (`ledger.store.chain_hash`), and
  names the first event that was changed, deleted, inserted or reordered
  behind the ledger's back; checks that each index row says what its stored
  event says.
- `read_models`: the exposure read model, caught up, equals each buyer's
  timeline folded afresh from the stored events.

More checks plug in with `register_check`. The report ends with the chain's head (count
and last hash): an auditor who keeps it can later pass it as `expect_head`,
which is what reveals a deleted tail or a chain recomputed from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from eventsourcing.persistence import StoredEvent

from ledger.service import Ledger
from ledger.store import GENESIS, ChainSlot, IndexRow, chain_hash
from ledger.vocabulary.errors import LedgerError
from projections.timeline import exposure_timeline


@dataclass(frozen=True)
class Finding:
    """One thing verify found wrong, with the event it is about (where known)."""

    check: str
    problem: str  # changed, deleted, inserted, reordered, index, fold, head
    message: str
    notification_id: int | None = None
    event_id: str | None = None
    key: str | None = None

    def line(self) -> str:
        """The one line the CLI prints."""
        where = []
        if self.notification_id is not None:
            where.append(f"notification {self.notification_id}")
        if self.event_id:
            where.append(f"event {self.event_id}")
        if self.key:
            where.append(f"key {self.key}")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class Report:
    """What verify checked and found; clean when no finding."""

    events: int = 0
    head_id: int = 0
    head_hash: str = GENESIS
    checks: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


Check = Callable[[Ledger, Report], list[Finding]]
CHECKS: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a check to every later `verify` run (in registration order)."""
    CHECKS[name] = check


def verify(ledger: Ledger, *, expect_head: str | None = None, checks: list[str] | None = None) -> Report:
    """Run the checks (all registered ones by default) and return the report."""
    report = Report()
    for name in checks or list(CHECKS):
        report.checks.append(name)
        report.findings += CHECKS[name](ledger, report)
    if expect_head is not None and not any(f.check == "chain" for f in report.findings):
        report.findings += _check_head(ledger, expect_head)
    return report


# ---------------------------------------------------------------- the chain

class _Identified(msgspec.Struct):
    id: str


def _stored_id(stored: StoredEvent) -> str | None:
    try:
        return msgspec.json.decode(stored.state, type=_Identified).id
    except msgspec.DecodeError:
        return None


def check_chain(ledger: Ledger, report: Report) -> list[Finding]:
    """Walk the chain; the first event changed, deleted, inserted or reordered, or an index row that disagrees."""
    previous_id, previous_hash = 0, GENESIS
    for slot in ledger.store.chain.slots():
        found = _check_slot(ledger, slot, previous_id, previous_hash)
        if found is not None:
            return [found]
        assert slot.chain_hash is not None
        previous_id, previous_hash = slot.notification_id, slot.chain_hash
        report.events += 1
    report.head_id, report.head_hash = previous_id, previous_hash
    return []


def _check_slot(ledger: Ledger, slot: ChainSlot, previous_id: int, previous_hash: str) -> Finding | None:
    n = slot.notification_id
    key = slot.index.key if slot.index else None
    named_id = slot.chain_event_id or (slot.index.event_id if slot.index else None)

    def finding(problem: str, message: str, event_id: str | None = named_id, at: int = n) -> Finding:
        return Finding("chain", problem, message, at, event_id, key)

    if slot.stored is None:
        return finding("deleted", "the event was deleted from the database (its chain or index row is still there)")
    stored_id = _stored_id(slot.stored)
    if slot.chain_hash is None or slot.previous_id is None:
        key = key or _stored_key(slot.stored)
        return finding("inserted", "the event is not in the hash chain: it was inserted behind the ledger's back",
                       stored_id or named_id)
    if slot.previous_id > previous_id:
        key = None
        return finding("deleted", f"the event was deleted from the database (the chain links notification {n} to it)",
                       None, slot.previous_id)
    if slot.previous_id < previous_id:
        return finding("inserted", f"the chain links this event to notification {slot.previous_id}, not to "
                       f"{previous_id}: an event was inserted before it")
    if slot.index is None:
        return finding("index", "the event has no ledger_index row (deleted behind the ledger's back)", stored_id)
    if chain_hash(previous_hash, n, previous_id, slot.stored, slot.index) != slot.chain_hash:
        if stored_id is not None and stored_id != slot.chain_event_id:
            elsewhere = ledger.store.chain.position_of(stored_id)
            if elsewhere is not None:
                return finding("reordered", f"event {stored_id} is stored here but the chain recorded it at "
                               f"notification {elsewhere}: events were reordered")
        return finding("changed", "the event was changed in the database: its hash does not match the chain")
    return _index_agrees(ledger, slot, finding)


def _index_agrees(ledger: Ledger, slot: ChainSlot, finding: Callable[..., Finding]) -> Finding | None:
    """The index row must say what the stored event says (it is how queries find events)."""
    assert slot.stored is not None and slot.index is not None
    try:
        event = ledger.store.decode(slot.stored.topic, slot.stored.state)
    except (msgspec.DecodeError, msgspec.ValidationError, LedgerError) as problem:
        return finding("changed", f"the stored event does not decode: {problem}")
    expected = IndexRow.of(event)
    if expected != slot.index:
        wrong = [name for name in ("event_id", "key", "recorded", "effective", "type", "buyer")
                 if getattr(expected, name) != getattr(slot.index, name)]
        return finding("index", f"the ledger_index row disagrees with the stored event on {', '.join(wrong)}")
    return None


def _stored_key(stored: StoredEvent) -> str | None:
    try:
        key = msgspec.json.decode(stored.state).get("key")
    except (msgspec.DecodeError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def _check_head(ledger: Ledger, head: str) -> list[Finding]:
    """An earlier head must still be in the chain: otherwise the tail was cut or the chain rebuilt."""
    if ledger.store.chain.holds(head):
        return []
    return [Finding("head", "head", f"the expected head {head} is not in the chain: events were deleted from "
                    "the end, or the chain was rebuilt")]


# ---------------------------------------------------------------- the read models

def check_read_models(ledger: Ledger, report: Report) -> list[Finding]:
    """The exposure read model (ledger/readmodels/exposure.py), caught up, must equal a fresh fold
    of the stored events: every buyer's timeline, entry by entry."""
    if not ledger.has_policy():
        return []
    stored = ledger.exposure_model.stored()
    policy = ledger.policy_events()
    findings = []
    for buyer in sorted(set(ledger.buyers()) | set(stored)):
        fresh = exposure_timeline(buyer, ledger.buyer_events(buyer), policy)
        kept = stored.get(buyer, [])
        if kept != fresh:
            since = next((a.since for a, b in zip(kept, fresh, strict=False) if a != b), None)
            if since is None:
                since = (kept or fresh)[min(len(kept), len(fresh))].since
            findings.append(Finding(
                "read_models", "read_model",
                f"the exposure read model of buyer {buyer} differs from a fresh fold from {since}"
                " (rebuilt now)",
            ))
    if findings:  # never served again: the stored rows are replaced by a fresh fold
        ledger.exposure_model.rebuild()
    return findings


register_check("chain", check_chain)
register_check("read_models", check_read_models)
