"""A writer process for the concurrency contract test (run as a script).

    python tests/workers.py LOCATION NAME GO_FILE COUNT [mixed]

Opens the ledger, creates GO_FILE.NAME to say so, waits until GO_FILE exists
(so that the writers start together), then makes
COUNT appends to the ledger at LOCATION: every third one an invoice of its own
on the shared buyer B2, the others payments of 40.00 on the shared invoice I1
of buyer B1. With `mixed`, COUNT writes from `mixed_writes` instead (payments
naming I1 or no invoice, credit notes on I1, atomic two-event batches).
Prints one JSON object: the keys it was told were recorded, and
each refusal it was given (key and message).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError


def writes(name: str, count: int) -> list[dict[str, str]]:
    events = []
    for number in range(count):
        key = f"{name}-{number}"
        if number % 3 == 2:
            events.append({
                "type": "invoice_issued", "effective": "2025-02-01", "buyer": "B2", "invoice": key,
                "amount": "10.00", "due": "2025-03-01", "key": key,
            })
        else:
            events.append({
                "type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1",
                "amount": "40.00", "key": key,
            })
    return events


def mixed_writes(name: str, count: int) -> list[tuple[str, list[dict[str, str]]]]:
    """COUNT writes (write key, its events), cycling through six kinds, that race
    on shared buyers: B1's invoice I1 of 1000.00 (payments of 40.00 naming it,
    credit notes of 15.00 on it, payments of 35.00 naming no invoice, which go to
    it first), B3 (payments of 25.00 naming no invoice and invoices of 10.00,
    which take that credit as they are issued) and B2 (a batch of an invoice of
    30.00 and a payment naming it, recorded together or not at all)."""
    day = {"effective": "2025-02-01"}
    made: list[tuple[str, list[dict[str, str]]]] = []
    for number in range(count):
        key = f"{name}-{number}"
        kinds: list[dict[str, str]] = [
            {"type": "payment_received", "buyer": "B1", "invoice": "I1", "amount": "40.00"},
            {"type": "payment_received", "buyer": "B3", "amount": "25.00"},
            {"type": "invoice_issued", "buyer": "B3", "invoice": key, "amount": "10.00", "due": "2025-03-01"},
            {"type": "invoice_issued", "buyer": "B2", "invoice": key, "amount": "30.00", "due": "2025-03-01"},
            {"type": "credit_note_issued", "buyer": "B1", "invoice": "I1", "amount": "15.00"},
            {"type": "payment_received", "buyer": "B1", "amount": "35.00"},
        ]
        events = [kinds[number % 6]]
        if number % 6 == 3:
            events.append({"type": "payment_received", "buyer": "B2", "invoice": key, "amount": "30.00"})
        made.append((key, [{**day, **event, "key": f"{key}/{part}"} for part, event in enumerate(events)]))
    return made


def main() -> None:
    location, name, go_file, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    if sys.argv[5:] == ["mixed"]:
        mixed(location, name, go_file, count)
        return
    recorded: list[str] = []
    refused: list[dict[str, str]] = []
    with Ledger(location) as ledger:
        ledger.count()  # connect before the start signal
        go_file.with_name(f"{go_file.name}.{name}").touch()
        deadline = time.monotonic() + 30
        while not go_file.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        for raw in writes(name, count):
            time.sleep(0.002)  # let the other writer in between our writes
            try:
                outcome = ledger.append(raw)
            except LedgerError as problem:
                refused.append({"key": raw["key"], "message": str(problem)})
                continue
            recorded.extend(str(event.key) for event in outcome.recorded)
    json.dump({"recorded": recorded, "refused": refused}, sys.stdout)


def mixed(location: str, name: str, go_file: Path, count: int) -> None:
    """The `mixed` run: each write one atomic record() of its events."""
    recorded: list[str] = []
    refused: list[dict[str, str]] = []
    with Ledger(location) as ledger:
        ledger.count()
        go_file.with_name(f"{go_file.name}.{name}").touch()
        deadline = time.monotonic() + 30
        while not go_file.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        for key, events in mixed_writes(name, count):
            time.sleep(0.002)
            try:
                outcome = ledger.record(ledger.parse(list(enumerate(events, 1)), key))
            except LedgerError as problem:
                refused.append({"key": key, "message": str(problem)})
                continue
            assert len(outcome.recorded) == len(events), outcome
            recorded.append(key)
    json.dump({"recorded": recorded, "refused": refused}, sys.stdout)


if __name__ == "__main__":
    main()
