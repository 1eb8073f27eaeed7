"""One exposure read model shared by processes (docs/design.md "Read models"), on SQLite and PostgreSQL.

Processes catching up at once (one folds, the others find the work done), a
catch-up killed with SIGKILL half way (the next process finishes it, and the
figures equal a fresh fold), a catch-up racing writes (every query sees what
was recorded before it started), readers that never wait for a catch-up's
lock, and the follower `serve` runs in a background thread.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_readmodels import DAYS, assert_matches_the_fold, sample_ledger, tracked

from ledger.queries.exposure import book_exposures
from ledger.readmodels import exposure as readmodels
from ledger.readmodels.exposure import ExposureModel
from ledger.service import Ledger
from ledger.store import memory_tables
from ledger.vocabulary.terms import amend_policy

WORKER = Path(__file__).with_name("readmodel_worker.py")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(child: subprocess.Popen[str], prefix: str) -> str:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the worker ended without {prefix!r}: {child.wait()} {child.stderr and child.stderr.read()}")


def finish(child: subprocess.Popen[str]) -> list[str]:
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    return out.splitlines()


def fresh_fold(ledger: Ledger) -> dict[str, list[readmodels.ExposureStep]]:
    rebuilt = ExposureModel(ledger, memory_tables())
    try:
        return rebuilt.stored()
    finally:
        rebuilt.close()


def stale(location: str) -> int:
    """A sample ledger whose stored model is behind a policy amendment (every buyer to refold)."""
    with sample_ledger(location) as ledger:
        book_exposures(ledger, DAYS[1], None)
        ledger.load_policy(amend_policy(ledger.terms(), {"max_credit_days": 60}), effective=DAYS[1])
        return len(ledger.buyers())


def test_processes_catching_up_at_once_fold_once(durable_location: str):
    buyers = stale(durable_location)
    children = [start("catch-up", durable_location) for _ in range(2)]
    done = sorted(int(finish(child)[-1].split()[1]) for child in children)
    assert done == [0, buyers]  # one process folded every buyer; the other found it done
    with Ledger(durable_location) as ledger:
        assert ledger.exposure_model.stored() == fresh_fold(ledger)


def test_a_fresh_process_answers_from_what_another_folded(durable_location: str, monkeypatch: pytest.MonkeyPatch):
    stale(durable_location)
    finish(start("catch-up", durable_location))
    monkeypatch.setattr(readmodels, "exposure_changes", lambda *args: pytest.fail("refolded"))
    with Ledger(durable_location) as ledger:
        assert tracked(ledger) == ledger.log_position()[0]
        book_exposures(ledger, DAYS[2], None)


def test_a_catch_up_killed_half_way_is_finished_by_the_next_process(durable_location: str):
    stale(durable_location)
    with Ledger(durable_location) as ledger:
        before = tracked(ledger)
        child = start("catch-up", durable_location, "5")
        wait_for(child, "progress 5 ")  # half way through the fold, the lock held on PostgreSQL
        child.kill()
        child.wait()
        assert tracked(ledger) == before  # nothing of the killed catch-up was committed
        assert ledger.exposure_model.catch_up() == len(ledger.buyers())
        assert ledger.exposure_model.stored() == fresh_fold(ledger)
        assert_matches_the_fold(ledger)


def test_readers_do_not_wait_for_a_catch_up_and_queries_wait_only_for_it(durable_location: str):
    stale(durable_location)
    with Ledger(durable_location) as ledger:
        stored = ledger.exposure_model.tables.read("SELECT count(*) FROM exposure_timeline")
        child = start("catch-up", durable_location, "5")
        wait_for(child, "progress 5 ")
        # the last committed rows, read while another process folds (and holds the lock on PostgreSQL)
        assert ledger.exposure_model.tables.read("SELECT count(*) FROM exposure_timeline") == stored
        child.kill()
        child.wait()
        assert_matches_the_fold(ledger)


def test_a_catch_up_racing_writes_sees_what_was_recorded_before_each_query(durable_location: str):
    stale(durable_location)
    writer = start("append", durable_location, "60", "race")
    with Ledger(durable_location) as ledger:
        while writer.poll() is None:
            recorded = ledger.log_position()[0]
            book_exposures(ledger, DAYS[2], None)
            assert tracked(ledger) >= recorded
        assert writer.returncode == 0
        book_exposures(ledger, DAYS[2], None)
        assert ledger.count() == ledger.log_position()[0]
        assert ledger.exposure_model.stored() == fresh_fold(ledger)
        assert_matches_the_fold(ledger)


def test_the_follower_keeps_the_model_caught_up_in_the_background(durable_location: str):
    """On PostgreSQL the follower is woken by the write's NOTIFY (it would poll only every
    minute here); on SQLite it polls."""
    stale(durable_location)
    poll = 60.0 if "://" in durable_location else 0.05
    with Ledger(durable_location) as ledger, Ledger(durable_location) as other:
        stop = threading.Event()
        follower = threading.Thread(target=ledger.exposure_model.follow, args=(stop, poll))
        follower.start()
        try:
            for number in range(3):
                other.append({"type": "invoice_issued", "buyer": other.buyers()[number], "effective": "2025-03-01",
                              "invoice": f"F-{number}", "amount": "5.00", "due": "2025-05-01", "key": f"f-{number}"})
                deadline = time.monotonic() + 30
                while tracked(ledger) < other.log_position()[0] and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert tracked(ledger) == other.log_position()[0]
        finally:
            stop.set()
            follower.join(timeout=90)
        assert not follower.is_alive()
        assert ledger.exposure_model.stored() == fresh_fold(ledger)


def test_catch_up_is_safe_from_several_threads(durable_location: str):
    stale(durable_location)
    with Ledger(durable_location) as ledger:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(ledger.exposure_model.catch_up())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [0, 0, 0, len(ledger.buyers())]
        assert ledger.exposure_model.stored() == fresh_fold(ledger)


@pytest.mark.parametrize("child", ["folding", "failing", "unforkable"])
def test_a_rebuild_split_with_a_forked_process_stores_the_rows_of_one_fold(durable_location: str, child: str):
    """A rebuild of many buyers folds half of them in a forked process (a second core); its rows
    are those of a fold in one process, and a child that fails (or a fork refused) costs a fold
    here, not the rows."""
    with sample_ledger(durable_location) as ledger:
        expected = fresh_fold(ledger)
    lines = finish(start("split", durable_location, child))
    # PostgreSQL's connection pool runs threads: a process with threads never forks
    assert lines[-1] == ("forked 0" if durable_location.startswith("postgresql") else "forked 1")
    with Ledger(durable_location) as ledger:
        assert ledger.exposure_model.stored() == expected
