"""Concurrent writers (issue 8): several processes append to one ledger at once.

The contract test (test_store_contract.py) races two writers; this one races
more of them over a wider mix (tests/workers.py `mixed`): payments naming the
shared invoice I1 or no invoice, credit notes on I1, invoices of their own,
and two-event batches. Afterwards: every write got exactly one answer, the
ledger holds exactly the writes its writers were told were recorded (nothing
lost, nothing duplicated, batches whole), every buyer's stream still passes
every rule (no invoice over-allocated), money is conserved, and every
refusal was one the rules allow. `make soak` (CREDITLEDGER_SOAK=1) runs more
writers and writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_store_contract import ROOT, WORKER, wait_for
from workers import mixed_writes

from ledger.service import Ledger
from ledger.vocabulary.events import CreditNoteIssued, InvoiceIssued, PaymentReceived
from ledger.vocabulary.order import in_fold_order
from ledger.vocabulary.terms import PolicyTerms
from ledger.write.streams import BuyerStream
from projections.balances import BuyerBook

SOAK = os.environ.get("CREDITLEDGER_SOAK") == "1"
WRITERS, WRITES = (8, 150) if SOAK else (4, 24)
I1 = 100_000  # 1000.00 in minor units

# Which writes may be refused, and why (numbers as in workers.mixed_writes).
NAMING_I1 = {0, 4}  # a payment or a credit note naming I1: once I1 is used up


def race(location: str, tmp_path: Path, writers: int, writes: int) -> list[dict[str, Any]]:
    """Start `writers` processes, release them together, and return their reports."""
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    processes = []
    for number in range(writers):
        name = f"w{number}"
        processes.append(subprocess.Popen(
            [sys.executable, str(WORKER), location, name, str(go), str(writes), "mixed"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        ))
        wait_for(tmp_path / f"go.{name}", processes[-1])  # opened one by one, raced together
    go.touch()
    reports = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr
        reports.append(json.loads(stdout))
    return reports


@pytest.mark.slow
@pytest.mark.soak
def test_many_writers_lose_nothing_duplicate_nothing_and_never_over_allocate(
    durable_location: str, policy_terms: PolicyTerms, tmp_path: Path
) -> None:
    with Ledger(durable_location) as ledger:
        ledger.load_policy(policy_terms)
        for raw in [
            *({"type": "buyer_registered", "effective": "2025-01-02", "buyer": b, "name": b, "country": "GB"}
              for b in ("B1", "B2", "B3")),
            {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1",
             "amount": "1000.00", "due": "2025-03-10"},
        ]:
            ledger.append(raw)
        setup = ledger.count()

    reports = race(durable_location, tmp_path, WRITERS, WRITES)

    planned = {key: events for n in range(WRITERS) for key, events in mixed_writes(f"w{n}", WRITES)}
    told_recorded = [key for report in reports for key in report["recorded"]]
    told_refused = {r["key"]: r["message"] for report in reports for r in report["refused"]}
    # Every write got exactly one answer.
    assert len(told_recorded) == len(set(told_recorded))
    assert not set(told_recorded) & set(told_refused)
    assert set(told_recorded) | set(told_refused) == set(planned)

    with Ledger(durable_location) as ledger:
        events = list(ledger.events())
        buyers = {buyer: ledger.buyer_events(buyer) for buyer in ("B1", "B2", "B3")}
        terms_at = ledger.policy_stream().terms_at
    # Nothing lost, nothing duplicated, batches whole, nothing recorded that its writer was told was refused.
    stored = [e.key for e in events if e.key]
    assert len(stored) == len(set(stored)) == len(events) - setup
    assert set(stored) == {event["key"] for key in told_recorded for event in planned[key]}
    assert len({e.id for e in events}) == len(events)
    assert [e.recorded for e in events] == sorted(e.recorded for e in events)

    # Every rule still holds on every stream, read back in fold order: no invoice over-allocated.
    for buyer, stream in buyers.items():
        BuyerStream(events=stream).recheck(terms_at)
        book = BuyerBook()
        for event in in_fold_order(stream):
            book.apply(event)
        assert all(invoice.balance >= 0 for invoice in book.invoices.values()), buyer
        invoiced = sum(e.amount for e in stream if isinstance(e, InvoiceIssued))
        credited = sum(e.amount for e in stream if isinstance(e, CreditNoteIssued))
        paid = sum(e.amount for e in stream if isinstance(e, PaymentReceived))
        # Money conserved: what was billed less credit notes and allocated payments is what is open.
        assert invoiced - credited - (paid - book.unallocated) == book.outstanding, buyer
        assert book.unallocated == 0 or book.outstanding == 0, buyer
    on_i1 = sum(e.amount for e in buyers["B1"] if isinstance(e, (CreditNoteIssued, PaymentReceived))
                and e.invoice == "I1")
    assert on_i1 <= I1

    # Every refusal is one the rules allow: a write naming I1 once too little was open on it,
    # or (under heavy contention) a writer giving up after its attempts; never a lost write.
    for key, message in told_refused.items():
        kind = int(key.rsplit("-", 1)[1]) % 6
        if "gave up" in message:
            continue
        assert kind in NAMING_I1 and "open on invoice I1" in message, (key, message)
    refused_on_i1 = [k for k, m in told_refused.items() if "gave up" not in m]
    assert refused_on_i1, "the writers ask for more than I1 holds: some must be refused"
    backend = "postgresql" if durable_location.startswith("postgresql") else "sqlite"
    print(f"concurrent writers ({backend}): {WRITERS} writers, "
          f"{len(planned)} writes, {len(stored)} events recorded, {len(refused_on_i1)} refused on I1, "
          f"{len(told_refused) - len(refused_on_i1)} gave up")


def test_a_statement_psycopg_lost_in_a_rolled_back_conflict_is_retried_not_refused():
    """Seen in the PostgreSQL soak: after a conflict, psycopg named a prepared statement the
    rollback had dropped. The write is retried from fresh state like any conflict."""
    import psycopg
    from eventsourcing.persistence import OperationalError

    from ledger.service import _is_conflict

    lost = OperationalError("prepared statement \"_pg3_17\" does not exist")
    lost.__cause__ = psycopg.errors.InvalidSqlStatementName()
    assert _is_conflict(lost)
    assert not _is_conflict(OperationalError("connection refused"))
