"""A process for the shared read-model tests (tests/test_shared_readmodels.py), run as a script.

    python tests/readmodel_worker.py catch-up LOCATION [PAUSE_AFTER]
    python tests/readmodel_worker.py append LOCATION COUNT NAME
    python tests/readmodel_worker.py split LOCATION [failing|unforkable]

`catch-up` opens the ledger and catches its exposure read model up, printing
`progress DONE TOTAL` after each buyer folded (and, given PAUSE_AFTER, sleeping
for a minute after that many buyers: the moment a test kills it), then
`refolded N position P`. `append` records COUNT invoices of 1.00 spread over
the ledger's buyers, keyed NAME-i, then prints `appended COUNT`. `split` rebuilds the
read model with half of the buyers folded in a forked process (whatever their number; with
`failing`, a child whose fold fails) and prints `forked N` (N processes forked).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ledger.readmodels import exposure as readmodels
from ledger.service import Ledger


def catch_up(location: str, pause_after: int | None) -> None:
    with Ledger(location) as ledger:
        def progress(done: int, total: int) -> None:
            print(f"progress {done} {total}", flush=True)
            if done == pause_after:
                time.sleep(60)

        refolded = ledger.exposure_model.catch_up(progress)
        print(f"refolded {refolded} position {ledger.exposure_model.position()}", flush=True)


def append(location: str, count: int, name: str) -> None:
    with Ledger(location) as ledger:
        buyers = ledger.buyers()
        for number in range(count):
            ledger.append({"type": "invoice_issued", "buyer": buyers[number % len(buyers)], "effective": "2025-03-01",
                           "invoice": f"{name}-{number}", "amount": "1.00", "due": "2025-05-01",
                           "key": f"{name}-{number}"})
        print(f"appended {count}", flush=True)


def split(location: str, child: str) -> None:
    parent, forked, fork, fold = os.getpid(), [], os.fork, readmodels._fold_rows

    def counted_fork() -> int:
        forked.append(1)
        if child == "unforkable":
            raise BlockingIOError("Resource temporarily unavailable")  # as fork(2) under a process limit
        return fork()

    def fold_rows(*args: Any) -> Any:
        if child == "failing" and os.getpid() != parent:
            raise RuntimeError("the child's fold failed")
        return fold(*args)

    readmodels.SPLIT_BUYERS, os.fork, readmodels._fold_rows = 2, counted_fork, fold_rows  # type: ignore[assignment]
    with Ledger(location) as ledger:
        ledger.exposure_model.rebuild()
    print(f"forked {len(forked)}", flush=True)


if __name__ == "__main__":
    command, location = sys.argv[1], sys.argv[2]
    if command == "split":
        split(location, sys.argv[3] if len(sys.argv) > 3 else "folding")
    elif command == "catch-up":
        catch_up(location, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    else:
        append(location, int(sys.argv[3]), sys.argv[4])
