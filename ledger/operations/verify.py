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

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from eventsourcing.persistence import StoredEvent

from ledger.readmodels.book import book_of
from ledger.service import Ledger
from ledger.store import CHAIN_KEY_VARIABLE, GENESIS, ChainSlot, IndexRow, chain_hash, chain_key, checkpoint_mac
from ledger.vocabulary.errors import LedgerError
from projections.bookfacts import buyer_facts
from projections.timeline import exposure_timeline


@dataclass(frozen=True)
class Finding:
    """One thing verify found wrong, with the event it is about (where known)."""

    check: str
    problem: str  # changed, deleted, inserted, reordered, index, unchained, checkpoint, read_model, head
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
    chain_inits: list[tuple[str, int, int, str]] = field(default_factory=list)  # (at, events, head id, head hash)

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
        try:
            report.findings += CHECKS[name](ledger, report)
        except LedgerError as problem:  # a row it could not read: a finding, and the others are kept
            report.findings.append(Finding(name, "changed", f"the check stopped: {problem.message}"))
        except Exception as problem:
            if report.clean:  # on an untouched ledger it is a bug, not a finding
                raise
            # Rows edited into the wrong stream can trip a fold: the edit is already named.
            report.findings.append(Finding(name, "changed", f"the check stopped on the rows named above "
                                           f"({type(problem).__name__}: {problem})"))
    if expect_head is not None and not any(f.check == "chain" for f in report.findings):
        report.findings += _check_head(ledger, expect_head)
    if (key := chain_key()) is not None and "chain" in report.checks:
        report.findings += _check_checkpoints(ledger, key, report)
    return report


# ---------------------------------------------------------------- the chain

class _Identified(msgspec.Struct):
    id: str


def _stored_id(stored: StoredEvent) -> str | None:
    try:
        return msgspec.json.decode(stored.state, type=_Identified).id
    except (msgspec.DecodeError, TypeError):
        return None


def check_chain(ledger: Ledger, report: Report) -> list[Finding]:
    """Walk the chain and name every event changed, deleted, inserted or reordered, and every
    index row that disagrees with its event. After a bad row the walk goes on from the hash
    the chain stored there (or the one it should have stored), so later rows are judged alone."""
    chain = ledger.store.chain
    report.chain_inits = chain.log()
    if not chain.chained() and (events := ledger.count()):
        report.events = events
        return [Finding("chain", "unchained", f"the ledger's {events} events have no hash chain: it was dropped or "
                        "emptied, or the ledger was written before the chain. `creditledger chain init` chains them "
                        "as they now stand (logged); only a head kept earlier shows whether they were changed")]
    findings: list[Finding] = []
    previous_id, candidates = 0, {GENESIS}  # the hashes the previous link may rightly have
    for slot in ledger.store.chain.slots():
        found, hashes = _check_slot(ledger, slot, previous_id, candidates)
        findings += found
        if slot.previous_id is not None:  # a chain row: the next link follows it
            previous_id = slot.notification_id
            candidates = hashes
        if slot.stored is not None:
            report.events += 1
        if not findings:
            report.head_id, report.head_hash = slot.notification_id, str(slot.chain_hash)
    if findings:
        report.head_id, report.head_hash = 0, GENESIS
    return findings


def _check_slot(ledger: Ledger, slot: ChainSlot, previous_id: int, candidates: set[str]
                ) -> tuple[list[Finding], set[str]]:
    """The findings at one notification id, and the hashes the next link may follow."""
    n = slot.notification_id
    key = _text(slot.index.key) if slot.index else None
    named_id = _text(slot.chain_event_id) or (_text(slot.index.event_id) if slot.index else None)
    stored_hash = slot.chain_hash if isinstance(slot.chain_hash, str) else None
    follows = {stored_hash} if stored_hash else set()
    findings: list[Finding] = []

    def finding(problem: str, message: str, event_id: str | None = named_id, at: int = n,
                about: str | None = key) -> Finding:
        return Finding("chain", problem, message, at, event_id, about)

    if slot.stored is None:
        return [finding("deleted", "the event was deleted from the database (its chain or index row is still there)")], follows
    stored_id = _stored_id(slot.stored)
    if slot.previous_id is None:
        return [finding("inserted", "the event is not in the hash chain: it was inserted behind the ledger's back",
                        stored_id or named_id, about=key or _stored_key(slot.stored))], set()
    linked = slot.previous_id
    if not isinstance(linked, int) or isinstance(linked, bool):
        return [finding("changed", f"the chain row was edited: its previous id {linked!r} is not a number")], follows
    if linked > previous_id:
        findings.append(finding("deleted", f"the event was deleted from the database (the chain links notification "
                                f"{n} to it)", None, linked, None))
        candidates = set()  # its hash went with it: this link cannot be checked
    elif linked < previous_id:
        findings.append(finding("inserted", f"the chain links this event to notification {linked}, not to "
                                f"{previous_id}: an event was inserted before it"))
        candidates = set()
    if slot.index is None:
        findings.append(finding("index", "the event has no ledger_index row (deleted behind the ledger's back)",
                                stored_id))
        return findings, follows
    computed = {chain_hash(p, n, linked, slot.stored, slot.index) for p in candidates if _HASH.fullmatch(p)}
    if computed and stored_hash not in computed:
        findings.append(_changed(ledger, slot, stored_id, finding))
        return findings, follows | computed  # the hash was edited, or the event: the next link tells
    if slot.state_type is not None:
        findings.append(finding("changed", f"the event's state is stored as {slot.state_type}, not as the bytes "
                                "the ledger wrote: it was rewritten behind the ledger's back"))
        return findings, follows
    if slot.chain_event_id != slot.index.event_id:
        findings.append(finding("changed", f"the chain row names event {_text(slot.chain_event_id)}, not the "
                                "event stored here: it was edited behind the ledger's back", _text(slot.index.event_id)))
        return findings, follows
    agrees = _index_agrees(ledger, slot, finding)
    return findings + ([agrees] if agrees else []), follows


_HASH = re.compile(r"[0-9a-f]{64}")


def _changed(ledger: Ledger, slot: ChainSlot, stored_id: str | None, finding: Callable[..., Finding]) -> Finding:
    """A hash that does not match: an event stored at another place (reordered), or one changed."""
    if not isinstance(slot.chain_hash, str) or not _HASH.fullmatch(slot.chain_hash):
        return finding("changed", f"the chain row was edited: its hash {_text(slot.chain_hash)!r} is not one "
                       "the ledger wrote")
    if stored_id is not None and stored_id != slot.chain_event_id:
        elsewhere = ledger.store.chain.position_of(stored_id)
        if elsewhere is not None:
            return finding("reordered", f"event {stored_id} is stored here but the chain recorded it at "
                           f"notification {elsewhere}: events were reordered")
    return finding("changed", "the event was changed in the database: its hash does not match the chain")


def _text(value: object) -> str | None:
    """A column that should hold text, as text (an edited row may hold a number or bytes)."""
    if value is None or isinstance(value, str):
        return value
    return repr(value)


def _index_agrees(ledger: Ledger, slot: ChainSlot, finding: Callable[..., Finding]) -> Finding | None:
    """The index row must say what the stored event says (it is how queries find events)."""
    assert slot.stored is not None and slot.index is not None
    try:
        event = ledger.store.decode(slot.stored.topic, slot.stored.state, slot.notification_id)
    except LedgerError as problem:
        return finding("changed", f"the stored event does not decode: {problem.message}")
    expected = IndexRow.of(event)
    if expected != slot.index:
        wrong = [name for name in ("event_id", "key", "recorded", "effective", "type", "buyer")
                 if getattr(expected, name) != getattr(slot.index, name)]
        return finding("index", f"the ledger_index row disagrees with the stored event on {', '.join(wrong)}")
    return None


def _stored_key(stored: StoredEvent) -> str | None:
    try:
        key = msgspec.json.decode(stored.state).get("key")
    except (msgspec.DecodeError, AttributeError, TypeError):
        return None
    return key if isinstance(key, str) else None


def _check_head(ledger: Ledger, head: str) -> list[Finding]:
    """An earlier head must still be in the chain: otherwise the tail was cut or the chain rebuilt.
    A unique prefix of at least 12 hex digits will do (refused in one line otherwise)."""
    prefix = expected_head(head)
    if ledger.store.chain.with_prefix(prefix):
        return []
    return [Finding("head", "head", f"the expected head {head} is not in the chain: events were deleted from "
                    "the end, or the chain was rebuilt")]


HEAD_PREFIX = 12  # hex digits: 48 bits, no accidental match among any ledger's links


def expected_head(head: str) -> str:
    """A head hash, or a prefix of one, as given to --expect-head; refused unless 12 to 64 hex digits."""
    text = head.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{%d,64}" % HEAD_PREFIX, text):  # noqa: UP031 (a regex, not SQL)
        raise LedgerError(f"{head!r} is not a head hash: give the hash verify or a write printed, or at least its "
                          f"first {HEAD_PREFIX} hex digits", field="expect-head")
    return text


def check_expected_head(ledger: Ledger, head: str) -> None:
    """Refuse, in one line, a prefix that more than one link of the chain begins with."""
    prefix = expected_head(head)
    if len(prefix) < 64 and len(ledger.store.chain.with_prefix(prefix)) > 1:
        raise LedgerError(f"{head} is the beginning of more than one hash in the chain: give more of it",
                          field="expect-head")


def _check_checkpoints(ledger: Ledger, key: bytes, report: Report) -> list[Finding]:
    """With the chain key set: every keyed checkpoint must be the HMAC of the chain's hash where it
    stands, and the head must carry one, so that a chain rewritten without the key is found."""
    findings = []
    checkpoints = ledger.store.chain.checkpoints()
    for notification_id, mac, stored_hash in checkpoints:
        if not isinstance(stored_hash, str) or not hmac.compare_digest(
                checkpoint_mac(key, int(notification_id), stored_hash), str(mac)):
            findings.append(Finding("chain", "checkpoint", "the keyed checkpoint does not match the chain here: the "
                                    "chain was rewritten by someone without the key (or the key is not the one "
                                    "the ledger was written with)", int(notification_id)))
    head_id, _ = ledger.head()
    if head_id and not any(int(n) == head_id for n, _, _ in checkpoints):
        findings.append(Finding("chain", "checkpoint", f"the head (notification {head_id}) has no keyed checkpoint: "
                                f"it was written without {CHAIN_KEY_VARIABLE}, or the checkpoints were removed",
                                head_id))
    if findings:
        report.head_id, report.head_hash = 0, GENESIS
    return findings


# ---------------------------------------------------------------- the read models

def check_read_models(ledger: Ledger, report: Report) -> list[Finding]:
    """The exposure read model (ledger/readmodels/exposure.py), caught up, must equal a fresh fold
    of the stored events: every buyer's timeline, entry by entry; and so must the book read model."""
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
    return findings + _check_book_model(ledger)


def _check_book_model(ledger: Ledger) -> list[Finding]:
    """The book read model (ledger/readmodels/book.py), caught up, must equal a fresh fold:
    every buyer's facts and day sales, and the book's sales they sum to."""
    facts, sales, book = ledger.book_model.stored_facts()
    policy = ledger.policy_events()
    findings = []
    folded = []
    for buyer in sorted(set(ledger.buyers()) | set(facts) | set(sales)):
        fresh = buyer_facts(buyer, ledger.buyer_events(buyer), policy)
        folded.append((buyer, None, ()) if fresh is None else (buyer, *fresh))
        if (facts.get(buyer), sales.get(buyer)) != ((None, None) if fresh is None else fresh):
            findings.append(Finding("read_models", "read_model",
                                    f"the book read model of buyer {buyer} differs from a fresh fold (rebuilt now)"))
    if book != book_of(folded):
        findings.append(Finding("read_models", "read_model",
                                "the book read model's sales by country differ from a fresh fold (rebuilt now)"))
    if findings:
        ledger.book_model.rebuild()
    return findings


register_check("chain", check_chain)
register_check("read_models", check_read_models)
