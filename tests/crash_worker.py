"""A writer for the crash-safety tests (run as a script, killed with SIGKILL).

    python tests/crash_worker.py import LOCATION FILE
    python tests/crash_worker.py append LOCATION COUNT

`import` records FILE in one transaction as `creditledger import` does,
printing `checked N` as events pass their checks and `committed` once the
write returned. `append` makes COUNT single appends (invoices and payments
of buyer B1), printing each key once its append returned. Every line is
flushed at once: what the parent read was true when printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ledger.adapters.eventfiles import read_event_file
from ledger.service import Ledger


def append_rows(count: int) -> list[dict[str, str]]:
    """The appends, in order: an invoice, then a payment on it, and so on."""
    rows = []
    for number in range(count):
        invoice = f"C{number // 2}"
        if number % 2 == 0:
            rows.append({"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": invoice,
                         "amount": "12.50", "due": "2025-04-01", "key": f"k{number}"})
        else:
            rows.append({"type": "payment_received", "effective": "2025-02-15", "buyer": "B1", "invoice": invoice,
                         "amount": "5.00", "key": f"k{number}"})
    return rows


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    mode, location = sys.argv[1], sys.argv[2]
    with Ledger(location) as ledger:
        if mode == "import":
            source = read_event_file(Path(sys.argv[3]))
            drafts = ledger.parse(list(source.events), source.source)
            say("recording")
            checked = 0

            def progress(done: int) -> None:
                nonlocal checked
                checked += done
                say(f"checked {checked}")

            ledger.record(drafts, progress=progress)
            say("committed")
        else:
            say("recording")
            for raw in append_rows(int(sys.argv[3])):
                ledger.append(raw)
                say(raw["key"])


if __name__ == "__main__":
    main()
