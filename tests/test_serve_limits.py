"""What keeps `creditledger serve` from exhausting its process or its database: the ledger pool
closes what a burst of requests opened, and the cycle collector is switched only by the main
thread (a request on another thread must not turn it off under all the others)."""

from __future__ import annotations

import contextlib
import gc
import threading
from pathlib import Path

from ledger.service import Ledger
from ledger.vocabulary.bulk import collector_paused
from ledger.web.app import LedgerPool


def test_the_pool_keeps_only_a_few_idle_ledgers_after_a_burst(tmp_path: Path):
    location = str(tmp_path / "ledger.db")
    Ledger(location).close()
    pool = LedgerPool(location)
    with contextlib.ExitStack() as burst:
        leased = [burst.enter_context(contextlib.contextmanager(pool.lease)()) for _ in range(LedgerPool.KEEP + 5)]
        assert len({id(ledger) for ledger in leased}) == LedgerPool.KEEP + 5  # one each, at once
    assert len(pool._idle) == len(pool._all) == LedgerPool.KEEP
    with contextlib.contextmanager(pool.lease)() as again:
        assert again in pool._all  # an idle one is lent again, not a new one
    pool.close()


def test_only_the_main_thread_pauses_the_collector():
    assert gc.isenabled()
    seen: list[bool] = []

    def request() -> None:
        with collector_paused():
            seen.append(gc.isenabled())

    worker = threading.Thread(target=request)
    worker.start()
    worker.join()
    assert seen == [True]
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
