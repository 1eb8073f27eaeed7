"""A writer process for the concurrency contract test (run as a script).

    python tests/workers.py LOCATION NAME GO_FILE COUNT

Opens the ledger, creates GO_FILE.NAME to say so, waits until GO_FILE exists
(so that the writers start together), then makes
COUNT appends to the ledger at LOCATION: every third one an invoice of its own
on the shared buyer B2, the others payments of 40.00 on the shared invoice I1
of buyer B1. Prints one JSON object: the keys it was told were recorded, and
each refusal it was given (key and message).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ledger.errors import LedgerError
from ledger.service import Ledger


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


def main() -> None:
    location, name, go_file, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
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


if __name__ == "__main__":
    main()
